// Reads over metric samples and scaling events for the management API: bucketed series, fleet figures,
// event lists. All aggregation happens in SQL that MySQL 8 and MariaDB 10.11 both accept.
import { and, desc, eq, gte, inArray, lt, lte, or, type SQL, sql } from "drizzle-orm";
import type { AnyMySqlColumn } from "drizzle-orm/mysql-core";
import type { Database } from "./client.ts";
import {
  instancePools,
  metricRollups1h,
  metricRollups5m,
  metricRollupsFleet5m,
  metricSamples,
  nodes,
  scalingEvents,
} from "./schema.ts";

/** Where a series is read from (core/metricsQuery.ts seriesSourceFor decides). */
export type SeriesSource = "raw" | "rollup_5m" | "rollup_1h";

export interface SeriesQuery {
  nodeId: string;
  poolId: number;
  from: Date;
  to: Date; // inclusive, unless toExclusive
  toExclusive?: boolean;
  stepS: number;
}

export interface SeriesRow {
  bucket: number; // bucket start in epoch seconds / stepS
  samples: number;
  cpuAvg: number;
  cpuMin: number;
  cpuMax: number;
  memoryAvg: number;
  memoryMin: number;
  memoryMax: number;
  instanceCountLast: number;
}

// Epoch seconds of a naive UTC datetime, independent of the session time zone (UNIX_TIMESTAMP is not).
const epochSeconds = (column: SQL | AnyMySqlColumn) =>
  sql`TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', ${column})`;

// The last value of `column` in the group by `orderColumn`, in SQL both databases accept (no window
// functions needed); only the first element of GROUP_CONCAT is read, so its length limit does not matter.
const lastOf = (
  column: SQL | AnyMySqlColumn,
  orderColumn: SQL | AnyMySqlColumn,
) =>
  sql<
    number
  >`CAST(SUBSTRING_INDEX(GROUP_CONCAT(${column} ORDER BY ${orderColumn} DESC SEPARATOR ','), ',', 1) AS SIGNED)`
    .mapWith(Number);

/** One row per step bucket that has data (buckets aligned to multiples of the step since the epoch). */
export async function seriesRows(
  db: Database,
  source: SeriesSource,
  query: SeriesQuery,
): Promise<SeriesRow[]> {
  const { poolId, ...rest } = query;
  const rows = await poolsSeriesRows(db, source, { ...rest, poolIds: [poolId] });
  return rows.map(({ poolId: _, ...row }) => row);
}

/** The series of several pools of one node in one statement: a row per pool and bucket with data, ordered
 * by pool and bucket. */
export async function poolsSeriesRows(
  db: Database,
  source: SeriesSource,
  query: Omit<SeriesQuery, "poolId"> & { poolIds: number[] },
): Promise<(SeriesRow & { poolId: number })[]> {
  if (query.poolIds.length === 0) return [];
  const step = Math.trunc(query.stepS);
  if (source === "raw") {
    const t = metricSamples;
    return await db.select({
      poolId: t.poolId,
      bucket: sql<number>`${epochSeconds(t.ts)} DIV ${sql.raw(String(step))}`.mapWith(Number).as("bucket"),
      samples: sql<number>`COUNT(*)`.mapWith(Number),
      cpuAvg: sql<number>`AVG(${t.cpuUtil})`.mapWith(Number),
      cpuMin: sql<number>`MIN(${t.cpuUtil})`.mapWith(Number),
      cpuMax: sql<number>`MAX(${t.cpuUtil})`.mapWith(Number),
      memoryAvg: sql<number>`AVG(${t.memoryUtil})`.mapWith(Number),
      memoryMin: sql<number>`MIN(${t.memoryUtil})`.mapWith(Number),
      memoryMax: sql<number>`MAX(${t.memoryUtil})`.mapWith(Number),
      instanceCountLast: lastOf(t.instanceCount, t.ts),
    }).from(t)
      .where(
        and(
          eq(t.nodeId, query.nodeId),
          inArray(t.poolId, query.poolIds),
          gte(t.ts, query.from),
          query.toExclusive ? lt(t.ts, query.to) : lte(t.ts, query.to),
        ),
      )
      .groupBy(t.poolId, sql`bucket`).orderBy(t.poolId, sql`bucket`);
  }
  const t = source === "rollup_5m" ? metricRollups5m : metricRollups1h;
  const where = and(
    eq(t.nodeId, query.nodeId),
    inArray(t.poolId, query.poolIds),
    gte(t.bucketStart, query.from),
    query.toExclusive ? lt(t.bucketStart, query.to) : lte(t.bucketStart, query.to),
  );
  // A step equal to the table's own bucket: each row is a bucket, read as it is (no grouping: a 30-day
  // replay reads 26,000 rows).
  if (step === (source === "rollup_5m" ? 300 : 3600)) {
    return await db.select({
      poolId: t.poolId,
      bucket: sql<number>`${epochSeconds(t.bucketStart)} DIV ${sql.raw(String(step))}`.mapWith(Number),
      samples: t.samples,
      cpuAvg: t.cpuAvg,
      cpuMin: t.cpuMin,
      cpuMax: t.cpuMax,
      memoryAvg: t.memoryAvg,
      memoryMin: t.memoryMin,
      memoryMax: t.memoryMax,
      instanceCountLast: t.instanceCountLast,
    }).from(t).where(where).orderBy(t.poolId, t.bucketStart);
  }
  // Rollups: averages weighted by each bucket's sample count, extremes of extremes, last of lasts.
  return await db.select({
    poolId: t.poolId,
    bucket: sql<number>`${epochSeconds(t.bucketStart)} DIV ${sql.raw(String(step))}`.mapWith(Number).as(
      "bucket",
    ),
    samples: sql<number>`SUM(${t.samples})`.mapWith(Number),
    cpuAvg: sql<number>`SUM(${t.cpuAvg} * ${t.samples}) / SUM(${t.samples})`.mapWith(Number),
    cpuMin: sql<number>`MIN(${t.cpuMin})`.mapWith(Number),
    cpuMax: sql<number>`MAX(${t.cpuMax})`.mapWith(Number),
    memoryAvg: sql<number>`SUM(${t.memoryAvg} * ${t.samples}) / SUM(${t.samples})`.mapWith(Number),
    memoryMin: sql<number>`MIN(${t.memoryMin})`.mapWith(Number),
    memoryMax: sql<number>`MAX(${t.memoryMax})`.mapWith(Number),
    instanceCountLast: lastOf(t.instanceCountLast, t.bucketStart),
  }).from(t)
    .where(where)
    .groupBy(t.poolId, sql`bucket`).orderBy(t.poolId, sql`bucket`);
}

