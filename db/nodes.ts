// Node rows for the management API: filtered, keyset-paginated lists, detail with pools, the few
// operator changes (display name, labels, decommission) and the full delete of a node's data.
import { recordNodeAuthChange } from "./nodeAuth.ts";
import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, like, lt, or, type SQL, sql } from "drizzle-orm";
import type { MySqlColumn } from "drizzle-orm/mysql-core";
import type { Database, DbOrTx } from "./client.ts";
import {
  configVersions,
  instancePools,
  metricRollups1h,
  metricRollups5m,
  metricSamples,
  nodes,
  scalingEvents,
} from "./schema.ts";

export type NodeStatusFilter = "never_seen" | "online" | "offline" | "decommissioned";
export type NodeSortKey = "name" | "last_heartbeat" | "registered";
export type SortOrder = "asc" | "desc";

/** Position after the last row of a page: its sort key (string, Date or null) and id. */
export interface NodeCursor {
  key: string | Date | null;
  id: string;
}

export interface NodeListQuery {
  statuses?: NodeStatusFilter[];
  /** Heartbeats at or after this instant count as online (core/nodeStatus.ts onlineSince). */
  onlineSince: Date;
  region?: string;
  /** Every pair must match; value undefined means "has the key". */
  labels?: { key: string; value?: string }[];
  q?: string;
  configStates?: string[];
  sort: NodeSortKey;
  order: SortOrder;
  after?: NodeCursor;
  limit: number;
}

export interface NodeListRow {
  id: string;
  name: string;
  displayName: string | null;
  hostname: string;
  region: string | null;
  agentVersion: string | null;
  labels: Record<string, string>;
  lastHeartbeatAt: Date | null;
  registeredAt: Date;
  lastAddress: string | null;
  claimedAddress: string | null;
  reportedStatus: string | null;
  uptimeS: number | null;
  tokenIssuedAt: Date | null;
  decommissionedAt: Date | null;
  configState: string;
  desiredHash: string | null;
  desiredVersion: number | null;
  appliedHash: string | null;
  configError: string | null;
  configAckedAt: Date | null;
  poolCount: number;
}

const SORT_COLUMNS: Record<NodeSortKey, MySqlColumn> = {
  name: nodes.name,
  last_heartbeat: nodes.lastHeartbeatAt,
  registered: nodes.registeredAt,
};

const listColumns = {
  id: nodes.id,
  name: nodes.name,
  displayName: nodes.displayName,
  hostname: nodes.hostname,
  region: nodes.region,
  agentVersion: nodes.agentVersion,
  labels: nodes.labels,
  lastHeartbeatAt: nodes.lastHeartbeatAt,
  registeredAt: nodes.registeredAt,
  lastAddress: nodes.lastAddress,
  claimedAddress: nodes.claimedAddress,
  reportedStatus: nodes.reportedStatus,
  uptimeS: nodes.uptimeS,
  tokenIssuedAt: nodes.tokenIssuedAt,
  decommissionedAt: nodes.decommissionedAt,
  configState: nodes.configState,
  desiredHash: nodes.desiredHash,
  desiredVersion: configVersions.version,
  appliedHash: nodes.appliedHash,
  configError: nodes.configError,
  configAckedAt: nodes.configAckedAt,
  poolCount: sql<number>`(SELECT COUNT(*) FROM ${instancePools} WHERE ${instancePools.nodeId} = ${nodes.id})`
    .mapWith(Number),
};

/** The SQL condition for one derived status (the same rules as core/nodeStatus.ts nodeStatus). */
export function statusCondition(status: NodeStatusFilter, onlineSince: Date): SQL {
  const active = isNull(nodes.decommissionedAt);
  switch (status) {
    case "decommissioned":
      return isNotNull(nodes.decommissionedAt);
    case "never_seen":
      return and(active, isNull(nodes.lastHeartbeatAt))!;
    case "online":
      return and(active, sql`${nodes.lastHeartbeatAt} >= ${onlineSince}`)!;
    case "offline":
      return and(active, sql`${nodes.lastHeartbeatAt} < ${onlineSince}`)!;
  }
}

/** A JSON path selecting one top-level key; keys are restricted by the caller to characters that need no
 * escaping beyond the quotes. */
