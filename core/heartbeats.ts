// Heartbeats: the hottest path (a fleet of N agents sends N/30 a second, a bench 20,000 a second).
//
// A heartbeat is state, not history: only the latest per node matters (last seen, status, uptime, applied
// hash, pool sizes). So the token is checked from memory (core/nodeAuthCache.ts), the answer (the desired
// hash) comes from memory, and the heartbeat is kept in memory, the latest per node, and written at most
// every HEARTBEAT_FLUSH_MS (default 1 s) in one multi-row statement per replica. A node heartbeating ten
// times in that second costs one row. SIGTERM writes what is pending before the process ends.
//
// What a crash (kill -9, power loss) loses: the heartbeats of the last second or so, never more. That is
// harmless: last_heartbeat_at is at most a second older than it would be (a node is offline only after
// OFFLINE_AFTER_S, 90 s by default, and its next heartbeat 30 s later writes it again); status, uptime,
// version and pool sizes are re-sent in full by every heartbeat; an applied hash is also acked (a separate,
// immediate write). Nothing acknowledged as stored is lost: metric samples and acks are written before
// they are answered.
//
// HEARTBEAT_FLUSH_MS=0 writes each heartbeat before answering it, group-committed (while one batch is
// written, arrivals queue and the next write takes them all): the tests use it to read a heartbeat at once.
import type { HeartbeatOutcome, HeartbeatWrite } from "../db/agents.ts";
import { writeHeartbeats } from "../db/agents.ts";
import type { CoreDeps } from "./deps.ts";
import { unauthorized } from "./errors.ts";
import type { NodeAuthCache } from "./nodeAuthCache.ts";
import type { PoolLimiter } from "./poolLimit.ts";
import type { AgentCaller } from "./principal.ts";

/** Rows per statement when a flush has more nodes than this. */
const MAX_BATCH = 1000;

export interface HeartbeatWriter {
  /** Coalesced (HEARTBEAT_FLUSH_MS > 0): kept, resolves at once with undefined. Otherwise: resolves with the
   * outcome once written. */
  submit(write: HeartbeatWrite): Promise<HeartbeatOutcome | undefined>;
  /** Writes every heartbeat kept so far (tests, shutdown). */
  flush(): Promise<void>;
  stats(): {
    /** Heartbeats received and rows written: their ratio is what coalescing saves. */
    heartbeats: number;
    rows_written: number;
    batches: number;
    largest_batch: number;
    pending: number;
    write_ms: number;
    write_errors: number;
  };
  /** Writes what is pending and stops the timer. */
  close(): Promise<void>;
}

interface Waiting {
  write: HeartbeatWrite;
  resolve(outcome: HeartbeatOutcome | undefined): void;
  reject(error: unknown): void;
}

/** The later heartbeat wins; what it does not say keeps the earlier one's value (as the UPDATE would). */
function merge(earlier: HeartbeatWrite, later: HeartbeatWrite): HeartbeatWrite {
  const pools = new Map(earlier.pools.map((p) => [p.poolOcid, p]));
  for (const p of later.pools) pools.set(p.poolOcid, p);
  return {
    ...later,
    address: later.address ?? earlier.address,
    claimedAddress: later.claimedAddress ?? earlier.claimedAddress,
    status: later.status ?? earlier.status,
    uptimeS: later.uptimeS ?? earlier.uptimeS,
    agentVersion: later.agentVersion ?? earlier.agentVersion,
    appliedHash: later.appliedHash !== undefined ? later.appliedHash : earlier.appliedHash,
    pools: [...pools.values()],
  };
}