export interface EventWindow {
  nodeId?: string;
  poolId?: number;
  from?: Date;
  to?: Date;
}

function eventConditions(window: EventWindow & { direction?: string }): SQL[] {
  const conditions: SQL[] = [];
  if (window.nodeId !== undefined) conditions.push(eq(scalingEvents.nodeId, window.nodeId));
  if (window.poolId !== undefined) conditions.push(eq(scalingEvents.poolId, window.poolId));
  if (window.from) conditions.push(gte(scalingEvents.ts, window.from));
  if (window.to) conditions.push(lte(scalingEvents.ts, window.to));
  if (window.direction) conditions.push(eq(scalingEvents.direction, window.direction));
  return conditions;
}

export async function countEventsByDirection(
  db: Database,
  window: EventWindow,
): Promise<{ UP: number; DOWN: number }> {
  const conditions = eventConditions(window);
  const rows = await db.select({
    direction: scalingEvents.direction,
    count: sql<number>`COUNT(*)`.mapWith(Number),
  }).from(scalingEvents).where(conditions.length ? and(...conditions) : undefined)
    .groupBy(scalingEvents.direction);
  const counts = { UP: 0, DOWN: 0 };
  for (const row of rows) {
    if (row.direction === "UP" || row.direction === "DOWN") counts[row.direction] = row.count;
  }
  return counts;
}

/** Events per bucket of `stepS` seconds (aligned to the epoch) and direction, oldest bucket first. */
export async function countEventsByBucket(
  db: Database,
  window: EventWindow & { stepS: number },
): Promise<{ bucket: number; direction: string; count: number }[]> {
  const conditions = eventConditions(window);
  const step = Math.trunc(window.stepS);
  return await db.select({
    bucket: sql<number>`${epochSeconds(scalingEvents.ts)} DIV ${sql.raw(String(step))}`.mapWith(Number).as(
      "bucket",
    ),
    direction: scalingEvents.direction,
    count: sql<number>`COUNT(*)`.mapWith(Number),
  }).from(scalingEvents).where(conditions.length ? and(...conditions) : undefined)
    .groupBy(sql`bucket`, scalingEvents.direction).orderBy(sql`bucket`);
}

export interface EventListQuery extends EventWindow {
  direction?: "UP" | "DOWN";
  /** Rows strictly older than this (ts, id) position: newest first. */
  before?: { ts: Date; id: number };
  limit: number;
}

export interface EventRow {
  id: number;
  nodeId: string;
  nodeName: string;
  poolOcid: string;
  poolDisplayName: string | null;
  ts: Date;
  direction: string;
  fromCount: number | null;
  toCount: number | null;
  reason: string | null;
}

/** Newest first; reads limit + 1 rows so the caller knows whether another page follows. The page of events
 * is picked first and only then joined to its node and pool: with the joins in the same SELECT, MariaDB
 * started from nodes and sorted every event of the fleet (3.3 s for 330,000 events; 11 ms this way). */
