// The console's one render helper and what every page shares: the Eta engine with the templates
// registered by name, the layout data (user, CSRF token, navigation, flash message, asset URLs), the
// "full page or fragment" decision, and the security headers of every HTML answer.
//
// One URL, two answers: a plain GET (or an htmx request that targets the whole body, a history restore)
// gets the page inside views/layout.eta; an htmx request with `HX-Request-Type: partial` gets only the
// partial the page includes, so the same template renders the first load and the update.
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { Eta } from "eta/core";
import type { CoreDeps } from "../../core/deps.ts";
import { type Role, roleAtLeast } from "../../core/principal.ts";
import { VERSION } from "../../core/version.ts";
import { TEMPLATES } from "../../views/templates.ts";
import type { AppEnv } from "../env.ts";
import { formatCsp, STRICT_CSP } from "../securityHeaders.ts";
import { assetUrl } from "./assets.ts";
import { createFormat, type Format } from "./format.ts";

/** The shared strict policy (routes/securityHeaders.ts): no inline script, no eval, never framed. */
export const PAGE_CSP = formatCsp(STRICT_CSP);

const FLASH_COOKIE = "acs_flash";

export type NavKey = "dashboard" | "nodes" | "pools" | "rollouts" | "events" | "audit" | "admin" | "none";

export interface PageUser {
  username: string;
  role: Role;
}

/** What the layout and every template can read as `it.*` besides the page's own data. */
export interface PageContext {
  title: string;
  nav: NavKey;
  user: PageUser | null;
  csrf: string;
  can: { operate: boolean; admin: boolean };
  flash: { kind: "ok" | "error"; text: string } | null;
  assets: { css: string; js: string; htmx: string };
  version: string;
  /** Formatting helpers (times relative to the request's clock, numbers, percentages). */
  f: Format;
  /** Path and query of this request, for links that come back here. */
  here: string;
}

export interface RenderOptions {
  /** A page template, e.g. "@pages/nodes" (rendered inside "@layout"). */
  page: string;
  /** The partial the page includes and htmx swaps, e.g. "@partials/node-results". */
  partial?: string;
  title: string;
  nav?: NavKey;
  data?: Record<string, unknown>;
  status?: 200 | 401 | 403 | 404 | 409 | 422 | 429 | 500 | 503;
}

export interface Ui {
  deps: CoreDeps;
  views: Eta;
  /** Full page or partial, by the request's HX-Request-Type. */
  render(c: Context<AppEnv>, options: RenderOptions): Response;
  /** Renders a template with the page context to a string (error fragments, tests). */
  renderToString(c: Context<AppEnv>, template: string, options: Omit<RenderOptions, "page">): string;
  /** A message shown once on the next page (after a redirect). */
  flash(c: Context<AppEnv>, kind: "ok" | "error", text: string): void;
}

export function createViews(): Eta {
  const views = new Eta({ autoEscape: true, autoTrim: false, cache: true, useWith: false, varName: "it" });
  for (const [name, text] of Object.entries(TEMPLATES)) views.loadTemplate(name, text);
  return views;
}

/** True for htmx requests that swap part of a page (they get the partial, not the layout). */
export function isPartialRequest(c: Context): boolean {
  return c.req.header("hx-request") === "true" && c.req.header("hx-request-type") === "partial";
}

export function setPageHeaders(response: Response): Response {
  const h = response.headers;
  h.set("Content-Security-Policy", PAGE_CSP);
  h.set("Referrer-Policy", "same-origin");
  h.set("X-Frame-Options", "DENY");
  h.set("Cache-Control", "no-store");
  h.append("Vary", "HX-Request, HX-Request-Type");
  return response;
}

export function createUi(deps: CoreDeps): Ui {
  const views = createViews();

  const context = (
    c: Context<AppEnv>,
    options: Omit<RenderOptions, "page">,
  ): PageContext & Record<string, unknown> => {
    const principal = c.get("principal");
    const user = principal?.kind === "user" ? { username: principal.username, role: principal.role } : null;
    const url = new URL(c.req.url);
    return {
      title: options.title,
      nav: options.nav ?? "none",
      user,
      csrf: c.get("csrfToken") ?? "",
      can: {
        operate: !!user && roleAtLeast(user.role, "operator"),
        admin: !!user && roleAtLeast(user.role, "admin"),
      },
      flash: takeFlash(c),
      assets: { css: assetUrl("app.css"), js: assetUrl("app.js"), htmx: assetUrl("htmx.min.js") },
      version: VERSION,
      f: createFormat(deps.clock.now()),
      here: url.pathname + url.search,
      ...options.data,
    };
  };

  const renderToString = (c: Context<AppEnv>, template: string, options: Omit<RenderOptions, "page">) =>
    views.render(template, context(c, options));

  return {
    deps,
    views,
    renderToString,
    render(c, options) {
      const partial = options.partial && isPartialRequest(c);
      const html = renderToString(c, partial ? options.partial! : options.page, options);
      return setPageHeaders(c.html(html, options.status ?? 200));
    },
    flash(c, kind, text) {
      setCookie(c, FLASH_COOKIE, encodeURIComponent(`${kind}:${text.slice(0, 300)}`), {
        httpOnly: true,
        sameSite: "Lax",
        path: "/",
        maxAge: 60,
        secure: deps.settings.ENVIRONMENT === "production",
      });
    },
  };
}

function takeFlash(c: Context<AppEnv>): PageContext["flash"] {
  const raw = getCookie(c, FLASH_COOKIE);
  if (!raw) return null;
  // A fragment request must not eat the message meant for the next full page.
  if (isPartialRequest(c)) return null;
  deleteCookie(c, FLASH_COOKIE, { path: "/" });
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    return null;
  }
  const colon = text.indexOf(":");
  const kind = text.slice(0, colon) === "error" ? "error" : "ok";
  return { kind, text: text.slice(colon + 1) };
}
