// Password attempts for throttling that holds across replicas. A row is written before the password
// is checked and stays only when the guess was wrong (core/loginThrottle.ts).
import { and, asc, desc, eq, gt, lt, ne, type SQL } from "drizzle-orm";
import type { DbOrTx } from "./client.ts";
import { loginFailures } from "./schema.ts";

export async function insertLoginFailure(
  db: DbOrTx,
  row: { username: string; address: string; at: Date },
): Promise<number> {
  const [{ id }] = await db.insert(loginFailures).values(row).$returningId();
  return id;
}

export async function deleteLoginFailure(db: DbOrTx, id: number): Promise<void> {
  await db.delete(loginFailures).where(eq(loginFailures.id, id));
}

/** Forgets the failures of one (username, address): a right password from there starts it afresh. */
export async function deleteLoginFailuresOfPair(
  db: DbOrTx,
  username: string,
  address: string,
): Promise<void> {
  await db.delete(loginFailures).where(
    and(eq(loginFailures.username, username), eq(loginFailures.address, address)),
  );
}

interface FailureQuery {
  since: Date;
  limit: number;
  /** The attempt asking (it does not count against itself). */
  excludeId: number;
  newestFirst?: boolean;
}

async function failureTimes(db: DbOrTx, where: SQL, query: FailureQuery): Promise<Date[]> {
  const rows = await db.select({ at: loginFailures.at }).from(loginFailures)
    .where(and(where, gt(loginFailures.at, query.since), ne(loginFailures.id, query.excludeId)))
    .orderBy(query.newestFirst ? desc(loginFailures.at) : asc(loginFailures.at)).limit(query.limit);
  return rows.map((r) => r.at);
}

/** Times of the failures for a username (from any address) after `since`, oldest first. */
export function failureTimesForUsername(
  db: DbOrTx,
  query: FailureQuery & { username: string },
): Promise<Date[]> {
  return failureTimes(db, eq(loginFailures.username, query.username), query);
}

/** Times of the failures from an address (for any username) after `since`, oldest first. */
export function failureTimesForAddress(
  db: DbOrTx,
  query: FailureQuery & { address: string },
): Promise<Date[]> {
  return failureTimes(db, eq(loginFailures.address, query.address), query);
}

/** Times of the failures for a username from one address after `since`, oldest first. */
export function failureTimesForPair(
  db: DbOrTx,
  query: FailureQuery & { username: string; address: string },
): Promise<Date[]> {
  return failureTimes(
    db,
    and(eq(loginFailures.username, query.username), eq(loginFailures.address, query.address))!,
    query,
  );
}

/** Deletes failures older than `before` (they no longer count); bounded so one call stays cheap. */
export async function pruneLoginFailures(db: DbOrTx, before: Date, limit = 500): Promise<void> {
  await db.delete(loginFailures).where(lt(loginFailures.at, before)).limit(limit);
}
