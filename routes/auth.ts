// The authentication middleware: resolves c.var.principal for every /api request from an API key or
// the session cookie. It never refuses an anonymous request (routes decide with requireRole), but a
// presented API key that is unknown, revoked or expired is refused at once (401), and a cookie request
// with an unsafe method must pass the CSRF check (403 csrf_failed).
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { checkSameOrigin, resolveCaller } from "../core/auth.ts";
import type { CoreDeps } from "../core/deps.ts";
import type { Settings } from "../config.ts";
import { SESSION_COOKIE } from "../core/sessions.ts";
import type { AppEnv } from "./env.ts";

/** Paths that read no principal and must work with a stale cookie and no CSRF token. */
const SESSION_IGNORED_PATHS = new Set(["/api/v1/auth/login"]);

export function authenticate(deps: CoreDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const caller = await resolveCaller(deps, {
      method: c.req.method,
      authorization: c.req.header("authorization"),
      xApiKey: c.req.header("x-api-key"),
      sessionCookie: getCookie(c, SESSION_COOKIE),
      csrfToken: c.req.header("x-csrf-token"),
      origin: c.req.header("origin"),
      host: requestHost(c, deps.settings.TRUST_PROXY),
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

/** The host the browser addressed: the proxy's X-Forwarded-Host when it is trusted, else Host. */
export function requestHost(c: Context, trustProxy: boolean): string {
  const forwardedHost = trustProxy ? c.req.header("x-forwarded-host")?.split(",")[0]?.trim() : undefined;
  return forwardedHost || c.req.header("host") || new URL(c.req.url).host;
}

/** Refuses (403) a form post sent from another origin: the login and setup forms, which carry no CSRF token. */
export function refuseForeignOrigin(c: Context, settings: Settings): void {
  checkSameOrigin({ origin: c.req.header("origin"), host: requestHost(c, settings.TRUST_PROXY) });
}

/** Hosts a browser treats as secure over plain HTTP (it keeps Secure cookies for them). */
const LOOPBACK_HOST = /^(localhost|[^.]+\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** True when this login would not hold: in production the session cookie is Secure, and a browser drops a
 * Secure cookie sent over plain HTTP to any host but a loopback one. Shown on the login and setup pages so
 * an operator who reached the console by http://host:8000 learns why instead of being sent back to log in. */
export function sessionCookieWouldBeDropped(c: Context, settings: Settings): boolean {
  if (settings.ENVIRONMENT !== "production") return false;
  // Read even without TRUST_PROXY: it only decides whether a notice is shown, and a proxy that terminates
  // HTTPS in front of a replica left at TRUST_PROXY=false still makes the browser's cookie hold.
  const forwardedProto = c.req.header("x-forwarded-proto")?.split(",")[0]?.trim().toLowerCase();
  const scheme = forwardedProto || new URL(c.req.url).protocol.replace(":", "");
  if (scheme === "https") return false;
  const hostname = requestHost(c, settings.TRUST_PROXY).replace(/:\d+$/, "");
  return !LOOPBACK_HOST.test(hostname);
}
