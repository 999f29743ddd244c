// Errors on pages: browsers get HTML, never the API's JSON.
//   - 401 (no or expired session): a plain request is redirected to /login?next=<this page>; an htmx
//     request gets `HX-Redirect` with the page the browser shows (HX-Current-URL), so the browser goes to
//     the login page and comes back there afterwards, instead of swapping an error into the page.
//   - other errors: a full error page (404, 403, 500, ...), or for an htmx fragment request a short
//     message retargeted into the layout's #page-alert region, leaving the fragment being polled intact.
import type { Context } from "hono";
import type { AppError } from "../../core/errors.ts";
import type { AppEnv } from "../env.ts";
import { isPartialRequest, setPageHeaders, type Ui } from "./render.ts";

const TITLES: Record<number, string> = {
  400: "Bad request",
  403: "Not allowed",
  404: "Page not found",
  405: "Method not allowed",
  409: "Conflict",
  413: "Too large",
  422: "Not accepted",
  429: "Too many attempts",
  500: "Something went wrong",
  503: "Service unavailable",
};

const HINTS: Record<number, string> = {
  403: "Your account's role does not allow this. Ask an admin if you need it.",
  404: "The address may be mistyped, or the thing it named was deleted.",
  500:
    "The error was logged with the request id below. Try again; if it persists, tell whoever runs the service.",
  503: "The database did not answer. Try again in a moment.",
};

/** The login URL that brings the user back to `back` afterwards. */
export function loginUrl(back: string): string {
  return back === "/" ? "/login" : `/login?next=${encodeURIComponent(back)}`;
}

function currentPage(c: Context): string {
  const url = new URL(c.req.url);
  const shown = c.req.header("hx-current-url");
  if (shown) {
    try {
      const page = new URL(shown);
      if (page.host === url.host) return page.pathname + page.search;
    } catch {
      // ignore a malformed header; fall back to the request's own path
    }
  }
  return c.req.method === "GET" ? url.pathname + url.search : "/";
}

export function pageErrorResponse(ui: Ui, c: Context<AppEnv>, error: AppError): Response {
  if (error.status === 401) {
    const target = loginUrl(currentPage(c));
    if (c.req.header("hx-request") === "true") {
      return setPageHeaders(c.body(null, 401, { "HX-Redirect": target }));
    }
    return setPageHeaders(c.redirect(target, 303));
  }
  const status = error.status;
  const title = TITLES[status] ?? "Error";
  const data = {
    status,
    message: error.message,
    hint: HINTS[status] ?? "",
    details: error.details ?? [],
    requestId: c.get("requestId"),
  };
  const options = { title, data };
  const response = isPartialRequest(c)
    ? c.html(ui.renderToString(c, "@partials/error-alert", options), status, {
      "HX-Retarget": "#page-alert",
      "HX-Reswap": "innerHTML",
    })
    : c.html(ui.renderToString(c, "@pages/error", options), status);
  for (const [name, value] of Object.entries(error.headers ?? {})) response.headers.set(name, value);
  return setPageHeaders(response);
}
