// Operator accounts: create, list, change role / disabled, set password. Every change is audited in the
// same transaction. The last enabled admin can be neither demoted nor disabled, so the service can
// always be administered without touching the database by hand.
import {
  findUserById,
  findUserByUsername,
  insertUser,
  listUsers as listUserRows,
  lockEnabledAdmins,
  lockUserById,
  updateUser as updateUserRow,
  type UserRow,
} from "../db/users.ts";
import { isDuplicateKey } from "../db/errors.ts";
import { revokeApiKeysOwnedBy } from "../db/apiKeys.ts";
import { deleteOtherSessionsOfUser, deleteSessionsOfUser } from "../db/sessions.ts";
import { recordAudit } from "./audit.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, notFound, validationFailed } from "./errors.ts";
import * as fields from "./fields.ts";
import { reservePasswordAttempt } from "./loginThrottle.ts";
import { hashPassword, verifyPassword } from "./passwords.ts";
import { type Actor, type Principal, type Role, roleAtLeast, ROLES } from "./principal.ts";

export interface UserView {
  id: number;
  username: string;
  role: Role;
  disabled: boolean;
  last_login_at: string | null;
  password_changed_at: string;
  created_at: string;
  updated_at: string;
}

export function toUserView(row: UserRow): UserView {
  return {
    id: row.id,
    username: row.username,
    role: asRole(row.role),
    disabled: row.disabled,
    last_login_at: row.lastLoginAt ? row.lastLoginAt.toISOString() : null,
    password_changed_at: row.passwordChangedAt.toISOString(),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

function asRole(value: string): Role {
  return isRole(value) ? value : "viewer";
}

export interface CreateUserInput {
  username: string;
  password: string;
  role: Role;
}

/** Creates an account under the normalised username (fields.normalizeUsername). 422 naming the field
 * for a bad username, password or role; 409 username_taken when the normalised name is taken. */
export async function createUser(
  deps: CoreDeps,
  actor: Actor,
  input: CreateUserInput,
): Promise<UserView> {
  const username = fields.normalizeUsername(input.username);
  const problems = [
    ...(fields.problemWith(fields.username, input.username)
      ? [{ field: "username", message: fields.problemWith(fields.username, input.username)! }]
      : []),
    ...(fields.problemWith(fields.newPassword, input.password)
      ? [{ field: "password", message: fields.problemWith(fields.newPassword, input.password)! }]
      : []),
    ...(isRole(input.role) ? [] : [{ field: "role", message: `must be one of ${ROLES.join(", ")}` }]),
  ];
  if (problems.length > 0) {
    throw validationFailed(problems.map((p) => `${p.field}: ${p.message}`).join("; "), problems);
  }
  if (await findUserByUsername(deps.db, username)) throw usernameTaken(username);
  const passwordHash = await hashPassword(input.password);
  const now = deps.clock.now();
  try {
    const id = await deps.db.transaction(async (tx) => {
      const newId = await insertUser(tx, {
        username,
        passwordHash,
        role: input.role,
        disabled: false,
        passwordChangedAt: now,
        createdAt: now,
        updatedAt: now,
      });
      await recordAudit(deps, tx, {
        principal: actor.principal,
        action: "user.create",
        targetType: "user",
        targetId: newId,
        details: { username, role: input.role },
        address: actor.address,
      });
      return newId;
    });
    return toUserView((await findUserById(deps.db, id))!);
  } catch (error) {
    // Two creates racing for one name: the unique index decides.
    if (isDuplicateKey(error)) throw usernameTaken(username);
    throw error;
  }
}

function usernameTaken(username: string): AppError {
  return new AppError(409, "username_taken", `username "${username}" is already taken`, [
    { field: "username", message: "already taken" },
  ]);
}

export async function listUsers(deps: Pick<CoreDeps, "db">): Promise<UserView[]> {
  return (await listUserRows(deps.db)).map(toUserView);
}

export async function getUser(deps: Pick<CoreDeps, "db">, id: number): Promise<UserView> {
  const row = await findUserById(deps.db, id);
  if (!row) throw notFound(`user ${id}`);
  return toUserView(row);
}

export async function getUserByUsername(deps: Pick<CoreDeps, "db">, username: string): Promise<UserView> {
  const row = await findUserByUsername(deps.db, fields.normalizeUsername(username));
  if (!row) throw notFound(`user "${username}"`);
  return toUserView(row);
}

export interface UpdateUserInput {
  role?: Role;
  disabled?: boolean;
}

/** Changes role and/or disabled. Disabling ends the user's sessions at once. 409 last_admin when the
 * change would leave no enabled admin. */
export async function updateUser(
  deps: CoreDeps,
  actor: Actor,
  id: number,
  input: UpdateUserInput,
): Promise<UserView> {
  if (input.role !== undefined && !isRole(input.role)) {
    throw validationFailed(`role: must be one of ${ROLES.join(", ")}`, [
      { field: "role", message: `must be one of ${ROLES.join(", ")}` },
    ]);
  }
  await deps.db.transaction(async (tx) => {
    const admins = await lockEnabledAdmins(tx);
    const user = await lockUserById(tx, id);
    if (!user) throw notFound(`user ${id}`);
    const newRole = input.role ?? asRole(user.role);
    const newDisabled = input.disabled ?? user.disabled;
    const wasEnabledAdmin = user.role === "admin" && !user.disabled;
    const staysEnabledAdmin = newRole === "admin" && !newDisabled;
    if (wasEnabledAdmin && !staysEnabledAdmin && admins.filter((a) => a !== id).length === 0) {
      throw new AppError(
        409,
        "last_admin",
        "this is the last enabled admin: make another admin first",
        [{ field: input.disabled ? "disabled" : "role", message: "would leave no enabled admin" }],
      );
    }
    const changes: Record<string, unknown> = {};
    if (newRole !== user.role) changes.role = { from: user.role, to: newRole };
    if (newDisabled !== user.disabled) changes.disabled = { from: user.disabled, to: newDisabled };
    if (Object.keys(changes).length === 0) return;
    await updateUserRow(tx, id, { role: newRole, disabled: newDisabled, updatedAt: deps.clock.now() });
    let sessionsEnded = 0;
    let apiKeysRevoked = 0;
    if (newDisabled) sessionsEnded = await deleteSessionsOfUser(tx, id);
    // Their keys' secrets were shown to them and nobody else: a disabled person keeps no way in, and one
    // moved down keeps no key above their new role (it would still act with the old one).
    if (newDisabled && !user.disabled) apiKeysRevoked = await revokeApiKeysOwnedBy(tx, id, deps.clock.now());
    else if (newRole !== user.role) {
      const above = ROLES.filter((role) => !roleAtLeast(newRole, role));
      apiKeysRevoked = await revokeApiKeysOwnedBy(tx, id, deps.clock.now(), above);
    }
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: newDisabled && !user.disabled ? "user.disable" : "user.update",
      targetType: "user",
      targetId: id,
      details: {
        username: user.username,
        ...changes,
        ...(newDisabled ? { sessions_ended: sessionsEnded } : {}),
        ...(apiKeysRevoked > 0 || newDisabled ? { api_keys_revoked: apiKeysRevoked } : {}),
      },
      address: actor.address,
    });
  });
  return getUser(deps, id);
}

