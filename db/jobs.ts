// SQL of the periodic jobs (core/jobs.ts, core/housekeeping.ts): job state rows, rollups, batched deletes.
// Rollups read with a plain SELECT and then upsert what they computed: an INSERT ... SELECT would put shared
// locks on the raw rows (and gaps) it reads and hold up ingestion.
import { eq, sql } from "drizzle-orm";
import type { ResultSetHeader, RowDataPacket } from "mysql2/promise";
import type { Database, Pool } from "./client.ts";
import { jobState } from "./schema.ts";

export type JobStateRow = typeof jobState.$inferSelect;

/** The job's row, created on first use. */
export async function readJobState(db: Database, name: string): Promise<JobStateRow> {
  await db.insert(jobState).ignore().values({ name, runs: 0 });
  const rows = await db.select().from(jobState).where(eq(jobState.name, name)).limit(1);
  return rows[0];
}

export async function markJobStarted(db: Database, name: string, owner: string, at: Date): Promise<void> {
  await db.update(jobState).set({ owner, startedAt: at }).where(eq(jobState.name, name));
}

export async function markJobFinished(
  db: Database,
  name: string,
  outcome: { at: Date; outcome: string; error: string | null; durationMs: number },
): Promise<void> {
  await db.update(jobState).set({
    finishedAt: outcome.at,
    lastOutcome: outcome.outcome,
    lastError: outcome.error?.slice(0, 1000) ?? null,
    lastDurationMs: Math.round(outcome.durationMs),
    runs: sql`${jobState.runs} + 1`,
  }).where(eq(jobState.name, name));
}

export async function saveJobWatermark(db: Database, name: string, watermark: Date): Promise<void> {
  await db.update(jobState).set({ watermark }).where(eq(jobState.name, name));
}

export async function readJobWatermark(db: Database, name: string): Promise<Date | null> {
  const rows = await db.select({ watermark: jobState.watermark }).from(jobState)
    .where(eq(jobState.name, name)).limit(1);
  return rows[0]?.watermark ?? null;
}

export async function oldestSampleTime(pool: Pool): Promise<Date | null> {
  const [rows] = await pool.query<RowDataPacket[]>("SELECT MIN(ts) AS ts FROM metric_samples");
  return (rows[0]?.ts as Date | null) ?? null;
}

export async function oldestRollupTime(pool: Pool): Promise<Date | null> {
  const [rows] = await pool.query<RowDataPacket[]>("SELECT MIN(bucket_start) AS ts FROM metric_rollups_5m");
  return (rows[0]?.ts as Date | null) ?? null;
}

const UPSERT_ROLLUP = (table: string) =>
  `INSERT INTO ${table} (node_id, pool_id, bucket_start, samples, cpu_avg, cpu_min, cpu_max,
     memory_avg, memory_min, memory_max, instance_count_last) VALUES ?
   ON DUPLICATE KEY UPDATE samples = VALUES(samples), cpu_avg = VALUES(cpu_avg), cpu_min = VALUES(cpu_min),
     cpu_max = VALUES(cpu_max), memory_avg = VALUES(memory_avg), memory_min = VALUES(memory_min),
     memory_max = VALUES(memory_max), instance_count_last = VALUES(instance_count_last)`;

// The last value in the group, in SQL both databases accept (only the first element is read, so
// group_concat_max_len does not matter).
const LAST = (column: string, order: string) =>
  `CAST(SUBSTRING_INDEX(GROUP_CONCAT(${column} ORDER BY ${order} DESC SEPARATOR ','), ',', 1) AS SIGNED)`;
const EPOCH_S = (column: string) => `TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', ${column})`;

/** Recomputes the 5-minute rollups of every bucket in [from, to) (5-minute aligned) from raw samples,
 * replacing what was there: running it twice gives the same rows. Returns the buckets written. */
