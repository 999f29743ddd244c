// The agents' fast path: a well-formed heartbeat, metric batch or waiting config pull with a token this
// replica already checked is answered before Hono's router, middleware and zod validator run (together they
// were three quarters of the server's CPU per heartbeat, and zod alone a quarter of a metric batch's). It
// takes only requests that are plainly right, and hands everything else to the app unchanged, so every
// refusal (401/403/404/410, 413, 415, 422 naming the field) still comes from its route: a body it does not
// fully recognise, a token it does not remember, a batch the service would refuse, a Content-Type other than
// application/json, no Content-Length or a body over MAX_BODY_BYTES. The checks here are the route schemas'
// (routes/api/agents.ts HeartbeatBody, MetricsBody), never looser: leaves are checked with the same field
// rules (core/fields.ts), and anything else sends the request down the full path.
// A waiting pull (GET .../config?wait=N) holds only Deno's request and what core/configs.ts startPull keeps
// while it waits: no Hono context, validator output or middleware frame (at 10,000 waiting pulls those were
// about 40% of the server's memory).
// The answer carries what the app's middleware would add (X-Request-Id, nosniff, no-store), is counted in
// /metrics under the route's template and summarized in the request log like the route's own answers.
import type { CoreDeps } from "../core/deps.ts";
import { type HeartbeatInput, recordHeartbeat } from "../core/heartbeats.ts";
import * as fields from "../core/fields.ts";
import type { RequestLog } from "../core/requestLog.ts";
import type { Services } from "../core/services.ts";
import type { Telemetry } from "../core/telemetry.ts";
import type { AgentCaller } from "../core/principal.ts";
import { clientAddressOf, requestIdFor } from "./requestIdentity.ts";
import { SECRET_PREFIX, secretShaped } from "../core/secrets.ts";
import { MAX_WAIT_S, type PullAnswer, startPull } from "../core/configs.ts";
import { asAppError, errorJsonResponse } from "./errors.ts";
import { parseIfNoneMatch, pullResponse } from "./api/agentConfig.ts";
import {
  MAX_SAMPLES_PER_BATCH,
  type MetricSampleInput,
  prepareMetricBatch,
  storeMetricBatch,
} from "../core/agents.ts";

const PATH = /^\/api\/v1\/nodes\/([A-Za-z0-9-]{1,64})\/(heartbeat|metrics)$/;
const ROUTES = { heartbeat: "/api/v1/nodes/:id/heartbeat", metrics: "/api/v1/nodes/:id/metrics" } as const;
const PULL_PATH = /^\/api\/v1\/nodes\/([A-Za-z0-9-]{1,64})\/config$/;
/** Only the plain form (no other parameter, no leading zero); wait=0 answers at once on the full route. */
const PULL_QUERY = /^wait=([1-9][0-9]?)$/;
const PULL_ROUTE = "/api/v1/nodes/:id/config";
const MAX_IF_NONE_MATCH = 2000;
const MAX_POOLS = 100;
const MAX_COUNT = 1_000_000;
const KEYS = new Set(["status", "uptime_s", "applied_config_hash", "agent_version", "address", "pools"]);
const SAMPLE_KEYS = new Set([
  "instance_pool_id",
  "ts",
  "cpu_util",
  "memory_util",
  "instance_count",
  "scaling_event",
  "scaling_direction",
  "from_count",
  "to_count",
  "reason",
]);

type Fetch = (request: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response>;

const bearerToken = (headers: Headers) =>
  /^Bearer\s+(\S+)\s*$/i.exec(headers.get("authorization") ?? "")?.[1];
const pathOf = (url: string) => {
  // The path and query without parsing the whole URL: after "://host".
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const query = url.indexOf("?", pathStart);
  return query === -1 ? [url.slice(pathStart), ""] : [url.slice(pathStart, query), url.slice(query + 1)];
};

const optionalText = (value: unknown, max: number) =>
  value === undefined || value === null || (typeof value === "string" && value.length <= max);
const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);
const isCount = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_COUNT;
const isPercent = (value: unknown): value is number =>
  typeof value === "number" && value >= 0 && value <= 100;
const nullishCount = (value: unknown): value is number | null | undefined =>
  value === undefined || value === null || isCount(value);