/** Sets a new password (policy checked) and ends the user's sessions, so a stolen session dies with
 * the old password. */
export async function setPassword(
  deps: CoreDeps,
  actor: Actor,
  id: number,
  password: string,
): Promise<UserView> {
  const problem = fields.problemWith(fields.newPassword, password);
  if (problem) throw validationFailed(`password: ${problem}`, [{ field: "password", message: problem }]);
  const existing = await findUserById(deps.db, id);
  if (!existing) throw notFound(`user ${id}`);
  const passwordHash = await hashPassword(password);
  await deps.db.transaction(async (tx) => {
    const user = await lockUserById(tx, id);
    if (!user) throw notFound(`user ${id}`);
    const now = deps.clock.now();
    await updateUserRow(tx, id, { passwordHash, passwordChangedAt: now, updatedAt: now });
    const sessionsEnded = await deleteSessionsOfUser(tx, id);
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "user.password_reset",
      targetType: "user",
      targetId: id,
      details: { username: user.username, sessions_ended: sessionsEnded },
      address: actor.address,
    });
  });
  return getUser(deps, id);
}

/** A user changes their own password: the current one must be right (422 naming current_password
 * otherwise), and guesses of it are throttled like logins (429). Their other sessions end; the one
 * making the change stays. */
export async function changeOwnPassword(
  deps: CoreDeps,
  actor: Actor<Extract<Principal, { kind: "user" }>>,
  input: { current_password: string; new_password: string },
): Promise<void> {
  const { principal, address } = actor;
  const user = await findUserById(deps.db, principal.userId);
  if (!user) throw notFound(`user ${principal.userId}`);
  const attempt = await reservePasswordAttempt(deps, {
    username: user.username,
    address: address ?? "unknown",
  });
  if (!(await verifyPassword(input.current_password, user.passwordHash))) {
    await attempt.failed();
    throw validationFailed("current_password: is wrong", [{
      field: "current_password",
      message: "is wrong",
    }]);
  }
  const problem = fields.problemWith(fields.newPassword, input.new_password);
  if (problem) {
    await attempt.succeeded();
    throw validationFailed(`new_password: ${problem}`, [{ field: "new_password", message: problem }]);
  }
  const passwordHash = await hashPassword(input.new_password);
  await deps.db.transaction(async (tx) => {
    await attempt.succeeded(tx);
    const now = deps.clock.now();
    await updateUserRow(tx, user.id, { passwordHash, passwordChangedAt: now, updatedAt: now });
    const sessionsEnded = await deleteOtherSessionsOfUser(tx, user.id, principal.sessionIdHash);
    await recordAudit(deps, tx, {
      principal,
      action: "user.password_change",
      targetType: "user",
      targetId: user.id,
      details: { username: user.username, other_sessions_ended: sessionsEnded },
      address,
    });
  });
}