export async function rollup5mFromRaw(pool: Pool, from: Date, to: Date, nodeId?: string): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT node_id, pool_id, ${EPOCH_S("ts")} DIV 300 AS bucket, COUNT(*) AS samples,
       AVG(cpu_util) AS cpu_avg, MIN(cpu_util) AS cpu_min, MAX(cpu_util) AS cpu_max,
       AVG(memory_util) AS memory_avg, MIN(memory_util) AS memory_min, MAX(memory_util) AS memory_max,
       ${LAST("instance_count", "ts")} AS instance_count_last
     FROM metric_samples WHERE ts >= ? AND ts < ? ${nodeId ? "AND node_id = ?" : ""}
     GROUP BY node_id, pool_id, bucket`,
    nodeId ? [from, to, nodeId] : [from, to],
  );
  await upsertRollups(pool, "metric_rollups_5m", rows, 300);
  return rows.length;
}

/** Recomputes the 1-hour rollups of every hour in [from, to) (hour aligned) from the 5-minute rollups. */
export async function rollup1hFrom5m(pool: Pool, from: Date, to: Date, nodeId?: string): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT node_id, pool_id, ${EPOCH_S("bucket_start")} DIV 3600 AS bucket, SUM(samples) AS samples,
       SUM(cpu_avg * samples) / SUM(samples) AS cpu_avg, MIN(cpu_min) AS cpu_min, MAX(cpu_max) AS cpu_max,
       SUM(memory_avg * samples) / SUM(samples) AS memory_avg, MIN(memory_min) AS memory_min,
       MAX(memory_max) AS memory_max, ${LAST("instance_count_last", "bucket_start")} AS instance_count_last
     FROM metric_rollups_5m WHERE bucket_start >= ? AND bucket_start < ? ${nodeId ? "AND node_id = ?" : ""}
     GROUP BY node_id, pool_id, bucket`,
    nodeId ? [from, to, nodeId] : [from, to],
  );
  await upsertRollups(pool, "metric_rollups_1h", rows, 3600);
  return rows.length;
}

/** Recomputes the fleet's rows (metric_rollups_fleet_5m) of every 5-minute bucket in [from, to) from the
 * pools' 5-minute rollups and the scaling events, replacing what was there: sums, pools counted, for each
 * extreme the pool that holds it (highest first, then node and pool id, so a rerun picks the same one), and
 * the events by direction. Returns the buckets. */
