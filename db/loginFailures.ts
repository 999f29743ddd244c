// Failed logins, for throttling that holds across replicas.
import { and, asc, eq, gt, lt } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { loginFailures } from "./schema.ts";

export async function insertLoginFailure(
  db: DbOrTx,
  row: { username: string; address: string; at: Date },
): Promise<void> {
  await db.insert(loginFailures).values(row);
}

/** Times of the failures for a username after `since`, oldest first (at most `limit`). */
export async function failureTimesForUsername(
  db: DbOrTx,
  username: string,
  since: Date,
  limit: number,
): Promise<Date[]> {
  const rows = await db.select({ at: loginFailures.at }).from(loginFailures)
    .where(and(eq(loginFailures.username, username), gt(loginFailures.at, since)))
    .orderBy(asc(loginFailures.at)).limit(limit);
  return rows.map((r) => r.at);
}

/** Times of the failures from an address after `since`, oldest first (at most `limit`). */
export async function failureTimesForAddress(
  db: DbOrTx,
  address: string,
  since: Date,
  limit: number,
): Promise<Date[]> {
  const rows = await db.select({ at: loginFailures.at }).from(loginFailures)
    .where(and(eq(loginFailures.address, address), gt(loginFailures.at, since)))
    .orderBy(asc(loginFailures.at)).limit(limit);
  return rows.map((r) => r.at);
}

/** Deletes failures older than `before` (they no longer count); bounded so one call stays cheap. */
export async function pruneLoginFailures(db: DbOrTx, before: Date, limit = 500): Promise<void> {
  await db.delete(loginFailures).where(lt(loginFailures.at, before)).limit(limit);
}
