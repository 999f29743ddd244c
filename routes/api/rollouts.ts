// Fleet-wide config changes and staged rollouts (core/rollouts.ts): preview a change, start a rollout, list
// and read rollouts, pause, resume, abort. Viewers watch; operators preview, start and steer. The rules of
// the settings (canary, wave size, bake, storm limit) are core/fields.ts's: a bad value is a 422 naming it.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import * as fields from "../../core/fields.ts";
import { NODE_STATUSES } from "../../core/nodeStatus.ts";
import {
  abortRollout,
  createRollout,
  getRollout,
  listRollouts,
  pauseRollout,
  planChange,
  resumeRollout,
  ROLLOUT_NODE_STATES,
  ROLLOUT_STATUSES,
} from "../../core/rollouts.ts";
import type { Services } from "../../core/services.ts";
import {
  CHANGE_REPLAY_DEFAULT_NODES,
  CHANGE_REPLAY_MAX_NODES,
  replayChange,
} from "../../core/rolloutReplay.ts";
import { REPLAY_WINDOW_KEYS } from "../../core/replay.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses } from "../errors.ts";
import { requireActor, requireRole } from "../guards.ts";
import { IntIdParams, isoTime, jsonBody, jsonResponse, routesFor } from "./schemas.ts";

// Strict: a misspelt criterion ("name", "wavesize") is refused, never dropped, since a dropped criterion widens
// the change to more nodes or pools than asked.
const SelectorSchema = z.strictObject({
  ids: z.array(z.string()).optional().openapi({ description: "Node ids" }),
  names: z.array(z.string()).optional().openapi({ description: "Node names" }),
  labels: z.array(z.string()).optional().openapi({
    description: "`key:value` (exact value) or `key` (has the key); all must match",
    example: ["env:staging"],
  }),
  region: z.string().optional().openapi({ example: "eu-frankfurt-1" }),
  status: z.array(z.enum(NODE_STATUSES)).optional(),
}).openapi("NodeSelector", {
  description: "Which nodes: every given criterion must match (at least one). Decommissioned nodes are " +
    "listed and left out.",
});

const PoolSelectorSchema = z.strictObject({
  region: z.string().optional(),
  compartment_id: z.string().optional(),
  instance_pool_id: z.string().optional(),
}).openapi("PoolSelector", {
  description: "Which pools of each node's config the patch applies to (every given field must equal the " +
    "pool's; none: every pool)",
});

const specFields = {
  selector: SelectorSchema,
  pool_selector: PoolSelectorSchema.optional(),
  patch: z.record(z.string(), z.unknown()).optional().openapi({
    description: "A JSON merge patch (RFC 7386) applied to every matching pool; null removes a key. The " +
      "YAML is edited in place: comments and layout elsewhere are kept. Give this or `document`.",
    example: { cpu_threshold: { max: 70 } },
  }),
  document: z.string().optional().openapi({ description: "A whole config.yaml for every selected node" }),
};

const settingsFields = {
  canary: z.union([z.number(), z.string()]).default(1).openapi({
    description: `The first wave: ${fields.ROLLOUT_CANARY_RULE}`,
    example: 2,
  }),
  wave_size: z.number().default(10).openapi({
    description: `Nodes per wave after the canary (1..${fields.ROLLOUT_WAVE_SIZE_MAX})`,
  }),
  bake_s: z.number().default(300).openapi({
    description: `How long each node of a wave must stay healthy after applying before the next wave ` +
      `(${fields.ROLLOUT_BAKE_MIN_S}..${fields.ROLLOUT_BAKE_MAX_S} s)`,
  }),
  max_scaling_events: z.number().default(5).openapi({
    description: "More scaling events than this on a node during its bake is a storm: the rollout pauses",
  }),
};

const PreviewBody = z.strictObject({
  ...specFields,
  canary: settingsFields.canary.optional(),
  wave_size: z.number().optional(),
  bake_s: z.number().optional(),
  max_scaling_events: z.number().optional(),
}).openapi("ChangePreviewRequest");

const CreateBody = z.strictObject({ ...specFields, ...settingsFields, comment: z.string().optional() })
  .openapi("RolloutCreateRequest");

const DetailSchema = z.object({
  field: z.string().optional(),
  message: z.string(),
  line: z.number().int().optional(),
  column: z.number().int().optional(),
});

const PlannedNodeSchema = z.object({
  node_id: z.string(),
  name: z.string(),
  status: z.enum(NODE_STATUSES),
  included: z.boolean(),
  excluded_reason: z.enum(["invalid", "unchanged", "no_config", "no_matching_pool", "decommissioned"])
    .nullable(),
  message: z.string().nullable(),
  errors: z.array(DetailSchema).openapi({ description: "Schema errors of the result (fields config.*)" }),
  in_rollout: z.number().int().nullable().openapi({
    description: "The active rollout holding this node: starting another with it is refused (409)",
  }),
  base_version: z.number().int().nullable(),
  base_hash: z.string().nullable(),
  target_hash: z.string().nullable(),
  pools_changed: z.number().int(),
  diff: z.string().nullable().openapi({ description: "Unified diff of the current and the new config.yaml" }),
}).openapi("PlannedNode");

