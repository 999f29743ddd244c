// The heartbeat's fast path: a well-formed heartbeat with a token this replica already checked is answered
// before Hono's router, middleware and zod validator run (together they were three quarters of the server's
// CPU per heartbeat). It takes only requests that are plainly right, and hands everything else to the app
// unchanged, so every refusal (401/403/404/410, 413, 415, 422 naming the field) still comes from the one
// route in routes/api/agents.ts: a body it does not fully recognise, a token it does not remember, a
// Content-Type other than application/json, no Content-Length or a body over MAX_BODY_BYTES. The checks here
// are the route schema's (routes/api/agents.ts HeartbeatBody), never looser: leaves are checked with the
// same field rules (core/fields.ts), and anything else sends the request down the full path.
// The answer carries what the app's middleware would add (X-Request-Id, nosniff, no-store), is counted in
// /metrics under the route's template and summarized in the request log like the route's own answers.
import type { CoreDeps } from "../core/deps.ts";
import { type HeartbeatInput, recordHeartbeat } from "../core/heartbeats.ts";
import * as fields from "../core/fields.ts";
import type { RequestLog } from "../core/requestLog.ts";
import type { Services } from "../core/services.ts";
import type { Telemetry } from "../core/telemetry.ts";
import { SECRET_PREFIX, secretShaped } from "../core/secrets.ts";

const PATH = /^\/api\/v1\/nodes\/([A-Za-z0-9-]{1,64})\/heartbeat$/;
const ROUTE = "/api/v1/nodes/:id/heartbeat";
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_POOLS = 100;
const MAX_COUNT = 1_000_000;
const KEYS = new Set(["status", "uptime_s", "applied_config_hash", "agent_version", "address", "pools"]);

type Fetch = (request: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response>;

const optionalText = (value: unknown, max: number) =>
  value === undefined || value === null || (typeof value === "string" && value.length <= max);

/** The body as HeartbeatBody would parse it, or undefined when it is anything but plainly valid. */
export function plainHeartbeat(body: unknown): HeartbeatInput | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  for (const key in b) if (!KEYS.has(key)) return undefined;
  if (!optionalText(b.status, 32) || !optionalText(b.agent_version, 64) || !optionalText(b.address, 64)) {
    return undefined;
  }
  const uptime = b.uptime_s;
  if (uptime !== undefined && uptime !== null && !(Number.isSafeInteger(uptime) && (uptime as number) >= 0)) {
    return undefined;
  }
  let hash: string | null | undefined = b.applied_config_hash as null | undefined;
  if (b.applied_config_hash !== undefined && b.applied_config_hash !== null) {
    const parsed = fields.configHash.safeParse(b.applied_config_hash);
    if (!parsed.success) return undefined;
    hash = parsed.data;
  }
  let pools: HeartbeatInput["pools"] = b.pools as null | undefined;
  if (b.pools !== undefined && b.pools !== null) {
    if (!Array.isArray(b.pools) || b.pools.length > MAX_POOLS) return undefined;
    pools = [];
    for (const pool of b.pools) {
      if (pool === null || typeof pool !== "object" || Array.isArray(pool)) return undefined;
      const keys = Object.keys(pool);
      if (keys.length !== 2 || !("instance_pool_id" in pool) || !("instance_count" in pool)) return undefined;
      const { instance_pool_id: id, instance_count: count } = pool as Record<string, unknown>;
      if (!Number.isInteger(count) || (count as number) < 0 || (count as number) > MAX_COUNT) {
        return undefined;
      }
      if (typeof id !== "string" || !fields.instancePoolOcid.safeParse(id).success) return undefined;
      pools.push({ instance_pool_id: id, instance_count: count as number });
    }
  }
  return {
    ...(b.status !== undefined ? { status: b.status as string | null } : {}),
    ...(uptime !== undefined ? { uptime_s: uptime as number | null } : {}),
    ...(hash !== undefined ? { applied_config_hash: hash } : {}),
    ...(b.agent_version !== undefined ? { agent_version: b.agent_version as string | null } : {}),
    ...(b.address !== undefined ? { address: b.address as string | null } : {}),
    ...(pools !== undefined ? { pools } : {}),
  };
}

export function withHeartbeatFastPath(
  appFetch: Fetch,
  deps: CoreDeps,
  services: Pick<Services, "heartbeats" | "nodeAuth" | "pools">,
  telemetry: Telemetry,
  requestLog: RequestLog,
): Fetch {
  const maxBody = deps.settings.MAX_BODY_BYTES;
  return async (request, info) => {
    if (request.method !== "POST") return appFetch(request, info);
    const url = request.url;
    // The path without parsing the whole URL: after "://host".
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const query = url.indexOf("?", pathStart);
    const match = PATH.exec(query === -1 ? url.slice(pathStart) : url.slice(pathStart, query));
    if (!match) return appFetch(request, info);
    const headers = request.headers;
    const length = Number(headers.get("content-length") ?? NaN);
    const token = /^Bearer\s+(\S+)\s*$/i.exec(headers.get("authorization") ?? "")?.[1];
    if (
      !(length >= 0 && length <= maxBody) ||
      headers.get("content-type")?.toLowerCase() !== "application/json" ||
      !secretShaped(SECRET_PREFIX.nodeToken, token)
    ) {
      return appFetch(request, info);
    }
    const started = performance.now();
    const text = await request.text();
    const fallBack = () =>
      appFetch(new Request(url, { method: "POST", headers, body: text, signal: request.signal }), info);
    let body: HeartbeatInput | undefined;
    try {
      body = plainHeartbeat(JSON.parse(text));
    } catch {
      body = undefined;
    }
    if (!body) return fallBack();
    const nodeId = match[1];
    const address = clientAddress(headers, info, deps.settings.TRUST_PROXY);
    let answer: string;
    try {
      answer = JSON.stringify(
        await recordHeartbeat(deps, services, { address, token }, nodeId, body),
      );
    } catch {
      // A refusal or a failure: the full path answers it, with the error shape, log line and counters.
      return fallBack();
    }
    const incoming = headers.get("x-request-id");
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
    const durationMs = performance.now() - started;
    telemetry.request("POST", ROUTE, 200, durationMs / 1000);
    requestLog.record({
      request_id: requestId,
      method: "POST",
      route: ROUTE,
      path: `/api/v1/nodes/${nodeId}/heartbeat`,
      status: 200,
      duration_ms: Math.round(durationMs * 100) / 100,
      address,
    });
    return new Response(answer, {
      status: 200,
      headers: {
        "content-type": "application/json",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "x-request-id": requestId,
      },
    });
  };
}

function clientAddress(headers: Headers, info: Deno.ServeHandlerInfo | undefined, trustProxy: boolean) {
  if (trustProxy) {
    const forwarded = headers.get("x-forwarded-for")?.split(",")[0]?.trim();
    if (forwarded) return forwarded.slice(0, 64);
  }
  const remote = info?.remoteAddr as Deno.NetAddr | undefined;
  return remote?.hostname ?? "unknown";
}
