// Authorization for route handlers. The auth middleware (routes/auth.ts) puts the caller in
// c.var.principal; it never refuses anonymous requests, the routes do.
//
// ROLE MATRIX CONVENTION (every route under /api must follow it; tests/role_matrix_test.ts checks it):
//   Give each route its level: route(method, path, level, {...}) (routesFor in routes/api/schemas.ts), or
//   spread `...access(level)` into a createRoute({...}) of its own; level one of
//     "public"   anyone (login)
//     "enrollment" an enrollment token in the body (or the node's own token): register. The route checks
//                it before it validates anything else; without one, anyone (API keys too) gets 401
//     "node"     a node token; access() refuses requests without an `acn_` token (401) before
//                validation, the handler then checks it is this node's with core/nodeAuth.ts
//     "viewer"   read-only operators and keys
//     "operator" viewer + change configs and nodes
//     "admin"    everything, plus users, API keys, enrollment tokens
//   access() writes `x-min-role` into the route's OpenAPI operation (the one place the matrix lives:
//   `deno run -A scripts/role_matrix.ts` prints it as a Markdown table), sets `security` for the docs,
//   and for viewer/operator/admin adds a middleware that answers 401 (anonymous) / 403 (role too low)
//   BEFORE body/query validation. In the handler, take the typed caller with `requireRole(c, level)`
//   (same level) for audit and authorization inside services.
//   The matrix test calls every route with placeholder ids/bodies anonymously and with viewer, operator
//   and admin API keys, and expects 401 / 403 / "neither" according to x-min-role.
import type { Context, MiddlewareHandler } from "hono";
import { forbidden, unauthorized } from "../core/errors.ts";
import { presentedToken } from "../core/nodeAuth.ts";
import { SECRET_PREFIX, secretShaped } from "../core/secrets.ts";
import type { NodeAuthCache } from "../core/nodeAuthCache.ts";
import {
  type Actor,
  type AgentCaller,
  type NodePrincipal,
  type Principal,
  type Role,
  roleAtLeast,
  ROLES,
} from "../core/principal.ts";
import type { AppEnv } from "./env.ts";

export type PersonOrKey = Extract<Principal, { kind: "user" | "api_key" }>;

export const ACCESS_LEVELS = ["public", "enrollment", "node", ...ROLES] as const;
export type AccessLevel = typeof ACCESS_LEVELS[number];

/** The OpenAPI extension naming a route's minimum access level. */
export const MIN_ROLE_EXTENSION = "x-min-role";

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

/** requireRole as the services' first argument after deps: who acts, and from which address. */
export function requireActor(c: Context<AppEnv>, role: Role): Actor<PersonOrKey> {
  return { principal: requireRole(c, role), address: c.get("clientAddress") };
}

/** Who calls register or heartbeat: the connecting address and the node token presented, which the
 * service checks itself. */
export function agentCaller(c: Context<AppEnv>): AgentCaller {
  return {
    address: c.get("clientAddress"),
    token: presentedToken(c.req.header("authorization"), c.req.header("x-api-key")),
  };
}

/** Checks the presented token is the node's of the path's `{id}` (from memory, core/nodeAuthCache.ts) and
 * puts that node in c.var.principal. Runs before the request validators, so a caller without this node's
 * token learns nothing more (and a large metric batch is not validated for it). */
export function nodeTokenRequired(nodeAuth: Pick<NodeAuthCache, "principal">): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = presentedToken(c.req.header("authorization"), c.req.header("x-api-key"));
    c.set("principal", await nodeAuth.principal(c.req.param("id") ?? "", token));
    await next();
  };
}

/** The node nodeTokenRequired let in, as the services' actor. */
export function requireNodeActor(c: Context<AppEnv>): Actor<NodePrincipal> {
  const principal = c.get("principal");
  if (principal?.kind !== "node") throw new Error("node token middleware did not run");
  return { principal, address: c.get("clientAddress") };
}

/** Middleware form of requireRole, run before validation so anonymous callers get 401, not 422. */
export function roleGuard(role: Role): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    requireRole(c, role);
    await next();
  };
}

/** Cheap first gate of node routes (no database): a node token must at least be presented, so an
 * anonymous caller gets 401 rather than validation details. The handler verifies the token. */
export const nodeTokenPresented: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = presentedToken(c.req.header("authorization"), c.req.header("x-api-key"));
  if (!token) throw unauthorized("node token required (Authorization: Bearer <node token>)");
  if (!secretShaped(SECRET_PREFIX.nodeToken, token)) throw unauthorized("not a node token");
  await next();
};

const PERSON_OR_KEY_SECURITY: Record<string, string[]>[] = [{ apiKey: [] }, { session: [] }];

/** Spread into createRoute({...}): declares (x-min-role, security) and enforces the access level. */
export function access<const L extends AccessLevel>(level: L): {
  "x-min-role": L;
  security: Record<string, string[]>[];
  middleware: MiddlewareHandler<AppEnv>[];
} {
  // enrollment: the token is in the body, so the route's own middleware checks it (routes/api/agents.ts).
  if (level === "public" || level === "enrollment") {
    return { [MIN_ROLE_EXTENSION]: level, security: [], middleware: [] };
  }
  if (level === "node") {
    return { [MIN_ROLE_EXTENSION]: level, security: [{ nodeToken: [] }], middleware: [nodeTokenPresented] };
  }
  return {
    [MIN_ROLE_EXTENSION]: level,
    security: PERSON_OR_KEY_SECURITY,
    middleware: [roleGuard(level as Role)],
  };
}
