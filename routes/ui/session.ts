// Who is looking at a page, and what they may do. The pages use the API's session (the acs_session cookie
// and its CSRF token), resolved here for every request outside /api and /static.
//
//   requirePageRole(c, "viewer")   in a GET handler: anonymous -> 401, which routes/ui/errors.ts turns
//                                  into a redirect to /login?next=<this page> (HX-Redirect for htmx)
//   await postedForm(c, "operator") in a POST handler: the same, plus the CSRF token (form field _csrf or
//                                  X-CSRF-Token header) and Origin checked; returns the form's fields and
//                                  the user as the services' actor.
// A viewer never sees edit controls (templates test it.can.operate) and a forged post is refused here.
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { checkCsrf } from "../../core/auth.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { forbidden, unauthorized } from "../../core/errors.ts";
import { type Actor, type Role, roleAtLeast } from "../../core/principal.ts";
import { resolveSession, SESSION_COOKIE, type UserPrincipal } from "../../core/sessions.ts";
import type { AppEnv } from "../env.ts";
import { requestHost } from "../auth.ts";

/** Paths the page session never applies to (the API has its own middleware; static files need none). */
const NOT_PAGES = [
  "/api/",
  "/static/",
  "/healthz",
  "/readyz",
  "/metrics",
  "/openapi.json",
  "/docs",
  "/redoc",
];

export function isPagePath(path: string): boolean {
  return !NOT_PAGES.some((prefix) => path === prefix || path.startsWith(prefix));
}

export function pageSession(deps: CoreDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (isPagePath(c.req.path)) {
      const cookie = getCookie(c, SESSION_COOKIE);
      const session = cookie ? await resolveSession(deps, cookie) : undefined;
      if (session) {
        c.set("principal", session.principal);
        c.set("csrfToken", session.csrfToken);
      }
    }
    await next();
  };
}

/** The logged-in user with at least `role`: 401 (-> login redirect) when anonymous, 403 when short. */
export function requirePageRole(c: Context<AppEnv>, role: Role): UserPrincipal {
  const principal = c.get("principal");
  if (!principal || principal.kind !== "user") throw unauthorized("log in to see this page");
  if (!roleAtLeast(principal.role, role)) {
    throw forbidden(`this needs the ${role} role; you are ${principal.role}`);
  }
  return principal;
}

export type FormFields = Record<string, string | string[]>;

/** Reads a urlencoded or multipart form into fields (repeated names become arrays; files ignored). */
export async function readForm(c: Context<AppEnv>): Promise<FormFields> {
  const body = await c.req.parseBody({ all: true });
  const fields: FormFields = {};
  for (const [name, value] of Object.entries(body)) {
    if (Array.isArray(value)) {
      fields[name] = value.filter((v): v is string => typeof v === "string");
    } else if (typeof value === "string") fields[name] = value;
  }
  return fields;
}

/** A form post from a logged-in user with at least `role`, its CSRF token checked; the user as the services'
 * actor (with the connection's address, for the audit log). */
export async function postedForm(
  c: Context<AppEnv>,
  deps: Pick<CoreDeps, "settings">,
  role: Role,
): Promise<{ actor: Actor<UserPrincipal>; form: FormFields }> {
  const principal = requirePageRole(c, role);
  const form = await readForm(c);
  const host = requestHost(c, deps.settings.TRUST_PROXY);
  checkCsrf(c.get("csrfToken") ?? "", {
    method: c.req.method,
    csrfToken: c.req.header("x-csrf-token") ?? field(form, "_csrf"),
    origin: c.req.header("origin"),
    host,
  });
  return { actor: { principal, address: c.get("clientAddress") }, form };
}

/** One text field ("" when missing; the first when repeated). */
export function field(form: FormFields, name: string): string {
  const value = form[name];
  return (Array.isArray(value) ? value[0] : value) ?? "";
}

/** Several single fields at once, by name (what a form shows again after a refusal). */
export function formValues<const N extends string>(form: FormFields, names: readonly N[]): Record<N, string> {
  return Object.fromEntries(names.map((name) => [name, field(form, name)])) as Record<N, string>;
}

/** A repeated field (checkboxes) as a list. */
export function fields(form: FormFields, name: string): string[] {
  const value = form[name];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** `next` targets after login: only paths on this site ("/nodes?x=1"), never "//evil" or a URL. */
export function safeNext(next: string | undefined | null): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  if (next.startsWith("/login") || next.startsWith("/logout") || next.startsWith("/setup")) return "/";
  return next.slice(0, 2000);
}
