// Audit log writes (and reads, for the management API).
import { and, desc, eq, gte, like, lt, lte, type SQL } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { auditLog } from "./schema.ts";

export type AuditRow = typeof auditLog.$inferInsert;

/** Inserts one entry; pass a transaction as `db` to make it part of the change it records. */
export async function insertAudit(db: DbOrTx, rows: AuditRow | AuditRow[]): Promise<void> {
  await db.insert(auditLog).values(Array.isArray(rows) ? rows : [rows]);
}

export type AuditLogRow = typeof auditLog.$inferSelect;

export interface AuditFilter {
  actor?: string;
  /** Exact action, or a prefix when it ends with "*" ("auth.*"). */
  action?: string;
  targetType?: string;
  targetId?: string;
  from?: Date;
  to?: Date;
  /** Only entries with a smaller id (the cursor). */
  beforeId?: number;
}

/** Entries matching `filter`, newest first (by id: insertion order, the same on every replica). */
export function queryAudit(
  db: DbOrTx,
  filter: AuditFilter,
  limit: number,
): Promise<AuditLogRow[]> {
  const conditions: SQL[] = [];
  if (filter.actor !== undefined) conditions.push(eq(auditLog.actorName, filter.actor));
  if (filter.action !== undefined) {
    conditions.push(
      filter.action.endsWith("*")
        ? like(auditLog.action, `${escapeLike(filter.action.slice(0, -1))}%`)
        : eq(auditLog.action, filter.action),
    );
  }
  if (filter.targetType !== undefined) conditions.push(eq(auditLog.targetType, filter.targetType));
  if (filter.targetId !== undefined) conditions.push(eq(auditLog.targetId, filter.targetId));
  if (filter.from) conditions.push(gte(auditLog.at, filter.from));
  if (filter.to) conditions.push(lte(auditLog.at, filter.to));
  if (filter.beforeId !== undefined) conditions.push(lt(auditLog.id, filter.beforeId));
  return db.select().from(auditLog).where(and(...conditions)).orderBy(desc(auditLog.id)).limit(limit);
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

/** Whether `username` logged in successfully from `address` since `since` (a familiar address). */
export async function hasLoggedInFrom(
  db: DbOrTx,
  username: string,
  address: string,
  since: Date,
): Promise<boolean> {
  const rows = await db.select({ id: auditLog.id }).from(auditLog).where(and(
    eq(auditLog.actorName, username),
    gte(auditLog.at, since),
    eq(auditLog.action, "auth.login"),
    eq(auditLog.address, address),
  )).limit(1);
  return rows.length > 0;
}
