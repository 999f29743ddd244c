// The autoscaler protocol's write side: register (enrollment token in the body), heartbeat and metric
// batches (node token). Rules live in core/agents.ts; this file parses, calls and shapes.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  checkRegisterCredentials,
  ingestMetrics,
  MAX_SAMPLES_PER_BATCH,
  registerNode,
} from "../../core/agents.ts";
import { recordHeartbeat } from "../../core/heartbeats.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import * as fields from "../../core/fields.ts";
import type { Services } from "../../core/services.ts";
import type { AppEnv } from "../env.ts";
import { access, agentCaller, nodeTokenRequired, requireNodeActor } from "../guards.ts";
import { jsonBody, jsonResponse, NodeIdParams, routesFor } from "./schemas.ts";

const MAX_POOLS = 100;

// The same OCID rules as the config document, so a pool the agent reports is a pool its config can name.
const poolOcid = fields.instancePoolOcid.meta({
  example: "ocid1.instancepool.oc1.iad.aaaaaaaaexampleuniqueid",
});
const compartmentOcid = fields.compartmentOcid;
const count = z.number().int("must be a whole number").min(0, "must be at least 0").max(1_000_000);
const percent = z.number().min(0, "must be at least 0").max(100, "must be at most 100");
const shortText = (max: number) => z.string().min(1).max(max);

const Labels = fields.labels.meta({ example: { env: "prod", team: "web" } });

const RegisterPool = z.strictObject({
  instance_pool_id: poolOcid,
  display_name: z.string().max(255).nullish(),
  compartment_id: compartmentOcid.nullish(),
  region: z.string().max(64).nullish(),
  current_size: count.nullish(),
  min_size: count.nullish(),
  max_size: count.nullish(),
});

const RegisterBody = z.strictObject({
  enrollment_token: z.string().min(1).max(256).nullish().openapi({
    description: "ace_... from an admin, or a re-enrollment token an operator made for this node. Not " +
      "needed when the node's current token is sent as Authorization: Bearer acn_... (a rotation)",
  }),
  name: fields.nodeName.meta({ example: "autoscaler-iad-1" }),
  registration_id: fields.registrationId.nullish().openapi({
    description: "A random id the agent makes for this registration and sends again if it retries it. " +
      "When the answer was lost, the retry gets the node back (200, a new node token) instead of 409 " +
      "node_name_taken, until the node's first heartbeat or 15 minutes after it registered",
  }),
  hostname: shortText(255).openapi({ example: "autoscaler-iad-1.example.internal" }),
  address: z.string().max(64).nullish(),
  agent_version: z.string().max(64).nullish(),
  region: z.string().max(64).nullish(),
  labels: Labels.nullish(),
  pools: z.array(RegisterPool).max(MAX_POOLS, `at most ${MAX_POOLS} pools`).nullish(),
  config: z.union([
    z.string().max(256_000),
    z.record(z.string(), z.unknown()),
  ]).nullish().openapi({
    description: "The agent's config.yaml (text) or the same document as JSON; stored as version 1 " +
      "when the node has no config yet",
  }),
}).openapi("RegisterRequest");

const RegisterResponse = z.object({
  node_id: z.string(),
  node_token: z.string().openapi({ description: "acn_...; shown once: store it" }),
  heartbeat_interval_s: z.number().int(),
  config: z.object({
    version: z.number().int(),
    hash: z.string(),
    body: z.record(z.string(), z.unknown()),
  }).nullable(),
}).openapi("RegisterResult");

export const HeartbeatBody = z.strictObject({
  status: z.string().max(32).nullish().openapi({ example: "ok" }),
  uptime_s: z.number().int("must be a whole number").min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  applied_config_hash: fields.configHash.nullish(),
  agent_version: z.string().max(64).nullish(),
  address: z.string().max(64).nullish(),
  pools: z.array(z.strictObject({ instance_pool_id: poolOcid, instance_count: count }))
    .max(MAX_POOLS, `at most ${MAX_POOLS} pools`).nullish(),
}).openapi("Heartbeat");

const HeartbeatResponse = z.object({
  desired_config_hash: z.string().nullable(),
  heartbeat_interval_s: z.number().int(),
  config_changed: z.boolean().openapi({ description: "desired differs from applied: pull the config" }),
}).openapi("HeartbeatResult");

const Sample = z.strictObject({
  instance_pool_id: poolOcid,
  // The shape here; the calendar (no February 30) and the time window are checked by the service.
  ts: fields.zonedTimestamp,
  cpu_util: percent,
  memory_util: percent,
  instance_count: count,
  scaling_event: z.boolean().default(false),
  scaling_direction: z.enum(["UP", "DOWN"]).nullish().openapi({
    description: "required exactly when scaling_event is true (checked by the service: a refinement here " +
      "cost as much as the rest of the validation)",
  }),
  from_count: count.nullish(),
  to_count: count.nullish(),
  reason: z.string().max(500).nullish(),
}).openapi("MetricSample");

