// Operators' view of nodes: GET /api/v1/nodes (filters, keyset pagination), GET /api/v1/nodes/{id},
// PATCH (display name, labels), POST .../decommission, DELETE (the node and all its data).
// Roles: viewer reads, operator changes and decommissions, admin deletes (irreversible: it drops history).
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import {
  decommissionNode,
  deleteNode,
  getNode,
  listNodes,
  NODE_LIST_DEFAULT_LIMIT,
  NODE_LIST_MAX_LIMIT,
  NODE_SORT_KEYS,
  nodeUpdateSchema,
  updateNode,
} from "../../core/nodes.ts";
import { CONFIG_STATES, NODE_STATUSES } from "../../core/nodeStatus.ts";
import type { AppEnv } from "../env.ts";
import { requireActor, requireRole } from "../guards.ts";
import { isoTime, jsonBody, jsonResponse, NodeIdParams, routesFor } from "./schemas.ts";
import {
  createReenrollmentToken,
  REENROLLMENT_DEFAULT_EXPIRES_S,
  REENROLLMENT_MAX_EXPIRES_S,
} from "../../core/enrollment.ts";

/** A query parameter that may repeat (`?label=a:b&label=c:d`): always an array after parsing. */
export function repeatable<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (value) => (value === undefined || Array.isArray(value) ? value : [value]),
    z.array(item).max(50).optional(),
  );
}

export const NodeSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  display_name: z.string().nullable(),
  hostname: z.string(),
  region: z.string().nullable(),
  agent_version: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  status: z.enum(NODE_STATUSES).openapi({ description: "Derived at read time from the last heartbeat" }),
  last_heartbeat_at: isoTime.nullable(),
  registered_at: isoTime,
  last_address: z.string().nullable().openapi({
    description: "Where the node's last registration or heartbeat came from (the connection, or the " +
      "trusted proxy's X-Forwarded-For)",
  }),
  reported_status: z.string().nullable(),
  config: z.object({
    state: z.string().openapi({ description: "pending | in_sync | failed | drifted" }),
    desired_hash: z.string().nullable(),
    desired_version: z.number().int().nullable(),
    applied_hash: z.string().nullable(),
    error: z.string().nullable(),
  }),
  pool_count: z.number().int(),
}).openapi("NodeSummary");

const PoolSchema = z.object({
  instance_pool_id: z.string().openapi({ description: "The pool OCID" }),
  display_name: z.string().nullable(),
  compartment_id: z.string().nullable(),
  region: z.string().nullable(),
  current_size: z.number().int().nullable(),
  min_size: z.number().int().nullable(),
  max_size: z.number().int().nullable(),
  last_cpu_util: z.number().nullable(),
  last_memory_util: z.number().nullable(),
  last_metrics_at: isoTime.nullable(),
}).openapi("NodePool");

const NodeDetailSchema = NodeSummarySchema.extend({
  claimed_address: z.string().nullable().openapi({
    description: "The address the agent reports for itself (unverified). last_address is the address its " +
      "requests come from (the proxy's X-Forwarded-For with TRUST_PROXY)",
  }),
  uptime_s: z.number().int().nullable(),
  token_issued_at: isoTime.nullable(),
  decommissioned_at: isoTime.nullable(),
  config_acked_at: isoTime.nullable(),
  pools: z.array(PoolSchema),
  figures: z.object({
    instances: z.number().int().openapi({ description: "Sum of the pools' last known sizes" }),
    avg_cpu_util: z.number().nullable().openapi({ description: "Mean of the pools' last cpu %" }),
    avg_memory_util: z.number().nullable(),
    max_cpu_util: z.number().nullable(),
    max_memory_util: z.number().nullable(),
    last_metrics_at: isoTime.nullable(),
    scaling_events_24h: z.object({ UP: z.number().int(), DOWN: z.number().int() }),
  }),
}).openapi("NodeDetail");

const NodeListQuery = z.object({
  status: repeatable(z.enum(NODE_STATUSES)).openapi({
    param: { name: "status", in: "query", style: "form", explode: true },
    description: "Repeatable; any of them matches",
  }),
  region: z.string().min(1).max(64).optional().openapi({ param: { name: "region", in: "query" } }),
  label: repeatable(z.string().min(1).max(320)).openapi({
    param: { name: "label", in: "query", style: "form", explode: true },
    description: "`key:value` (value equal) or `key` (has the key); repeatable, all must match",
    example: ["env:prod"],
  }),
  q: z.string().min(1).max(128).optional().openapi({
    param: { name: "q", in: "query" },
    description: "Substring of name, hostname or display name",
  }),
  config_state: repeatable(z.enum(CONFIG_STATES)).openapi({
    param: { name: "config_state", in: "query", style: "form", explode: true },
  }),
  sort: z.enum(NODE_SORT_KEYS).default("name").openapi({
    param: { name: "sort", in: "query" },
    description:
      "Status is not a sort key: it changes with the clock, which would break cursors; filter by it",
  }),
  order: z.enum(["asc", "desc"]).optional().openapi({
    param: { name: "order", in: "query" },
    description: "Default asc for name, desc (newest first) for times",
  }),
  cursor: z.string().min(1).max(1000).optional().openapi({
    param: { name: "cursor", in: "query" },
    description: "next_cursor of the previous page (with the same sort and order)",
  }),
  limit: z.coerce.number().int().min(1).max(NODE_LIST_MAX_LIMIT).default(NODE_LIST_DEFAULT_LIMIT).openapi({
    param: { name: "limit", in: "query" },
  }),
});

const NodeListSchema = z.object({
  items: z.array(NodeSummarySchema),
  next_cursor: z.string().nullable().openapi({
    description: "Pass as cursor for the next page; null at the end",
  }),
}).openapi("NodeList");

