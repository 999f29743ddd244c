// Every change by a person, key or node is recorded here, in the same transaction as the change
// where there is one.
import type { DbOrTx } from "../db/client.ts";
import { type AuditRow, insertAudit } from "../db/audit.ts";
import type { Clock } from "./clock.ts";
import { actorOf, type Principal } from "./principal.ts";

export interface AuditEntry {
  principal: Principal;
  action: string; // e.g. "node.register", "config.create", "user.login_failed"
  targetType?: string;
  targetId?: string | number;
  details?: Record<string, unknown>;
  address?: string | null;
}

export async function recordAudit(
  deps: { clock: Clock },
  db: DbOrTx,
  entry: AuditEntry,
): Promise<void> {
  await recordAudits(deps, db, [entry]);
}

/** Several entries in one statement (a hot path's round trip saved). */
export async function recordAudits(
  deps: { clock: Clock },
  db: DbOrTx,
  entries: AuditEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  const at = deps.clock.now();
  await insertAudit(db, entries.map((entry) => auditRow(entry, at)));
}

/** The audit_log row of an entry (for writers that batch their own statements: core/registrations.ts). */
export function auditRow(entry: AuditEntry, at: Date): AuditRow {
  return {
    at,
    ...actorOf(entry.principal),
    action: entry.action,
    targetType: entry.targetType ?? null,
    targetId: entry.targetId === undefined ? null : String(entry.targetId),
    details: entry.details ?? null,
    address: entry.address ?? null,
  };
}
