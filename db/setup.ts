// First-run setup codes and the "is there any user yet" check.
import { gt, sql } from "drizzle-orm";
import type { Database } from "./client.ts";
import { setupCodes, users } from "./schema.ts";

type Executor = Pick<Database, "select" | "insert" | "delete">;

export async function countUsers(db: Executor): Promise<number> {
  const rows = await db.select({ n: sql<number>`COUNT(*)`.mapWith(Number) }).from(users);
  return rows[0].n;
}

export async function insertSetupCode(
  db: Executor,
  row: { codeHash: string; createdAt: Date; expiresAt: Date },
): Promise<void> {
  await db.insert(setupCodes).values(row);
}

/** The hashes of codes still valid at `now`, locked (FOR UPDATE) so two setups serialize on them. */
export async function lockValidSetupCodes(db: Executor, now: Date): Promise<string[]> {
  const rows = await db.select({ codeHash: setupCodes.codeHash }).from(setupCodes)
    .where(gt(setupCodes.expiresAt, now)).for("update");
  return rows.map((r) => r.codeHash);
}

export async function deleteAllSetupCodes(db: Executor): Promise<void> {
  await db.delete(setupCodes);
}
