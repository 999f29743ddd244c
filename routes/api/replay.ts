// POST /api/v1/nodes/{id}/config/replay: what a proposed config would have done over the node's recorded
// metrics (core/replay.ts). It writes nothing, so viewers may ask.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import { REPLAY_WINDOW_KEYS, replayConfigInput } from "../../core/replay.ts";
import { errorResponses } from "../errors.ts";
import type { AppEnv } from "../env.ts";
import { requireRole } from "../guards.ts";
import { isoTime, jsonOrYamlBody, jsonResponse, NodeIdParams, routesFor, sentConfig } from "./schemas.ts";

const windowSchema = z.enum(REPLAY_WINDOW_KEYS as [string, ...string[]]).openapi({
  description: "How far back to replay: the last 24 h, 7 d or 30 d (default 7d)",
});

const ReplayBody = z.object({
  config: z.union([z.string(), z.record(z.string(), z.unknown())]).optional().openapi({
    description: "The proposed config.yaml document: an object, or its YAML text. Required.",
  }),
  window: windowSchema.optional(),
}).openapi("ReplayRequest");

const ReplayQuery = z.object({
  window: windowSchema.optional().openapi({
    param: { name: "window", in: "query" },
    description: "The window, for application/yaml bodies (a JSON body carries its own)",
  }),
});

const range = z.object({ min: z.number(), max: z.number() });

const Curve = z.array(z.object({ ts: isoTime, instances: z.number().int().nullable() })).openapi({
  description: "A step curve: `instances` from `ts` until the next point; null where there is no data",
});

const Figures = z.object({
  scale_ups: z.number().int(),
  scale_downs: z.number().int(),
  above_max_s: z.number().openapi({ description: "Seconds with cpu or memory above its maximum" }),
  above_cpu_max_s: z.number(),
  above_memory_max_s: z.number(),
  instance_hours: z.number(),
  peak_instances: z.number().int().nullable(),
}).openapi("ReplayFigures");

const Run = z.object({
  rule: z.object({
    cpu: range,
    memory: range,
    instances: range,
    scheduler_max_instances: z.number().int(),
    schedules: z.array(z.object({ start_time: z.string(), end_time: z.string() })),
  }),
  simulated: Figures,
  recorded_above_max_s: z.number().openapi({
    description: "Seconds the recorded utilization was above this config's maxima",
  }),
  events: z.array(z.object({
    ts: isoTime,
    direction: z.enum(["UP", "DOWN"]),
    from: z.number().int(),
    to: z.number().int(),
    by: z.enum(["autoscaler", "scheduler"]),
    reason: z.string(),
  })).openapi({ description: "Simulated scaling actions, oldest first (at most 200; see events_truncated)" }),
  events_truncated: z.boolean(),
  curve: Curve,
}).openapi("ReplayRun");

const ReplayResultSchema = z.object({
  node_id: z.string(),
  node_name: z.string(),
  window: windowSchema,
  from: isoTime,
  to: isoTime,
  current_version: z.number().int().nullable().openapi({
    description: "The desired version the proposal is compared with (null: the node has none)",
  }),
  model: z.object({
    evaluation_s: z.number(),
    cooldown_s: z.number(),
    scheduler_tick_s: z.number(),
    reading_s: z.number(),
    schedule_time_zone: z.literal("UTC"),
    load: z.string(),
  }),
  pools: z.array(z.object({
    instance_pool_id: z.string(),
    display_name: z.string().nullable(),
    sources: z.array(z.object({ from: isoTime, to: isoTime, step_s: z.number().int() })),
    slots: z.number().int(),
    first_reading: isoTime,
    last_reading: isoTime,
    recorded: z.object({
      scale_ups: z.number().int(),
      scale_downs: z.number().int(),
      instance_hours: z.number(),
      peak_instances: z.number().int().nullable(),
      curve: Curve,
    }),
    proposed: Run,
    current: Run.nullable(),
    verdict: z.string(),
  })),
  skipped: z.array(z.object({ instance_pool_id: z.string(), reason: z.string() })),
  verdict: z.string(),
  reason: z.string().nullable().openapi({
    description: "Why nothing was replayed (no pool of the proposal has metrics in the window)",
  }),
}).openapi("ReplayResult");

const route = routesFor("configs");

const replayRoute = route("post", "/api/v1/nodes/{id}/config/replay", "viewer", {
  summary: "What-if: replay a proposed config over the node's recorded metrics (writes nothing)",
  description: "Replays the original autoscaler's rule (evaluation every 300 s, one instance per step, " +
    "900 s cooldown after a change, schedule windows in UTC, scaling_limits) with the proposed config, and " +
    "with the node's desired config for comparison, over the last `window` of the node's recorded metrics " +
    "(5-minute averages from raw samples or rollups; hourly where only those are kept). Load is modelled " +
    "as recorded utilization x recorded instances, shared by the simulated instances (at most 100% each). " +
    "Body as for `POST /configs`: JSON `{config, window}` or the YAML itself as application/yaml with " +
    "`?window=`. An invalid document is 422 naming the field (config.pools.0.cpu_threshold.max, with line " +
    "and column for YAML); a node without metrics in the window gets 200 with no pools and a `reason`. " +
    "Viewers may replay: nothing is written.",
  request: {
    params: NodeIdParams,
    query: ReplayQuery,
    body: jsonOrYamlBody(ReplayBody),
  },
  responses: {
    200: jsonResponse(ReplayResultSchema, "The replay"),
    ...errorResponses(401, 403, 404, 415, 422),
  },
});

export function registerReplayRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(replayRoute, async (c) => {
    requireRole(c, "viewer");
    const nodeId = c.req.valid("param").id;
    const { config, body } = await sentConfig(c, () => c.req.valid("json") as z.infer<typeof ReplayBody>);
    const window = body?.window ?? c.req.valid("query").window;
    return c.json(await replayConfigInput(deps, { nodeId, config, window }), 200);
  });
}
