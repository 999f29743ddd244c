// Enrollment tokens: the secrets an autoscaler presents once, at registration, to join the fleet.
import { and, desc, eq, gt, isNull, lt, or, sql } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { enrollmentTokens } from "./schema.ts";

export type EnrollmentTokenRow = typeof enrollmentTokens.$inferSelect;
export type NewEnrollmentTokenRow = typeof enrollmentTokens.$inferInsert;

export async function insertEnrollmentToken(db: DbOrTx, row: NewEnrollmentTokenRow): Promise<number> {
  const [inserted] = await db.insert(enrollmentTokens).values(row).$returningId();
  return inserted.id;
}

export async function listEnrollmentTokenRows(
  db: DbOrTx,
  options: { includeRevoked: boolean },
): Promise<EnrollmentTokenRow[]> {
  return await db.select().from(enrollmentTokens)
    .where(options.includeRevoked ? undefined : isNull(enrollmentTokens.revokedAt))
    .orderBy(desc(enrollmentTokens.createdAt), desc(enrollmentTokens.id));
}

export async function findEnrollmentTokenById(
  db: DbOrTx,
  id: number,
): Promise<EnrollmentTokenRow | undefined> {
  const rows = await db.select().from(enrollmentTokens).where(eq(enrollmentTokens.id, id)).limit(1);
  return rows[0];
}

export async function findEnrollmentTokenByHash(
  db: DbOrTx,
  tokenHash: string,
): Promise<EnrollmentTokenRow | undefined> {
  const rows = await db.select().from(enrollmentTokens).where(eq(enrollmentTokens.tokenHash, tokenHash))
    .limit(1);
  return rows[0];
}

/** Sets revoked_at unless already set; returns whether this call revoked it. */
export async function markEnrollmentTokenRevoked(db: DbOrTx, id: number, at: Date): Promise<boolean> {
  const [result] = await db.update(enrollmentTokens).set({ revokedAt: at })
    .where(and(eq(enrollmentTokens.id, id), isNull(enrollmentTokens.revokedAt)));
  return result.affectedRows === 1;
}

/** Counts one use, only while the token is usable at `now`. The condition lives in the UPDATE, so two
 * concurrent registrations cannot both take the last use (the second waits for the row lock and then
 * sees uses = max_uses). Returns whether the use was counted. */
export async function takeEnrollmentTokenUse(db: DbOrTx, id: number, now: Date): Promise<boolean> {
  const [result] = await db.update(enrollmentTokens)
    .set({ uses: sql`${enrollmentTokens.uses} + 1`, lastUsedAt: now })
    .where(and(
      eq(enrollmentTokens.id, id),
      isNull(enrollmentTokens.revokedAt),
      or(isNull(enrollmentTokens.expiresAt), gt(enrollmentTokens.expiresAt, now)),
      or(isNull(enrollmentTokens.maxUses), lt(enrollmentTokens.uses, enrollmentTokens.maxUses)),
    ));
  return result.affectedRows === 1;
}
