// Every instance pool of the fleet with its node, for the console's Pools page.
import { and, asc, eq, exists, isNotNull, isNull, like, or, type SQL, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/mysql-core";
import type { Database } from "./client.ts";
import { containsPattern, type NodeStatusFilter, statusCondition } from "./nodes.ts";
import { instancePools, nodes, scalingEvents } from "./schema.ts";

export interface FleetPoolQuery {
  q?: string;
  region?: string;
  nodeStatus?: NodeStatusFilter;
  onlineSince: Date;
  offset: number;
  limit: number;
}

export interface FleetPoolRow {
  poolOcid: string;
  displayName: string | null;
  region: string | null;
  currentSize: number | null;
  minSize: number | null;
  maxSize: number | null;
  lastCpuUtil: number | null;
  lastMemoryUtil: number | null;
  lastMetricsAt: Date | null;
  lastScaledAt: Date | null;
  nodeId: string;
  nodeName: string;
  nodeRegion: string | null;
  lastHeartbeatAt: Date | null;
  decommissionedAt: Date | null;
}

/** One page of pools (limit + 1 rows, so the caller knows whether more follow), ordered by node name and
 * pool OCID. Decommissioned nodes' pools are left out unless asked for by status. The page's pool ids are
 * picked first (a narrow sort over ids and names only), and only those rows are then joined for their
 * columns and last scaling event: with everything in one SELECT, every pool of a 10,000-node fleet was
 * read and sorted whole (608 ms). */
export async function listFleetPoolRows(db: Database, query: FleetPoolQuery): Promise<FleetPoolRow[]> {
  const conditions: SQL[] = [];
  if (query.nodeStatus) conditions.push(statusCondition(query.nodeStatus, query.onlineSince));
  else conditions.push(isNull(nodes.decommissionedAt));
  if (query.region !== undefined) {
    conditions.push(or(eq(instancePools.region, query.region), eq(nodes.region, query.region))!);
  }
  if (query.q) {
    const pattern = containsPattern(query.q);
    conditions.push(
      or(
        like(instancePools.poolOcid, pattern),
        like(instancePools.displayName, pattern),
        like(nodes.name, pattern),
      )!,
    );
  }
  const page = db.select({ id: instancePools.id, nodeName: nodes.name, poolOcid: instancePools.poolOcid })
    .from(instancePools)
    .innerJoin(nodes, eq(nodes.id, instancePools.nodeId))
    .where(and(...conditions))
    .orderBy(asc(nodes.name), asc(instancePools.poolOcid))
    .limit(query.limit + 1)
    .offset(query.offset)
    .as("page");
  const rows = await db.select({
    poolOcid: instancePools.poolOcid,
    displayName: instancePools.displayName,
    region: instancePools.region,
    currentSize: instancePools.currentSize,
    minSize: instancePools.minSize,
    maxSize: instancePools.maxSize,
    lastCpuUtil: instancePools.lastCpuUtil,
    lastMemoryUtil: instancePools.lastMemoryUtil,
    lastMetricsAt: instancePools.lastMetricsAt,
    // Served by the (pool_id, ts) index: one short index read per pool on the page.
    lastScaledAt: sql<
      string | null
    >`(SELECT MAX(${scalingEvents.ts}) FROM ${scalingEvents} WHERE ${scalingEvents.poolId} = ${instancePools.id})`,
    nodeId: nodes.id,
    nodeName: nodes.name,
    nodeRegion: nodes.region,
    lastHeartbeatAt: nodes.lastHeartbeatAt,
    decommissionedAt: nodes.decommissionedAt,
  }).from(page)
    .innerJoin(instancePools, eq(instancePools.id, page.id))
    .innerJoin(nodes, eq(nodes.id, instancePools.nodeId))
    .orderBy(asc(page.nodeName), asc(page.poolOcid));
  return rows.map((row) => ({ ...row, lastScaledAt: toDate(row.lastScaledAt) }));
}

/** Distinct regions of active nodes, for filter menus: the regions from the region index (a loose scan),
 * each kept when one active node has it (stops at the first). Reading every node row took 40 ms at 10,000. */
export async function listRegions(db: Database): Promise<string[]> {
  const regions = db.selectDistinct({ region: nodes.region }).from(nodes)
    .where(isNotNull(nodes.region)).as("regions");
  const active = alias(nodes, "active");
  const rows = await db.select({ region: regions.region }).from(regions)
    .where(
      exists(
        db.select({ one: sql`1` }).from(active)
          .where(and(eq(active.region, regions.region), isNull(active.decommissionedAt))),
      ),
    )
    .orderBy(asc(regions.region));
  return rows.map((r) => r.region!).filter(Boolean);
}

// A raw subquery's DATETIME comes back as a string (or a Date, per driver settings): a naive UTC time.
function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  const text = String(value);
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(" ", "T")}Z`);
}
