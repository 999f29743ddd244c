// Node rows: the lookups every node-authenticated request makes.
import { eq, gt, inArray, or } from "drizzle-orm";
import type { Database, DbOrTx } from "./client.ts";
import { nodeAuthChanges, nodes } from "./schema.ts";

export interface NodeAuthRow {
  id: string;
  name: string;
  tokenHash: string | null;
  decommissionedAt: Date | null;
}

/** The columns of a NodeAuthRow. */
const nodeAuthColumns = {
  id: nodes.id,
  name: nodes.name,
  tokenHash: nodes.tokenHash,
  decommissionedAt: nodes.decommissionedAt,
};

export async function findNodeAuth(db: Database, nodeId: string): Promise<NodeAuthRow | undefined> {
  const rows = await db.select(nodeAuthColumns).from(nodes).where(eq(nodes.id, nodeId)).limit(1);
  return rows[0];
}

export async function findNodeIdByTokenHash(db: Database, tokenHash: string): Promise<string | undefined> {
  const rows = await db.select({ id: nodes.id }).from(nodes).where(eq(nodes.tokenHash, tokenHash)).limit(1);
  return rows[0]?.id;
}

/** The node holding this token hash (register's credential check: a node rotating its own token). */
export async function findNodeByTokenHash(db: Database, tokenHash: string): Promise<NodeAuthRow | undefined> {
  const rows = await db.select(nodeAuthColumns).from(nodes).where(eq(nodes.tokenHash, tokenHash)).limit(1);
  return rows[0];
}

/** A node by its id or its name (operators name nodes either way). */
export async function findNodeByIdOrName(db: DbOrTx, idOrName: string): Promise<NodeAuthRow | undefined> {
  const rows = await db.select(nodeAuthColumns).from(nodes).where(
    or(eq(nodes.id, idOrName), eq(nodes.name, idOrName)),
  ).limit(2);
  // An id that is also another node's name: the id wins.
  return rows.find((row) => row.id === idOrName) ?? rows[0];
}

/** What a replica remembers of a node whose token it checked (core/nodeAuthCache.ts). */
export interface NodeAuthCacheRow extends NodeAuthRow {
  desiredHash: string | null;
  appliedHash: string | null;
}

/** The nodes among `ids` (one statement for a burst of first requests after a start). */
export async function findNodeAuthRows(db: Database, ids: string[]): Promise<NodeAuthCacheRow[]> {
  if (ids.length === 0) return [];
  return await db.select({
    ...nodeAuthColumns,
    desiredHash: nodes.desiredHash,
    appliedHash: nodes.appliedHash,
  })
    .from(nodes).where(inArray(nodes.id, ids));
}

/** Records that the node's credentials changed (token rotated, decommissioned, deleted), in the caller's
 * transaction: every replica forgets what it remembered of the node at its next poll. */
export async function recordNodeAuthChange(db: DbOrTx, nodeId: string, at: Date): Promise<void> {
  await db.insert(nodeAuthChanges).values({ nodeId, changedAt: at });
}

/** Credential changes recorded after `since` (index node_auth_changes_changed_idx). */
export async function findNodeAuthChangesSince(
  db: DbOrTx,
  since: Date,
): Promise<{ id: number; nodeId: string; changedAt: Date }[]> {
  return await db.select({
    id: nodeAuthChanges.id,
    nodeId: nodeAuthChanges.nodeId,
    changedAt: nodeAuthChanges.changedAt,
  })
    .from(nodeAuthChanges).where(gt(nodeAuthChanges.changedAt, since));
}
