// createApp(deps): the whole HTTP surface, used by main.ts and by the tests.
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getConnInfo } from "hono/deno";
import { AppError } from "./core/errors.ts";
import type { CoreDeps } from "./core/deps.ts";
import { createServices, type Services } from "./core/services.ts";
import { VERSION } from "./core/version.ts";
import { type AppEnv, createRouter } from "./routes/env.ts";
import { registerSystemRoutes } from "./routes/system.ts";
import { registerMetricsEndpoint } from "./routes/prometheus.ts";
import { createTelemetry, type Telemetry } from "./core/telemetry.ts";
import { createRequestLog } from "./core/requestLog.ts";
import { type FastPathStats, withAgentFastPath } from "./routes/agentFastPath.ts";
import { clientAddressOf, requestIdFor } from "./routes/requestIdentity.ts";
import { fleetStatusCounts } from "./core/nodes.ts";
import { countNodesByConfigState, poolStats } from "./db/telemetry.ts";
import { isDatabaseUnavailable } from "./db/errors.ts";
import { matchedRoutes } from "hono/route";
import { authenticate } from "./routes/auth.ts";
import { type ErrorPageRenderer, ErrorSchema, registerErrorHandlers } from "./routes/errors.ts";
import { noSniff, noStoreByDefault } from "./routes/securityHeaders.ts";
import { registerAuthRoutes } from "./routes/api/auth.ts";
import { registerUserRoutes } from "./routes/api/users.ts";
import { registerApiKeyRoutes } from "./routes/api/apiKeys.ts";
import { registerAuditRoutes } from "./routes/api/audit.ts";
import { registerAgentConfigRoutes } from "./routes/api/agentConfig.ts";
import { registerAgentRoutes } from "./routes/api/agents.ts";
import { registerNodeRoutes } from "./routes/api/nodes.ts";
import { registerMetricsRoutes } from "./routes/api/metrics.ts";
import { registerEventRoutes } from "./routes/api/events.ts";
import { registerConfigRoutes } from "./routes/api/configs.ts";
import { registerReplayRoutes } from "./routes/api/replay.ts";
import { registerEnrollmentTokenRoutes } from "./routes/api/enrollmentTokens.ts";
import { registerRolloutRoutes } from "./routes/api/rollouts.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { registerUiRoutes } from "./routes/ui/index.ts";
import { pageErrorResponse } from "./routes/ui/errors.ts";

export interface App {
  app: OpenAPIHono<AppEnv>;
  services: Services;
  /** Requests the agents' fast path answered itself (routes/agentFastPath.ts). */
  agentFastPath: FastPathStats;
  /** Stops background work (config watcher, jobs); the pool is the caller's to close. */
  close(): Promise<void>;
}

export interface AppOptions {
  /** How pages (paths outside /api asked for as HTML) show an error; without it every error is JSON. */
  renderErrorPage?: ErrorPageRenderer;
}

