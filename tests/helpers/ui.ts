// The console as a browser and as htmx use it: pages fetched with a session's cookie, urlencoded form
// posts (with the CSRF token the console's forms carry, or without it to see them refused).
import assert from "node:assert/strict";
import type { TestApp } from "./app.ts";
import type { TestSession } from "./auth.ts";

export const HTML = { accept: "text/html" };
/** What htmx 4 sends with a fragment request (it always asks for text/html). */
export const PARTIAL = { "hx-request": "true", "hx-request-type": "partial", accept: "text/html" };

/** Form fields; an array is the same field repeated (checkboxes). */
export type FormFields = Record<string, string | string[]>;

/** GET as a browser, logged in as `session` when given; `headers` come last (they may replace the cookie). */
export async function page(
  ctx: TestApp,
  path: string,
  session?: TestSession | null,
  headers: Record<string, string> = {},
): Promise<{ status: number; html: string; res: Response }> {
  const res = await ctx.call("GET", path, {
    headers: { ...HTML, ...(session ? { cookie: session.cookie } : {}), ...headers },
  });
  return { status: res.status, html: await res.text(), res };
}

/** POST a form as a browser, logged in as `session` when given, with no CSRF token unless `form` has one. */
export function postForm(
  ctx: TestApp,
  path: string,
  session: TestSession | null,
  form: FormFields,
  headers: Record<string, string> = {},
): Promise<Response> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) body.append(k, one);
  return ctx.call("POST", path, {
    body: body.toString(),
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...HTML,
      ...(session ? { cookie: session.cookie } : {}),
      ...headers,
    },
  });
}

/** POST a form as the console's own forms do: the session's cookie and its CSRF token as `_csrf`. */
export function submitForm(
  ctx: TestApp,
  path: string,
  session: TestSession,
  form: FormFields,
  headers: Record<string, string> = {},
): Promise<Response> {
  return postForm(ctx, path, session, { _csrf: session.csrfToken, ...form }, headers);
}

/** Asserts a form came back refused the console's way: 422, the message at `field` (the element
 * `id="<field>-error"`) and each of `kept` still the value of a field (what was typed is not lost).
 * Returns the page. */
export async function expectFieldError(res: Response, field: string, kept: string[] = []): Promise<string> {
  assert.equal(res.status, 422);
  const html = await res.text();
  assert.match(html, new RegExp(`id="${field}-error"`));
  for (const value of kept) assert.ok(html.includes(`value="${value}"`), `value="${value}" kept`);
  return html;
}
