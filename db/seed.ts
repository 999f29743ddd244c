// Bulk writes for seeding a large database (the page benchmark): many rows per statement. The service never
// calls these; its own writes go through the other modules of db/.
import { sql } from "drizzle-orm";
import type { Database, Pool } from "./client.ts";
import { configVersions, instancePools, nodes, scalingEvents } from "./schema.ts";

export type SeedNode = typeof nodes.$inferInsert;
export type SeedPool = typeof instancePools.$inferInsert;
export type SeedConfigVersion = typeof configVersions.$inferInsert;
export type SeedEvent = typeof scalingEvents.$inferInsert;

/** One raw sample; `ts` is DATETIME(3) text in UTC ("2026-06-01 12:00:00.000"), as ingestion stores it. */
export interface SeedSample {
  nodeId: string;
  poolId: number;
  ts: string;
  cpu: number;
  memory: number;
  count: number;
}

const ROWS_PER_STATEMENT = 1_000;

async function inChunks<T>(rows: T[], write: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    await write(rows.slice(i, i + ROWS_PER_STATEMENT));
  }
}

export async function seedNodes(db: Database, rows: SeedNode[]): Promise<void> {
  await inChunks(rows, (chunk) => db.insert(nodes).values(chunk));
}

export async function seedPools(db: Database, rows: SeedPool[]): Promise<void> {
  await inChunks(rows, (chunk) => db.insert(instancePools).values(chunk));
}

/** Inserts config versions and makes each node's highest version its desired one. */
export async function seedConfigVersions(db: Database, rows: SeedConfigVersion[]): Promise<void> {
  await inChunks(rows, (chunk) => db.insert(configVersions).values(chunk));
  await db.execute(sql`UPDATE nodes n JOIN config_versions c ON c.node_id = n.id
    AND c.version = (SELECT MAX(version) FROM config_versions WHERE node_id = n.id)
    SET n.desired_version_id = c.id`);
}

export async function seedEvents(db: Database, rows: SeedEvent[]): Promise<void> {
  await inChunks(rows, (chunk) => db.insert(scalingEvents).values(chunk));
}

const DATETIME_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/;

/** Raw samples in statements of up to 5,000 rows (the SQL is built here without per-value escaping calls:
 * millions of rows are the point). A sample already stored is skipped, as ingestion does. */
export async function seedSamples(pool: Pool, rows: SeedSample[]): Promise<void> {
  const quotedIds = new Map<string, string>();
  for (let i = 0; i < rows.length; i += 5 * ROWS_PER_STATEMENT) {
    const values: string[] = [];
    for (const row of rows.slice(i, i + 5 * ROWS_PER_STATEMENT)) {
      let id = quotedIds.get(row.nodeId);
      if (id === undefined) quotedIds.set(row.nodeId, id = pool.escape(row.nodeId));
      if (!DATETIME_TEXT.test(row.ts)) throw new Error(`sample time must be DATETIME(3) text, got ${row.ts}`);
      const numbers = [row.poolId, row.cpu, row.memory, row.count];
      if (!numbers.every(Number.isFinite)) throw new Error(`sample values must be finite: ${numbers}`);
      values.push(`(${id},${row.poolId},'${row.ts}',${row.cpu},${row.memory},${row.count})`);
    }
    await pool.query(
      `INSERT IGNORE INTO metric_samples (node_id, pool_id, ts, cpu_util, memory_util, instance_count) VALUES ${
        values.join(",")
      }`,
    );
  }
}

/** Fresh index statistics after a bulk load, as a database that grew over time would have. */
export async function analyzeTables(pool: Pool): Promise<void> {
  await pool.query(
    "ANALYZE TABLE nodes, instance_pools, config_versions, metric_samples, metric_rollups_5m, " +
      "metric_rollups_1h, scaling_events",
  );
}

/** Rows per table, for the benchmark's report. */
export async function tableRowCounts(db: Database): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const tables = ["nodes", "instance_pools", "metric_samples", "metric_rollups_5m", "metric_rollups_1h"];
  for (const table of [...tables, "scaling_events"]) {
    const [rows] = await db.execute(sql.raw(`SELECT COUNT(*) AS n FROM ${table}`)) as unknown as [
      { n: number }[],
    ];
    counts[table] = Number(rows[0].n);
  }
  return counts;
}