export async function listEventRows(db: Database, query: EventListQuery): Promise<EventRow[]> {
  const conditions = eventConditions(query);
  if (query.before) {
    const { ts, id } = query.before;
    conditions.push(or(lt(scalingEvents.ts, ts), and(eq(scalingEvents.ts, ts), lt(scalingEvents.id, id)))!);
  }
  const page = db.select().from(scalingEvents)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(scalingEvents.ts), desc(scalingEvents.id))
    .limit(query.limit + 1)
    .as("page");
  return await db.select({
    id: page.id,
    nodeId: page.nodeId,
    nodeName: nodes.name,
    poolOcid: instancePools.poolOcid,
    poolDisplayName: instancePools.displayName,
    ts: page.ts,
    direction: page.direction,
    fromCount: page.fromCount,
    toCount: page.toCount,
    reason: page.reason,
  }).from(page)
    .innerJoin(nodes, eq(nodes.id, page.nodeId))
    .innerJoin(instancePools, eq(instancePools.id, page.poolId))
    .orderBy(desc(page.ts), desc(page.id));
}

/** Sample count and sums over a span (what adds up across rollup buckets and raw edges), and the highest
 * values (null without samples). */
export interface SampleTotals {
  samples: number;
  cpuSum: number;
  memorySum: number;
  cpuMax: number | null;
  memoryMax: number | null;
}

/** An extreme: its value and the pool that had it; `ts` is the sample's time when known, else the start of
 * the 5-minute bucket that holds it (`bucketStart`). */
export interface ExtremeAt {
  value: number;
  nodeId: string;
  poolId: number;
  ts: Date | null;
  bucketStart: Date | null;
}

export type FleetMetric = "cpu" | "memory";

const maybeNumber = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** Totals of raw samples in [from, to] (to exclusive when asked), in one pass over the time index. */
export async function rawSampleTotals(
  db: Database,
  from: Date,
  to: Date,
  toExclusive: boolean,
): Promise<SampleTotals> {
  const t = metricSamples;
  const rows = await db.select({
    samples: sql<number>`COUNT(*)`.mapWith(Number),
    cpuSum: sql<number>`COALESCE(SUM(${t.cpuUtil}), 0)`.mapWith(Number),
    memorySum: sql<number>`COALESCE(SUM(${t.memoryUtil}), 0)`.mapWith(Number),
    cpuMax: sql<number | null>`MAX(${t.cpuUtil})`,
    memoryMax: sql<number | null>`MAX(${t.memoryUtil})`,
  }).from(t).where(and(gte(t.ts, from), toExclusive ? lt(t.ts, to) : lte(t.ts, to)));
  return { ...rows[0], cpuMax: maybeNumber(rows[0].cpuMax), memoryMax: maybeNumber(rows[0].memoryMax) };
}

/** The latest raw sample in [from, to] (to exclusive when asked) whose `metric` is `value` (the largest
 * node and pool id among samples of the same time): where a known highest value was. Read backwards along
 * the time index, so it stops at the first match instead of sorting the span (every key descending: a mixed
 * order made MariaDB sort 200,000 rows). */
export async function rawSampleWith(
  db: Database,
  metric: FleetMetric,
  value: number,
  from: Date,
  to: Date,
  toExclusive: boolean,
): Promise<ExtremeAt | undefined> {
  const t = metricSamples;
  const column = metric === "cpu" ? t.cpuUtil : t.memoryUtil;
  const rows = await db.select({ ts: t.ts, nodeId: t.nodeId, poolId: t.poolId }).from(t)
    .where(and(gte(t.ts, from), toExclusive ? lt(t.ts, to) : lte(t.ts, to), eq(column, value)))
    .orderBy(desc(t.ts), desc(t.nodeId), desc(t.poolId))
    .limit(1);
  return rows[0] ? { ...rows[0], value, bucketStart: null } : undefined;
}

/** Scaling events by direction in the fleet's 5-minute rows whose bucket starts in [from, to). */
export async function fleetRollupEvents(
  db: Database,
  from: Date,
  to: Date,
): Promise<{ UP: number; DOWN: number }> {
  const t = metricRollupsFleet5m;
  const rows = await db.select({
    UP: sql<number>`COALESCE(SUM(${t.scaleUps}), 0)`.mapWith(Number),
    DOWN: sql<number>`COALESCE(SUM(${t.scaleDowns}), 0)`.mapWith(Number),
  }).from(t).where(and(gte(t.bucketStart, from), lt(t.bucketStart, to)));
  return rows[0];
}