const NodePatchSchema = z.strictObject({
  display_name: nodeUpdateSchema.shape.display_name.meta({ description: "null clears it" }),
  labels: nodeUpdateSchema.shape.labels.meta({ description: "Replaces all labels" }),
}).refine((patch) => patch.display_name !== undefined || patch.labels !== undefined, {
  message: "give display_name and/or labels",
}).openapi("NodePatch");

const DeletedSchema = z.object({
  id: z.string(),
  name: z.string(),
  deleted: z.object({
    nodes: z.number().int(),
    instance_pools: z.number().int(),
    metric_samples: z.number().int(),
    metric_rollups_5m: z.number().int(),
    metric_rollups_1h: z.number().int(),
    scaling_events: z.number().int(),
    config_versions: z.number().int(),
  }).openapi({ description: "Rows removed per table" }),
}).openapi("NodeDeleted");

const route = routesFor("nodes");

const listRoute = route("get", "/api/v1/nodes", "viewer", {
  summary: "List nodes with filters, newest-first or by name, cursor-paginated",
  request: { query: NodeListQuery },
  responses: { 200: jsonResponse(NodeListSchema, "One page of nodes"), ...errorResponses(401, 403, 422) },
});

const getRoute = route("get", "/api/v1/nodes/{id}", "viewer", {
  summary: "A node with its pools and latest figures",
  request: { params: NodeIdParams },
  responses: { 200: jsonResponse(NodeDetailSchema, "The node"), ...errorResponses(401, 403, 404, 422) },
});

const patchRoute = route("patch", "/api/v1/nodes/{id}", "operator", {
  summary: "Change a node's display name and/or labels (operator)",
  request: { params: NodeIdParams, body: jsonBody(NodePatchSchema) },
  responses: {
    200: jsonResponse(NodeDetailSchema, "The node after the change"),
    ...errorResponses(401, 403, 404, 422),
  },
});

const decommissionRoute = route("post", "/api/v1/nodes/{id}/decommission", "operator", {
  summary: "Decommission a node: its token stops working at once (operator)",
  request: { params: NodeIdParams },
  responses: {
    200: jsonResponse(NodeDetailSchema, "The decommissioned node"),
    ...errorResponses(401, 403, 404, 409),
  },
});

const deleteRoute = route("delete", "/api/v1/nodes/{id}", "admin", {
  summary: "Delete a node and all its data: pools, samples, rollups, events, config versions (admin)",
  description: "Irreversible, so admin only; decommission is the operator's way to retire a node. " +
    "The audit log keeps the node's history.",
  request: { params: NodeIdParams },
  responses: { 200: jsonResponse(DeletedSchema, "What was deleted"), ...errorResponses(401, 403, 404) },
});

const ReenrollmentBody = z.object({
  expires_in_s: z.number().int().min(60).max(REENROLLMENT_MAX_EXPIRES_S).nullish().openapi({
    description: `Lifetime in seconds; default ${REENROLLMENT_DEFAULT_EXPIRES_S} (a day)`,
    example: 3600,
  }),
}).openapi("ReenrollmentTokenCreate");

const ReenrollmentCreated = z.object({
  token: z.string().openapi({
    description: "ace_...: shown only here. The node's agent registers with it as its enrollment token " +
      "(once), under the node's name, and receives a new node token.",
  }),
  enrollment_token_id: z.number().int(),
  node_id: z.string(),
  node_name: z.string(),
  expires_at: isoTime,
}).openapi("ReenrollmentTokenCreated");

const reenrollmentRoute = route("post", "/api/v1/nodes/{id}/reenrollment-token", "operator", {
  summary: "A one-time token that lets this node's agent register its name again (operator)",
  description: "For an agent that lost its node token (or after a SECRET_KEY change): registering a " +
    "known name with a plain enrollment token is refused (409 node_name_taken), so that no agent can take " +
    "another's identity. This token, single-use and bound to the node, is the operator's proof. " +
    "`{id}` is the node's id or name. Audited; Cache-Control: no-store.",
  request: { params: NodeIdParams, body: jsonBody(ReenrollmentBody, false) },
  responses: {
    201: jsonResponse(ReenrollmentCreated, "Created; the token is shown only in this response"),
    ...errorResponses(401, 403, 404, 409, 422),
  },
});

export function registerNodeRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(listRoute, async (c) => {
    requireRole(c, "viewer");
    const query = c.req.valid("query");
    return c.json(await listNodes(deps, query), 200);
  });

  app.openapi(getRoute, async (c) => {
    requireRole(c, "viewer");
    return c.json(await getNode(deps, c.req.valid("param").id), 200);
  });

  app.openapi(patchRoute, async (c) => {
    const { id } = c.req.valid("param");
    const node = await updateNode(deps, requireActor(c, "operator"), id, c.req.valid("json"));
    return c.json(node, 200);
  });

  app.openapi(decommissionRoute, async (c) => {
    const node = await decommissionNode(deps, requireActor(c, "operator"), c.req.valid("param").id);
    return c.json(node, 200);
  });

  app.openapi(reenrollmentRoute, async (c) => {
    const created = await createReenrollmentToken(deps, requireActor(c, "operator"), {
      node: c.req.valid("param").id,
      expires_in_s: c.req.valid("json")?.expires_in_s,
    });
    c.header("Cache-Control", "no-store");
    return c.json({
      token: created.token,
      enrollment_token_id: created.view.id,
      node_id: created.node.id,
      node_name: created.node.name,
      expires_at: created.view.expires_at!,
    }, 201);
  });

  app.openapi(deleteRoute, async (c) => {
    const result = await deleteNode(deps, requireActor(c, "admin"), c.req.valid("param").id);
    return c.json(result, 200);
  });
}
