// Fleet data for read tests, inserted directly through the db/ functions (no agent round trips), with
// times taken from the test's clock unless given.
import { insertNodeRows, insertPoolRows, type NodeInsert, type PoolInsert } from "../../db/nodes.ts";
import {
  advancePoolLastMetrics,
  type EventInsert,
  insertEventRows,
  insertRollupRows,
  insertSampleRows,
  type RollupInsert,
} from "../../db/metricsQuery.ts";
import { keyedHash, newSecret, SECRET_PREFIX } from "../../core/secrets.ts";
import type { TestApp } from "./app.ts";

let counter = 0;

/** A fake but well-formed pool OCID. */
export function poolOcid(suffix: string): string {
  return `ocid1.instancepool.oc1.iad.${suffix}`;
}

/** Inserts a node (never seen unless lastHeartbeatAt is given) and returns its id. */
export async function insertNode(ctx: TestApp, fields: Partial<NodeInsert> = {}): Promise<string> {
  const now = ctx.clock.now();
  const id = fields.id ?? crypto.randomUUID();
  counter++;
  await insertNodeRows(ctx.deps.db, [{
    id,
    name: `node-${counter}-${id.slice(0, 6)}`,
    hostname: `host-${counter}.example.internal`,
    labels: {},
    registeredAt: now,
    createdAt: now,
    updatedAt: now,
    ...fields,
  }]);
  return id;
}

/** A node token and the hash to store in nodes.token_hash (pass as insertNode's tokenHash). */
export async function newNodeToken(ctx: TestApp): Promise<{ token: string; tokenHash: string }> {
  const token = newSecret(SECRET_PREFIX.nodeToken);
  return { token, tokenHash: await keyedHash(ctx.deps.settings.SECRET_KEY, token) };
}

/** Inserts a pool of a node and returns its row id (metric_samples.pool_id). */
export async function insertPool(
  ctx: TestApp,
  nodeId: string,
  ocid: string,
  fields: Partial<PoolInsert> = {},
): Promise<number> {
  const now = ctx.clock.now();
  const [id] = await insertPoolRows(ctx.deps.db, [{
    nodeId,
    poolOcid: ocid,
    createdAt: now,
    updatedAt: now,
    ...fields,
  }]);
  return id;
}

export interface SampleSpec {
  ts: Date | string;
  cpu: number;
  memory: number;
  instances: number;
}

export async function insertSamples(
  ctx: TestApp,
  nodeId: string,
  poolId: number,
  samples: SampleSpec[],
): Promise<void> {
  await insertSampleRows(
    ctx.deps.db,
    samples.map((s) => ({
      nodeId,
      poolId,
      ts: new Date(s.ts),
      cpuUtil: s.cpu,
      memoryUtil: s.memory,
      instanceCount: s.instances,
    })),
  );
  // The pool's latest sample time, as ingestion keeps it (the fleet summary counts reporting pools by it).
  if (samples.length) {
    const latest = Math.max(...samples.map((s) => new Date(s.ts).getTime()));
    await advancePoolLastMetrics(ctx.deps.db, poolId, new Date(latest));
  }
}

export interface EventSpec {
  ts: Date | string;
  direction: "UP" | "DOWN";
  from?: number;
  to?: number;
  reason?: string;
}

export async function insertEvents(
  ctx: TestApp,
  nodeId: string,
  poolId: number,
  events: EventSpec[],
): Promise<void> {
  await insertEventRows(
    ctx.deps.db,
    events.map((e): EventInsert => ({
      nodeId,
      poolId,
      ts: new Date(e.ts),
      direction: e.direction,
      fromCount: e.from ?? null,
      toCount: e.to ?? null,
      reason: e.reason ?? null,
    })),
  );
}

export async function insertRollups(
  ctx: TestApp,
  table: "5m" | "1h",
  rows: RollupInsert[],
): Promise<void> {
  await insertRollupRows(ctx.deps.db, table, rows);
}

/** Rows per table for a node, read straight from the database (for delete and "nothing written" checks). */
export async function countNodeRows(ctx: TestApp, nodeId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (
    const table of [
      "nodes",
      "instance_pools",
      "metric_samples",
      "metric_rollups_5m",
      "metric_rollups_1h",
      "scaling_events",
      "config_versions",
    ]
  ) {
    const column = table === "nodes" ? "id" : "node_id";
    const [rows] = await ctx.deps.pool.query(
      `SELECT COUNT(*) AS n FROM \`${table}\` WHERE \`${column}\` = ?`,
      [
        nodeId,
      ],
    );
    counts[table] = Number((rows as { n: number }[])[0].n);
  }
  return counts;
}

/** Audit entries with `action`, oldest first. */
export async function auditEntries(
  ctx: TestApp,
  action: string,
): Promise<
  {
    actor_name: string;
    target_id: string | null;
    details: Record<string, unknown> | null;
    address: string | null;
  }[]
> {
  const [rows] = await ctx.deps.pool.query(
    "SELECT actor_name, target_id, details, address FROM audit_log WHERE action = ? ORDER BY id",
    [action],
  );
  return (rows as {
    actor_name: string;
    target_id: string | null;
    details: string | null;
    address: string | null;
  }[])
    .map((row) => ({ ...row, details: row.details ? JSON.parse(row.details) : null }));
}

/** How many registrations an enrollment token has counted. */
export async function enrollmentTokenUses(ctx: TestApp, id: number): Promise<number> {
  const [rows] = await ctx.database.pool.query("SELECT uses FROM enrollment_tokens WHERE id = ?", [id]);
  return Number((rows as { uses: number }[])[0].uses);
}