function labelPath(key: string): string {
  return `$."${key}"`;
}

/** LIKE pattern matching `text` literally anywhere (backslash is the default escape in MySQL and MariaDB). */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/** Keyset condition: rows strictly after the cursor in (key, id) order. NULL keys (never heartbeated) sort
 * first ascending and last descending, as MySQL and MariaDB both order them. */
function afterCursor(column: MySqlColumn, order: SortOrder, cursor: NodeCursor): SQL {
  const idAfter = order === "asc" ? gt(nodes.id, cursor.id) : lt(nodes.id, cursor.id);
  if (cursor.key === null) {
    return order === "asc"
      ? or(and(isNull(column), idAfter), isNotNull(column))!
      : and(isNull(column), idAfter)!;
  }
  const keyAfter = order === "asc" ? gt(column, cursor.key) : lt(column, cursor.key);
  if (column === nodes.name) return keyAfter; // unique: no ties to break
  const sameKey = and(eq(column, cursor.key), idAfter)!;
  return order === "asc" ? or(keyAfter, sameKey)! : or(keyAfter, sameKey, isNull(column))!;
}

/** One page of nodes (limit + 1 rows are read so the caller knows whether another page follows). */
export async function listNodeRows(db: Database, query: NodeListQuery): Promise<NodeListRow[]> {
  const conditions: SQL[] = [];
  if (query.statuses?.length) {
    conditions.push(or(...query.statuses.map((s) => statusCondition(s, query.onlineSince)))!);
  }
  if (query.region !== undefined) conditions.push(eq(nodes.region, query.region));
  for (const label of query.labels ?? []) {
    // JSON_EXTRACT / JSON_UNQUOTE behave the same on MySQL 8 and MariaDB (labels are LONGTEXT JSON); the
    // binary comparison makes values exact on both (their JSON_UNQUOTE results carry different collations).
    conditions.push(
      label.value === undefined
        ? sql`JSON_EXTRACT(${nodes.labels}, ${labelPath(label.key)}) IS NOT NULL`
        : sql`CAST(JSON_UNQUOTE(JSON_EXTRACT(${nodes.labels}, ${
          labelPath(label.key)
        })) AS BINARY) = CAST(${label.value} AS BINARY)`,
    );
  }
  if (query.q) {
    const pattern = containsPattern(query.q);
    conditions.push(
      or(like(nodes.name, pattern), like(nodes.hostname, pattern), like(nodes.displayName, pattern))!,
    );
  }
  if (query.configStates?.length) conditions.push(inArray(nodes.configState, query.configStates));
  const column = SORT_COLUMNS[query.sort];
  if (query.after) conditions.push(afterCursor(column, query.order, query.after));
  const direction = query.order === "asc" ? asc : desc;
  // Names are unique, so they need no id tiebreak, which lets the name index serve ORDER BY ... LIMIT.
  const order = query.sort === "name" ? [direction(column)] : [direction(column), direction(nodes.id)];
  const rows = await db.select(listColumns).from(nodes)
    .leftJoin(configVersions, eq(configVersions.id, nodes.desiredVersionId))
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(...order)
    .limit(query.limit + 1);
  return rows as NodeListRow[];
}

export async function findNodeRow(db: Database, nodeId: string): Promise<NodeListRow | undefined> {
  const rows = await db.select(listColumns).from(nodes)
    .leftJoin(configVersions, eq(configVersions.id, nodes.desiredVersionId))
    .where(eq(nodes.id, nodeId)).limit(1);
  return rows[0] as NodeListRow | undefined;
}

export type PoolRow = typeof instancePools.$inferSelect;

export async function listPoolRows(db: Database, nodeId: string): Promise<PoolRow[]> {
  return await db.select().from(instancePools).where(eq(instancePools.nodeId, nodeId))
    .orderBy(asc(instancePools.poolOcid));
}

export async function findPoolRow(
  db: Database,
  nodeId: string,
  poolOcid: string,
): Promise<PoolRow | undefined> {
  const rows = await db.select().from(instancePools)
    .where(and(eq(instancePools.nodeId, nodeId), eq(instancePools.poolOcid, poolOcid))).limit(1);
  return rows[0];
}

