// Logins and server-side sessions. The cookie carries a random `acs_...` value; the table keeps only its
// keyed hash, a CSRF token, and a sliding expiry (SESSION_TTL_HOURS after the last request).
import {
  deleteExpiredSessions,
  deleteSession,
  findSessionWithUser,
  insertSession,
  touchSession,
} from "../db/sessions.ts";
import { findUserByUsername, updateUser } from "../db/users.ts";
import { recordAudit } from "./audit.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError } from "./errors.ts";
import { dummyPasswordHash, verifyPassword } from "./passwords.ts";
import type { Actor, Principal, Role } from "./principal.ts";
import { reservePasswordAttempt } from "./loginThrottle.ts";
import { keyedHash, newSecret, SECRET_PREFIX, toBase64Url } from "./secrets.ts";
import { isRole } from "./users.ts";
import { normalizeUsername } from "./fields.ts";

export const SESSION_COOKIE = "acs_session";
/** A busy session's expiry is pushed forward at most once per this interval (one write a minute). */
const SESSION_TOUCH_INTERVAL_MS = 60 * 1000;

export type UserPrincipal = Extract<Principal, { kind: "user" }>;

export interface LoginInput {
  /** As typed: normalised here (normalizeUsername). */
  username: string;
  password: string;
  address: string;
  userAgent?: string | null;
  /** The session cookie the browser presented, if any: a successful login replaces that session
   * (rotation) instead of adding another. */
  currentSessionToken?: string | null;
}

export interface LoginResult {
  /** The cookie value (shown once; only its keyed hash is stored). */
  sessionToken: string;
  csrfToken: string;
  expiresAt: Date;
  user: { id: number; username: string; role: Role };
}

const invalidCredentials = () => new AppError(401, "invalid_credentials", "wrong username or password");

/** Checks the password and opens a session. The attempt is recorded and throttled (429 with
 * Retry-After, core/loginThrottle.ts) before the password is even looked at. */
export async function login(deps: CoreDeps, input: LoginInput): Promise<LoginResult> {
  const now = deps.clock.now();
  const username = normalizeUsername(input.username).slice(0, 64);
  const address = input.address.slice(0, 64);
  const attempt = await reservePasswordAttempt(deps, { username, address });
  const user = await findUserByUsername(deps.db, username);

  // Unknown users are checked against a dummy hash so both paths take the same time.
  const ok = await verifyPassword(input.password, user?.passwordHash ?? await dummyPasswordHash());
  if (!user || !ok || !isRole(user.role)) {
    await attempt.failed();
    await deps.db.transaction(async (tx) => {
      await recordAudit(deps, tx, {
        principal: { kind: "system", name: username || "(empty)" },
        action: "auth.login_failed",
        targetType: user ? "user" : undefined,
        targetId: user?.id,
        details: { reason: "invalid_credentials" },
        address,
      });
    });
    throw invalidCredentials();
  }
  if (user.disabled) {
    await attempt.release();
    await recordAudit(deps, deps.db, {
      principal: { kind: "system", name: username },
      action: "auth.login_failed",
      targetType: "user",
      targetId: user.id,
      details: { reason: "account_disabled" },
      address,
    });
    throw new AppError(401, "account_disabled", "this account is disabled");
  }

  const sessionToken = newSecret(SECRET_PREFIX.session);
  const csrfToken = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  const expiresAt = new Date(now.getTime() + deps.settings.SESSION_TTL_HOURS * 3600_000);
  const idHash = await keyedHash(deps.settings.SECRET_KEY, sessionToken);
  const replacedIdHash = isSessionToken(input.currentSessionToken)
    ? await keyedHash(deps.settings.SECRET_KEY, input.currentSessionToken)
    : undefined;
  await deps.db.transaction(async (tx) => {
    await attempt.succeeded(tx);
    // The browser logging in again gives up the session it holds (whoever's it was).
    if (replacedIdHash) await deleteSession(tx, replacedIdHash);
    await insertSession(tx, {
      idHash,
      userId: user.id,
      csrfToken,
      address,
      userAgent: input.userAgent?.slice(0, 255) ?? null,
      createdAt: now,
      lastSeenAt: now,
      expiresAt,
    });
    await updateUser(tx, user.id, { lastLoginAt: now, updatedAt: user.updatedAt });
    await recordAudit(deps, tx, {
      principal: { kind: "user", userId: user.id, username: user.username, role: user.role as Role },
      action: "auth.login",
      targetType: "user",
      targetId: user.id,
      address,
    });
  });
  // Expired sessions are otherwise only removed when presented again; each login sweeps a few.
  await deleteExpiredSessions(deps.db, now);
  return {
    sessionToken,
    csrfToken,
    expiresAt,
    user: { id: user.id, username: user.username, role: user.role },
  };
}

function isSessionToken(value: string | null | undefined): value is string {
  return typeof value === "string" && value.startsWith(`${SECRET_PREFIX.session}_`) && value.length <= 128;
}

export interface ResolvedSession {
  principal: UserPrincipal;
  csrfToken: string;
  expiresAt: Date;
}

/** The user behind a session cookie value, or undefined (unknown, expired, disabled user). Pushes the
 * expiry forward (sliding), writing at most once a minute per session. */
export async function resolveSession(
  deps: CoreDeps,
  sessionToken: string,
): Promise<ResolvedSession | undefined> {
  if (!isSessionToken(sessionToken)) return undefined;
  const idHash = await keyedHash(deps.settings.SECRET_KEY, sessionToken);
  const found = await findSessionWithUser(deps.db, idHash);
  if (!found) return undefined;
  const { session, user } = found;
  const now = deps.clock.now();
  if (session.expiresAt.getTime() <= now.getTime()) {
    await deleteSession(deps.db, idHash);
    return undefined;
  }
  if (user.disabled || !isRole(user.role)) return undefined;
  let expiresAt = session.expiresAt;
  if (now.getTime() - session.lastSeenAt.getTime() >= SESSION_TOUCH_INTERVAL_MS) {
    expiresAt = new Date(now.getTime() + deps.settings.SESSION_TTL_HOURS * 3600_000);
    await touchSession(deps.db, idHash, now, expiresAt);
  }
  return {
    principal: {
      kind: "user",
      userId: user.id,
      username: user.username,
      role: user.role,
      sessionIdHash: idHash,
    },
    csrfToken: session.csrfToken,
    expiresAt,
  };
}

/** Ends a session (logout). */
export async function logout(
  deps: CoreDeps,
  actor: Actor<UserPrincipal>,
): Promise<void> {
  const { principal, address } = actor;
  if (!principal.sessionIdHash) return;
  const sessionIdHash = principal.sessionIdHash;
  await deps.db.transaction(async (tx) => {
    const removed = await deleteSession(tx, sessionIdHash);
    if (removed > 0) {
      await recordAudit(deps, tx, {
        principal,
        action: "auth.logout",
        targetType: "user",
        targetId: principal.userId,
        address,
      });
    }
  });
}
