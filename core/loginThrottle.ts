// Throttling of password guesses (logins, and the current password of a password change), shared by
// the JSON API and the console's login page.
//
// Every attempt is recorded BEFORE its password is looked at, and the limits are then counted over
// the recorded rows, so concurrent guesses see each other: whichever request checks last sees every
// attempt that was let through, so no more than the limit are ever checked, however many arrive at
// once (a burst may be refused entirely; it never gets more). A refused attempt's row is removed (it
// cost nothing); a right password removes it too; a wrong one stays as the failure.
//
// Who is slowed down, and who is never locked out:
//   - per (username, address): PAIR_LIMIT failures in the window, then 429 until the oldest ages out.
//     A stranger guessing an operator's password locks out only their own address for that name.
//   - per address: ADDRESS_LIMIT failures in the window (any names), then 429 (password spraying).
//   - per username, from everywhere: past USER_CEILING failures in the window (a distributed guess),
//     addresses the user has not logged in from recently share one attempt per SLOWDOWN_INTERVAL_MS.
//     That is a slowdown, not a lockout: the operator's own familiar addresses (a successful login in
//     the last FAMILIAR_FOR_MS) are exempt, so a botnet cannot keep them out.
import {
  deleteLoginFailure,
  deleteLoginFailuresOfPair,
  failureTimesForAddress,
  failureTimesForPair,
  failureTimesForUsername,
  insertLoginFailure,
  pruneLoginFailures,
} from "../db/loginFailures.ts";
import { hasLoggedInFrom } from "../db/audit.ts";
import type { DbOrTx } from "../db/client.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError } from "./errors.ts";

/** Failures count over this window. */
export const LOGIN_WINDOW_MS = 15 * 60 * 1000;
/** Failures allowed per (username, address) in the window. */
export const PAIR_LIMIT = 5;
/** Failures allowed per address in the window, whatever the usernames. */
export const ADDRESS_LIMIT = 20;
/** Failures per username from all addresses in the window before unfamiliar addresses are slowed. */
export const USER_CEILING = 20;
/** Past the ceiling, unfamiliar addresses share one attempt per this interval for that username. */
export const SLOWDOWN_INTERVAL_MS = 30 * 1000;
/** An address is familiar for a user this long after a successful login from it. */
export const FAMILIAR_FOR_MS = 30 * 24 * 3600 * 1000;
/** Failures older than this are deleted opportunistically. */
const KEEP_MS = 24 * 3600 * 1000;

export interface AttemptKey {
  /** The normalised username the guess is for (see normalizeUsername). */
  username: string;
  address: string;
}

export interface AttemptReservation {
  /** The password was right: the attempt does not count, and this (username, address) starts afresh. */
  succeeded(db?: DbOrTx): Promise<void>;
  /** The password was right but the attempt is refused for another reason: it does not count. */
  release(db?: DbOrTx): Promise<void>;
  /** The password was wrong: the recorded attempt stays as a failure. */
  failed(): Promise<void>;
}

export const tooManyAttempts = (retryAfterS: number) =>
  new AppError(
    429,
    "too_many_attempts",
    `too many failed password attempts; retry in ${retryAfterS} s`,
    undefined,
    { "Retry-After": String(retryAfterS) },
  );

/** Records a password attempt, then refuses it (429 with Retry-After, the record removed) when a limit
 * is reached. Call before the password is checked, then tell the reservation how it went. */
export async function reservePasswordAttempt(deps: CoreDeps, key: AttemptKey): Promise<AttemptReservation> {
  const now = deps.clock.now();
  const username = key.username.slice(0, 64);
  const address = key.address.slice(0, 64);
  const id = await insertLoginFailure(deps.db, { username, address, at: now });
  const retryAt = await refusedUntil(deps, id, username, address, now);
  if (retryAt > now.getTime()) {
    await deleteLoginFailure(deps.db, id);
    const retryAfterS = Math.max(1, Math.ceil((retryAt - now.getTime()) / 1000));
    deps.logger.warn("password attempt throttled", { username, address, retry_after_s: retryAfterS });
    throw tooManyAttempts(retryAfterS);
  }
  return {
    succeeded: async (db = deps.db) => {
      await deleteLoginFailuresOfPair(db, username, address);
    },
    release: async (db = deps.db) => {
      await deleteLoginFailure(db, id);
    },
    failed: async () => {
      await pruneLoginFailures(deps.db, new Date(now.getTime() - KEEP_MS));
    },
  };
}

/** When the attempt `id` may be checked (a time in the past: now). Counts every other recorded
 * attempt, those still being checked included. */
async function refusedUntil(
  deps: CoreDeps,
  id: number,
  username: string,
  address: string,
  now: Date,
): Promise<number> {
  const since = new Date(now.getTime() - LOGIN_WINDOW_MS);
  const [byPair, byAddress, byUsername] = await Promise.all([
    failureTimesForPair(deps.db, { username, address, since, limit: PAIR_LIMIT, excludeId: id }),
    failureTimesForAddress(deps.db, { address, since, limit: ADDRESS_LIMIT, excludeId: id }),
    failureTimesForUsername(deps.db, { username, since, limit: USER_CEILING, excludeId: id }),
  ]);
  // Oldest-first lists cut at the limit: when full, the first entry is the one whose expiry reopens
  // a slot.
  let until = Math.max(
    byPair.length >= PAIR_LIMIT ? byPair[0].getTime() + LOGIN_WINDOW_MS : 0,
    byAddress.length >= ADDRESS_LIMIT ? byAddress[0].getTime() + LOGIN_WINDOW_MS : 0,
  );
  if (until <= now.getTime() && byUsername.length >= USER_CEILING) {
    const familiarSince = new Date(now.getTime() - FAMILIAR_FOR_MS);
    if (!(await hasLoggedInFrom(deps.db, username, address, familiarSince))) {
      const [latest] = await failureTimesForUsername(deps.db, {
        username,
        since,
        limit: 1,
        excludeId: id,
        newestFirst: true,
      });
      if (latest) until = Math.max(until, latest.getTime() + SLOWDOWN_INTERVAL_MS);
    }
  }
  return until;
}