const PlanSchema = z.object({
  matched: z.number().int(),
  included: z.number().int(),
  excluded: z.number().int(),
  waves: z.array(z.array(z.string())).openapi({
    description: "Node names per wave, canary first (when the rollout settings were given)",
  }),
  nodes: z.array(PlannedNodeSchema),
}).openapi("ChangePlan");

const stateCounts = z.record(z.string(), z.number().int());

const RolloutSchema = z.object({
  id: z.number().int(),
  status: z.enum(ROLLOUT_STATUSES),
  comment: z.string().nullable(),
  spec: z.object(specFields).openapi({ description: "The change as asked" }),
  canary_count: z.number().int(),
  wave_size: z.number().int(),
  bake_s: z.number().int(),
  max_scaling_events: z.number().int(),
  waves: z.number().int(),
  current_wave: z.number().int().openapi({ description: "0 = canary; equals waves when done" }),
  pause_reason: z.string().nullable(),
  created_by: z.string(),
  created_at: isoTime,
  updated_at: isoTime,
  finished_at: isoTime.nullable(),
  counts: stateCounts.openapi({ description: "Nodes per state" }),
  node_count: z.number().int(),
}).openapi("Rollout");

const RolloutDetailSchema = RolloutSchema.extend({
  wave_list: z.array(z.object({
    wave: z.number().int(),
    label: z.string(),
    status: z.enum(["waiting", "in_progress", "done", "halted"]),
    nodes: z.number().int(),
    counts: stateCounts,
  })),
  nodes: z.array(z.object({
    node_id: z.string(),
    name: z.string(),
    wave: z.number().int(),
    state: z.enum(ROLLOUT_NODE_STATES).openapi({
      description: "waiting (not sent), pending (sent, not acked), applied (baking), baked, failed (paused " +
        "the rollout), skipped (taken out on resume, back on its old config), reverted (abort), cancelled " +
        "(never sent)",
    }),
    base_version: z.number().int(),
    target_version: z.number().int().nullable(),
    target_hash: z.string(),
    sent_at: isoTime.nullable(),
    applied_at: isoTime.nullable(),
    error: z.string().nullable(),
  })),
}).openapi("RolloutDetail");

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50).openapi({
    param: { name: "limit", in: "query" },
  }),
  before_id: z.coerce.number().int().min(1).optional().openapi({
    param: { name: "before_id", in: "query" },
    description: "next_before_id of the previous page",
  }),
});

const route = routesFor("rollouts");

const previewRoute = route("post", "/api/v1/rollouts/preview", "operator", {
  summary:
    "Preview a fleet-wide change: per node the new config's diff and any schema error (writes nothing)",
  description: "Nodes whose result is invalid, unchanged, without a config, or without a matching pool are " +
    "listed with the reason and left out of any rollout. With the rollout settings, `waves` shows the plan.",
  request: { body: jsonBody(PreviewBody) },
  responses: { 200: jsonResponse(PlanSchema, "The plan"), ...errorResponses(401, 403, 422) },
});

const createRolloutRoute = route("post", "/api/v1/rollouts", "operator", {
  summary: "Start a staged rollout of a change (operator); the canary is sent at once",
  description: "Waves: the canary, then `wave_size` nodes at a time. A wave is done when each node acked " +
    "the new config as applied and stayed healthy for `bake_s` (online, no failed ack, at most " +
    "`max_scaling_events` scaling events). A failed check pauses the rollout with `pause_reason`. 422 " +
    "names the field (selector matching nothing, a patch leaving no valid config, settings out of range); " +
    "409 when a selected node is in another active rollout. Nothing is written when refused.",
  request: { body: jsonBody(CreateBody) },
  responses: { 201: jsonResponse(RolloutDetailSchema, "Started"), ...errorResponses(401, 403, 409, 422) },
});

const listRoute = route("get", "/api/v1/rollouts", "viewer", {
  summary: "Rollouts, newest first",
  request: { query: ListQuery },
  responses: {
    200: jsonResponse(
      z.object({ items: z.array(RolloutSchema), next_before_id: z.number().int().nullable() })
        .openapi("RolloutList"),
      "Rollouts",
    ),
    ...errorResponses(401, 403, 422),
  },
});

const getRoute = route("get", "/api/v1/rollouts/{id}", "viewer", {
  summary: "A rollout with its waves and nodes",
  request: { params: IntIdParams },
  responses: { 200: jsonResponse(RolloutDetailSchema, "The rollout"), ...errorResponses(401, 403, 404, 422) },
});

