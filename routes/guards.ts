// Authorization checks for route handlers. The auth middleware puts the caller in c.var.principal.
import type { Context } from "hono";
import { forbidden, unauthorized } from "../core/errors.ts";
import { type Principal, type Role, roleAtLeast } from "../core/principal.ts";
import type { AppEnv } from "./env.ts";

export type PersonOrKey = Extract<Principal, { kind: "user" | "api_key" }>;

/** The calling user or API key with at least `role`; 401 when anonymous, 403 when the role is short. */
export function requireRole(c: Context<AppEnv>, role: Role): PersonOrKey {
  const principal = c.get("principal");
  if (!principal) throw unauthorized();
  if (principal.kind !== "user" && principal.kind !== "api_key") {
    throw forbidden("this route is for operators and API keys, not node tokens");
  }
  if (!roleAtLeast(principal.role, role)) throw forbidden(`needs role ${role} (you are ${principal.role})`);
  return principal;
}