/** A field rule with a memory of the strings it accepted (bounded): an agent sends the same pool OCIDs and
 * config hash every time, so the rule runs once per value, not once per request. */
function remembering(rule: { safeParse(value: unknown): { success: boolean } }, size = 100_000) {
  const accepted = new Set<string>();
  return (value: string): boolean => {
    if (accepted.has(value)) return true;
    if (!rule.safeParse(value).success) return false;
    if (accepted.size >= size) accepted.clear();
    accepted.add(value);
    return true;
  };
}
const validPoolOcid = remembering(fields.instancePoolOcid);
const validConfigHash = remembering(fields.configHash);

/** The body as HeartbeatBody would parse it, or undefined when it is anything but plainly valid. */
export function plainHeartbeat(body: unknown): HeartbeatInput | undefined {
  if (!isObject(body)) return undefined;
  for (const key in body) if (!KEYS.has(key)) return undefined;
  if (
    !optionalText(body.status, 32) || !optionalText(body.agent_version, 64) || !optionalText(body.address, 64)
  ) {
    return undefined;
  }
  const uptime = body.uptime_s;
  if (uptime !== undefined && uptime !== null && !(Number.isSafeInteger(uptime) && (uptime as number) >= 0)) {
    return undefined;
  }
  let hash: string | null | undefined = body.applied_config_hash as null | undefined;
  if (body.applied_config_hash !== undefined && body.applied_config_hash !== null) {
    // configHash lowercases what it accepts.
    if (typeof body.applied_config_hash !== "string" || !validConfigHash(body.applied_config_hash)) {
      return undefined;
    }
    hash = body.applied_config_hash.toLowerCase();
  }
  let pools: HeartbeatInput["pools"] = body.pools as null | undefined;
  if (body.pools !== undefined && body.pools !== null) {
    if (!Array.isArray(body.pools) || body.pools.length > MAX_POOLS) return undefined;
    pools = [];
    for (const pool of body.pools) {
      if (!isObject(pool)) return undefined;
      const keys = Object.keys(pool);
      if (keys.length !== 2 || !("instance_pool_id" in pool) || !("instance_count" in pool)) return undefined;
      const { instance_pool_id: id, instance_count: count } = pool;
      if (!isCount(count) || typeof id !== "string" || !validPoolOcid(id)) return undefined;
      pools.push({ instance_pool_id: id, instance_count: count });
    }
  }
  return {
    ...(body.status !== undefined ? { status: body.status as string | null } : {}),
    ...(uptime !== undefined ? { uptime_s: uptime as number | null } : {}),
    ...(hash !== undefined ? { applied_config_hash: hash } : {}),
    ...(body.agent_version !== undefined ? { agent_version: body.agent_version as string | null } : {}),
    ...(body.address !== undefined ? { address: body.address as string | null } : {}),
    ...(pools !== undefined ? { pools } : {}),
  };
}

/** The samples as MetricsBody would parse them, or undefined when anything is not plainly valid. */
export function plainMetricBatch(body: unknown): MetricSampleInput[] | undefined {
  if (!isObject(body)) return undefined;
  for (const key in body) if (key !== "samples") return undefined;
  const list = body.samples;
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_SAMPLES_PER_BATCH) return undefined;
  const samples: MetricSampleInput[] = [];
  for (const s of list) {
    if (!isObject(s)) return undefined;
    for (const key in s) if (!SAMPLE_KEYS.has(key)) return undefined;
    const { instance_pool_id: pool, ts, cpu_util, memory_util, instance_count, scaling_event } = s;
    const { scaling_direction: direction, from_count, to_count, reason } = s;
    if (typeof pool !== "string" || !validPoolOcid(pool)) return undefined;
    if (typeof ts !== "string" || ts.length > 64 || !fields.ZONED_TIMESTAMP.test(ts)) return undefined;
    if (!isPercent(cpu_util) || !isPercent(memory_util) || !isCount(instance_count)) return undefined;
    if (scaling_event !== undefined && typeof scaling_event !== "boolean") return undefined;
    if (direction !== undefined && direction !== null && direction !== "UP" && direction !== "DOWN") {
      return undefined;
    }
    if (!nullishCount(from_count) || !nullishCount(to_count) || !optionalText(reason, 500)) return undefined;
    const sample: MetricSampleInput = {
      instance_pool_id: pool,
      ts,
      cpu_util,
      memory_util,
      instance_count,
      scaling_event: scaling_event ?? false,
    };
    if (direction !== undefined) sample.scaling_direction = direction;
    if (from_count !== undefined) sample.from_count = from_count;
    if (to_count !== undefined) sample.to_count = to_count;
    if (reason !== undefined) sample.reason = reason as string | null;
    samples.push(sample);
  }
  return samples;
}