export interface NodeChange {
  displayName?: string | null;
  labels?: Record<string, string>;
}

export async function updateNodeRow(
  db: DbOrTx,
  nodeId: string,
  change: NodeChange,
  now: Date,
): Promise<void> {
  await db.update(nodes).set({ ...change, updatedAt: now }).where(eq(nodes.id, nodeId));
}

/** Reads the node row and locks it for the rest of the transaction. */
export async function lockNodeRow(
  tx: DbOrTx,
  nodeId: string,
): Promise<
  {
    id: string;
    name: string;
    displayName: string | null;
    labels: Record<string, string>;
    decommissionedAt: Date | null;
  } | undefined
> {
  const rows = await tx.select({
    id: nodes.id,
    name: nodes.name,
    displayName: nodes.displayName,
    labels: nodes.labels,
    decommissionedAt: nodes.decommissionedAt,
  }).from(nodes).where(eq(nodes.id, nodeId)).for("update").limit(1);
  return rows[0];
}

/** Marks the node decommissioned and drops its token hash, so the token stops working at once. */
export async function decommissionNodeRow(
  db: DbOrTx,
  nodeId: string,
  now: Date,
): Promise<void> {
  await db.update(nodes).set({ decommissionedAt: now, tokenHash: null, updatedAt: now })
    .where(eq(nodes.id, nodeId));
  await recordNodeAuthChange(db, nodeId, now);
}

export interface DeletedCounts {
  nodes: number;
  instance_pools: number;
  metric_samples: number;
  metric_rollups_5m: number;
  metric_rollups_1h: number;
  scaling_events: number;
  config_versions: number;
}

const affected = (result: unknown) => (result as [{ affectedRows: number }])[0].affectedRows;

/** Deletes the node and every row that belongs to it (replicas forget its token at their next poll). Run
 * inside a transaction. */
export async function deleteNodeRows(db: DbOrTx, nodeId: string, now: Date): Promise<DeletedCounts> {
  await recordNodeAuthChange(db, nodeId, now);
  return {
    metric_samples: affected(await db.delete(metricSamples).where(eq(metricSamples.nodeId, nodeId))),
    metric_rollups_5m: affected(await db.delete(metricRollups5m).where(eq(metricRollups5m.nodeId, nodeId))),
    metric_rollups_1h: affected(await db.delete(metricRollups1h).where(eq(metricRollups1h.nodeId, nodeId))),
    scaling_events: affected(await db.delete(scalingEvents).where(eq(scalingEvents.nodeId, nodeId))),
    config_versions: affected(await db.delete(configVersions).where(eq(configVersions.nodeId, nodeId))),
    instance_pools: affected(await db.delete(instancePools).where(eq(instancePools.nodeId, nodeId))),
    nodes: affected(await db.delete(nodes).where(eq(nodes.id, nodeId))),
  };
}

export interface StatusCounts {
  never_seen: number;
  online: number;
  offline: number;
  decommissioned: number;
  total: number;
}

/** Node counts per derived status, in one pass. */
export async function countNodesByStatus(db: Database, onlineSince: Date): Promise<StatusCounts> {
  const count = (status: NodeStatusFilter) =>
    sql<number>`COALESCE(SUM(CASE WHEN ${statusCondition(status, onlineSince)} THEN 1 ELSE 0 END), 0)`
      .mapWith(Number);
  const rows = await db.select({
    never_seen: count("never_seen"),
    online: count("online"),
    offline: count("offline"),
    decommissioned: count("decommissioned"),
    total: sql<number>`COUNT(*)`.mapWith(Number),
  }).from(nodes);
  return rows[0];
}

export interface ActivePoolFigures {
  pools: number;
  instances: number;
  /** Pools whose latest figures are at or after `since`, and the averages of those figures. */
  current: { pools: number; cpuAvg: number | null; memoryAvg: number | null };
}

/** Pools of nodes that are not decommissioned: how many, their last known sizes, and the averages of the
 * latest figures of those that reported since `since`. Summed over every pool, minus the pools of
 * decommissioned nodes (few, found from their nodes): joining each of 20,000 pools to its node took five
 * times longer. */
