// createApp(deps): the whole HTTP surface, used by main.ts and by the tests.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { bodyLimit } from "hono/body-limit";
import { getConnInfo } from "hono/deno";
import { AppError, ErrorSchema } from "./core/errors.ts";
import type { CoreDeps } from "./core/deps.ts";
import { createServices, type Services } from "./core/services.ts";
import { VERSION } from "./core/version.ts";
import { type AppEnv, createRouter } from "./routes/env.ts";
import { registerSystemRoutes } from "./routes/system.ts";
import { authenticate } from "./routes/auth.ts";
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
import { registerEnrollmentTokenRoutes } from "./routes/api/enrollmentTokens.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { registerUiRoutes } from "./routes/ui/index.ts";
import { pageErrorResponse, wantsHtml } from "./routes/ui/errors.ts";

export interface App {
  app: OpenAPIHono<AppEnv>;
  services: Services;
  /** Stops background work (config watcher, jobs); the pool is the caller's to close. */
  close(): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function createApp(deps: CoreDeps): App {
  const services = createServices(deps);
  const app = createRouter();

  app.use("*", noSniff);
  app.use("*", async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("clientAddress", clientAddress(c, deps.settings.TRUST_PROXY));
    await next();
    c.res.headers.set("X-Request-Id", requestId);
    deps.logger.info("request", {
      request_id: requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
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
  registerEnrollmentTokenRoutes(app, deps);
  // The console's pages (plain routes: not in /openapi.json).
  const ui = registerUiRoutes(app, deps);
  // Browsers asking for a page get HTML errors; everything else the API's JSON shape.
  const respondWithError = (c: Context, error: AppError) =>
    wantsHtml(c) ? pageErrorResponse(ui, c, error) : errorResponse(c, error);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Autoscaler Central",
      version: VERSION,
      description: "Control plane for a fleet of OCI instance-pool autoscalers.",
    },
  });

  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      return respondWithError(
        c,
        new AppError(
          405,
          "method_not_allowed",
          `${c.req.method} is not allowed on ${c.req.path}`,
          undefined,
          {
            Allow: allowed.join(", "),
          },
        ),
      );
    }
    return respondWithError(c, new AppError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`));
  });

  app.onError((error, c) => {
    if (error instanceof AppError) return respondWithError(c, error);
    if (error instanceof HTTPException) {
      const status = error.status as AppError["status"];
      if (status === 415) {
        return respondWithError(
          c,
          new AppError(
            415,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
          ),
        );
      }
      const code = status === 400 ? "bad_request" : status === 401 ? "unauthorized" : `http_${status}`;
      return respondWithError(c, new AppError(status, code, error.message || "request refused"));
    }
    if (isDatabaseUnavailable(error)) {
      deps.logger.error("database unavailable", { request_id: c.get("requestId"), error });
      return respondWithError(
        c,
        new AppError(503, "database_unavailable", "the database is unreachable; retry later"),
      );
    }
    deps.logger.error("unhandled error", { request_id: c.get("requestId"), error });
    return respondWithError(c, new AppError(500, "internal_error", "internal error"));
  });

  return { app, services, close: () => services.close() };
}

export function errorResponse(c: Context, error: AppError): Response {
  const requestId = c.get("requestId") as string | undefined;
  const body = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
      ...(requestId ? { request_id: requestId } : {}),
    },
  };
  const response = c.json(body, error.status);
  for (const [name, value] of Object.entries(error.headers ?? {})) response.headers.set(name, value);
  return response;
}

function clientAddress(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
    if (forwarded) return forwarded.slice(0, 64);
  }
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown"; // app.request() in tests has no connection
  }
}

const DB_DOWN_CODES = new Set([
  "ECONNREFUSED",
  "ETIMEDOUT",
  "ENOTFOUND",
  "PROTOCOL_CONNECTION_LOST",
  "ER_CON_COUNT_ERROR",
  "EPIPE",
  "ECONNRESET",
]);

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: string })?.code ?? (error as { cause?: { code?: string } })?.cause?.code;
  return code !== undefined && DB_DOWN_CODES.has(code);
}

const routePatterns = new WeakMap<object, { method: string; regex: RegExp }[]>();

function allowedMethods(app: OpenAPIHono<AppEnv>, path: string): string[] {
  let patterns = routePatterns.get(app);
  if (!patterns) {
    patterns = app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => ({
        method: r.method,
        regex: new RegExp(
          "^" +
            r.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/:[^/]+/g, "/[^/]+").replace(/\*/g, ".*") +
            "/?$",
        ),
      }));
    routePatterns.set(app, patterns);
  }
  const methods = new Set(patterns.filter((p) => p.regex.test(path)).map((p) => p.method));
  if (methods.has("GET")) methods.add("HEAD");
  return [...methods];
}
