// The agent's side of configuration: pull the desired config (ETag + long-poll) and ack what was applied.
// Node-token authenticated; the rules live in core/configs.ts.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { ackConfig, MAX_WAIT_S, pullConfig, type PullResult } from "../../core/configs.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import { CONFIG_STATES } from "../../core/nodeStatus.ts";
import type { Services } from "../../core/services.ts";
import type { AppEnv } from "../env.ts";
import { nodeTokenRequired, requireNodeActor } from "../guards.ts";
import {
  CONFIG_HASH_DESCRIPTION,
  CONFIG_YAML_DESCRIPTION,
  jsonBody,
  jsonResponse,
  NodeIdParams,
  routesFor,
} from "./schemas.ts";
import * as fields from "../../core/fields.ts";

const MAX_ERROR_LENGTH = 4000;

const PullQuery = z.object({
  wait: z.coerce.number().int().min(0).max(MAX_WAIT_S).default(0).openapi({
    param: { name: "wait", in: "query" },
    description: `Seconds to hold the request open for a change (0..${MAX_WAIT_S}); 0 answers at once.`,
    example: 30,
  }),
});

const PullHeaders = z.object({
  "if-none-match": z.string().max(2000).optional().openapi({
    param: { name: "if-none-match", in: "header" },
    description: 'The hash the agent runs, as an ETag: "<hash>" (W/ and lists accepted).',
    example: '"3f0a9c1e4b7d2a6f8e5c1b9d0a7e3f2c4b6d8a0e1f3c5b7d9e2a4c6f8b0d1e3a"',
  }),
});

const ConfigResponseSchema = z.object({
  version: z.number().int(),
  hash: z.string().openapi({ description: `${CONFIG_HASH_DESCRIPTION} Also the ETag.` }),
  body: z.record(z.string(), z.unknown()).openapi({ description: "The config.yaml document as JSON" }),
  yaml: z.string().openapi({
    description: `${CONFIG_YAML_DESCRIPTION} Write it to config.yaml as is; older servers do not send it ` +
      "(render body then).",
  }),
  created_at: z.string().openapi({ example: "2026-06-01T12:00:00.000Z" }),
}).openapi("AgentConfig");

const AckBodySchema = z.object({
  hash: fields.configHash,
  status: z.enum(["applied", "failed"]),
  error: z.string().max(MAX_ERROR_LENGTH).nullable().optional().openapi({
    description: "Why applying failed; required when status is failed",
  }),
}).superRefine((ack, ctx) => {
  if (ack.status === "failed" && !ack.error?.trim()) {
    ctx.addIssue({ code: "custom", path: ["error"], message: "is required when status is failed" });
  }
}).openapi("ConfigAck");

const AckResponseSchema = z.object({
  config_state: z.enum(CONFIG_STATES),
  desired_config_hash: z.string().nullable(),
}).openapi("ConfigAckResult");

const etagHeader = {
  ETag: { schema: { type: "string" as const }, description: 'The config hash, quoted: "<hash>"' },
};

// Node routes: the full node-token check (routes/guards.ts nodeTokenRequired, below) follows the presence
// check of access("node").
const route = routesFor("agent");

const pullRoute = route("get", "/api/v1/nodes/{id}/config", "node", {
  summary: "Pull the desired config (ETag, long-poll with ?wait=)",
  description:
    "200 with the config as soon as its hash differs from If-None-Match (at once when it already " +
    "differs); 304 when unchanged at the end of the wait; 204 when the node has no config at all.",
  request: { params: NodeIdParams, query: PullQuery, headers: PullHeaders },
  responses: {
    200: {
      description: "The desired config",
      headers: etagHeader,
      content: { "application/json": { schema: ConfigResponseSchema } },
    },
    204: { description: "The node has no config" },
    304: { description: "Unchanged: the agent's hash is still the desired one", headers: etagHeader },
    ...errorResponses(401, 403, 404, 410, 422, 429),
  },
});

const ackRoute = route("post", "/api/v1/nodes/{id}/config/ack", "node", {
  summary: "Report whether a config was applied",
  request: { params: NodeIdParams, body: jsonBody(AckBodySchema) },
  responses: { 200: jsonResponse(AckResponseSchema, "Recorded"), ...errorResponses(401, 403, 404, 410, 422) },
});

/** If-None-Match -> the hashes it names ("*" for any). Accepts "h", W/"h", bare h and comma lists. */
export function parseIfNoneMatch(header: string | undefined): string[] | "*" {
  if (!header) return [];
  const tags = header.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (tags.includes("*")) return "*";
  return tags.map((tag) => tag.replace(/^W\//i, "").replace(/^"(.*)"$/, "$1").toLowerCase())
    .filter((tag) => tag !== "");
}

/** The answer to a pull: the config (200), unchanged (304) or none (204), with its ETag. Built without the
 * request's context, so the agents' fast path answers with it too. */
export function pullResponse(result: PullResult): Response {
  const headers: Record<string, string> = { "cache-control": "no-cache" };
  if (result.kind === "none") return new Response(null, { status: 204, headers });
  if (result.kind === "not_modified") {
    return new Response(null, { status: 304, headers: { ...headers, etag: `"${result.hash}"` } });
  }
  const { version, hash, body, yaml, created_at } = result.config;
  return Response.json({ version, hash, body, yaml, created_at }, {
    status: 200,
    headers: { ...headers, etag: `"${hash}"` },
  });
}

export function registerAgentConfigRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: CoreDeps,
  services: Services,
): void {
  const nodeToken = nodeTokenRequired(services.nodeAuth);

  app.openapi({ ...pullRoute, middleware: [nodeToken] as const }, async (c) => {
    const { wait } = c.req.valid("query");
    const headers = c.req.valid("header");
    const nodeId = requireNodeActor(c).principal.nodeId;
    const result = await pullConfig(deps, services, {
      nodeId,
      knownHashes: parseIfNoneMatch(headers["if-none-match"]),
      waitS: wait,
      signal: c.req.raw.signal,
      rememberedDesiredHash: services.nodeAuth.desiredHash(nodeId),
    });
    // Plain Responses (shared with the agents' fast path, routes/agentFastPath.ts, which takes the plain
    // waiting pulls): the route's typed responses above are what they carry, which the type checker cannot
    // see through a Response, hence the cast.
    return pullResponse(result) as never;
  });

  app.openapi({ ...ackRoute, middleware: [nodeToken] as const }, async (c) => {
    const ack = c.req.valid("json");
    const actor = requireNodeActor(c);
    const result = await ackConfig(deps, actor, actor.principal.nodeId, {
      hash: ack.hash,
      status: ack.status,
      error: ack.error ?? null,
    });
    return c.json(result, 200);
  });
}
