// How many pools a node may create (MAX_POOLS_PER_NODE): pools come into being when an agent names them at
// registration, in a heartbeat or in a metrics batch, so each of those checks here first. The pools known to
// exist are remembered (bounded in count, the oldest forgotten first, to be checked again once when named
// again), so the hot paths pay nothing for pools they named before. A pool this replica does not know is
// first looked up with a plain read that the nodes asking at the same moment share (a fleet's first
// heartbeats to a replica that just started: one statement for hundreds, not a transaction each); only a
// pool that does not exist yet costs a transaction that locks the node row, so concurrent requests cannot
// overshoot.
import { findPoolOcidsOfNodes, reserveNodePools } from "../db/agents.ts";
import { batchedLoader } from "./batchedLoad.ts";
import type { CoreDeps } from "./deps.ts";
import { type ErrorDetail, validationFailed } from "./errors.ts";

const KNOWN_POOLS_CACHE_SIZE = 100_000;
/** Nodes whose pools one read looks up at most. */
const READ_BATCH = 500;

export interface PoolLimiter {
  /** Creates the pools of `ocids` this node does not have yet, unless that would take it past the limit:
   * then nothing is created and the answer is 422 naming `fieldOf(i)` for each pool beyond it. The caller
   * has authenticated the node. */
  ensure(nodeId: string, ocids: string[], fieldOf: (index: number) => string): Promise<void>;
  /** True when some of `ocids` are not known to exist (then ensure() costs a transaction). */
  hasUnknown(nodeId: string, ocids: string[]): boolean;
}

export function createPoolLimiter(deps: Pick<CoreDeps, "db" | "settings" | "clock">): PoolLimiter {
  // Each node's pools known to exist; the nodes in the order they were last told of a pool, so the oldest
  // are forgotten first once KNOWN_POOLS_CACHE_SIZE pools are remembered.
  const known = new Map<string, Set<string>>();
  let size = 0;
  const remember = (nodeId: string, ocid: string) => {
    let pools = known.get(nodeId);
    if (pools) known.delete(nodeId);
    else pools = new Set();
    known.set(nodeId, pools);
    if (pools.has(ocid)) return;
    pools.add(ocid);
    size++;
    while (size > KNOWN_POOLS_CACHE_SIZE) {
      const [oldest, theirs] = known.entries().next().value!;
      known.delete(oldest);
      size -= theirs.size;
    }
  };
  const isKnown = (nodeId: string, ocid: string) => known.get(nodeId)?.has(ocid) === true;
  const readPools = batchedLoader((nodeIds) => findPoolOcidsOfNodes(deps.db, nodeIds), READ_BATCH);
  return {
    async ensure(nodeId, ocids, fieldOf) {
      // A metric batch names the same few pools a thousand times: look each up once.
      let unknown = [...new Set(ocids)].filter((ocid) => !isKnown(nodeId, ocid));
      if (unknown.length === 0) return;
      const existing = await readPools(nodeId) ?? [];
      for (const ocid of existing) remember(nodeId, ocid);
      unknown = unknown.filter((ocid) => !existing.includes(ocid));
      if (unknown.length === 0) return;
      const limit = deps.settings.MAX_POOLS_PER_NODE;
      const { refused } = await reserveNodePools(
        deps.db,
        nodeId,
        unknown,
        limit,
        deps.clock.now(),
      );
      if (refused.size > 0) {
        const details: ErrorDetail[] = [];
        ocids.forEach((ocid, index) => {
          if (refused.has(ocid)) {
            details.push({
              field: fieldOf(index),
              message: `a new pool, beyond the ${limit} pools a node may have (MAX_POOLS_PER_NODE)`,
              location: "body",
            });
          }
        });
        throw validationFailed(
          `too many pools: this node may have at most ${limit}; ${refused.size} new ones refused`,
          details,
        );
      }
      for (const ocid of unknown) remember(nodeId, ocid);
    },
    hasUnknown: (nodeId, ocids) => {
      if (ocids.length === 0) return false;
      const pools = known.get(nodeId);
      if (!pools) return true;
      for (const ocid of ocids) if (!pools.has(ocid)) return true;
      return false;
    },
  };
}
