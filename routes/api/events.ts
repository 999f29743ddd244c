// Scaling events, newest first with cursor pagination: fleet-wide, per node, per pool. Viewer.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import {
  EVENT_LIST_DEFAULT_LIMIT,
  EVENT_LIST_MAX_LIMIT,
  listScalingEvents,
} from "../../core/metricsQuery.ts";
import type { AppEnv } from "../env.ts";
import { requireRole } from "../guards.ts";
import { jsonResponse, nodeIdPathParam, routesFor } from "./schemas.ts";
import * as fields from "../../core/fields.ts";

const EventQuery = z.object({
  from: fields.zonedTime.optional().meta({ param: { name: "from", in: "query" } }),
  to: fields.zonedTime.optional().meta({ param: { name: "to", in: "query" } }),
  direction: z.enum(["UP", "DOWN"]).optional().openapi({ param: { name: "direction", in: "query" } }),
  cursor: z.string().min(1).max(1000).optional().openapi({
    param: { name: "cursor", in: "query" },
    description: "next_cursor of the previous page",
  }),
  limit: z.coerce.number().int().min(1).max(EVENT_LIST_MAX_LIMIT).default(EVENT_LIST_DEFAULT_LIMIT).openapi({
    param: { name: "limit", in: "query" },
  }),
});

const nodeId = nodeIdPathParam();
const poolId = fields.poolId.meta({
  param: { name: "pool_id", in: "path" },
  description: "The pool OCID",
});

const EventSchema = z.object({
  id: z.number().int(),
  node_id: z.string(),
  node_name: z.string(),
  instance_pool_id: z.string(),
  pool_display_name: z.string().nullable(),
  ts: z.string().openapi({ format: "date-time" }),
  direction: z.string().openapi({ description: "UP | DOWN" }),
  from_count: z.number().int().nullable(),
  to_count: z.number().int().nullable(),
  reason: z.string().nullable(),
}).openapi("ScalingEvent");

const EventListSchema = z.object({
  items: z.array(EventSchema),
  next_cursor: z.string().nullable(),
}).openapi("ScalingEventList");

const ok = jsonResponse(EventListSchema, "Events, newest first");

const route = routesFor("events");

const fleetRoute = route("get", "/api/v1/events", "viewer", {
  summary: "Scaling events of the whole fleet",
  request: { query: EventQuery },
  responses: { 200: ok, ...errorResponses(401, 403, 422) },
});

const nodeRoute = route("get", "/api/v1/nodes/{id}/events", "viewer", {
  summary: "Scaling events of one node",
  request: { params: z.object({ id: nodeId }), query: EventQuery },
  responses: { 200: ok, ...errorResponses(401, 403, 404, 422) },
});

const poolRoute = route("get", "/api/v1/nodes/{id}/pools/{pool_id}/events", "viewer", {
  summary: "Scaling events of one pool of a node",
  request: { params: z.object({ id: nodeId, pool_id: poolId }), query: EventQuery },
  responses: { 200: ok, ...errorResponses(401, 403, 404, 422) },
});

export function registerEventRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(fleetRoute, async (c) => {
    requireRole(c, "viewer");
    return c.json(await listScalingEvents(deps, {}, c.req.valid("query")), 200);
  });

  app.openapi(nodeRoute, async (c) => {
    requireRole(c, "viewer");
    return c.json(
      await listScalingEvents(deps, { nodeId: c.req.valid("param").id }, c.req.valid("query")),
      200,
    );
  });

  app.openapi(poolRoute, async (c) => {
    requireRole(c, "viewer");
    const { id, pool_id } = c.req.valid("param");
    return c.json(
      await listScalingEvents(deps, { nodeId: id, poolOcid: pool_id }, c.req.valid("query")),
      200,
    );
  });
}
