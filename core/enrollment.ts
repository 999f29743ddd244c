// Enrollment tokens: created by admins (or the CLI), presented by an autoscaler at registration.
// Only the keyed hash is stored; the token itself is shown once, at creation.
import { findNodeByIdOrName } from "../db/nodeAuth.ts";
import {
  type EnrollmentTokenRow,
  findEnrollmentTokenByHash,
  findEnrollmentTokenById,
  insertEnrollmentToken,
  listEnrollmentTokenRows,
  markEnrollmentTokenRevoked,
  takeEnrollmentTokenUse,
} from "../db/enrollment.ts";
import type { DbOrTx } from "../db/client.ts";
import { recordAudit } from "./audit.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, type ErrorDetail, notFound, validationFailed } from "./errors.ts";
import { type Actor, actorOf } from "./principal.ts";
import { keyedHash, newSecret, SECRET_PREFIX, secretShaped } from "./secrets.ts";

export const ENROLLMENT_TOKEN_STATES = ["active", "expired", "revoked", "exhausted"] as const;
export type EnrollmentTokenState = typeof ENROLLMENT_TOKEN_STATES[number];

/** What a token looks like to operators: never the hash, only a prefix to recognise it by. */
export interface EnrollmentTokenView {
  id: number;
  name: string;
  prefix: string;
  created_by: string;
  created_at: string;
  expires_at: string | null;
  max_uses: number | null;
  uses: number;
  last_used_at: string | null;
  revoked_at: string | null;
  state: EnrollmentTokenState;
  /** Set for a re-enrollment token: the one node whose name it may register again. */
  node_id: string | null;
}

/** Characters of the token kept for recognition ("ace_" plus 8 random characters). */
const PREFIX_LENGTH = 12;
const MAX_EXPIRES_IN_S = 10 * 365 * 86_400;
const MAX_USES_LIMIT = 1_000_000;

export function enrollmentTokenState(row: EnrollmentTokenRow, now: Date): EnrollmentTokenState {
  if (row.revokedAt) return "revoked";
  if (row.expiresAt && row.expiresAt.getTime() <= now.getTime()) return "expired";
  if (row.maxUses !== null && row.uses >= row.maxUses) return "exhausted";
  return "active";
}

export function enrollmentTokenView(row: EnrollmentTokenRow, now: Date): EnrollmentTokenView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    max_uses: row.maxUses,
    uses: row.uses,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    state: enrollmentTokenState(row, now),
    node_id: row.nodeId ?? null,
  };
}

export interface CreateEnrollmentTokenInput {
  name: string;
  /** Lifetime in seconds; null or absent: never expires. */
  expires_in_s?: number | null;
  /** Registrations it allows; null or absent: unlimited. */
  max_uses?: number | null;
}

export async function createEnrollmentToken(
  deps: CoreDeps,
  actor: Actor,
  input: CreateEnrollmentTokenInput,
): Promise<{ token: string; view: EnrollmentTokenView }> {
  const name = input.name.trim();
  const problems: ErrorDetail[] = [];
  if (name.length < 1 || name.length > 128) problems.push({ field: "name", message: "1 to 128 characters" });
  const expiresInS = input.expires_in_s ?? null;
  if (
    expiresInS !== null && (!Number.isInteger(expiresInS) || expiresInS < 1 || expiresInS > MAX_EXPIRES_IN_S)
  ) {
    problems.push({ field: "expires_in_s", message: `a whole number of seconds, 1 to ${MAX_EXPIRES_IN_S}` });
  }
  const maxUses = input.max_uses ?? null;
  if (maxUses !== null && (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > MAX_USES_LIMIT)) {
    problems.push({ field: "max_uses", message: `a whole number, 1 to ${MAX_USES_LIMIT}` });
  }
  if (problems.length > 0) {
    throw validationFailed(`invalid enrollment token: ${problems.map((p) => p.field).join(", ")}`, problems);
  }

  const token = newSecret(SECRET_PREFIX.enrollmentToken);
  const tokenHash = await keyedHash(deps.settings.SECRET_KEY, token);
  const now = deps.clock.now();
  const row = {
    name,
    prefix: token.slice(0, PREFIX_LENGTH),
    tokenHash,
    createdBy: actorOf(actor.principal).actorName,
    createdAt: now,
    expiresAt: expiresInS === null ? null : new Date(now.getTime() + expiresInS * 1000),
    maxUses,
    uses: 0,
    lastUsedAt: null,
    revokedAt: null,
    nodeId: null,
  };
  const id = await deps.db.transaction(async (tx) => {
    const id = await insertEnrollmentToken(tx, row);
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "enrollment_token.create",
      targetType: "enrollment_token",
      targetId: id,
      details: {
        name,
        prefix: row.prefix,
        expires_at: row.expiresAt?.toISOString() ?? null,
        max_uses: maxUses,
      },
      address: actor.address,
    });
    return id;
  });
  return { token, view: enrollmentTokenView({ id, ...row }, now) };
}

