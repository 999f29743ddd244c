// Metric reads: GET /api/v1/nodes/{id}/metrics/{pool_id} (a pool's series per step bucket) and
// GET /api/v1/metrics/summary (fleet figures), the original API's resource names under /api/v1. Viewer.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import { DEFAULT_HOURS, fleetSummary, MAX_POINTS, poolSeries } from "../../core/metricsQuery.ts";
import type { AppEnv } from "../env.ts";
import { requireRole } from "../guards.ts";
import { isoTime, jsonResponse, nodeIdPathParam, routesFor } from "./schemas.ts";
import * as fields from "../../core/fields.ts";

const SeriesParams = z.object({
  id: nodeIdPathParam(),
  pool_id: fields.poolId.meta({
    param: { name: "pool_id", in: "path" },
    description: "The pool OCID",
    example: "ocid1.instancepool.oc1.iad.aaaa",
  }),
});

const hours = z.coerce.number().int().min(1).optional();

const SeriesQuery = z.object({
  from: fields.zonedTime.optional().meta({
    param: { name: "from", in: "query" },
    description: "Default: to - 24h",
  }),
  to: fields.zonedTime.optional().meta({ param: { name: "to", in: "query" }, description: "Default: now" }),
  hours: hours.openapi({
    param: { name: "hours", in: "query" },
    description: "The original API's window: from = now - hours (not with from/to)",
    example: 24,
  }),
  step: z.string().max(16).optional().openapi({
    param: { name: "step", in: "query" },
    description: `Bucket width: seconds or 30s/5m/1h/1d. At most ${MAX_POINTS} buckets per range; ` +
      "default: the smallest of 1m, 5m, 15m, 30m, 1h, 2h, 6h, 12h, 1d giving at most 300",
    example: "5m",
  }),
});

const Stats = z.object({ avg: z.number(), min: z.number(), max: z.number() });

const SeriesSchema = z.object({
  node_id: z.string(),
  instance_pool_id: z.string(),
  display_name: z.string().nullable(),
  from: isoTime,
  to: isoTime,
  step_s: z.number().int(),
  source: z.enum(["raw", "rollup_5m", "rollup_1h"]).openapi({
    description: "Table the series was read from",
  }),
  points: z.array(z.object({
    ts: isoTime.openapi({ description: "Bucket start (multiples of step since the epoch)" }),
    samples: z.number().int(),
    cpu: Stats,
    memory: Stats,
    instance_count: z.number().int().openapi({
      description: "The last sample's instance count in the bucket",
    }),
  })).openapi({ description: "Buckets with samples only, oldest first" }),
}).openapi("PoolMetricSeries");

const SummaryQuery = z.object({
  hours: z.coerce.number().int().min(1).default(DEFAULT_HOURS).openapi({
    param: { name: "hours", in: "query" },
    example: 24,
  }),
});

const Extreme = z.object({
  value: z.number(),
  ts: isoTime,
  node_id: z.string(),
  node_name: z.string(),
  instance_pool_id: z.string(),
}).nullable();

const SummarySchema = z.object({
  from: isoTime,
  to: isoTime,
  hours: z.number().int(),
  nodes: z.object({
    never_seen: z.number().int(),
    online: z.number().int(),
    offline: z.number().int(),
    decommissioned: z.number().int(),
    total: z.number().int(),
  }).openapi({ description: "Current counts per derived status" }),
  pools: z.number().int().openapi({ description: "Pools of nodes that are not decommissioned" }),
  instances: z.number().int().openapi({ description: "Sum of those pools' last known sizes" }),
  metrics: z.object({
    samples: z.number().int(),
    reporting_nodes: z.number().int(),
    reporting_pools: z.number().int(),
    avg_cpu_util: z.number().nullable(),
    avg_memory_util: z.number().nullable(),
    max_cpu: Extreme,
    max_memory: Extreme,
  }).openapi({ description: "Over every sample in the window" }),
  scaling_events: z.object({ UP: z.number().int(), DOWN: z.number().int(), total: z.number().int() }),
}).openapi("MetricsSummary");

const route = routesFor("metrics");

const seriesRoute = route("get", "/api/v1/nodes/{id}/metrics/{pool_id}", "viewer", {
  summary: "A pool's cpu, memory and instance count per step bucket over a range",
  request: { params: SeriesParams, query: SeriesQuery },
  responses: { 200: jsonResponse(SeriesSchema, "The series"), ...errorResponses(401, 403, 404, 422) },
});

const summaryRoute = route("get", "/api/v1/metrics/summary", "viewer", {
  summary: "Fleet summary over the last hours: averages, extremes, scaling events, node counts",
  request: { query: SummaryQuery },
  responses: { 200: jsonResponse(SummarySchema, "The summary"), ...errorResponses(401, 403, 422) },
});

export function registerMetricsRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(seriesRoute, async (c) => {
    requireRole(c, "viewer");
    const { id, pool_id } = c.req.valid("param");
    return c.json(await poolSeries(deps, id, pool_id, c.req.valid("query")), 200);
  });

  app.openapi(summaryRoute, async (c) => {
    requireRole(c, "viewer");
    return c.json(await fleetSummary(deps, c.req.valid("query").hours), 200);
  });
}
