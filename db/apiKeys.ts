// API key rows (prefix for display, keyed hash for lookup).
import { and, desc, eq, inArray, isNull, lt, or } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { apiKeys, users } from "./schema.ts";

export type ApiKeyRow = typeof apiKeys.$inferSelect;
export interface ApiKeyOwner {
  id: number;
  username: string;
  disabled: boolean;
}
export interface ApiKeyWithOwner {
  key: ApiKeyRow;
  owner: ApiKeyOwner | null;
}

export async function insertApiKey(db: DbOrTx, row: typeof apiKeys.$inferInsert): Promise<number> {
  const [{ id }] = await db.insert(apiKeys).values(row).$returningId();
  return id;
}

export async function findApiKeyByHash(db: DbOrTx, keyHash: string): Promise<ApiKeyRow | undefined> {
  const rows = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).limit(1);
  return rows[0];
}

export async function findApiKeyById(db: DbOrTx, id: number): Promise<ApiKeyRow | undefined> {
  const rows = await db.select().from(apiKeys).where(eq(apiKeys.id, id)).limit(1);
  return rows[0];
}

const withOwner = (db: DbOrTx) =>
  db.select({
    key: apiKeys,
    owner: { id: users.id, username: users.username, disabled: users.disabled },
  }).from(apiKeys).leftJoin(users, eq(users.id, apiKeys.ownerUserId));

export async function findApiKeyWithOwnerById(db: DbOrTx, id: number): Promise<ApiKeyWithOwner | undefined> {
  const rows = await withOwner(db).where(eq(apiKeys.id, id)).limit(1);
  return rows[0];
}

export function listApiKeys(db: DbOrTx): Promise<ApiKeyWithOwner[]> {
  return withOwner(db).orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
}

/** Revokes every live key `userId` owns; returns how many. */
/** Revokes the user's active keys; with `roles`, only those of these roles (the ones above a role the user
 * was moved down to). */
export async function revokeApiKeysOwnedBy(
  db: DbOrTx,
  userId: number,
  at: Date,
  roles?: readonly string[],
): Promise<number> {
  if (roles?.length === 0) return 0;
  const [result] = await db.update(apiKeys).set({ revokedAt: at }).where(and(
    eq(apiKeys.ownerUserId, userId),
    isNull(apiKeys.revokedAt),
    roles ? inArray(apiKeys.role, [...roles]) : undefined,
  ));
  return result.affectedRows;
}

export async function revokeApiKey(db: DbOrTx, id: number, at: Date): Promise<void> {
  await db.update(apiKeys).set({ revokedAt: at }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)));
}

/** Sets last_used_at unless another request (or replica) did so after `staleBefore`: one write per
 * key per interval however busy the key is. */
export async function touchApiKeyLastUsed(
  db: DbOrTx,
  id: number,
  at: Date,
  staleBefore: Date,
): Promise<void> {
  await db.update(apiKeys).set({ lastUsedAt: at })
    .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, staleBefore))));
}
