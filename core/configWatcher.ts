// The long-poll engine behind GET /api/v1/nodes/{id}/config?wait=N.
//
// Thousands of agents may wait at once, so a wait must not cost a query per agent per second. Waiters are
// kept in memory; while at least one waits, ONE poller per process asks the database every CONFIG_POLL_MS
// which nodes' desired config changed since its high-water mark (index nodes_desired_changed_idx) and
// wakes the waiters whose node now has another hash. That is how a change written by another replica is
// seen. notify() wakes this process's waiters at once after a local change, without waiting for the poll.
//
// The high-water mark follows the desired_changed_at values read back, capped at this process's clock, and
// each poll looks OVERLAP_MS further back: a row stamped by a replica whose clock is a little behind, or
// committed a little late, is still seen. Rows read again inside the overlap cost nothing but a comparison.
// After each poll the mark also moves up to MARK_LAG_MS behind this process's clock: without that, the rows
// of the last burst of changes (a rollout, a fleet enrolling) were read again by every poll until the next
// change, thousands of rows a second on every replica for hours; now for about half a minute.
// The wait itself is real time: one ticker per process ends the waits whose deadline passed (every TICK_MS
// while pulls wait; a timer per wait cost half a kilobyte each). The route re-reads the node at the end of
// every wait, so a missed wake-up can only delay an answer, never make it wrong.
//
// The same poll keeps the replica's node-token memory current (core/nodeAuthCache.ts): it also reads the
// node credential changes (node_auth_changes) since the mark and makes the cache forget those nodes, and
// it hands the cache the new desired hashes. So it runs while pulls wait OR while the cache holds a node.
import type { CoreDeps } from "./deps.ts";
import { findDesiredChangedSince, findDesiredHash } from "../db/configs.ts";
import { findNodeAuthChangesSince } from "../db/nodeAuth.ts";
import type { NodeAuthCache } from "./nodeAuthCache.ts";

export const OVERLAP_MS = 5_000;
/** How far behind the clock the high-water mark stays at least: a change committed this long after it was
 * stamped (a transaction slowed by lock waits; each of its queries is bounded by DB_QUERY_TIMEOUT_MS) is
 * still read. */
export const MARK_LAG_MS = 30_000;

/** "replaced": the node started more waits than MAX_CONFIG_WAITS_PER_NODE and this, its oldest, made room. */
export type WaitOutcome = "changed" | "timeout" | "closed" | "cancelled" | "replaced";

export interface ConfigWaiter {
  /** `listener` is called once, when the wait ends: a change for the node (hash not among the known
   * ones), the deadline, shutdown, replacement or cancel. At once when it has ended already. No promise:
   * with 10,000 waits, each promise and its reactions are megabytes. It must not throw: it runs inside the
   * ticker, the poll and shutdown, which end other waits after it. */
  listen(listener: (outcome: WaitOutcome) => void): void;
  /** Stops waiting (the caller answered already, or hung up): the wait ends as "cancelled". */
  cancel(): void;
  /** As an abort listener (the client hung up): cancel(). */
  handleEvent(): void;
  /** After "changed" from a poll: the node's desired config as the poll read it (the caller need not read
   * the node again). Undefined when a local notify() woke it. */
  readonly woken?: { desiredHash: string; desiredVersionId: number };
}

export interface ConfigWatcherStats {
  waiting: number;
  polls: number;
  poll_errors: number;
  rows_read: number;
  wakeups: number;
  /** Waits ended early because their node started more than MAX_CONFIG_WAITS_PER_NODE. */
  replaced: number;
}

export interface ConfigWatcher {
  /** Registers a waiter for `nodeId`. `knownHashes` are the hashes the agent already has (If-None-Match);
   * register BEFORE reading the node, so a change between the read and the registration is not lost. */
  watch(nodeId: string, knownHashes: readonly string[], timeoutMs: number): ConfigWaiter;
  /** A change was committed in this process: wake the node's waiters now. Without `hash`, the node's
   * desired hash is read once to decide. */
  notify(nodeId: string, hash?: string | null): void;
  /** Waiters in this process right now. */
  readonly waiting: number;
  stats(): ConfigWatcherStats;
  /** Starts polling if it is not (the node-token cache remembered its first node). */
  ensurePolling(): void;
  /** One read for the pulls a wake-up answers at once: concurrent calls with the same key share `read`. */
  shared<T>(key: string, read: () => Promise<T>): Promise<T>;
  /** Shutdown: every waiter settles as "closed" at once and the poller stops. */
  close(): Promise<void>;
}

/** How often the ticker ends the waits whose deadline passed: a wait ends up to this much late. */
export const TICK_MS = 100;

