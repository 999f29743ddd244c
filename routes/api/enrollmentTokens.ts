// Enrollment tokens (admin): list, create (the token is shown once, in the response), revoke.
// The rules live in core/enrollment.ts; registration consumes the tokens (routes/api/agents.ts).
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import {
  createEnrollmentToken,
  ENROLLMENT_TOKEN_STATES,
  listEnrollmentTokens,
  revokeEnrollmentToken,
} from "../../core/enrollment.ts";
import { errorResponses } from "../errors.ts";
import type { AppEnv } from "../env.ts";
import { requireActor, requireRole } from "../guards.ts";
import { intPathParam, isoTime, jsonBody, jsonResponse, routesFor } from "./schemas.ts";

const TokenSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  prefix: z.string().openapi({ description: "The token's first characters, to recognise it by" }),
  created_by: z.string(),
  created_at: isoTime,
  expires_at: isoTime.nullable(),
  max_uses: z.number().int().nullable(),
  uses: z.number().int(),
  last_used_at: isoTime.nullable(),
  revoked_at: isoTime.nullable(),
  state: z.enum(ENROLLMENT_TOKEN_STATES),
  node_id: z.string().nullable().openapi({
    description: "Set for a re-enrollment token: the one node whose name it registers (single use)",
  }),
}).openapi("EnrollmentToken");

const CreatedSchema = TokenSchema.extend({
  token: z.string().openapi({
    description: "The enrollment token (ace_...). Shown only here; only its keyed hash is stored.",
  }),
}).openapi("EnrollmentTokenCreated");

const CreateBody = z.strictObject({
  name: z.string().trim().min(1).max(128).openapi({ example: "rollout-2026-06" }),
  expires_in_s: z.number().int().min(1).nullable().optional().openapi({
    description: "Lifetime in seconds; absent or null: never expires",
    example: 86_400,
  }),
  max_uses: z.number().int().min(1).nullable().optional().openapi({
    description: "Registrations it allows; absent or null: unlimited",
    example: 10,
  }),
}).openapi("EnrollmentTokenCreate");

const ListQuery = z.object({
  include_revoked: z.enum(["true", "false"]).default("false").openapi({
    param: { name: "include_revoked", in: "query" },
  }),
});

const IdParams = z.object({ id: intPathParam("id", 7) });

const route = routesFor("enrollment-tokens");

const listRoute = route("get", "/api/v1/enrollment-tokens", "admin", {
  summary: "Enrollment tokens, newest first (admin)",
  request: { query: ListQuery },
  responses: {
    200: jsonResponse(z.object({ items: z.array(TokenSchema) }), "Tokens (never the secret)"),
    ...errorResponses(401, 403, 422),
  },
});

const createTokenRoute = route("post", "/api/v1/enrollment-tokens", "admin", {
  summary: "Create an enrollment token; the response is the only time it is shown (admin)",
  request: { body: jsonBody(CreateBody) },
  responses: { 201: jsonResponse(CreatedSchema, "Created"), ...errorResponses(401, 403, 422) },
});

const revokeRoute = route("delete", "/api/v1/enrollment-tokens/{id}", "admin", {
  summary: "Revoke an enrollment token: registrations with it stop at once (admin)",
  request: { params: IdParams },
  responses: {
    200: jsonResponse(TokenSchema, "The revoked token"),
    ...errorResponses(401, 403, 404, 409, 422),
  },
});

export function registerEnrollmentTokenRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(listRoute, async (c) => {
    requireRole(c, "admin");
    const includeRevoked = c.req.valid("query").include_revoked === "true";
    return c.json({ items: await listEnrollmentTokens(deps, { includeRevoked }) }, 200);
  });

  app.openapi(createTokenRoute, async (c) => {
    const { token, view } = await createEnrollmentToken(deps, requireActor(c, "admin"), c.req.valid("json"));
    return c.json({ ...view, token }, 201);
  });

  app.openapi(revokeRoute, async (c) => {
    const view = await revokeEnrollmentToken(deps, requireActor(c, "admin"), c.req.valid("param").id);
    return c.json(view, 200);
  });
}
