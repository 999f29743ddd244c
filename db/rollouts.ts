// Rollouts and their nodes (core/rollouts.ts). A rollout's row is locked (FOR UPDATE) by every change of it,
// the job's steps and the operator's pause/resume/abort alike, so they take turns whatever the replica.
import { and, count, desc, eq, gte, inArray, isNotNull, lt } from "drizzle-orm";
import type { Database, DbOrTx } from "./client.ts";
import { nodes, rolloutNodes, rollouts, scalingEvents } from "./schema.ts";

export type RolloutRow = typeof rollouts.$inferSelect;
export type NewRolloutRow = typeof rollouts.$inferInsert;
export type RolloutNodeRow = typeof rolloutNodes.$inferSelect;
export type NewRolloutNodeRow = typeof rolloutNodes.$inferInsert;

export async function insertRollout(db: DbOrTx, row: NewRolloutRow): Promise<number> {
  const [result] = await db.insert(rollouts).values(row).$returningId();
  return result.id;
}

/** Inserts the rows in chunks. A node already active in another rollout fails on rollout_nodes_active_uq. */
export async function insertRolloutNodes(db: DbOrTx, rows: NewRolloutNodeRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 200) await db.insert(rolloutNodes).values(rows.slice(i, i + 200));
}

export async function findRollout(
  db: DbOrTx,
  id: number,
  options: { forUpdate?: boolean } = {},
): Promise<RolloutRow | undefined> {
  const query = db.select().from(rollouts).where(eq(rollouts.id, id)).limit(1);
  return (options.forUpdate ? await query.for("update") : await query)[0];
}

export function listRolloutRows(db: Database, options: { limit: number; beforeId?: number }) {
  return db.select().from(rollouts)
    .where(options.beforeId ? lt(rollouts.id, options.beforeId) : undefined)
    .orderBy(desc(rollouts.id)).limit(options.limit);
}

export async function listRunningRolloutIds(db: Database): Promise<number[]> {
  const rows = await db.select({ id: rollouts.id }).from(rollouts).where(eq(rollouts.status, "running"))
    .orderBy(rollouts.id);
  return rows.map((row) => row.id);
}

export async function updateRollout(db: DbOrTx, id: number, change: Partial<NewRolloutRow>): Promise<void> {
  await db.update(rollouts).set(change).where(eq(rollouts.id, id));
}

export function listRolloutNodeRows(db: DbOrTx, rolloutId: number, wave?: number): Promise<RolloutNodeRow[]> {
  return db.select().from(rolloutNodes)
    .where(
      wave === undefined
        ? eq(rolloutNodes.rolloutId, rolloutId)
        : and(eq(rolloutNodes.rolloutId, rolloutId), eq(rolloutNodes.wave, wave)),
    )
    .orderBy(rolloutNodes.wave, rolloutNodes.nodeName);
}

export async function updateRolloutNode(
  db: DbOrTx,
  rolloutId: number,
  nodeId: string,
  change: Partial<NewRolloutNodeRow>,
): Promise<void> {
  await db.update(rolloutNodes).set(change)
    .where(and(eq(rolloutNodes.rolloutId, rolloutId), eq(rolloutNodes.nodeId, nodeId)));
}

/** The rollout no longer holds its nodes: they may join another one. */
export async function releaseRolloutNodes(db: DbOrTx, rolloutId: number): Promise<void> {
  await db.update(rolloutNodes).set({ activeNodeId: null })
    .where(and(eq(rolloutNodes.rolloutId, rolloutId), isNotNull(rolloutNodes.activeNodeId)));
}

/** Which of these nodes an active (running or paused) rollout holds, and which rollout. */
export async function findActiveRolloutNodes(
  db: DbOrTx,
  nodeIds: string[],
): Promise<{ nodeId: string; rolloutId: number }[]> {
  const found: { nodeId: string; rolloutId: number }[] = [];
  for (let i = 0; i < nodeIds.length; i += 500) {
    found.push(
      ...await db.select({ nodeId: rolloutNodes.nodeId, rolloutId: rolloutNodes.rolloutId }).from(
        rolloutNodes,
      )
        .where(inArray(rolloutNodes.activeNodeId, nodeIds.slice(i, i + 500))),
    );
  }
  return found;
}

/** Node states per rollout, for lists. */
export async function countRolloutNodeStates(
  db: Database,
  rolloutIds: number[],
): Promise<Map<number, Record<string, number>>> {
  const counts = new Map<number, Record<string, number>>();
  if (rolloutIds.length === 0) return counts;
  const rows = await db.select({ rolloutId: rolloutNodes.rolloutId, state: rolloutNodes.state, n: count() })
    .from(rolloutNodes).where(inArray(rolloutNodes.rolloutId, rolloutIds))
    .groupBy(rolloutNodes.rolloutId, rolloutNodes.state);
  for (const row of rows) {
    const entry = counts.get(row.rolloutId) ?? {};
    entry[row.state] = row.n;
    counts.set(row.rolloutId, entry);
  }
  return counts;
}

export interface NodeHealthRow {
  id: string;
  name: string;
  lastHeartbeatAt: Date | null;
  decommissionedAt: Date | null;
  desiredHash: string | null;
  appliedHash: string | null;
  configState: string;
  configError: string | null;
  configAckedAt: Date | null;
}

/** What the rollout checks of each node of a wave: liveness and its config state. */
export async function findNodeHealth(db: DbOrTx, nodeIds: string[]): Promise<Map<string, NodeHealthRow>> {
  if (nodeIds.length === 0) return new Map();
  const rows = await db.select({
    id: nodes.id,
    name: nodes.name,
    lastHeartbeatAt: nodes.lastHeartbeatAt,
    decommissionedAt: nodes.decommissionedAt,
    desiredHash: nodes.desiredHash,
    appliedHash: nodes.appliedHash,
    configState: nodes.configState,
    configError: nodes.configError,
    configAckedAt: nodes.configAckedAt,
  }).from(nodes).where(inArray(nodes.id, nodeIds));
  return new Map(rows.map((row) => [row.id, row]));
}

/** Scaling events of a node (all its pools) at or after `since`. */
export async function countScalingEventsSince(db: DbOrTx, nodeId: string, since: Date): Promise<number> {
  const rows = await db.select({ n: count() }).from(scalingEvents)
    .where(and(eq(scalingEvents.nodeId, nodeId), gte(scalingEvents.ts, since)));
  return rows[0]?.n ?? 0;
}