/** One waiting pull. Its methods live on the prototype and it is its own abort listener: with 10,000 pulls
 * waiting, every closure or Set per wait is megabytes. */
class Waiter implements ConfigWaiter {
  woken?: { desiredHash: string; desiredVersionId: number };
  /** The ticker's tick at which its deadline passes (the watcher lists it there). */
  due = 0;
  /** How the wait ended; undefined while it waits. */
  #outcome?: WaitOutcome;
  #listener?: (outcome: WaitOutcome) => void;

  constructor(
    readonly nodeId: string,
    /** The hashes the agent has: one or two, so a list, not a Set. */
    readonly known: readonly string[],
    /** The watcher's bookkeeping when this wait ends (shared by all waits); none for a closed watcher's. */
    private readonly ended?: (waiter: Waiter) => void,
  ) {}

  settle(outcome: WaitOutcome): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = outcome;
    this.ended?.(this);
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.(outcome);
  }

  listen(listener: (outcome: WaitOutcome) => void): void {
    if (this.#outcome !== undefined) listener(this.#outcome);
    else this.#listener = listener;
  }

  cancel(): void {
    this.settle("cancelled");
  }

  handleEvent(): void {
    this.settle("cancelled");
  }
}

export function createConfigWatcher(
  deps: Pick<CoreDeps, "db" | "settings" | "clock" | "logger">,
  nodeAuth?: Pick<NodeAuthCache, "forget" | "desiredChanged" | "polled" | "size">,
): ConfigWatcher {
  /** Something needs the poll: pulls waiting, or nodes remembered by the token cache. */
  const needed = () => waiting > 0 || (nodeAuth?.size ?? 0) > 0;
  const byNode = new Map<string, Waiter[]>();
  let waiting = 0;
  // The waits by the tick their deadline falls in (performance.now() / TICK_MS, rounded up).
  const deadlines = new Map<number, Waiter[]>();
  let ticker: ReturnType<typeof setInterval> | undefined;
  let lastTick = 0;
  let closed = false;
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  let inflight: Promise<void> | undefined;
  const notifyReads = new Set<Promise<void>>();
  let highWaterMs: number | undefined;
  let authChangesSeen = new Set<number>();
  const sharedReads = new Map<string, Promise<unknown>>();
  let failing = false;
  const counters = { polls: 0, poll_errors: 0, rows_read: 0, wakeups: 0, replaced: 0 };

  const ended = (waiter: Waiter) => {
    const list = byNode.get(waiter.nodeId);
    const at = list?.indexOf(waiter) ?? -1;
    if (at !== -1) list!.splice(at, 1);
    if (list?.length === 0) byNode.delete(waiter.nodeId);
    // Off its deadline's list too, so a wait that ended early is let go at once (a client hanging up in a
    // loop must not leave a minute of ended waits behind). At its deadline the tick took the list already.
    const due = deadlines.get(waiter.due);
    const slot = due?.indexOf(waiter) ?? -1;
    if (slot !== -1) due!.splice(slot, 1);
    if (due?.length === 0) deadlines.delete(waiter.due);
    waiting--;
    stopWhenIdle();
  };

  const tick = () => {
    const now = Math.floor(performance.now() / TICK_MS);
    for (; lastTick < now; lastTick++) {
      const due = deadlines.get(lastTick + 1);
      if (!due) continue;
      deadlines.delete(lastTick + 1);
      for (const waiter of due) waiter.settle("timeout");
    }
  };

  const wake = (nodeId: string, hash: string | null, versionId?: number | null) => {
    if (hash === null) return; // a node without config has nothing to hand out yet
    const list = byNode.get(nodeId);
    if (!list) return;
    for (const waiter of [...list]) {
      if (!waiter.known.includes(hash)) {
        counters.wakeups++;
        if (versionId != null) waiter.woken = { desiredHash: hash, desiredVersionId: versionId };
        waiter.settle("changed");
      }
    }
  };

  const poll = async () => {
    const startedAt = performance.now();
    const nowMs = deps.clock.now().getTime();
    let mark = highWaterMs ?? nowMs;
    const since = new Date(Math.min(mark, nowMs) - OVERLAP_MS);
    try {
      const [rows, authChanges] = await Promise.all([
        findDesiredChangedSince(deps.db, since),
        nodeAuth ? findNodeAuthChangesSince(deps.db, since) : [],
      ]);
      counters.polls++;
      counters.rows_read += rows.length + authChanges.length;
      // Each change once: the overlap reads it again for a few seconds, and forgetting a node again would
      // only send its next requests to the database (a read that began before the first forget cannot put
      // the old token back: see forget()).
      const seen = new Set<number>();
      for (const change of authChanges) {
        mark = Math.max(mark, change.changedAt.getTime());
        seen.add(change.id);
        if (!authChangesSeen.has(change.id)) nodeAuth?.forget(change.nodeId);
      }
      authChangesSeen = seen;
      for (const row of rows) {
        if (row.desiredChangedAt) mark = Math.max(mark, row.desiredChangedAt.getTime());
        nodeAuth?.desiredChanged(row.id, row.desiredHash);
        wake(row.id, row.desiredHash, row.desiredVersionId);
      }
      mark = Math.max(mark, nowMs - MARK_LAG_MS);
      nodeAuth?.polled(startedAt);
      if (failing) deps.logger.info("config watcher polls again");
      failing = false;
    } catch (error) {
      counters.poll_errors++;
      // One line per outage, not one per poll; waiters still end at their deadline with a fresh read.
      if (!failing) deps.logger.warn("config watcher poll failed", { error });
      failing = true;
    }
    // Idle now: the next first waiter starts from its own registration time.
    highWaterMs = needed() ? mark : undefined;
  };

  const schedule = () => {
    if (closed || pollTimer !== undefined || inflight || !needed()) return;
    pollTimer = setTimeout(() => {
      pollTimer = undefined;
      inflight = poll().finally(() => {
        inflight = undefined;
        schedule();
      });
    }, deps.settings.CONFIG_POLL_MS);
  };

  const stopWhenIdle = () => {
    if (waiting === 0 && ticker !== undefined) {
      // Every wait still listed has ended.
      clearInterval(ticker);
      ticker = undefined;
      deadlines.clear();
    }
    if (needed()) return;
    if (pollTimer !== undefined) clearTimeout(pollTimer);
    pollTimer = undefined;
    // The next first waiter starts from its own registration time (see watch()).
    if (!inflight) highWaterMs = undefined;
  };

  return {
    watch(nodeId, knownHashes, timeoutMs) {
      if (closed) {
        const over = new Waiter(nodeId, knownHashes);
        over.settle("closed");
        return over;
      }
      let mine = byNode.get(nodeId);
      if (!mine) byNode.set(nodeId, mine = []);
      // One agent needs one wait; a token holding thousands would hold their memory. The oldest makes room
      // (its caller answers 304 from the read it made), so a reconnecting agent is never refused. Before the
      // new wait is listed: the last wait ending stops the ticker and clears the deadlines.
      while (mine.length >= deps.settings.MAX_CONFIG_WAITS_PER_NODE) {
        counters.replaced++;
        mine[0].settle("replaced");
        if (!byNode.has(nodeId)) byNode.set(nodeId, mine);
      }
      const waiter = new Waiter(nodeId, knownHashes, ended);
      const now = performance.now();
      if (ticker === undefined) {
        lastTick = Math.floor(now / TICK_MS) - 1;
        ticker = setInterval(tick, TICK_MS);
      }
      // Never a tick the ticker has passed already.
      const due = Math.max(Math.ceil((now + Math.max(0, timeoutMs)) / TICK_MS), lastTick + 1);
      const list = deadlines.get(due);
      waiter.due = due;
      if (list) list.push(waiter);
      else deadlines.set(due, [waiter]);
      mine.push(waiter);
      waiting++;
      // A change committed after this instant is found by the first poll (which looks OVERLAP_MS back).
      highWaterMs ??= deps.clock.now().getTime();
      schedule();
      return waiter;
    },

    notify(nodeId, hash) {
      if (hash !== undefined) nodeAuth?.desiredChanged(nodeId, hash);
      if (closed || !byNode.has(nodeId)) return;
      if (hash !== undefined) {
        wake(nodeId, hash);
        return;
      }
      const read = findDesiredHash(deps.db, nodeId).then(
        (row) => wake(nodeId, row?.desiredHash ?? null),
        (error) => deps.logger.warn("config watcher notify read failed", { node_id: nodeId, error }),
      ).finally(() => notifyReads.delete(read));
      notifyReads.add(read);
    },

    get waiting() {
      return waiting;
    },

    stats: () => ({ waiting, ...counters }),

    shared<T>(key: string, read: () => Promise<T>): Promise<T> {
      let pending = sharedReads.get(key) as Promise<T> | undefined;
      if (!pending) {
        pending = read().finally(() => sharedReads.delete(key));
        sharedReads.set(key, pending);
      }
      return pending;
    },

    ensurePolling() {
      highWaterMs ??= deps.clock.now().getTime();
      schedule();
    },

    async close() {
      closed = true;
      if (pollTimer !== undefined) clearTimeout(pollTimer);
      pollTimer = undefined;
      for (const list of [...byNode.values()]) {
        for (const waiter of [...list]) waiter.settle("closed");
      }
      await Promise.all([inflight, ...notifyReads]);
    },
  };
}
