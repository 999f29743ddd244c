// Reads behind the console's dashboard: fleet instances over time.
import { and, gte, lt, lte, sql } from "drizzle-orm";
import type { Database } from "./client.ts";
import { metricRollupsFleet5m, metricSamples } from "./schema.ts";

export interface FleetInstancesRow {
  bucket: number; // bucket start in epoch seconds / stepS
  instances: number;
  pools: number;
}

/** Per step bucket: the sum over pools of each pool's average instance count in the bucket. Pools that
 * sent nothing in a bucket are not counted there (`pools` says how many did). */
export async function fleetInstanceRows(
  db: Database,
  from: Date,
  to: Date,
  stepS: number,
): Promise<FleetInstancesRow[]> {
  const step = sql.raw(String(Math.trunc(stepS)));
  const t = metricSamples;
  // Epoch seconds of a naive UTC datetime, independent of the session time zone (UNIX_TIMESTAMP is not).
  const perPool = db.select({
    bucket: sql<number>`TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', ${t.ts}) DIV ${step}`.as("bucket"),
    poolId: t.poolId,
    avgCount: sql<number>`AVG(${t.instanceCount})`.as("avg_count"),
  }).from(t).where(and(gte(t.ts, from), lte(t.ts, to)))
    .groupBy(sql`bucket`, t.nodeId, t.poolId).as("per_pool");
  return await db.select({
    bucket: sql<number>`${perPool.bucket}`.mapWith(Number),
    instances: sql<number>`SUM(${perPool.avgCount})`.mapWith(Number),
    pools: sql<number>`COUNT(*)`.mapWith(Number),
  }).from(perPool).groupBy(perPool.bucket).orderBy(perPool.bucket);
}

/** The fleet's instance total per settled 5-minute bucket starting in [from, to), from the fleet rows (one
 * per bucket, however large the fleet). */
export async function fleetRollupInstances(
  db: Database,
  from: Date,
  to: Date,
): Promise<{ bucketStart: Date; instances: number }[]> {
  const t = metricRollupsFleet5m;
  return await db.select({ bucketStart: t.bucketStart, instances: t.instances }).from(t)
    .where(and(gte(t.bucketStart, from), lt(t.bucketStart, to)))
    .orderBy(t.bucketStart);
}
