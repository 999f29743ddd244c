// API keys for automation: `ack_...` shown once at creation, stored as a keyed hash, with a role, an
// optional expiry and a revocation time.
import {
  type ApiKeyWithOwner,
  findApiKeyByHash,
  findApiKeyById,
  findApiKeyWithOwnerById,
  insertApiKey,
  listApiKeys as listApiKeyRows,
  revokeApiKey as revokeApiKeyRow,
  touchApiKeyLastUsed,
} from "../db/apiKeys.ts";
import { isDuplicateKey } from "../db/errors.ts";
import { recordAudit } from "./audit.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, forbidden, notFound, validationFailed } from "./errors.ts";
import { type Actor, actorOf, type Principal, type Role, roleAtLeast, ROLES } from "./principal.ts";
import { keyedHash, newSecret, SECRET_PREFIX } from "./secrets.ts";
import { isRole } from "./users.ts";

export type ApiKeyPrincipal = Extract<Principal, { kind: "api_key" }>;

/** last_used_at is written at most once per this interval per key. */
const LAST_USED_WRITE_INTERVAL_MS = 60 * 1000;
/** Characters of the key kept in clear (prefix column) so people can tell keys apart. */
const DISPLAY_PREFIX_LENGTH = 12;
export const API_KEY_MAX_DAYS = 3650;

export interface ApiKeyView {
  id: number;
  name: string;
  prefix: string;
  role: Role;
  created_by: string;
  /** The person answerable for the key (see README: disabling them revokes it); null for system keys. */
  owner: { user_id: number; username: string; disabled: boolean } | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export function toApiKeyView({ key: row, owner }: ApiKeyWithOwner): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    role: isRole(row.role) ? row.role : "viewer",
    created_by: row.createdBy,
    owner: owner ? { user_id: owner.id, username: owner.username, disabled: owner.disabled } : null,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

export interface CreateApiKeyInput {
  name: string;
  role: Role;
  expires_in_days?: number | null;
}

/** Creates a key. The creator may not hand out a role above their own (403 role_too_high). */
export async function createApiKey(
  deps: CoreDeps,
  actor: Actor,
  input: CreateApiKeyInput,
): Promise<{ key: string; apiKey: ApiKeyView }> {
  const problems = [];
  const name = input.name.trim();
  if (name.length < 1 || name.length > 128) {
    problems.push({ field: "name", message: "must be 1..128 characters" });
  }
  if (!isRole(input.role)) problems.push({ field: "role", message: `must be one of ${ROLES.join(", ")}` });
  const days = input.expires_in_days;
  if (
    days !== undefined && days !== null && (!Number.isInteger(days) || days < 1 || days > API_KEY_MAX_DAYS)
  ) {
    problems.push({ field: "expires_in_days", message: `must be an integer 1..${API_KEY_MAX_DAYS}` });
  }
  if (problems.length > 0) {
    throw validationFailed(problems.map((p) => `${p.field}: ${p.message}`).join("; "), problems);
  }
  const caller = actor.principal;
  if ((caller.kind === "user" || caller.kind === "api_key") && !roleAtLeast(caller.role, input.role)) {
    throw new AppError(
      403,
      "role_too_high",
      `you (${caller.role}) cannot create a key with role ${input.role}`,
      [
        { field: "role", message: "above your own role" },
      ],
    );
  }
  const now = deps.clock.now();
  const expiresAt = days ? new Date(now.getTime() + days * 86_400_000) : null;
  const ownerUserId = await ownerOf(deps, caller);
  for (let attempt = 1;; attempt++) {
    const key = newSecret(SECRET_PREFIX.apiKey);
    const keyHash = await keyedHash(deps.settings.SECRET_KEY, key);
    try {
      const id = await deps.db.transaction(async (tx) => {
        const newId = await insertApiKey(tx, {
          name,
          prefix: key.slice(0, DISPLAY_PREFIX_LENGTH),
          keyHash,
          role: input.role,
          createdBy: actorOf(caller).actorName,
          ownerUserId,
          createdAt: now,
          expiresAt,
        });
        await recordAudit(deps, tx, {
          principal: caller,
          action: "api_key.create",
          targetType: "api_key",
          targetId: newId,
          details: { name, role: input.role, expires_at: expiresAt?.toISOString() ?? null },
          address: actor.address,
        });
        return newId;
      });
      return { key, apiKey: toApiKeyView((await findApiKeyWithOwnerById(deps.db, id))!) };
    } catch (error) {
      // A clash of the 8 random characters in the display prefix: draw another key.
      if (isDuplicateKey(error) && attempt < 3) continue;
      throw error;
    }
  }
}

/** Who answers for a key `actor` creates: a person themselves, a key's own owner, nobody for the system. */
async function ownerOf(deps: CoreDeps, actor: Principal): Promise<number | null> {
  if (actor.kind === "user") return actor.userId;
  if (actor.kind === "api_key") return (await findApiKeyById(deps.db, actor.keyId))?.ownerUserId ?? null;
  return null;
}

export async function listApiKeys(deps: Pick<CoreDeps, "db">): Promise<ApiKeyView[]> {
  return (await listApiKeyRows(deps.db)).map(toApiKeyView);
}

/** Revokes a key (idempotent: revoking a revoked key changes nothing and records nothing). */
export async function revokeApiKey(
  deps: CoreDeps,
  actor: Actor,
  id: number,
): Promise<ApiKeyView> {
  const caller = actor.principal;
  await deps.db.transaction(async (tx) => {
    const row = await findApiKeyById(tx, id);
    if (!row) throw notFound(`API key ${id}`);
    if (row.revokedAt) return;
    if (
      (caller.kind === "user" || caller.kind === "api_key") && isRole(row.role) &&
      !roleAtLeast(caller.role, row.role)
    ) {
      throw forbidden(`you (${caller.role}) cannot revoke a key with role ${row.role}`);
    }
    await revokeApiKeyRow(tx, id, deps.clock.now());
    await recordAudit(deps, tx, {
      principal: caller,
      action: "api_key.revoke",
      targetType: "api_key",
      targetId: id,
      details: { name: row.name, prefix: row.prefix },
      address: actor.address,
    });
  });
  return toApiKeyView((await findApiKeyWithOwnerById(deps.db, id))!);
}

/** The principal of a presented `ack_...` key. 401 invalid_api_key / api_key_revoked / api_key_expired. */
export async function resolveApiKey(deps: CoreDeps, key: string): Promise<ApiKeyPrincipal> {
  const invalid = () => new AppError(401, "invalid_api_key", "unknown API key");
  if (!key.startsWith(`${SECRET_PREFIX.apiKey}_`) || key.length > 128) throw invalid();
  const keyHash = await keyedHash(deps.settings.SECRET_KEY, key);
  const row = await findApiKeyByHash(deps.db, keyHash);
  if (!row || !isRole(row.role)) throw invalid();
  const now = deps.clock.now();
  if (row.revokedAt) throw new AppError(401, "api_key_revoked", `API key ${row.prefix}… was revoked`);
  if (row.expiresAt && row.expiresAt.getTime() <= now.getTime()) {
    throw new AppError(
      401,
      "api_key_expired",
      `API key ${row.prefix}… expired at ${row.expiresAt.toISOString()}`,
    );
  }
  const staleBefore = new Date(now.getTime() - LAST_USED_WRITE_INTERVAL_MS);
  if (!row.lastUsedAt || row.lastUsedAt < staleBefore) {
    await touchApiKeyLastUsed(deps.db, row.id, now, staleBefore);
  }
  return { kind: "api_key", keyId: row.id, name: row.name, role: row.role };
}