export function createApp(givenDeps: CoreDeps, options: AppOptions = {}): App {
  const telemetry = givenDeps.telemetry ?? createTelemetry({ clock: () => givenDeps.clock.now().getTime() });
  const deps: CoreDeps = { ...givenDeps, telemetry };
  const services = createServices(deps);
  const app = createRouter();
  connectTelemetrySources(deps, services, telemetry);
  // Agents' hot routes are summarized at info (core/requestLog.ts); errors and debug keep a line each.
  const requestLog = createRequestLog(deps.logger, { summarize: deps.settings.LOG_LEVEL !== "debug" });

  app.use("*", noSniff);
  app.use("*", async (c, next) => {
    const started = performance.now();
    const requestId = requestIdFor(c.req.header("x-request-id"));
    c.set("requestId", requestId);
    c.set("clientAddress", clientAddress(c, deps.settings.TRUST_PROXY));
    await next();
    c.res.headers.set("X-Request-Id", requestId);
    const durationMs = performance.now() - started;
    const status = c.res.status;
    const route = routeTemplate(c);
    telemetry.request(c.req.method, route, status, durationMs / 1000);
    if (status === 413 || status === 429 || status === 503) {
      telemetry.refusal(c.get("errorCode") ?? `http_${status}`);
    }
    requestLog.record({
      request_id: requestId,
      method: c.req.method,
      route,
      path: c.req.path,
      status,
      duration_ms: Math.round(durationMs * 100) / 100,
      address: c.get("clientAddress"),
    });
  });

  app.use("/api/*", noStoreByDefault);
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: deps.settings.MAX_BODY_BYTES,
      onError: () => {
        throw new AppError(
          413,
          "payload_too_large",
          `request body exceeds ${deps.settings.MAX_BODY_BYTES} bytes`,
        );
      },
    }),
  );

  // Resolves c.var.principal (API key or session cookie, CSRF checked) before any /api route runs.
  app.use("/api/*", authenticate(deps));

  app.openAPIRegistry.register("Error", ErrorSchema);
  app.openAPIRegistry.registerComponent("securitySchemes", "nodeToken", {
    type: "http",
    scheme: "bearer",
    description: "The node token returned once by POST /api/v1/register (X-API-Key is accepted too).",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
    type: "http",
    scheme: "bearer",
    description: "An API key created by an admin (ack_...).",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "session", {
    type: "apiKey",
    in: "cookie",
    name: "acs_session",
    description: "Session cookie from POST /api/v1/auth/login; unsafe methods also need X-CSRF-Token.",
  });

  // Each resource registers its routes here; all share the services above.
  registerSystemRoutes(app, deps);
  registerMetricsEndpoint(app, deps, telemetry);
  registerAuthRoutes(app, deps);
  registerUserRoutes(app, deps);
  registerApiKeyRoutes(app, deps);
  registerAuditRoutes(app, deps);
  registerAgentConfigRoutes(app, deps, services);
  registerAgentRoutes(app, deps, services);
  registerNodeRoutes(app, deps);
  registerMetricsRoutes(app, deps);
  registerEventRoutes(app, deps);
  registerConfigRoutes(app, deps, services);
  registerReplayRoutes(app, deps);
  registerEnrollmentTokenRoutes(app, deps);
  registerRolloutRoutes(app, deps, services);
  // The console's pages (plain routes: not in /openapi.json).
  const ui = registerUiRoutes(app, deps, services);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Autoscaler Central",
      version: VERSION,
      description: "Control plane for a fleet of OCI instance-pool autoscalers.",
    },
  });

  // Pages (paths outside /api asked for as HTML) get the console's HTML error pages.
  registerErrorHandlers(
    app,
    deps.logger,
    options.renderErrorPage ?? ((c, error) => pageErrorResponse(ui, c as Context<AppEnv>, error)),
    (error) => {
      if (isDatabaseUnavailable(error)) telemetry.dbError("unavailable");
      else if ((error as { sqlMessage?: string })?.sqlMessage !== undefined) telemetry.dbError("query");
    },
  );

  // Plainly valid heartbeats and metric batches with a known token skip the router, middleware and
  // validator (routes/agentFastPath.ts); everything else, refusals included, goes the full way. app.request()
  // goes through app.fetch too, so the tests see what the server does.
  const fullFetch = app.fetch;
  const agentFastPath: FastPathStats = { answered: 0 };
  app.fetch = withAgentFastPath(
    fullFetch,
    deps,
    services,
    telemetry,
    requestLog,
    agentFastPath,
  ) as typeof app.fetch;

  return {
    app,
    services,
    agentFastPath,
    close: async () => {
      await services.close();
      requestLog.close();
    },
  };
}

function clientAddress(c: Context, trustProxy: boolean): string {
  return clientAddressOf(c.req.header("x-forwarded-for"), () => {
    try {
      return getConnInfo(c).remote.address;
    } catch {
      return undefined; // app.request() in tests has no connection
    }
  }, trustProxy);
}

/** The template of the route that answered ("/api/v1/nodes/:id/heartbeat"), or "unmatched": label values
 * stay few. Middlewares (method ALL, wildcard paths) match too, before and after the handler. */
function routeTemplate(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i];
    if (route.method !== "ALL" && !route.path.endsWith("*")) return route.path;
  }
  return "unmatched";
}

/** Gauges read at scrape time: this replica's waiting pulls and pool, and the fleet (cached by telemetry). */
function connectTelemetrySources(deps: CoreDeps, services: Services, telemetry: Telemetry): void {
  telemetry.sources.longPollsWaiting = () => services.configWatcher.waiting;
  telemetry.sources.configPollErrors = () => services.configWatcher.stats().poll_errors;
  telemetry.sources.configPolls = () => services.configWatcher.stats().polls;
  telemetry.sources.nodeTokenChecks = () => {
    const { hits, misses } = services.nodeAuth.stats();
    return { memory: hits, database: misses };
  };
  telemetry.sources.heartbeatRows = () => services.heartbeats.stats().rows_written;
  telemetry.sources.dbPool = () => poolStats(deps.pool);
  telemetry.sources.fleet = async () => {
    const [status, configState] = await Promise.all([
      fleetStatusCounts(deps),
      countNodesByConfigState(deps.db),
    ]);
    const { total: _total, ...byStatus } = status;
    return { status: byStatus, configState };
  };
}
