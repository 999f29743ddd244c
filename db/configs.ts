// Config versions (immutable rows) and the desired/applied config columns of nodes.
import { and, desc, eq, gt, lt, max } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { configVersions, nodes } from "./schema.ts";

export type ConfigVersionRow = typeof configVersions.$inferSelect;
export type NewConfigVersionRow = typeof configVersions.$inferInsert;

export interface NodeConfigRow {
  id: string;
  name: string;
  decommissionedAt: Date | null;
  desiredVersionId: number | null;
  desiredHash: string | null;
  desiredChangedAt: Date | null;
  appliedHash: string | null;
  configState: string;
  configError: string | null;
  configAckedAt: Date | null;
}

const nodeConfigColumns = {
  id: nodes.id,
  name: nodes.name,
  decommissionedAt: nodes.decommissionedAt,
  desiredVersionId: nodes.desiredVersionId,
  desiredHash: nodes.desiredHash,
  desiredChangedAt: nodes.desiredChangedAt,
  appliedHash: nodes.appliedHash,
  configState: nodes.configState,
  configError: nodes.configError,
  configAckedAt: nodes.configAckedAt,
};

/** The node's config columns; `forUpdate` locks the row until the transaction ends (serializes writers). */
export async function findNodeConfig(
  db: DbOrTx,
  nodeId: string,
  options: { forUpdate?: boolean } = {},
): Promise<NodeConfigRow | undefined> {
  const query = db.select(nodeConfigColumns).from(nodes).where(eq(nodes.id, nodeId)).limit(1);
  const rows = options.forUpdate ? await query.for("update") : await query;
  return rows[0];
}

/** Only the desired hash: what a waiting config pull re-reads. */
export async function findDesiredHash(
  db: DbOrTx,
  nodeId: string,
): Promise<{ desiredHash: string | null; desiredVersionId: number | null } | undefined> {
  const rows = await db.select({ desiredHash: nodes.desiredHash, desiredVersionId: nodes.desiredVersionId })
    .from(nodes).where(eq(nodes.id, nodeId)).limit(1);
  return rows[0];
}

export async function maxConfigVersion(db: DbOrTx, nodeId: string): Promise<number> {
  const rows = await db.select({ version: max(configVersions.version) }).from(configVersions)
    .where(eq(configVersions.nodeId, nodeId));
  return Number(rows[0]?.version ?? 0);
}

export async function insertConfigVersion(db: DbOrTx, row: NewConfigVersionRow): Promise<number> {
  const [inserted] = await db.insert(configVersions).values(row).$returningId();
  return inserted.id;
}

export async function findConfigVersionById(
  db: DbOrTx,
  id: number,
): Promise<ConfigVersionRow | undefined> {
  const rows = await db.select().from(configVersions).where(eq(configVersions.id, id)).limit(1);
  return rows[0];
}

export async function findConfigVersion(
  db: DbOrTx,
  nodeId: string,
  version: number,
): Promise<ConfigVersionRow | undefined> {
  const rows = await db.select().from(configVersions)
    .where(and(eq(configVersions.nodeId, nodeId), eq(configVersions.version, version))).limit(1);
  return rows[0];
}

/** The newest version of the node with that hash (index config_versions_node_hash_idx): which version an
 * agent runs, from the hash it acked. */
export async function findLatestVersionWithHash(
  db: DbOrTx,
  nodeId: string,
  hash: string,
): Promise<number | undefined> {
  const rows = await db.select({ version: configVersions.version }).from(configVersions)
    .where(and(eq(configVersions.nodeId, nodeId), eq(configVersions.hash, hash)))
    .orderBy(desc(configVersions.version)).limit(1);
  return rows[0]?.version;
}

/** Newest first; `beforeVersion` pages back (versions strictly below it). */
export function listConfigVersionRows(
  db: DbOrTx,
  nodeId: string,
  options: { limit: number; beforeVersion?: number },
): Promise<ConfigVersionRow[]> {
  const where = options.beforeVersion === undefined
    ? eq(configVersions.nodeId, nodeId)
    : and(eq(configVersions.nodeId, nodeId), lt(configVersions.version, options.beforeVersion));
  return db.select().from(configVersions).where(where).orderBy(desc(configVersions.version))
    .limit(options.limit);
}

export async function setNodeDesired(
  db: DbOrTx,
  nodeId: string,
  values: {
    desiredVersionId: number;
    desiredHash: string;
    desiredChangedAt: Date;
    configState: string;
    configError: string | null;
  },
): Promise<void> {
  await db.update(nodes).set({ ...values, updatedAt: values.desiredChangedAt }).where(eq(nodes.id, nodeId));
}

export async function setNodeAck(
  db: DbOrTx,
  nodeId: string,
  values: {
    appliedHash: string | null;
    configState: string;
    configError: string | null;
    configAckedAt: Date;
  },
): Promise<void> {
  await db.update(nodes).set({ ...values, updatedAt: values.configAckedAt }).where(eq(nodes.id, nodeId));
}

/** Nodes whose desired config changed after `since` (index nodes_desired_changed_idx): the one query a
 * replica's config watcher runs per poll, however many agents wait. */
export function findDesiredChangedSince(
  db: DbOrTx,
  since: Date,
): Promise<
  { id: string; desiredHash: string | null; desiredVersionId: number | null; desiredChangedAt: Date | null }[]
> {
  return db.select({
    id: nodes.id,
    desiredHash: nodes.desiredHash,
    desiredVersionId: nodes.desiredVersionId,
    desiredChangedAt: nodes.desiredChangedAt,
  }).from(nodes).where(gt(nodes.desiredChangedAt, since));
}