export async function listEnrollmentTokens(
  deps: CoreDeps,
  options: { includeRevoked?: boolean } = {},
): Promise<EnrollmentTokenView[]> {
  const rows = await listEnrollmentTokenRows(deps.db, { includeRevoked: options.includeRevoked ?? false });
  const now = deps.clock.now();
  return rows.map((row) => enrollmentTokenView(row, now));
}

/** Revokes a token: 404 when unknown, 409 when already revoked. */
export async function revokeEnrollmentToken(
  deps: CoreDeps,
  actor: Actor,
  id: number,
): Promise<EnrollmentTokenView> {
  const now = deps.clock.now();
  return await deps.db.transaction(async (tx) => {
    const row = await findEnrollmentTokenById(tx, id);
    if (!row) throw notFound(`enrollment token ${id}`);
    if (!await markEnrollmentTokenRevoked(tx, id, now)) {
      throw new AppError(409, "already_revoked", `enrollment token ${id} is already revoked`);
    }
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "enrollment_token.revoke",
      targetType: "enrollment_token",
      targetId: id,
      details: { name: row.name, prefix: row.prefix },
      address: actor.address,
    });
    return enrollmentTokenView({ ...row, revokedAt: now }, now);
  });
}

const REFUSALS: Record<Exclude<EnrollmentTokenState, "active">, { code: string; message: string }> = {
  revoked: { code: "enrollment_token_revoked", message: "the enrollment token was revoked" },
  expired: { code: "enrollment_token_expired", message: "the enrollment token has expired" },
  exhausted: { code: "enrollment_token_exhausted", message: "the enrollment token has no uses left" },
};

/** The token's row while it can be used, without taking a use: the cheap credential check register runs
 * before it reads anything else of the request. 401 with enrollment_token_invalid / _expired / _revoked /
 * _exhausted otherwise. A string that is not shaped like a token is refused before it is hashed. */
export async function findUsableEnrollmentToken(
  deps: Pick<CoreDeps, "settings" | "clock">,
  /** Where to read it: a transaction, the database, or a reader of its own (by keyed hash). */
  db: DbOrTx | ((tokenHash: string) => Promise<EnrollmentTokenRow | undefined>),
  token: unknown,
): Promise<EnrollmentTokenRow> {
  // Made only when thrown: an Error captures a stack, and every registration passes here.
  const invalid = () => new AppError(401, "enrollment_token_invalid", "unknown enrollment token");
  if (!secretShaped(SECRET_PREFIX.enrollmentToken, token)) throw invalid();
  const hash = await keyedHash(deps.settings.SECRET_KEY, token);
  const row = typeof db === "function" ? await db(hash) : await findEnrollmentTokenByHash(db, hash);
  if (!row) throw invalid();
  const state = enrollmentTokenState(row, deps.clock.now());
  if (state !== "active") throw new AppError(401, REFUSALS[state].code, REFUSALS[state].message);
  return row;
}

/** Checks the token and counts one use, inside the registration's transaction (a rollback gives the use
 * back). 401 with enrollment_token_invalid / _expired / _revoked / _exhausted when it cannot be used. */