/** Totals of the fleet's 5-minute rows whose bucket starts in [from, to). */
export async function fleetRollupTotals(db: Database, from: Date, to: Date): Promise<SampleTotals> {
  const t = metricRollupsFleet5m;
  const rows = await db.select({
    samples: sql<number>`COALESCE(SUM(${t.samples}), 0)`.mapWith(Number),
    cpuSum: sql<number>`COALESCE(SUM(${t.cpuSum}), 0)`.mapWith(Number),
    memorySum: sql<number>`COALESCE(SUM(${t.memorySum}), 0)`.mapWith(Number),
    cpuMax: sql<number | null>`MAX(${t.cpuMax})`,
    memoryMax: sql<number | null>`MAX(${t.memoryMax})`,
  }).from(t).where(and(gte(t.bucketStart, from), lt(t.bucketStart, to)));
  return { ...rows[0], cpuMax: maybeNumber(rows[0].cpuMax), memoryMax: maybeNumber(rows[0].memoryMax) };
}

/** The fleet row with the highest `metric` among buckets starting in [from, to); latest bucket wins ties.
 * The sample's own time is read from raw samples, while they are kept. */
export async function fleetRollupMax(
  db: Database,
  metric: FleetMetric,
  from: Date,
  to: Date,
): Promise<ExtremeAt | undefined> {
  const t = metricRollupsFleet5m;
  const cpu = metric === "cpu";
  const rows = await db.select({
    value: cpu ? t.cpuMax : t.memoryMax,
    nodeId: cpu ? t.cpuMaxNodeId : t.memoryMaxNodeId,
    poolId: cpu ? t.cpuMaxPoolId : t.memoryMaxPoolId,
    bucketStart: t.bucketStart,
  }).from(t)
    .where(and(gte(t.bucketStart, from), lt(t.bucketStart, to)))
    .orderBy(desc(cpu ? t.cpuMax : t.memoryMax), desc(t.bucketStart))
    .limit(1);
  const row = rows[0];
  if (!row) return undefined;
  const s = metricSamples;
  const column = cpu ? s.cpuUtil : s.memoryUtil;
  const found = await db.select({ ts: s.ts }).from(s)
    .where(
      and(
        eq(s.nodeId, row.nodeId),
        eq(s.poolId, row.poolId),
        gte(s.ts, row.bucketStart),
        lt(s.ts, new Date(row.bucketStart.getTime() + 300_000)),
        eq(column, row.value),
      ),
    )
    .orderBy(desc(s.ts)).limit(1);
  return { ...row, ts: found[0]?.ts ?? null };
}

/** Nodes and pools whose latest sample is at or after `since` (ingestion keeps last_metrics_at). */
export async function reportingSince(db: Database, since: Date): Promise<{ nodes: number; pools: number }> {
  const t = instancePools;
  const rows = await db.select({
    nodes: sql<number>`COUNT(DISTINCT ${t.nodeId})`.mapWith(Number),
    pools: sql<number>`COUNT(*)`.mapWith(Number),
  }).from(t).where(gte(t.lastMetricsAt, since));
  return rows[0];
}

/** Names for an extreme: the node's name and the pool's OCID. */
export async function nodeAndPoolNames(
  db: Database,
  nodeId: string,
  poolId: number,
): Promise<{ nodeName: string; poolOcid: string } | undefined> {
  const rows = await db.select({ nodeName: nodes.name, poolOcid: instancePools.poolOcid }).from(instancePools)
    .innerJoin(nodes, eq(nodes.id, instancePools.nodeId))
    .where(and(eq(instancePools.id, poolId), eq(instancePools.nodeId, nodeId)));
  return rows[0];
}

// --- Inserts used by test fixtures (agents write samples through db/agents.ts).

export type SampleInsert = typeof metricSamples.$inferInsert;
export type EventInsert = typeof scalingEvents.$inferInsert;
export type RollupInsert = typeof metricRollups5m.$inferInsert;

export async function insertSampleRows(db: Database, rows: SampleInsert[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 1000) await db.insert(metricSamples).values(rows.slice(i, i + 1000));
}

/** Moves a pool's last_metrics_at up to `at` (never back), as ingestion does for each batch. */
export async function advancePoolLastMetrics(db: Database, poolId: number, at: Date): Promise<void> {
  await db.update(instancePools).set({
    lastMetricsAt: sql`GREATEST(COALESCE(${instancePools.lastMetricsAt}, ${at}), ${at})`,
  }).where(eq(instancePools.id, poolId));
}

export async function insertEventRows(db: Database, rows: EventInsert[]): Promise<void> {
  if (rows.length) await db.insert(scalingEvents).values(rows);
}

export async function insertRollupRows(
  db: Database,
  table: "5m" | "1h",
  rows: RollupInsert[],
): Promise<void> {
  if (rows.length) await db.insert(table === "5m" ? metricRollups5m : metricRollups1h).values(rows);
}
