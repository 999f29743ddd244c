// Server-side sessions (only the keyed hash of the cookie value is stored).
import { and, eq, lt, ne } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { sessions, users } from "./schema.ts";

export type SessionRow = typeof sessions.$inferSelect;

export async function insertSession(db: DbOrTx, row: typeof sessions.$inferInsert): Promise<void> {
  await db.insert(sessions).values(row);
}

export interface SessionWithUser {
  session: SessionRow;
  user: { id: number; username: string; role: string; disabled: boolean };
}

/** The session and its user in one query (every cookie-authenticated request makes it). */
export async function findSessionWithUser(
  db: DbOrTx,
  idHash: string,
): Promise<SessionWithUser | undefined> {
  const rows = await db.select({
    session: sessions,
    user: { id: users.id, username: users.username, role: users.role, disabled: users.disabled },
  }).from(sessions).innerJoin(users, eq(users.id, sessions.userId)).where(eq(sessions.idHash, idHash))
    .limit(1);
  return rows[0];
}

export async function touchSession(
  db: DbOrTx,
  idHash: string,
  lastSeenAt: Date,
  expiresAt: Date,
): Promise<void> {
  await db.update(sessions).set({ lastSeenAt, expiresAt }).where(eq(sessions.idHash, idHash));
}

export async function deleteSession(db: DbOrTx, idHash: string): Promise<number> {
  const [result] = await db.delete(sessions).where(eq(sessions.idHash, idHash));
  return result.affectedRows;
}

export async function deleteSessionsOfUser(db: DbOrTx, userId: number): Promise<number> {
  const [result] = await db.delete(sessions).where(eq(sessions.userId, userId));
  return result.affectedRows;
}

/** Ends a user's sessions except `keepIdHash` (the one changing the password). */
export async function deleteOtherSessionsOfUser(
  db: DbOrTx,
  userId: number,
  keepIdHash?: string,
): Promise<number> {
  const [result] = await db.delete(sessions).where(
    keepIdHash
      ? and(eq(sessions.userId, userId), ne(sessions.idHash, keepIdHash))
      : eq(sessions.userId, userId),
  );
  return result.affectedRows;
}

/** Deletes expired sessions, at most `limit` per call so it can run on a request path. */
export async function deleteExpiredSessions(db: DbOrTx, now: Date, limit = 100): Promise<number> {
  const [result] = await db.delete(sessions).where(lt(sessions.expiresAt, now)).limit(limit);
  return result.affectedRows;
}