const actionRoute = (action: "pause" | "resume" | "abort", summary: string, description: string) =>
  route("post", `/api/v1/rollouts/{id}/${action}`, "operator", {
    summary,
    description,
    request: { params: IntIdParams },
    responses: {
      200: jsonResponse(RolloutDetailSchema, "The rollout now"),
      ...errorResponses(401, 403, 404, 409, 422),
    },
  });

const pauseRoute = actionRoute(
  "pause",
  "Pause a running rollout (operator)",
  "409 naming `status` unless running.",
);
const resumeRoute = actionRoute(
  "resume",
  "Resume a paused rollout (operator)",
  "Nodes that failed a check and are healthy on the new config now go on (their bake starts over); the " +
    "others are skipped and put back on their previous config (new versions, audited). 409 naming `status` " +
    "unless paused.",
);
const abortRoute = actionRoute(
  "abort",
  "Abort a rollout: every changed node back on its previous config (operator)",
  "Each node that got the new config and still has it gets its previous config again as a new version " +
    "(source rollback, audited); nodes not reached are cancelled. 409 naming `status` unless running or paused.",
);

const totals = z.object({
  scale_ups: z.number().int(),
  scale_downs: z.number().int(),
  above_max_s: z.number(),
  instance_hours: z.number(),
});

const ReplayBody = z.strictObject({
  ...specFields,
  window: z.string().default("24h").openapi({ description: `One of ${REPLAY_WINDOW_KEYS.join(", ")}` }),
  nodes: z.number().default(CHANGE_REPLAY_DEFAULT_NODES).openapi({
    description:
      `How many of the included nodes to replay, the first by name (1..${CHANGE_REPLAY_MAX_NODES})`,
  }),
}).openapi("ChangeReplayRequest");

const ChangeReplaySchema = z.object({
  window: z.string(),
  included: z.number().int(),
  replayed: z.number().int(),
  verdict: z.string().openapi({ description: "One line for people: the change against the current configs" }),
  proposed: totals,
  current: totals.nullable().openapi({ description: "The same pools under the current configs" }),
  nodes: z.array(z.object({
    node_id: z.string(),
    name: z.string(),
    verdict: z.string(),
    reason: z.string().nullable(),
    proposed: totals,
    current: totals.nullable(),
  })),
}).openapi("ChangeReplay");

const replayRoute = route("post", "/api/v1/rollouts/replay", "operator", {
  summary: "What-if: replay a change on its first nodes over their recorded metrics (writes nothing)",
  description:
    "Plans the change as the preview does, then replays the original autoscaler's rule with each " +
    "replayed node's new config over its recorded metrics of the window (see POST " +
    "/api/v1/nodes/{id}/config/replay), and sums scale-ups, scale-downs and time above the maxima against " +
    "the current configs.",
  request: { body: { required: true, content: { "application/json": { schema: ReplayBody } } } },
  responses: {
    200: jsonResponse(ChangeReplaySchema, "Per node summaries"),
    ...errorResponses(401, 403, 422),
  },
});

export function registerRolloutRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps, services: Services): void {
  app.openapi(previewRoute, async (c) => {
    requireRole(c, "operator");
    const body = c.req.valid("json");
    const settings = body.canary !== undefined || body.wave_size !== undefined
      ? {
        canary: body.canary ?? 1,
        wave_size: body.wave_size ?? 10,
        bake_s: body.bake_s ?? 300,
        max_scaling_events: body.max_scaling_events ?? 5,
      }
      : undefined;
    const plan = await planChange(deps, body, settings);
    return c.json({
      ...plan,
      nodes: plan.nodes.map(({ baseText: _base, targetText: _target, ...node }) => node),
    }, 200);
  });

  app.openapi(replayRoute, async (c) => {
    requireRole(c, "operator");
    const body = c.req.valid("json");
    const { results: _results, ...replay } = await replayChange(deps, body, {
      window: body.window,
      nodes: body.nodes,
    });
    return c.json(replay, 200);
  });

  app.openapi(createRolloutRoute, async (c) => {
    const rollout = await createRollout(deps, services, requireActor(c, "operator"), c.req.valid("json"));
    return c.json(rollout, 201);
  });

  app.openapi(listRoute, async (c) => {
    requireRole(c, "viewer");
    return c.json(await listRollouts(deps, c.req.valid("query")), 200);
  });

  app.openapi(getRoute, async (c) => {
    requireRole(c, "viewer");
    return c.json(await getRollout(deps, c.req.valid("param").id), 200);
  });

  app.openapi(pauseRoute, async (c) => {
    const actor = requireActor(c, "operator");
    return c.json(await pauseRollout(deps, services, actor, c.req.valid("param").id), 200);
  });

  app.openapi(resumeRoute, async (c) => {
    const actor = requireActor(c, "operator");
    return c.json(await resumeRollout(deps, services, actor, c.req.valid("param").id), 200);
  });

  app.openapi(abortRoute, async (c) => {
    const actor = requireActor(c, "operator");
    return c.json(await abortRollout(deps, services, actor, c.req.valid("param").id), 200);
  });
}
