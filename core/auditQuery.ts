// Reading the audit log: filters, newest first, opaque cursor pagination.
import { type AuditFilter, type AuditLogRow, queryAudit } from "../db/audit.ts";
import { decodeCursor, encodeCursor, invalidCursor } from "./cursor.ts";
import type { CoreDeps } from "./deps.ts";
import { validationFailed } from "./errors.ts";

export const AUDIT_DEFAULT_LIMIT = 50;
export const AUDIT_MAX_LIMIT = 500;

/** The filters of db/audit.ts, plus a page size and the cursor of the previous page. */
export interface AuditQuery extends Omit<AuditFilter, "beforeId"> {
  limit?: number;
  cursor?: string;
}

export interface AuditEntryView {
  id: number;
  at: string;
  actor: { type: string; id: string | null; name: string };
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: Record<string, unknown> | null;
  address: string | null;
}

export interface AuditPage {
  entries: AuditEntryView[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null;
}

function toView(row: AuditLogRow): AuditEntryView {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor: { type: row.actorType, id: row.actorId, name: row.actorName },
    action: row.action,
    target_type: row.targetType,
    target_id: row.targetId,
    details: row.details ?? null,
    address: row.address,
  };
}

/** One page of the audit log. 422 naming the field for from after to, a bad limit or a foreign cursor. */
export async function listAudit(deps: Pick<CoreDeps, "db">, query: AuditQuery): Promise<AuditPage> {
  const limit = query.limit ?? AUDIT_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_MAX_LIMIT) {
    throw validationFailed(`invalid query: limit: must be 1..${AUDIT_MAX_LIMIT}`, [
      { field: "limit", message: `must be an integer 1..${AUDIT_MAX_LIMIT}`, location: "query" },
    ]);
  }
  if (query.from && query.to && query.from.getTime() > query.to.getTime()) {
    throw validationFailed("invalid query: from: must not be after to", [
      { field: "from", message: "must not be after to", location: "query" },
    ]);
  }
  let beforeId: number | undefined;
  if (query.cursor !== undefined) {
    const [id] = decodeCursor(query.cursor);
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
      throw invalidCursor("not a cursor this server issued");
    }
    beforeId = id;
  }
  // One row more than asked tells whether another page exists.
  const { limit: _limit, cursor: _cursor, ...filter } = query;
  const rows = await queryAudit(deps.db, { ...filter, beforeId }, limit + 1);
  const page = rows.slice(0, limit);
  const more = rows.length > limit;
  return {
    entries: page.map(toView),
    next_cursor: more ? encodeCursor([page[page.length - 1].id]) : null,
  };
}