export function createHeartbeatWriter(
  deps: Pick<CoreDeps, "pool" | "logger" | "settings">,
  options: { nodeAuth?: Pick<NodeAuthCache, "forget" | "desiredChanged">; flushMs?: number } = {},
): HeartbeatWriter {
  const flushMs = options.flushMs ?? deps.settings.HEARTBEAT_FLUSH_MS;
  /** Coalesced: the latest heartbeat per node. Write-through: every caller waiting for its batch. */
  let pending = new Map<string, Waiting[]>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writing: Promise<void> | undefined;
  let again = false;
  const counters = {
    heartbeats: 0,
    rows_written: 0,
    batches: 0,
    largest_batch: 0,
    write_ms: 0,
    write_errors: 0,
  };

  async function writeBatch(items: Waiting[][]): Promise<void> {
    const writes = items.map((waiting) => waiting.at(-1)!.write);
    for (let attempt = 1;; attempt++) {
      try {
        const started = performance.now();
        const outcomes = await writeHeartbeats(deps.pool, writes);
        counters.write_ms += performance.now() - started;
        counters.batches++;
        counters.rows_written += writes.length;
        counters.largest_batch = Math.max(counters.largest_batch, writes.length);
        outcomes.forEach((outcome, i) => {
          // The token changed or the node went while this was kept: the replica checks it again next time.
          if (!outcome.written) options.nodeAuth?.forget(writes[i].nodeId);
          else options.nodeAuth?.desiredChanged(writes[i].nodeId, outcome.desiredHash);
          for (const waiting of items[i]) waiting.resolve(outcome);
        });
        return;
      } catch (error) {
        // Another replica's batch may deadlock with this one (its join order is the optimizer's): retry once.
        if ((error as { code?: string }).code === "ER_LOCK_DEADLOCK" && attempt < 2) continue;
        counters.write_errors++;
        if (flushMs > 0) {
          // Nobody waits for a coalesced heartbeat: say it, once per failed flush. The next heartbeat of each
          // node (30 s later) writes it again.
          deps.logger.warn("heartbeat flush failed", { rows: writes.length, error });
        }
        for (const waiting of items.flat()) waiting.reject(error);
        return;
      }
    }
  }

  /** Writes everything pending, MAX_BATCH rows a statement, one statement at a time. */
  function flushNow(): Promise<void> {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (writing) {
      again = true;
      return writing;
    }
    if (pending.size === 0) return Promise.resolve();
    const taken = [...pending.values()];
    pending = new Map();
    writing = (async () => {
      for (let i = 0; i < taken.length; i += MAX_BATCH) await writeBatch(taken.slice(i, i + MAX_BATCH));
    })().finally(() => {
      writing = undefined;
      if (pending.size === 0) return;
      // Write-through: the next group commit at once; coalesced: at the next tick unless flush() waits.
      if (flushMs === 0 || again) void flushNow();
      else schedule();
      again = false;
    });
    return writing;
  }

  function schedule(): void {
    if (timer !== undefined || writing || pending.size === 0) return;
    timer = setTimeout(() => void flushNow(), flushMs);
  }

  return {
    submit(write) {
      counters.heartbeats++;
      if (flushMs > 0) {
        const kept = pending.get(write.nodeId);
        const merged = kept ? merge(kept[0].write, write) : write;
        pending.set(write.nodeId, [{ write: merged, resolve: () => {}, reject: () => {} }]);
        schedule();
        return Promise.resolve(undefined);
      }
      return new Promise<HeartbeatOutcome | undefined>((resolve, reject) => {
        // Write-through: one row per node per batch; every caller answered from it.
        const waiting = pending.get(write.nodeId);
        const item = { write, resolve, reject };
        if (waiting) {
          item.write = merge(waiting.at(-1)!.write, write);
          waiting.push(item);
        } else pending.set(write.nodeId, [item]);
        if (!writing) void flushNow();
      });
    },
    flush: async () => {
      // A flush in progress took what was pending when it started: wait for it, then write the rest.
      while (writing || pending.size > 0) await flushNow();
    },
    stats: () => ({ ...counters, pending: pending.size }),
    close: async () => {
      while (writing || pending.size > 0) await flushNow();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}

export interface HeartbeatInput {
  status?: string | null;
  uptime_s?: number | null;
  applied_config_hash?: string | null;
  agent_version?: string | null;
  address?: string | null;
  pools?: { instance_pool_id: string; instance_count: number }[] | null;
}

export interface HeartbeatResult {
  desired_config_hash: string | null;
  heartbeat_interval_s: number;
  config_changed: boolean;
}

/** Records a heartbeat: the token checked (from memory when the replica is sure of it), the heartbeat kept
 * for the next flush, the answer from what the replica knows of the node's desired config. */
export async function recordHeartbeat(
  deps: CoreDeps,
  services: { heartbeats: HeartbeatWriter; pools: PoolLimiter; nodeAuth: NodeAuthCache },
  caller: AgentCaller,
  nodeId: string,
  body: HeartbeatInput,
): Promise<HeartbeatResult> {
  const node = await services.nodeAuth.authenticate(nodeId, caller.token);
  const poolOcids = (body.pools ?? []).map((p) => p.instance_pool_id);
  if (services.pools.hasUnknown(nodeId, poolOcids)) {
    // A pool this node never named (rare): count it against MAX_POOLS_PER_NODE.
    await services.pools.ensure(nodeId, poolOcids, (i) => `pools.${i}.instance_pool_id`);
  }
  const appliedHash = body.applied_config_hash === undefined
    ? undefined
    : (body.applied_config_hash?.toLowerCase() ?? null);
  const outcome = await services.heartbeats.submit({
    nodeId,
    tokenHash: node.tokenHash,
    at: deps.clock.now(),
    address: caller.address,
    claimedAddress: body.address ?? null,
    status: body.status ?? null,
    uptimeS: body.uptime_s ?? null,
    agentVersion: body.agent_version ?? null,
    appliedHash,
    pools: (body.pools ?? []).map((p) => ({ poolOcid: p.instance_pool_id, instanceCount: p.instance_count })),
  });
  if (outcome && !outcome.written) {
    // Write-through only: the token changed between the check and the write.
    services.nodeAuth.forget(nodeId);
    await services.nodeAuth.authenticate(nodeId, caller.token); // throws the precise refusal
    throw unauthorized("invalid node token");
  }
  if (appliedHash !== undefined) node.appliedHash = appliedHash;
  deps.telemetry?.heartbeat();
  const desired = outcome ? outcome.desiredHash : node.desiredHash;
  const applied = outcome ? outcome.appliedHash : node.appliedHash;
  return {
    desired_config_hash: desired,
    heartbeat_interval_s: deps.settings.HEARTBEAT_INTERVAL_S,
    config_changed: desired !== null && desired !== applied,
  };
}