export async function consumeEnrollmentToken(
  deps: Pick<CoreDeps, "settings" | "clock">,
  tx: DbOrTx,
  token: string,
): Promise<EnrollmentTokenRow> {
  return await takeEnrollmentUse(deps, tx, await findUsableEnrollmentToken(deps, tx, token));
}

/** Counts one use of a token found usable (findUsableEnrollmentToken), inside the registration's
 * transaction: one conditional UPDATE, so the token row is locked from here to the commit only (a fleet
 * enrolling with one token takes turns on that row; registration does it last). 401 as above when a
 * concurrent registration took the last use, or the token was revoked or expired meanwhile. */
export async function takeEnrollmentUse(
  deps: Pick<CoreDeps, "clock">,
  tx: DbOrTx,
  row: EnrollmentTokenRow,
): Promise<EnrollmentTokenRow> {
  const now = deps.clock.now();
  if (await takeEnrollmentTokenUse(tx, row.id, now)) return { ...row, uses: row.uses + 1, lastUsedAt: now };
  // Refused: read it again (a concurrent registration may have taken the last use) to say why.
  const current = await findEnrollmentTokenById(tx, row.id) ?? row;
  const state = enrollmentTokenState(current, now);
  const refusal = REFUSALS[state === "active" ? "exhausted" : state];
  throw new AppError(401, refusal.code, refusal.message);
}

// -------------------------------------------------------------------------------- re-enrollment tokens

/** How long a re-enrollment token lives unless the operator says otherwise. */
export const REENROLLMENT_DEFAULT_EXPIRES_S = 86_400;
export const REENROLLMENT_MAX_EXPIRES_S = 30 * 86_400;

export interface ReenrollmentTokenCreated {
  token: string;
  node: { id: string; name: string };
  view: EnrollmentTokenView;
}

/** An operator's explicit act that lets a node's agent register its name again (it lost its token, or
 * the server's SECRET_KEY changed): a single-use enrollment token bound to that node, shown once.
 * `node` is the node's id or its name. 404 unknown node, 409 node_decommissioned. Audited on the node. */
export async function createReenrollmentToken(
  deps: CoreDeps,
  actor: Actor,
  input: { node: string; expires_in_s?: number | null },
): Promise<ReenrollmentTokenCreated> {
  const expiresInS = input.expires_in_s ?? REENROLLMENT_DEFAULT_EXPIRES_S;
  if (!Number.isInteger(expiresInS) || expiresInS < 60 || expiresInS > REENROLLMENT_MAX_EXPIRES_S) {
    throw validationFailed("invalid re-enrollment token: expires_in_s", [{
      field: "expires_in_s",
      message: `a whole number of seconds, 60 to ${REENROLLMENT_MAX_EXPIRES_S}`,
    }]);
  }
  const token = newSecret(SECRET_PREFIX.enrollmentToken);
  const tokenHash = await keyedHash(deps.settings.SECRET_KEY, token);
  const now = deps.clock.now();
  return await deps.db.transaction(async (tx) => {
    const node = await findNodeByIdOrName(tx, input.node.trim());
    if (!node) throw notFound(`node ${input.node}`);
    if (node.decommissionedAt) {
      throw new AppError(
        409,
        "node_decommissioned",
        `node ${node.name} is decommissioned; an operator must delete it before the name can register again`,
      );
    }
    const row = {
      name: `re-enroll ${node.name}`.slice(0, 128),
      prefix: token.slice(0, PREFIX_LENGTH),
      tokenHash,
      createdBy: actorOf(actor.principal).actorName,
      createdAt: now,
      expiresAt: new Date(now.getTime() + expiresInS * 1000),
      maxUses: 1,
      uses: 0,
      lastUsedAt: null,
      revokedAt: null,
      nodeId: node.id,
    };
    const id = await insertEnrollmentToken(tx, row);
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "node.reenrollment_token.create",
      targetType: "node",
      targetId: node.id,
      details: {
        name: node.name,
        enrollment_token_id: id,
        prefix: row.prefix,
        expires_at: row.expiresAt.toISOString(),
      },
      address: actor.address,
    });
    return { token, node: { id: node.id, name: node.name }, view: enrollmentTokenView({ id, ...row }, now) };
  });
}