export const MetricsBody = z.strictObject({
  // MAX_BATCH_SAMPLES (default 1000) is checked by the service and answered 413; this is the hard ceiling.
  samples: z.array(Sample).min(1, "at least one sample").max(
    MAX_SAMPLES_PER_BATCH,
    `at most ${MAX_SAMPLES_PER_BATCH} samples per batch`,
  ),
}).openapi("MetricBatch");

const MetricsResponse = z.object({
  accepted: z.number().int(),
  duplicates: z.number().int().openapi({ description: "samples already stored (same node, pool, ts)" }),
}).openapi("MetricBatchResult");

const nodeErrors = errorResponses(401, 403, 404, 410, 413, 422);

const registerRoute = createRoute({
  ...access("enrollment"),
  method: "post",
  path: "/api/v1/register",
  tags: ["agent"],
  summary: "Register an autoscaler (or rotate a known node's token, with proof)",
  description: "Credentials are checked before the rest of the body: an enrollment token in the body, or " +
    "the node's current token (Authorization: Bearer acn_...). 201 for a new name. A known name needs " +
    "proof of identity: its current node token, or a re-enrollment token an operator created for that " +
    "node (POST /api/v1/nodes/{id}/reenrollment-token, `token create --node`): 200 and a new node token. " +
    "Otherwise 409 node_name_taken, nothing changed. 401 codes: enrollment_token_invalid, _expired, " +
    "_revoked, _exhausted. 403 enrollment_token_wrong_node. 409 node_decommissioned, node_name_taken.",
  request: { body: jsonBody(RegisterBody) },
  responses: {
    201: jsonResponse(RegisterResponse, "Registered"),
    200: jsonResponse(RegisterResponse, "A known node proved its identity; its token was rotated"),
    ...errorResponses(401, 403, 409, 413, 422, 429),
  },
});

const route = routesFor("agent");

const heartbeatRoute = route("post", "/api/v1/nodes/{id}/heartbeat", "node", {
  summary: "Heartbeat: status, uptime, applied config hash, pool sizes",
  request: { params: NodeIdParams, body: jsonBody(HeartbeatBody) },
  responses: {
    200: jsonResponse(HeartbeatResponse, "Recorded"),
    ...nodeErrors,
  },
});

const metricsRoute = route("post", "/api/v1/nodes/{id}/metrics", "node", {
  summary: "Push a batch of metric samples (idempotent per node, pool, ts)",
  description:
    "At most MAX_BATCH_SAMPLES samples (default 1,000): a larger batch gets 413 batch_too_large, " +
    "and the clients halve their batch size.",
  request: { params: NodeIdParams, body: jsonBody(MetricsBody) },
  responses: {
    200: jsonResponse(MetricsResponse, "Stored"),
    ...nodeErrors,
  },
});

export function registerAgentRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: CoreDeps,
  services: Pick<
    Services,
    "configWatcher" | "heartbeats" | "nodeAuth" | "pools" | "registrationLimiter" | "registrations"
  >,
): void {
  // Credentials before validation: an anonymous body costs one token lookup, never a full validation.
  app.use(registerRoute.getRoutingPath(), async (c, next) => {
    if (c.req.method === "POST" && c.req.header("content-type")?.includes("application/json")) {
      let raw: unknown;
      try {
        raw = await c.req.json(); // cached: the validator reads the same parse
      } catch {
        return await next(); // malformed JSON: the validator answers it
      }
      await checkRegisterCredentials(deps, agentCaller(c), raw, services.registrations);
    }
    await next();
  });

  app.openapi(registerRoute, async (c) => {
    const result = await registerNode(deps, services, agentCaller(c), c.req.valid("json"));
    c.header("Cache-Control", "no-store"); // carries the node token
    return result.created ? c.json(result.body, 201) : c.json(result.body, 200);
  });

  app.openapi(heartbeatRoute, async (c) => {
    const result = await recordHeartbeat(
      deps,
      services,
      agentCaller(c),
      c.req.valid("param").id,
      c.req.valid("json"),
    );
    return c.json(result, 200);
  });

  // The token is checked before the batch (up to MAX_BODY_BYTES of samples) is validated.
  app.openapi({ ...metricsRoute, middleware: [nodeTokenRequired(services.nodeAuth)] as const }, async (c) => {
    const result = await ingestMetrics(deps, services, requireNodeActor(c), {
      samples: c.req.valid("json").samples,
    });
    return c.json(result, 200);
  });
}
