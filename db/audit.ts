// Audit log writes (and reads, for the management API).
import type { Database } from "./client.ts";
import { auditLog } from "./schema.ts";

export type AuditRow = typeof auditLog.$inferInsert;

/** Inserts one entry; pass a transaction as `db` to make it part of the change it records. */
export async function insertAudit(db: Pick<Database, "insert">, row: AuditRow): Promise<void> {
  await db.insert(auditLog).values(row);
}
