// Bulk writes for seeding a large database (the page benchmark): many rows per statement. The service never
// calls these; its own writes go through the other modules of db/.
import { sql } from "drizzle-orm";
import type { Database, Pool } from "./client.ts";
import type { SeriesRow } from "./metricsQuery.ts";
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
  await insertMany(
    pool,
    "INSERT IGNORE INTO metric_samples (node_id, pool_id, ts, cpu_util, memory_util, instance_count)",
    rows,
    (r, id, time) => [id(r.nodeId), r.poolId, time(r.ts), r.cpu, r.memory, r.count],
  );
}

/** One pool's rollup bucket, as the rollup job writes it (`bucketStart` as DATETIME(3) text in UTC). */
export interface SeedRollup extends Omit<SeriesRow, "bucket"> {
  nodeId: string;
  poolId: number;
  bucketStart: string;
}

/** The fleet's row of one 5-minute bucket (metric_rollups_fleet_5m). */
export interface SeedFleetRollup {
  bucketStart: string;
  samples: number;
  pools: number;
  cpuSum: number;
  memorySum: number;
  cpuMax: number;
  cpuMaxNodeId: string;
  cpuMaxPoolId: number;
  memoryMax: number;
  memoryMaxNodeId: string;
  memoryMaxPoolId: number;
  instances: number;
  scaleUps: number;
  scaleDowns: number;
}

/** Rows of numbers, node ids and DATETIME(3) texts in statements of 5,000 (no per-value escaping calls). */
async function insertMany<T>(
  pool: Pool,
  head: string,
  rows: T[],
  values: (row: T, id: (nodeId: string) => string, time: (text: string) => string) => (string | number)[],
): Promise<void> {
  const quotedIds = new Map<string, string>();
  const id = (nodeId: string) => {
    let quoted = quotedIds.get(nodeId);
    if (quoted === undefined) quotedIds.set(nodeId, quoted = pool.escape(nodeId));
    return quoted;
  };
  const time = (text: string) => {
    if (!DATETIME_TEXT.test(text)) throw new Error(`time must be DATETIME(3) text, got ${text}`);
    return `'${text}'`;
  };
  for (let i = 0; i < rows.length; i += 5 * ROWS_PER_STATEMENT) {
    const tuples = rows.slice(i, i + 5 * ROWS_PER_STATEMENT).map((row) => {
      const cells = values(row, id, time);
      for (const cell of cells) {
        if (typeof cell === "number" && !Number.isFinite(cell)) throw new Error(`not finite: ${cells}`);
      }
      return `(${cells.join(",")})`;
    });
    await pool.query(`${head} VALUES ${tuples.join(",")}`);
  }
}

/** Pool rollups written directly (the benchmark computes them from the samples it generates, as the rollup
 * job would, instead of running the job over millions of rows). */
export async function seedRollups(
  pool: Pool,
  table: "metric_rollups_5m" | "metric_rollups_1h",
  rows: SeedRollup[],
): Promise<void> {
  await insertMany(
    pool,
    `INSERT INTO ${table} (node_id, pool_id, bucket_start, samples, cpu_avg, cpu_min, cpu_max, memory_avg,
       memory_min, memory_max, instance_count_last)`,
    rows,
    (r, id, time) => [
      id(r.nodeId),
      r.poolId,
      time(r.bucketStart),
      r.samples,
      r.cpuAvg,
      r.cpuMin,
      r.cpuMax,
      r.memoryAvg,
      r.memoryMin,
      r.memoryMax,
      r.instanceCountLast,
    ],
  );
}

export async function seedFleetRollups(pool: Pool, rows: SeedFleetRollup[]): Promise<void> {
  await insertMany(
    pool,
    `INSERT INTO metric_rollups_fleet_5m (bucket_start, samples, pools, cpu_sum, memory_sum, cpu_max,
       cpu_max_node_id, cpu_max_pool_id, memory_max, memory_max_node_id, memory_max_pool_id, instances,
       scale_ups, scale_downs)`,
    rows,
    (r, id, time) => [
      time(r.bucketStart),
      r.samples,
      r.pools,
      r.cpuSum,
      r.memorySum,
      r.cpuMax,
      id(r.cpuMaxNodeId),
      r.cpuMaxPoolId,
      r.memoryMax,
      id(r.memoryMaxNodeId),
      r.memoryMaxPoolId,
      r.instances,
      r.scaleUps,
      r.scaleDowns,
    ],
  );
}

/** Fresh index statistics after a bulk load, as a database that grew over time would have. */
export async function analyzeTables(pool: Pool): Promise<void> {
  await pool.query(
    "ANALYZE TABLE nodes, instance_pools, config_versions, metric_samples, metric_rollups_5m, " +
      "metric_rollups_1h, metric_rollups_fleet_5m, scaling_events",
  );
}

/** Rows per table, for the benchmark's report. */
export async function tableRowCounts(db: Database): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const tables = [
    "nodes",
    "instance_pools",
    "metric_samples",
    "metric_rollups_5m",
    "metric_rollups_1h",
    "metric_rollups_fleet_5m",
  ];
  for (const table of [...tables, "scaling_events"]) {
    const [rows] = await db.execute(sql.raw(`SELECT COUNT(*) AS n FROM ${table}`)) as unknown as [
      { n: number }[],
    ];
    counts[table] = Number(rows[0].n);
  }
  return counts;
}
