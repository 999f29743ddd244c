// User rows.
import { and, asc, eq } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { users } from "./schema.ts";

export type UserRow = typeof users.$inferSelect;

export async function insertUser(db: DbOrTx, row: typeof users.$inferInsert): Promise<number> {
  const [{ id }] = await db.insert(users).values(row).$returningId();
  return id;
}

/** The user whose stored username is exactly `username` (already normalised). The column's collation
 * would also call "admín" or "admin " equal to "admin": only the exact spelling counts. */
export async function findUserByUsername(db: DbOrTx, username: string): Promise<UserRow | undefined> {
  const rows = await db.select().from(users).where(eq(users.username, username)).limit(1);
  return rows[0]?.username === username ? rows[0] : undefined;
}

export async function findUserById(db: DbOrTx, id: number): Promise<UserRow | undefined> {
  const rows = await db.select().from(users).where(eq(users.id, id)).limit(1);
  return rows[0];
}

/** Reads a user row with FOR UPDATE inside a transaction (role/disable changes serialize on it). */
export async function lockUserById(db: DbOrTx, id: number): Promise<UserRow | undefined> {
  const rows = await db.select().from(users).where(eq(users.id, id)).limit(1).for("update");
  return rows[0];
}

export function listUsers(db: DbOrTx): Promise<UserRow[]> {
  return db.select().from(users).orderBy(asc(users.username));
}

export async function updateUser(
  db: DbOrTx,
  id: number,
  set: Partial<Pick<UserRow, "role" | "disabled" | "passwordHash" | "passwordChangedAt" | "lastLoginAt">> & {
    updatedAt: Date;
  },
): Promise<void> {
  await db.update(users).set(set).where(eq(users.id, id));
}

/** Locks the enabled admin rows (FOR UPDATE) and counts them, so two concurrent demotions cannot both
 * see "another admin remains". */
export async function lockEnabledAdmins(db: DbOrTx): Promise<number[]> {
  const rows = await db.select({ id: users.id }).from(users)
    .where(and(eq(users.role, "admin"), eq(users.disabled, false))).for("update");
  return rows.map((r) => r.id);
}
