// First run: while no user exists, the console's setup page creates the first admin. It asks for a
// one-time code that `serve` prints in its log at start, so a stranger who reaches the port first cannot
// take the service. Codes live in the database (only their keyed hash), so with several replicas behind a
// load balancer the code any of them printed works on all; creating the first admin deletes every code.
import { countUsers, deleteAllSetupCodes, insertSetupCode, lockValidSetupCodes } from "../db/setup.ts";
import { insertUser } from "../db/users.ts";
import { recordAudit } from "./audit.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, type ErrorDetail, validationFailed } from "./errors.ts";
import * as fields from "./fields.ts";
import { hashPassword } from "./passwords.ts";
import { constantTimeEqual, keyedHash } from "./secrets.ts";

/** A printed code stays valid this long (restart the service for a fresh one). */
export const SETUP_CODE_TTL_MS = 24 * 3600_000;
// No 0/O, 1/I/L: the code is read from a log and typed by hand.
const ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

export async function isSetupNeeded(deps: Pick<CoreDeps, "db">): Promise<boolean> {
  return (await countUsers(deps.db)) === 0;
}

/** Normalizes what a person typed: case, spaces and dashes do not matter. */
export function normalizeSetupCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, "");
}

function newSetupCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const chars = Array.from(bytes, (b) => ALPHABET[b % ALPHABET.length]).join("");
  return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8)}`;
}

/** When no user exists: stores a fresh code (hashed) and returns it for the log; otherwise undefined. */
export async function issueSetupCode(deps: CoreDeps): Promise<string | undefined> {
  if (!(await isSetupNeeded(deps))) return undefined;
  const code = newSetupCode();
  const now = deps.clock.now();
  await insertSetupCode(deps.db, {
    codeHash: await keyedHash(deps.settings.SECRET_KEY, `setup:${normalizeSetupCode(code)}`),
    createdAt: now,
    expiresAt: new Date(now.getTime() + SETUP_CODE_TTL_MS),
  });
  return code;
}

export interface SetupInput {
  code: string;
  username: string;
  password: string;
  password_confirm: string;
  /** Where the request came from (the audit log). */
  address?: string | null;
}

/** Creates the first admin. 422 naming the field for a bad code, username or password; 409
 * setup_done when a user already exists (someone finished first). */
export async function completeSetup(
  deps: CoreDeps,
  input: SetupInput,
): Promise<{ id: number; username: string }> {
  const problems: ErrorDetail[] = [];
  const usernameIssue = fields.problemWith(fields.username, input.username);
  if (usernameIssue) problems.push({ field: "username", message: usernameIssue });
  const passwordIssue = fields.problemWith(fields.newPassword, input.password);
  if (passwordIssue) problems.push({ field: "password", message: passwordIssue });
  else if (input.password !== input.password_confirm) {
    problems.push({ field: "password_confirm", message: "does not match the password" });
  }
  if (!normalizeSetupCode(input.code)) {
    problems.push({ field: "code", message: "enter the setup code from the service's log" });
  }
  if (problems.length > 0) throw validationFailed("setup refused: check the fields", problems);

  const passwordHash = await hashPassword(input.password);
  const presented = await keyedHash(deps.settings.SECRET_KEY, `setup:${normalizeSetupCode(input.code)}`);
  const now = deps.clock.now();
  return await deps.db.transaction(async (tx) => {
    // Locking the codes serializes concurrent setups: the second sees none left.
    const valid = await lockValidSetupCodes(tx, now);
    if ((await countUsers(tx)) > 0) {
      throw new AppError(409, "setup_done", "the first admin already exists; log in instead");
    }
    if (!valid.some((hash) => constantTimeEqual(hash, presented))) {
      throw validationFailed("wrong or expired setup code", [{
        field: "code",
        message: 'wrong or expired code; copy it from the log line "setup code" (restart for a new one)',
      }]);
    }
    const id = await insertUser(tx, {
      username: input.username,
      passwordHash,
      role: "admin",
      disabled: false,
      passwordChangedAt: now,
      createdAt: now,
      updatedAt: now,
    });
    await deleteAllSetupCodes(tx);
    await recordAudit(deps, tx, {
      principal: { kind: "system", name: "first-run setup" },
      action: "user.create",
      targetType: "user",
      targetId: id,
      details: { username: input.username, role: "admin", via: "setup" },
      address: input.address,
    });
    return { id, username: input.username };
  });
}
