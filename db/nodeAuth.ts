// Node rows: the lookups every node-authenticated request makes.
import { eq, or } from "drizzle-orm";
import type { Database, DbOrTx } from "./client.ts";
import { nodes } from "./schema.ts";

export interface NodeAuthRow {
  id: string;
  name: string;
  tokenHash: string | null;
  decommissionedAt: Date | null;
}

export async function findNodeAuth(db: Database, nodeId: string): Promise<NodeAuthRow | undefined> {
  const rows = await db.select({
    id: nodes.id,
    name: nodes.name,
    tokenHash: nodes.tokenHash,
    decommissionedAt: nodes.decommissionedAt,
  }).from(nodes).where(eq(nodes.id, nodeId)).limit(1);
  return rows[0];
}

export async function findNodeIdByTokenHash(db: Database, tokenHash: string): Promise<string | undefined> {
  const rows = await db.select({ id: nodes.id }).from(nodes).where(eq(nodes.tokenHash, tokenHash)).limit(1);
  return rows[0]?.id;
}

/** The node holding this token hash (register's credential check: a node rotating its own token). */
export async function findNodeByTokenHash(db: Database, tokenHash: string): Promise<NodeAuthRow | undefined> {
  const rows = await db.select({
    id: nodes.id,
    name: nodes.name,
    tokenHash: nodes.tokenHash,
    decommissionedAt: nodes.decommissionedAt,
  }).from(nodes).where(eq(nodes.tokenHash, tokenHash)).limit(1);
  return rows[0];
}

/** A node by its id or its name (operators name nodes either way). */
export async function findNodeByIdOrName(db: DbOrTx, idOrName: string): Promise<NodeAuthRow | undefined> {
  const rows = await db.select({
    id: nodes.id,
    name: nodes.name,
    tokenHash: nodes.tokenHash,
    decommissionedAt: nodes.decommissionedAt,
  }).from(nodes).where(or(eq(nodes.id, idOrName), eq(nodes.name, idOrName))).limit(2);
  // An id that is also another node's name: the id wins.
  return rows.find((row) => row.id === idOrName) ?? rows[0];
}
