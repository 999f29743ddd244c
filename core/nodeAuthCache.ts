// Node tokens checked in memory. Every agent request carries its node token; checking it against the
// database cost a query (and an HMAC) per heartbeat. Each replica remembers, per node whose token it checked
// lately, the token it accepted, the node's name and the node's desired and applied config hashes, and
// answers from memory while it is sure nothing changed:
// - a token rotation, decommission or delete writes a node_auth_changes row in its transaction, and the
//   config watcher's poll (one query per replica every CONFIG_POLL_MS, core/configWatcher.ts) reads the rows
//   newer than its last look and calls forget() here: every replica refuses a revoked token within one poll
//   interval (plus the poll's own duration). This replica forgets at once (register calls forget());
// - memory is trusted only while polls succeed: when the last successful poll started more than
//   2 x CONFIG_POLL_MS + 1 s ago (database away or slow), every check goes to the database again;
// - an entry lives at most ENTRY_TTL_MS, so a change made by hand in the database, without the service,
//   takes effect within that time;
// - a node's desired hash follows the same poll (and local config changes), so heartbeat answers say
//   "config changed" as soon as a waiting config pull would wake.
// A miss reads the node from the database (the misses of a burst in one statement), checks the token exactly
// as core/nodeAuth.ts does and remembers the node when the token is its own. Refusals always come from the
// database, with the precise answer (401, 403, 404, 410).
import { findNodeAuthRows } from "../db/nodeAuth.ts";
import { batchedLoader } from "./batchedLoad.ts";
import type { CoreDeps } from "./deps.ts";
import { authenticateNode } from "./nodeAuth.ts";
import type { NodePrincipal } from "./principal.ts";
import { constantTimeEqual, keyedHash, SECRET_PREFIX, secretShaped } from "./secrets.ts";

export const ENTRY_TTL_MS = 60_000;
const MAX_ENTRIES = 100_000;
const LOAD_BATCH = 500;

export interface CachedNode {
  nodeId: string;
  nodeName: string;
  /** The token accepted (compared in constant time) and its keyed hash (heartbeat writes join on it). */
  token: string;
  tokenHash: string;
  desiredHash: string | null;
  appliedHash: string | null;
  /** performance.now() after which the entry is read again from the database. */
  expiresAt: number;
}

export interface NodeAuthCache {
  /** The node, when `token` is its own; otherwise throws what authenticateNode throws. */
  authenticate(nodeId: string, token: string | undefined): Promise<CachedNode>;
  /** As authenticate, the principal only. */
  principal(nodeId: string, token: string | undefined): Promise<NodePrincipal>;
  /** The node's credentials changed (here or on another replica): check it against the database next. */
  forget(nodeId: string): void;
  /** The node's desired hash as this replica knows it, while it is sure of it (undefined otherwise). */
  desiredHash(nodeId: string): string | null | undefined;
  /** The node's desired config hash changed (a poll or a local change). */
  desiredChanged(nodeId: string, hash: string | null): void;
  /** A poll that started at `startedAt` (performance.now()) succeeded: memory is current up to then. */
  polled(startedAt: number): void;
  /** Nodes remembered now. */
  readonly size: number;
  /** Called when the first node is remembered (the watcher starts polling). */
  onFirstEntry?: () => void;
  stats(): { size: number; hits: number; misses: number; forgotten: number; loads: number };
}

export function createNodeAuthCache(
  deps: Pick<CoreDeps, "db" | "settings">,
  options: { ttlMs?: number } = {},
): NodeAuthCache {
  const entries = new Map<string, CachedNode>();
  const ttlMs = options.ttlMs ?? ENTRY_TTL_MS;
  const staleAfterMs = 2 * deps.settings.CONFIG_POLL_MS + 1_000;
  let lastPollStartedAt = -Infinity;
  // When each node was last forgotten: a read that began before must not put back what was forgotten.
  const forgottenAt = new Map<string, number>();
  const counters = { hits: 0, misses: 0, forgotten: 0, loads: 0 };

  // The misses of a burst (a replica starting under a fleet) share one statement.
  const load = batchedLoader(
    async (ids) => new Map((await findNodeAuthRows(deps.db, ids)).map((row) => [row.id, row])),
    LOAD_BATCH,
    () => counters.loads++,
  );
  let sweptAt = performance.now();

  /** The entry, while it may be answered from: not expired, and the polls are current. */
  const usable = (entry: CachedNode | undefined) => {
    if (!entry) return undefined;
    const now = performance.now();
    return entry.expiresAt > now && now - lastPollStartedAt < staleAfterMs ? entry : undefined;
  };

  const authenticate = async (nodeId: string, token: string | undefined): Promise<CachedNode> => {
    const entry = usable(entries.get(nodeId));
    if (entry && token && constantTimeEqual(entry.token, token)) {
      counters.hits++;
      return entry;
    }
    counters.misses++;
    if (!secretShaped(SECRET_PREFIX.nodeToken, token)) {
      await authenticateNode(deps, nodeId, token); // throws the precise refusal
      throw new Error("unreachable: a token of the wrong shape was accepted");
    }
    const startedAt = performance.now();
    const [tokenHash, row] = await Promise.all([keyedHash(deps.settings.SECRET_KEY, token), load(nodeId)]);
    if (!row || row.decommissionedAt || !row.tokenHash || !constantTimeEqual(row.tokenHash, tokenHash)) {
      // What is remembered goes only when the row says it is no longer right (a wrong token alone says
      // nothing about the node's own).
      const known = entries.get(nodeId);
      if (known && (!row || row.decommissionedAt || row.tokenHash !== known.tokenHash)) {
        entries.delete(nodeId);
      }
      await authenticateNode(deps, nodeId, token); // the precise refusal (401, 403, 404, 410)
      throw new Error("unreachable: authenticateNode accepted a token the node row refused");
    }
    const found: CachedNode = {
      nodeId,
      nodeName: row.name,
      token,
      tokenHash,
      desiredHash: row.desiredHash,
      appliedHash: row.appliedHash,
      expiresAt: performance.now() + ttlMs,
    };
    if ((forgottenAt.get(nodeId) ?? -Infinity) < startedAt) {
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      const first = entries.size === 0;
      entries.set(nodeId, found);
      if (first) cache.onFirstEntry?.();
    }
    return found;
  };

  const cache: NodeAuthCache = {
    authenticate,
    principal: async (nodeId, token) => {
      const entry = await authenticate(nodeId, token);
      return { kind: "node", nodeId: entry.nodeId, nodeName: entry.nodeName };
    },
    forget(nodeId) {
      forgottenAt.set(nodeId, performance.now());
      if (entries.delete(nodeId)) counters.forgotten++;
    },
    desiredHash(nodeId) {
      return usable(entries.get(nodeId))?.desiredHash;
    },
    desiredChanged(nodeId, hash) {
      const entry = entries.get(nodeId);
      if (entry) entry.desiredHash = hash;
    },
    polled(startedAt) {
      lastPollStartedAt = Math.max(lastPollStartedAt, startedAt);
      const now = performance.now();
      if (now - sweptAt < ttlMs) return;
      sweptAt = now; // expired entries go, so an idle replica stops polling
      for (const [id, entry] of entries) if (entry.expiresAt <= now) entries.delete(id);
      for (const [id, at] of forgottenAt) if (now - at > ttlMs) forgottenAt.delete(id);
    },
    get size() {
      return entries.size;
    },
    stats: () => ({ size: entries.size, ...counters }),
  };
  return cache;
}
