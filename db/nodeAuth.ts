// Node rows: the lookups every node-authenticated request makes.
import { eq } from "drizzle-orm";
import type { Database } from "./client.ts";
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
