// The authentication middleware: resolves c.var.principal for every /api request from an API key or
// the session cookie. It never refuses an anonymous request (routes decide with requireRole), but a
// presented API key that is unknown, revoked or expired is refused at once (401), and a cookie request
// with an unsafe method must pass the CSRF check (403 csrf_failed).
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { resolveCaller } from "../core/auth.ts";
import type { CoreDeps } from "../core/deps.ts";
import type { Settings } from "../config.ts";
import { SESSION_COOKIE } from "../core/sessions.ts";
import type { AppEnv } from "./env.ts";

/** Paths that read no principal and must work with a stale cookie and no CSRF token. */
const SESSION_IGNORED_PATHS = new Set(["/api/v1/auth/login"]);

export function authenticate(deps: CoreDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const forwardedHost = deps.settings.TRUST_PROXY
      ? c.req.header("x-forwarded-host")?.split(",")[0]?.trim()
      : undefined;
    const caller = await resolveCaller(deps, {
      method: c.req.method,
      authorization: c.req.header("authorization"),
      xApiKey: c.req.header("x-api-key"),
      sessionCookie: getCookie(c, SESSION_COOKIE),
      csrfToken: c.req.header("x-csrf-token"),
      origin: c.req.header("origin"),
      host: forwardedHost || c.req.header("host") || new URL(c.req.url).host,
      ignoreSession: SESSION_IGNORED_PATHS.has(c.req.path),
    });
    if (caller.principal) c.set("principal", caller.principal);
    await next();
  };
}

/** Sets the session cookie after a login (API or page): HttpOnly, SameSite=Lax, Secure in production, no
 * Max-Age (the server decides expiry, sliding; the cookie lasts the browser session). */
export function setSessionCookie(c: Context, settings: Settings, sessionToken: string): void {
  setCookie(c, SESSION_COOKIE, sessionToken, {
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: settings.ENVIRONMENT === "production",
  });
}

/** The session cookie the browser presented: a login passes it on, so the session is rotated (the old
 * one ended) instead of a second one added. */
export function presentedSessionCookie(c: Context): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}

export function clearSessionCookie(c: Context, settings: Settings): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: settings.ENVIRONMENT === "production" });
}