export async function activePoolFigures(db: Database, since: Date): Promise<ActivePoolFigures> {
  const p = instancePools;
  const recent = sql`${p.lastMetricsAt} >= ${since}`;
  const sums = {
    pools: sql<number>`COUNT(*)`.mapWith(Number),
    instances: sql<number>`COALESCE(SUM(${p.currentSize}), 0)`.mapWith(Number),
    recent: sql<number>`COALESCE(SUM(CASE WHEN ${recent} THEN 1 ELSE 0 END), 0)`.mapWith(Number),
    cpuSum: sql<number>`COALESCE(SUM(CASE WHEN ${recent} THEN ${p.lastCpuUtil} END), 0)`.mapWith(Number),
    cpuCount: sql<number>`COUNT(CASE WHEN ${recent} THEN ${p.lastCpuUtil} END)`.mapWith(Number),
    memorySum: sql<number>`COALESCE(SUM(CASE WHEN ${recent} THEN ${p.lastMemoryUtil} END), 0)`.mapWith(
      Number,
    ),
    memoryCount: sql<number>`COUNT(CASE WHEN ${recent} THEN ${p.lastMemoryUtil} END)`.mapWith(Number),
  };
  const [[all], [gone]] = await Promise.all([
    db.select(sums).from(p),
    db.select(sums).from(nodes).innerJoin(p, eq(p.nodeId, nodes.id)).where(isNotNull(nodes.decommissionedAt)),
  ]);
  const left = (key: keyof typeof sums) => all[key] - gone[key];
  const average = (sum: number, n: number) => (n > 0 ? sum / n : null);
  return {
    pools: left("pools"),
    instances: left("instances"),
    current: {
      pools: left("recent"),
      cpuAvg: average(left("cpuSum"), left("cpuCount")),
      memoryAvg: average(left("memorySum"), left("memoryCount")),
    },
  };
}

/** Node counts per derived status and, for nodes that are not decommissioned, per config state: one pass
 * over the nodes (the dashboard's cards). */
export async function countNodesByStatusAndConfig(
  db: Database,
  onlineSince: Date,
  configStates: readonly string[],
): Promise<{ status: StatusCounts; configStates: Record<string, number> }> {
  const count = (condition: SQL) =>
    sql<number>`COALESCE(SUM(CASE WHEN ${condition} THEN 1 ELSE 0 END), 0)`.mapWith(Number);
  const [row] = await db.select({
    never_seen: count(statusCondition("never_seen", onlineSince)),
    online: count(statusCondition("online", onlineSince)),
    offline: count(statusCondition("offline", onlineSince)),
    decommissioned: count(statusCondition("decommissioned", onlineSince)),
    total: sql<number>`COUNT(*)`.mapWith(Number),
    ...Object.fromEntries(
      configStates.map((state) => [
        `config_${state}`,
        count(and(isNull(nodes.decommissionedAt), eq(nodes.configState, state))!),
      ]),
    ),
  }).from(nodes);
  const { never_seen, online, offline, decommissioned, total } = row;
  const byState = row as unknown as Record<string, number>;
  return {
    status: { never_seen, online, offline, decommissioned, total },
    configStates: Object.fromEntries(configStates.map((state) => [state, byState[`config_${state}`]])),
  };
}

/** Pools and their last known sizes on nodes that are not decommissioned. */
export async function countActivePoolsAndInstances(
  db: Database,
): Promise<{ pools: number; instances: number }> {
  const { pools, instances } = await activePoolFigures(db, new Date());
  return { pools, instances };
}

// --- Inserts used by test fixtures (registration has its own, in db/agents.ts).

export type NodeInsert = typeof nodes.$inferInsert;
export type PoolInsert = typeof instancePools.$inferInsert;

export async function insertNodeRows(db: Database, rows: NodeInsert[]): Promise<void> {
  if (rows.length) await db.insert(nodes).values(rows);
}

export async function insertPoolRows(db: Database, rows: PoolInsert[]): Promise<number[]> {
  if (!rows.length) return [];
  const ids: number[] = [];
  for (const row of rows) {
    const [inserted] = await db.insert(instancePools).values(row).$returningId();
    ids.push(inserted.id);
  }
  return ids;
}