export async function rollupFleet5m(pool: Pool, from: Date, to: Date): Promise<number> {
  const where = (column: string) =>
    `SUBSTRING_INDEX(GROUP_CONCAT(CONCAT(node_id, '/', pool_id) ORDER BY ${column} DESC, node_id, pool_id
       SEPARATOR ','), ',', 1)`;
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT bucket_start, SUM(samples) AS samples, COUNT(*) AS pools, SUM(cpu_avg * samples) AS cpu_sum,
       SUM(memory_avg * samples) AS memory_sum, MAX(cpu_max) AS cpu_max, ${where("cpu_max")} AS cpu_at,
       MAX(memory_max) AS memory_max, ${where("memory_max")} AS memory_at,
       SUM(instance_count_last) AS instances
     FROM metric_rollups_5m WHERE bucket_start >= ? AND bucket_start < ? GROUP BY bucket_start`,
    [from, to],
  );
  if (!rows.length) return 0;
  // Scaling events per bucket and direction (an event comes with the sample it was decided on, so its
  // bucket has a row; late ones mark their hour as the samples do).
  const [events] = await pool.query<RowDataPacket[]>(
    `SELECT ${EPOCH_S("ts")} DIV 300 AS bucket, direction, COUNT(*) AS n FROM scaling_events
     WHERE ts >= ? AND ts < ? GROUP BY bucket, direction`,
    [from, to],
  );
  const eventCounts = new Map<string, number>();
  for (const e of events) eventCounts.set(`${Number(e.bucket) * 300_000}/${e.direction}`, Number(e.n));
  const counted = (bucket: Date, direction: string) =>
    eventCounts.get(`${bucket.getTime()}/${direction}`) ?? 0;
  const at = (text: string) => {
    const [nodeId, poolId] = String(text).split("/");
    return [nodeId, Number(poolId)];
  };
  await pool.query(
    `INSERT INTO metric_rollups_fleet_5m (bucket_start, samples, pools, cpu_sum, memory_sum, cpu_max,
       cpu_max_node_id, cpu_max_pool_id, memory_max, memory_max_node_id, memory_max_pool_id, instances,
       scale_ups, scale_downs) VALUES ?
     ON DUPLICATE KEY UPDATE samples = VALUES(samples), pools = VALUES(pools), cpu_sum = VALUES(cpu_sum),
       memory_sum = VALUES(memory_sum), cpu_max = VALUES(cpu_max), cpu_max_node_id = VALUES(cpu_max_node_id),
       cpu_max_pool_id = VALUES(cpu_max_pool_id), memory_max = VALUES(memory_max),
       memory_max_node_id = VALUES(memory_max_node_id), memory_max_pool_id = VALUES(memory_max_pool_id),
       instances = VALUES(instances), scale_ups = VALUES(scale_ups), scale_downs = VALUES(scale_downs)`,
    [
      rows.map((r) => [
        r.bucket_start,
        Number(r.samples),
        Number(r.pools),
        Number(r.cpu_sum),
        Number(r.memory_sum),
        Number(r.cpu_max),
        ...at(r.cpu_at),
        Number(r.memory_max),
        ...at(r.memory_at),
        Number(r.instances),
        counted(r.bucket_start, "UP"),
        counted(r.bucket_start, "DOWN"),
      ]),
    ],
  );
  return rows.length;
}

async function upsertRollups(pool: Pool, table: string, rows: RowDataPacket[], stepS: number) {
  for (let i = 0; i < rows.length; i += 1000) {
    await pool.query(UPSERT_ROLLUP(table), [
      rows.slice(i, i + 1000).map((r) => [
        r.node_id,
        r.pool_id,
        new Date(Number(r.bucket) * stepS * 1000),
        Number(r.samples),
        Number(r.cpu_avg),
        Number(r.cpu_min),
        Number(r.cpu_max),
        Number(r.memory_avg),
        Number(r.memory_min),
        Number(r.memory_max),
        Number(r.instance_count_last),
      ]),
    ]);
  }
}

export interface DirtyHour {
  nodeId: string;
  hourStart: Date;
  markedAt: Date;
}

export async function listDirtyHours(pool: Pool, limit: number): Promise<DirtyHour[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    "SELECT node_id, hour_start, marked_at FROM metric_rollup_dirty ORDER BY hour_start LIMIT ?",
    [limit],
  );
  return rows.map((r) => ({ nodeId: r.node_id, hourStart: r.hour_start, markedAt: r.marked_at }));
}

/** Clears a dirty mark unless a later batch marked the hour again meanwhile. */
export async function clearDirtyHour(pool: Pool, hour: DirtyHour): Promise<void> {
  await pool.query(
    "DELETE FROM metric_rollup_dirty WHERE node_id = ? AND hour_start = ? AND marked_at <= ?",
    [hour.nodeId, hour.hourStart, hour.markedAt],
  );
}

/** Tables and time columns the retention job may delete from (names are never taken from input). */
export const RETENTION_TABLES = {
  metric_samples: "ts",
  metric_rollups_5m: "bucket_start",
  metric_rollups_1h: "bucket_start",
  metric_rollups_fleet_5m: "bucket_start",
  scaling_events: "ts",
  audit_log: "at",
  sessions: "expires_at",
  login_failures: "at",
  metric_rollup_dirty: "hour_start",
  node_auth_changes: "changed_at",
} as const;
export type RetentionTable = keyof typeof RETENTION_TABLES;

/** Deletes at most `limit` rows older than `before`; one short statement, so no table is locked for long. */
export async function deleteOlderBatch(
  pool: Pool,
  table: RetentionTable,
  before: Date,
  limit: number,
): Promise<number> {
  const [result] = await pool.query<ResultSetHeader>(
    `DELETE FROM ${table} WHERE ${RETENTION_TABLES[table]} < ? LIMIT ?`,
    [before, limit],
  );
  return result.affectedRows;
}
