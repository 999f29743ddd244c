// How an error becomes a response, for every route: the API answers the JSON error shape
// { "error": { "code", "message", "details"?, "request_id"? } } with the status the AppError carries;
// pages answer HTML through the renderer the console plugs in. Also the OpenAPI pieces that document
// that JSON shape, so the shape and its documentation live side by side.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { AppError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { isDatabaseUnavailable } from "../db/errors.ts";
import type { AppEnv } from "./env.ts";

/** What a 503 for an unreachable database tells clients to wait. */
const DATABASE_RETRY_AFTER_S = 5;

export const ErrorSchema = z.object({
  error: z.object({
    code: z.string().openapi({ example: "validation_failed" }),
    message: z.string().openapi({ example: "body.name: Required" }),
    details: z.array(
      z.object({
        field: z.string().optional(),
        message: z.string(),
        line: z.number().int().optional().openapi({
          description: "Config documents sent as YAML text: the 1-based line of the field (or of the " +
            "nearest parent the text has, when the field is missing), or of a syntax error",
        }),
        column: z.number().int().optional().openapi({ description: "1-based column, with line" }),
      }).passthrough(),
    ).optional(),
    request_id: z.string().optional(),
  }),
}).openapi("Error");

/** Response entries for createRoute(): `responses: { 200: ..., ...errorResponses(401, 404) }`. */
export function errorResponses<const S extends number>(...statuses: S[]) {
  const descriptions: Record<number, string> = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Credentials valid but not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone (decommissioned)",
    413: "Body too large",
    415: "Unsupported content type",
    422: "Validation failed; details name each field",
    429: "Too many requests; see Retry-After",
    503: "Unavailable",
  };
  return Object.fromEntries(
    statuses.map((s) => [s, {
      description: descriptions[s] ?? "Error",
      content: { "application/json": { schema: ErrorSchema } },
    }]),
  ) as { [K in S]: { description: string; content: { "application/json": { schema: typeof ErrorSchema } } } };
}

/** Renders an error as an HTML page (status and headers taken from the error). The console supplies it. */
export type ErrorPageRenderer = (c: Context, error: AppError) => Response | Promise<Response>;

/** Pages get HTML, everything else JSON: a path outside /api that a browser asked for (Accept: text/html). */
export function wantsHtml(c: Context): boolean {
  const path = c.req.path;
  if (path === "/api" || path.startsWith("/api/")) return false;
  return (c.req.header("accept") ?? "").includes("text/html");
}

/** The API's JSON error body with the error's status and headers. */
export function errorResponse(c: Context, error: AppError): Response {
  const response = c.json(errorBody(error, c.get("requestId") as string | undefined), error.status);
  for (const [name, value] of Object.entries(error.headers ?? {})) response.headers.set(name, value);
  return response;
}

/** errorResponse without a context (an answer built after the request's middleware finished). */
export function errorJsonResponse(error: AppError, requestId: string | undefined): Response {
  const response = Response.json(errorBody(error, requestId), { status: error.status });
  for (const [name, value] of Object.entries(error.headers ?? {})) response.headers.set(name, value);
  return response;
}

function errorBody(error: AppError, requestId: string | undefined) {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
      ...(requestId ? { request_id: requestId } : {}),
    },
  };
}

/** JSON or HTML, whichever the request wants (JSON when no page renderer is plugged in). */
export function respondWithError(
  c: Context,
  error: AppError,
  renderPage?: ErrorPageRenderer,
): Response | Promise<Response> {
  c.set("errorCode", error.code); // /metrics counts 413, 429 and 503 answers by code
  return renderPage && wantsHtml(c) ? renderPage(c, error) : errorResponse(c, error);
}

/** Any thrown value as the AppError it answers with; what is not ours is logged here. */
export function toAppError(error: unknown, c: Context, logger: Logger): AppError {
  return asAppError(error, c.get("requestId") as string | undefined, logger);
}

/** toAppError without a context. */
export function asAppError(error: unknown, requestId: string | undefined, logger: Logger): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof HTTPException) {
    const status = error.status as AppError["status"];
    if (status === 415) {
      return new AppError(
        415,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
      );
    }
    const code = status === 400 ? "bad_request" : status === 401 ? "unauthorized" : `http_${status}`;
    return new AppError(status, code, error.message || "request refused");
  }
  if (isDatabaseUnavailable(error)) {
    logger.error("database unavailable", { request_id: requestId, error });
    return new AppError(
      503,
      "database_unavailable",
      "the database is unreachable; retry later",
      undefined,
      { "Retry-After": String(DATABASE_RETRY_AFTER_S) },
    );
  }
  logger.error("unhandled error", { request_id: requestId, error });
  return new AppError(500, "internal_error", "internal error");
}

/** 404 for unknown paths, 405 (with Allow) for known paths and another method, and the error handler. */
export function registerErrorHandlers(
  app: OpenAPIHono<AppEnv>,
  logger: Logger,
  renderPage?: ErrorPageRenderer,
  /** Sees every thrown error first (counts database errors for /metrics). */
  observe?: (error: unknown) => void,
): void {
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
        renderPage,
      );
    }
    return respondWithError(
      c,
      new AppError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`),
      renderPage,
    );
  });
  app.onError((error, c) => {
    observe?.(error);
    return respondWithError(c, toAppError(error, c, logger), renderPage);
  });
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