type FastServices = Pick<Services, "heartbeats" | "nodeAuth" | "pools" | "configWatcher">;

/** The heartbeat's or the batch's answer, or undefined to leave the request to the full route. Throws
 * (a refusal, a failure) leave it to the full route too, which answers with the error's shape. */
async function answer(
  deps: CoreDeps,
  services: FastServices,
  kind: keyof typeof ROUTES,
  caller: AgentCaller,
  nodeId: string,
  body: unknown,
): Promise<unknown> {
  if (kind === "heartbeat") {
    const heartbeat = plainHeartbeat(body);
    return heartbeat && await recordHeartbeat(deps, services, caller, nodeId, heartbeat);
  }
  const samples = plainMetricBatch(body);
  if (!samples || samples.length > deps.settings.MAX_BATCH_SAMPLES) return undefined;
  await services.nodeAuth.authenticate(nodeId, caller.token);
  const batch = prepareMetricBatch(deps, samples);
  if ("problems" in batch) return undefined;
  return await storeMetricBatch(deps, services, nodeId, batch);
}

/** How many requests the fast path answered itself (the tests check it takes what it should). */
export interface FastPathStats {
  answered: number;
}

export function withAgentFastPath(
  appFetch: Fetch,
  deps: CoreDeps,
  services: FastServices,
  telemetry: Telemetry,
  requestLog: RequestLog,
  stats: FastPathStats = { answered: 0 },
): Fetch {
  const maxBody = deps.settings.MAX_BODY_BYTES;
  const addressOf = (headers: Headers, info: Deno.ServeHandlerInfo | undefined) =>
    clientAddressOf(
      headers.get("x-forwarded-for"),
      () => (info?.remoteAddr as Deno.NetAddr | undefined)?.hostname,
      deps.settings.TRUST_PROXY,
    );
  /** Counted in /metrics and summarized in the request log as the route's own answers are. */
  const answered = (
    method: string,
    route: string,
    path: string,
    response: Response,
    requestId: string,
    address: string,
    started: number,
  ) => {
    const durationMs = performance.now() - started;
    stats.answered++;
    telemetry.request(method, route, response.status, durationMs / 1000);
    requestLog.record({
      request_id: requestId,
      method,
      route,
      path,
      status: response.status,
      duration_ms: Math.round(durationMs * 100) / 100,
      address,
    });
    // Headers set one by one: a HeadersInit object costs Deno's Response four times as much.
    const out = response.headers;
    if (!out.has("cache-control")) out.set("cache-control", "no-store");
    out.set("x-content-type-options", "nosniff");
    out.set("x-request-id", requestId);
    return response;
  };

  /** A plainly valid waiting pull, parked here until its answer comes; anything else goes the full way. */
  const pull = (request: Request, info: Deno.ServeHandlerInfo | undefined, path: string, query: string) => {
    const match = PULL_PATH.exec(path);
    const wait = PULL_QUERY.exec(query);
    if (!match || !wait || Number(wait[1]) > MAX_WAIT_S) return appFetch(request, info);
    const headers = request.headers;
    const token = bearerToken(headers);
    const ifNoneMatch = headers.get("if-none-match");
    if (
      !secretShaped(SECRET_PREFIX.nodeToken, token) || headers.has("x-api-key") ||
      (ifNoneMatch !== null && ifNoneMatch.length > MAX_IF_NONE_MATCH)
    ) {
      return appFetch(request, info);
    }
    return parkPull(request, info, match[1], token, Number(wait[1]), ifNoneMatch ?? undefined);
  };

  /** The callback that answers a parked pull. Made here, in a scope of its own, so that while the pull waits
   * it keeps only these few values (a closure keeps its whole enclosing scope). */
  const pullAnswerer = (
    resolve: (response: Response) => void,
    nodeId: string,
    requestId: string,
    address: string,
    started: number,
  ): PullAnswer =>
  (error, result) => {
    // Never throws: it runs in promise callbacks nobody else watches, where a throw would be an unhandled
    // rejection (the process would stop) and the pull would never be answered.
    try {
      const response = error === null
        ? pullResponse(result!)
        : errorJsonResponse(asAppError(error, requestId, deps.logger), requestId);
      const path = `/api/v1/nodes/${nodeId}/config`;
      resolve(answered("GET", PULL_ROUTE, path, response, requestId, address, started));
    } catch (failure) {
      resolve(errorJsonResponse(asAppError(failure, requestId, deps.logger), requestId));
    }
  };

  /** Parks the pull until its answer comes. Not an async function, and no promise between the wait and
   * Deno: while it waits, a pull holds the promise returned here, its answer callback and the watcher's
   * waiter. */
  const parkPull = (
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    nodeId: string,
    token: string,
    waitS: number,
    ifNoneMatch: string | undefined,
  ): Promise<Response> => {
    const started = performance.now();
    const headers = request.headers;
    let resolve!: (response: Response | Promise<Response>) => void;
    const parked = new Promise<Response>((settle) => resolve = settle);
    const answer = pullAnswerer(
      resolve,
      nodeId,
      requestIdFor(headers.get("x-request-id")),
      addressOf(headers, info),
      started,
    );
    services.nodeAuth.authenticate(nodeId, token).then(() =>
      startPull(deps, services, {
        nodeId,
        knownHashes: parseIfNoneMatch(ifNoneMatch),
        waitS,
        signal: request.signal,
        rememberedDesiredHash: services.nodeAuth.desiredHash(nodeId),
      }, answer)
    ).then(
      (pulled) => {
        if (pulled !== "waiting") answer(null, pulled.now);
      },
      // A refusal (token, node, too many waiting) or a failure before the wait: the full route answers it,
      // in its shape.
      () => resolve(Promise.resolve().then(() => appFetch(request, info))),
    );
    return parked;
  };

  /** A heartbeat or metric batch. */
  const post = async (request: Request, info: Deno.ServeHandlerInfo | undefined): Promise<Response> => {
    const url = request.url;
    const match = PATH.exec(pathOf(url)[0]);
    if (!match) return appFetch(request, info);
    const headers = request.headers;
    const length = Number(headers.get("content-length") ?? NaN);
    const token = bearerToken(headers);
    if (
      !(length >= 0 && length <= maxBody) ||
      headers.get("content-type")?.toLowerCase() !== "application/json" ||
      !secretShaped(SECRET_PREFIX.nodeToken, token)
    ) {
      return appFetch(request, info);
    }
    const started = performance.now();
    let text: string;
    try {
      text = await request.text();
    } catch (error) {
      // The body could not be read (the client went, or shutdown closed the connection): the full path
      // answers, reading a body that fails the same way (routes/drain.ts turns that into 503 at shutdown).
      const failing = new ReadableStream({ start: (controller) => controller.error(error) });
      return appFetch(
        new Request(url, { method: "POST", headers, body: failing, signal: request.signal }),
        info,
      );
    }
    const fallBack = () =>
      appFetch(new Request(url, { method: "POST", headers, body: text, signal: request.signal }), info);
    const [, nodeId, kind] = match as unknown as [string, string, keyof typeof ROUTES];
    const address = addressOf(headers, info);
    let result: unknown;
    try {
      result = await answer(deps, services, kind, { address, token }, nodeId, JSON.parse(text));
    } catch {
      // Malformed JSON, a refusal or a failure: the full path answers it, with the error shape, log line and
      // counters (a metric batch is written exactly once either way: its samples are keyed).
      return fallBack();
    }
    if (result === undefined) return fallBack();
    const requestId = requestIdFor(headers.get("x-request-id"));
    const response = new Response(JSON.stringify(result));
    response.headers.set("content-type", "application/json");
    const path = `/api/v1/nodes/${nodeId}/${kind}`;
    return answered("POST", ROUTES[kind], path, response, requestId, address, started);
  };

  // Not an async function: a waiting pull's promise is handed straight to Deno, with no frame around it.
  return (request, info) => {
    const method = request.method;
    if (method === "POST") return post(request, info);
    if (method !== "GET") return appFetch(request, info);
    const [path, query] = pathOf(request.url);
    return query === "" ? appFetch(request, info) : pull(request, info, path, query);
  };
}
