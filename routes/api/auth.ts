// POST /api/v1/auth/login, POST /api/v1/auth/logout, GET /api/v1/auth/me.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import { ROLES } from "../../core/principal.ts";
import { login, logout } from "../../core/sessions.ts";
import { changeOwnPassword } from "../../core/users.ts";
import { badRequest } from "../../core/errors.ts";
import * as fields from "../../core/fields.ts";
import type { AppEnv } from "../env.ts";
import { requireActor, requireRole } from "../guards.ts";
import { clearSessionCookie, presentedSessionCookie, setSessionCookie } from "../auth.ts";
import { jsonBody, jsonResponse, routesFor } from "./schemas.ts";

const LoginBody = z.object({
  username: fields.presentedUsername,
  password: fields.presentedPassword,
}).openapi("LoginRequest");

const SessionUser = z.object({ username: z.string(), role: z.enum(ROLES) });

const LoginResponse = z.object({
  user: SessionUser,
  csrf_token: z.string().openapi({ description: "Send as X-CSRF-Token on POST/PUT/PATCH/DELETE" }),
  expires_at: z.string().openapi({ description: "Sliding: pushed forward by each request" }),
}).openapi("LoginResponse");

const MeResponse = z.object({
  kind: z.enum(["user", "api_key"]),
  username: z.string().optional(),
  api_key: z.object({ id: z.number().int(), name: z.string() }).optional(),
  role: z.enum(ROLES),
}).openapi("Me");

const route = routesFor("auth");

const loginRoute = route("post", "/api/v1/auth/login", "public", {
  summary: "Log in: sets the acs_session cookie and returns the CSRF token",
  request: { body: jsonBody(LoginBody) },
  responses: { 200: jsonResponse(LoginResponse, "Logged in"), ...errorResponses(401, 422, 429) },
});

const logoutRoute = route("post", "/api/v1/auth/logout", "viewer", {
  summary: "Log out: ends the session and clears the cookie (no-op for API keys)",
  responses: { 204: { description: "Logged out" }, ...errorResponses(401, 403) },
});

const meRoute = route("get", "/api/v1/auth/me", "viewer", {
  summary: "Who am I: the calling user or API key and its role",
  responses: { 200: jsonResponse(MeResponse, "The caller"), ...errorResponses(401, 403) },
});

const ChangePasswordBody = z.object({
  current_password: fields.presentedPassword,
  new_password: fields.newPassword,
}).openapi("ChangePassword");

const passwordRoute = route("post", "/api/v1/auth/password", "viewer", {
  summary: "Change your own password (logged-in users; your other sessions end)",
  description: "Wrong current passwords are throttled like failed logins (429 with Retry-After).",
  request: { body: jsonBody(ChangePasswordBody) },
  responses: { 204: { description: "Changed" }, ...errorResponses(400, 401, 403, 422, 429) },
});

export function registerAuthRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(loginRoute, async (c) => {
    const body = c.req.valid("json");
    const result = await login(deps, {
      username: body.username,
      password: body.password,
      address: c.get("clientAddress"),
      userAgent: c.req.header("user-agent"),
      currentSessionToken: presentedSessionCookie(c),
    });
    setSessionCookie(c, deps.settings, result.sessionToken);
    c.header("Cache-Control", "no-store");
    return c.json({
      user: { username: result.user.username, role: result.user.role },
      csrf_token: result.csrfToken,
      expires_at: result.expiresAt.toISOString(),
    }, 200);
  });

  app.openapi(logoutRoute, async (c) => {
    const { principal, address } = requireActor(c, "viewer");
    if (principal.kind === "user") await logout(deps, { principal, address });
    clearSessionCookie(c, deps.settings);
    return c.body(null, 204);
  });

  app.openapi(meRoute, (c) => {
    const principal = requireRole(c, "viewer");
    if (principal.kind === "user") {
      return c.json({ kind: "user" as const, username: principal.username, role: principal.role }, 200);
    }
    return c.json({
      kind: "api_key" as const,
      api_key: { id: principal.keyId, name: principal.name },
      role: principal.role,
    }, 200);
  });

  app.openapi(passwordRoute, async (c) => {
    const { principal, address } = requireActor(c, "viewer");
    if (principal.kind !== "user") throw badRequest("API keys have no password; log in as a user");
    await changeOwnPassword(deps, { principal, address }, c.req.valid("json"));
    return c.body(null, 204);
  });
}
