// Operators' side of configuration (the rules live in core/configs.ts): versions, one version, set a new one
// (JSON object, YAML string, or an application/yaml body), diff, rollback, desired-vs-applied status.
// Viewer reads; operator writes. GET /api/v1/nodes/{id}/config (singular) is the agent's pull, elsewhere.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  changeNodeConfig,
  configStatus,
  diffConfigVersions,
  getConfigVersion,
  listConfigVersions,
  MAX_COMMENT_LENGTH,
  rollbackNodeConfig,
} from "../../core/configs.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { validationFailed } from "../../core/errors.ts";
import { errorResponses } from "../errors.ts";
import { CONFIG_STATES } from "../../core/nodeStatus.ts";
import type { Services } from "../../core/services.ts";
import type { AppEnv } from "../env.ts";
import { requireActor, requireRole } from "../guards.ts";
import {
  CONFIG_HASH_DESCRIPTION,
  CONFIG_YAML_DESCRIPTION,
  intPathParam,
  isoTime,
  jsonBody,
  jsonOrYamlBody,
  jsonResponse,
  NodeIdParams,
  routesFor,
  sentConfig,
} from "./schemas.ts";

const versionNumber = (name: string) => intPathParam(name, 3);

const VersionParams = NodeIdParams.extend({ version: versionNumber("version") });

const ConfigVersionSchema = z.object({
  version: z.number().int(),
  hash: z.string().openapi({ description: CONFIG_HASH_DESCRIPTION }),
  body: z.record(z.string(), z.unknown()).openapi({ description: "The config.yaml document as JSON" }),
  yaml: z.string().openapi({ description: CONFIG_YAML_DESCRIPTION }),
  source: z.enum(["agent", "operator", "rollback"]),
  author: z.string(),
  comment: z.string().nullable(),
  rolled_back_from: z.number().int().nullable(),
  created_at: isoTime,
}).openapi("ConfigVersion");

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({
    param: { name: "limit", in: "query" },
  }),
  before_version: z.coerce.number().int().min(1).optional().openapi({
    param: { name: "before_version", in: "query" },
    description: "next_before_version of the previous page",
  }),
});

const VersionListSchema = z.object({
  items: z.array(ConfigVersionSchema).openapi({ description: "Newest first" }),
  next_before_version: z.number().int().nullable(),
}).openapi("ConfigVersionList");

const comment = z.string().max(MAX_COMMENT_LENGTH).optional();

const SetConfigBody = z.strictObject({
  config: z.union([z.string(), z.record(z.string(), z.unknown())]).optional().openapi({
    description: "The config.yaml document: an object, or its YAML text. Required.",
  }),
  comment,
}).openapi("SetConfigRequest");

const SetConfigQuery = z.object({
  comment: comment.openapi({
    param: { name: "comment", in: "query" },
    description: "The comment, for application/yaml bodies (a JSON body carries its own)",
  }),
});

const DiffQuery = z.object({
  from: z.coerce.number().int().min(1).openapi({ param: { name: "from", in: "query" }, example: 1 }),
  to: z.coerce.number().int().min(1).openapi({ param: { name: "to", in: "query" }, example: 2 }),
});

const DiffSchema = z.object({
  from: ConfigVersionSchema,
  to: ConfigVersionSchema,
  diff: z.string().openapi({
    description: "Unified diff of the two versions' YAML texts, comments included",
  }),
}).openapi("ConfigDiff");

const RollbackBody = z.object({ comment }).openapi("RollbackRequest");

const StatusSchema = z.object({
  desired: z.object({ version: z.number().int(), hash: z.string() }).nullable(),
  applied_hash: z.string().nullable(),
  state: z.enum(CONFIG_STATES),
  error: z.string().nullable().openapi({ description: "The agent's error when state is failed" }),
  acked_at: isoTime.nullable(),
}).openapi("ConfigStatus");

const versionResponse = (description: string) => jsonResponse(ConfigVersionSchema, description);

const route = routesFor("configs");

const listRoute = route("get", "/api/v1/nodes/{id}/configs", "viewer", {
  summary: "A node's config versions, newest first",
  request: { params: NodeIdParams, query: ListQuery },
  responses: { 200: jsonResponse(VersionListSchema, "Versions"), ...errorResponses(401, 403, 404, 422) },
});

const diffRoute = route("get", "/api/v1/nodes/{id}/configs/diff", "viewer", {
  summary: "Unified diff between two versions",
  request: { params: NodeIdParams, query: DiffQuery },
  responses: { 200: jsonResponse(DiffSchema, "The diff"), ...errorResponses(401, 403, 404, 422) },
});

