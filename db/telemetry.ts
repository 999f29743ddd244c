// Reads for GET /metrics: fleet counts by config state, and the connection pool's own bookkeeping.
import { count, isNull } from "drizzle-orm";
import type { Database, Pool } from "./client.ts";
import { nodes } from "./schema.ts";

/** Nodes that are not decommissioned, per config state (one indexed GROUP BY). */
export async function countNodesByConfigState(db: Database): Promise<Record<string, number>> {
  const rows = await db.select({ state: nodes.configState, n: count() }).from(nodes)
    .where(isNull(nodes.decommissionedAt)).groupBy(nodes.configState);
  const counts: Record<string, number> = { pending: 0, in_sync: 0, failed: 0, drifted: 0 };
  for (const row of rows) counts[row.state] = Number(row.n);
  return counts;
}

interface CorePoolInternals {
  _allConnections?: { length: number };
  _freeConnections?: { length: number };
  _connectionQueue?: { length: number };
  config?: { connectionLimit?: number };
}

/** Connections open, idle and requests waiting for one, read from mysql2's pool (no public API has them). */
export function poolStats(pool: Pool): { total: number; free: number; queued: number; limit: number } {
  const core = (pool as unknown as { pool?: CorePoolInternals }).pool ?? {};
  return {
    total: core._allConnections?.length ?? 0,
    free: core._freeConnections?.length ?? 0,
    queued: core._connectionQueue?.length ?? 0,
    limit: core.config?.connectionLimit ?? 0,
  };
}
