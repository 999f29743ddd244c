// API keys (admin only): list (never the secret), create (the `ack_...` key is shown once), revoke.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { API_KEY_MAX_DAYS, createApiKey, listApiKeys, revokeApiKey } from "../../core/apiKeys.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import { ROLES } from "../../core/principal.ts";
import type { AppEnv } from "../env.ts";
import { requireActor, requireRole } from "../guards.ts";
import { IntIdParams, isoTime, jsonBody, jsonResponse, routesFor } from "./schemas.ts";

export const ApiKeySchema = z.object({
  id: z.number().int(),
  name: z.string(),
  prefix: z.string().openapi({ description: "First characters of the key, to tell keys apart" }),
  role: z.enum(ROLES),
  created_by: z.string().openapi({ description: "Who created it: a username, key:<name> or a system name" }),
  owner: z.object({ user_id: z.number().int(), username: z.string(), disabled: z.boolean() }).nullable()
    .openapi({
      description: "The person answerable for the key: its creator, or the owner of the key that created " +
        "it; null for keys made by the system. Disabling the owner revokes the key.",
    }),
  created_at: isoTime,
  expires_at: isoTime.nullable(),
  last_used_at: isoTime.nullable().openapi({ description: "Updated at most once a minute" }),
  revoked_at: isoTime.nullable(),
}).openapi("ApiKey");

const CreateApiKeyBody = z.strictObject({
  name: z.string().trim().min(1).max(128),
  role: z.enum(ROLES),
  expires_in_days: z.number().int().min(1).max(API_KEY_MAX_DAYS).nullable().optional(),
}).openapi("CreateApiKey");

const CreatedApiKey = z.object({
  key: z.string().openapi({
    description: "The secret (ack_...): shown only in this response",
    example: "ack_...",
  }),
  api_key: ApiKeySchema,
}).openapi("CreatedApiKey");

const route = routesFor("api keys");

const listRoute = route("get", "/api/v1/api-keys", "admin", {
  summary: "List API keys (without secrets)",
  responses: {
    200: jsonResponse(z.object({ api_keys: z.array(ApiKeySchema) }), "Keys"),
    ...errorResponses(401, 403),
  },
});

const createKeyRoute = route("post", "/api/v1/api-keys", "admin", {
  summary: "Create an API key; the secret is in this response only",
  request: { body: jsonBody(CreateApiKeyBody) },
  responses: { 201: jsonResponse(CreatedApiKey, "Created"), ...errorResponses(401, 403, 422) },
});

const revokeRoute = route("delete", "/api/v1/api-keys/{id}", "admin", {
  summary: "Revoke an API key (idempotent; the row stays for the record)",
  request: { params: IntIdParams },
  responses: { 200: jsonResponse(ApiKeySchema, "Revoked"), ...errorResponses(401, 403, 404, 422) },
});

export function registerApiKeyRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(listRoute, async (c) => {
    requireRole(c, "admin");
    return c.json({ api_keys: await listApiKeys(deps) }, 200);
  });

  app.openapi(createKeyRoute, async (c) => {
    const created = await createApiKey(deps, requireActor(c, "admin"), c.req.valid("json"));
    c.header("Cache-Control", "no-store");
    return c.json({ key: created.key, api_key: created.apiKey }, 201);
  });

  app.openapi(revokeRoute, async (c) => {
    return c.json(await revokeApiKey(deps, requireActor(c, "admin"), c.req.valid("param").id), 200);
  });
}
