// Pieces of the route definitions that every resource shares: the route maker, and parts of request
// and response schemas.
import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import * as fields from "../../core/fields.ts";
import { access, type AccessLevel } from "../guards.ts";

/**
 * createRoute() for the operations of one OpenAPI tag: `const route = routesFor("users")`, then
 * `route("get", "/api/v1/users/{id}", "admin", { summary, request, responses })`. The access level
 * documents who may call (security, x-min-role) and guards the route (access() in routes/guards.ts).
 */
export function routesFor(tag: string) {
  return <
    const M extends RouteConfig["method"],
    const P extends string,
    const L extends AccessLevel,
    const S extends Omit<RouteConfig, "method" | "path" | "tags" | "security" | "middleware">,
  >(method: M, path: P, level: L, spec: S) =>
    createRoute({ method, path, tags: [tag], ...spec, ...access(level) });
}

/** A timestamp in responses (ISO 8601, UTC). */
export const isoTime = z.string().openapi({ format: "date-time", example: "2026-06-01T12:00:00.000Z" });

/** A positive INT path parameter (an auto-increment id or a version number). */
export const intPathParam = (name: string, example = 1) =>
  z.coerce.number().int().min(1).max(2_147_483_647).openapi({ param: { name, in: "path" }, example });

/** `{ id }` in the path, as an INT id. */
export const IntIdParams = z.object({ id: intPathParam("id") });

/** A createRoute response entry with a JSON body. */
export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** A createRoute request body in JSON (required unless `required` is false). */
export const jsonBody = <T extends z.ZodType>(schema: T, required = true) => ({
  required,
  content: { "application/json": { schema } },
});

/** A createRoute request body in JSON, or config.yaml text as application/yaml or text/yaml (sentConfig). */
export const jsonOrYamlBody = <T extends z.ZodType>(schema: T) => {
  const yamlText = { schema: z.string().openapi({ description: "config.yaml text" }) };
  return {
    required: true,
    content: { "application/json": { schema }, "application/yaml": yamlText, "text/yaml": yamlText },
  };
};

/** `{id}` in the path, as a node id (the example where the route documents one). */
export const nodeIdPathParam = (example?: string) =>
  fields.nodeId.meta({ param: { name: "id", in: "path" }, ...(example ? { example } : {}) });

/** `{ id }` in the path, as a node id. */
export const NodeIdParams = z.object({ id: nodeIdPathParam("0b9e8f2c-5d1a-4c3e-9f7a-2b6d8e1c4a57") });

/** What a config hash is, for every schema that carries one. */
export const CONFIG_HASH_DESCRIPTION =
  "sha256 hex of the version's config.yaml text (`yaml`), so a comment edit " +
  "is a new hash and `sha256sum config.yaml` on the agent matches it (versions stored before texts were " +
  "kept: sha256 of the canonical JSON of body).";

/** What the yaml field of a config version is. */
export const CONFIG_YAML_DESCRIPTION = "config.yaml exactly as the operator (or the agent at registration) " +
  "wrote it, comments and key order kept; a YAML rendering of body when the version was sent as JSON.";

const YAML_TYPES = ["application/yaml", "text/yaml"];

/** A body sent as YAML text (application/yaml or text/yaml) rather than JSON. */
const isYamlBody = (contentType: string | undefined) =>
  YAML_TYPES.includes((contentType ?? "").split(";")[0].trim().toLowerCase());

/** The config a jsonOrYamlBody request sent: the YAML text itself, or `config` of the JSON body (which the
 * JSON validator checked: only the json target is validated). `body`: the JSON body, when it was JSON. */
export async function sentConfig<B extends { config?: unknown }>(
  c: Context,
  jsonBody: () => B,
): Promise<{ config: unknown; body?: B }> {
  if (isYamlBody(c.req.header("content-type"))) return { config: await c.req.text() };
  const body = jsonBody();
  return { config: body.config, body };
}