const getRoute = route("get", "/api/v1/nodes/{id}/configs/{version}", "viewer", {
  summary: "One config version",
  request: { params: VersionParams },
  responses: { 200: versionResponse("The version"), ...errorResponses(401, 403, 404, 422) },
});

const createConfigRoute = route("post", "/api/v1/nodes/{id}/configs", "operator", {
  summary: "Set the node's desired config as a new version (operator); waiting agents get it at once",
  description: "JSON `{config: object | YAML string, comment?}`, or the YAML itself with Content-Type " +
    "application/yaml (comment in ?comment=). YAML text is kept as written (comments, key order; line " +
    "ends normalized to LF with a final newline) and is what agents write to config.yaml; an object is " +
    "stored with a YAML rendering of it. Invalid documents are 422 naming the field " +
    "(config.pools.0.cpu_threshold.min), with `line` and `column` in the YAML text when YAML was sent, " +
    "and write nothing. Unchanged input returns the desired version (200) instead of creating one (201): " +
    "YAML text identical to the desired text, or an object meaning the same as the desired body (so " +
    "automation that sends JSON keeps the operator's comments). YAML that differs only in comments or " +
    "layout is a new version with a new hash, delivered to the agent and acked like any other.",
  request: {
    params: NodeIdParams,
    query: SetConfigQuery,
    body: jsonOrYamlBody(SetConfigBody),
  },
  responses: {
    201: versionResponse("Created"),
    200: versionResponse("Unchanged: that body is already the desired version"),
    ...errorResponses(401, 403, 404, 409, 415, 422),
  },
});

const rollbackRoute = route("post", "/api/v1/nodes/{id}/configs/{version}/rollback", "operator", {
  summary: "Roll back: a new version carrying the body of {version} (operator)",
  request: { params: VersionParams, body: jsonBody(RollbackBody, false) },
  responses: {
    201: versionResponse("The new version"),
    200: versionResponse("Unchanged: that body is already the desired version"),
    ...errorResponses(401, 403, 404, 409, 422),
  },
});

const statusRoute = route("get", "/api/v1/nodes/{id}/config-status", "viewer", {
  summary: "Desired vs applied config, and the agent's failure if any",
  request: { params: NodeIdParams },
  responses: { 200: jsonResponse(StatusSchema, "Status"), ...errorResponses(401, 403, 404, 422) },
});

export function registerConfigRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps, services: Services): void {
  app.openapi(listRoute, async (c) => {
    requireRole(c, "viewer");
    const { limit, before_version } = c.req.valid("query");
    const page = await listConfigVersions(deps, c.req.valid("param").id, { limit, before_version });
    return c.json({ items: page.versions, next_before_version: page.next_before_version }, 200);
  });

  // Registered before /configs/{version} so "diff" is never read as a version number.
  app.openapi(diffRoute, async (c) => {
    requireRole(c, "viewer");
    const { from, to } = c.req.valid("query");
    return c.json(await diffConfigVersions(deps, c.req.valid("param").id, from, to), 200);
  });

  app.openapi(getRoute, async (c) => {
    requireRole(c, "viewer");
    const { id, version } = c.req.valid("param");
    return c.json(await getConfigVersion(deps, id, version), 200);
  });

  app.openapi(createConfigRoute, async (c) => {
    const actor = requireActor(c, "operator");
    const nodeId = c.req.valid("param").id;
    const { config, body } = await sentConfig(c, () => c.req.valid("json") as z.infer<typeof SetConfigBody>);
    const note = body?.comment ?? c.req.valid("query").comment;
    if (config === undefined || config === "") {
      throw validationFailed("invalid body: config: required", [
        {
          field: "config",
          message: "required: the config.yaml document (object or YAML text)",
          location: "body",
        },
      ]);
    }
    const { view, created } = await changeNodeConfig(deps, services, actor, nodeId, {
      config,
      comment: note,
    });
    return created ? c.json(view, 201) : c.json(view, 200);
  });

  app.openapi(rollbackRoute, async (c) => {
    const { id, version } = c.req.valid("param");
    const { view, created } = await rollbackNodeConfig(deps, services, requireActor(c, "operator"), id, {
      to_version: version,
      comment: c.req.valid("json").comment,
    });
    return created ? c.json(view, 201) : c.json(view, 200);
  });

  app.openapi(statusRoute, async (c) => {
    requireRole(c, "viewer");
    return c.json(await configStatus(deps, c.req.valid("param").id), 200);
  });
}
