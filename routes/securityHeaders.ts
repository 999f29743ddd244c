// Browser-facing security headers, shared by the API docs and the console pages.
//   - contentSecurityPolicy(): a strict CSP (scripts and styles only from our own origin, no inline
//     script, no eval, no plugins, never framed) plus X-Frame-Options for browsers without CSP 2.
//     A page that needs more extends one directive; the others stay strict.
//   - noSniff / noStoreByDefault: applied app-wide in app.ts.
import type { MiddlewareHandler } from "hono";

export type CspDirective =
  | "default-src"
  | "script-src"
  | "style-src"
  | "img-src"
  | "font-src"
  | "connect-src"
  | "worker-src"
  | "object-src"
  | "base-uri"
  | "form-action"
  | "frame-ancestors";

export type CspDirectives = Record<CspDirective, readonly string[]>;

/** No inline script or eval anywhere: behaviour lives in static modules served from the binary. */
export const STRICT_CSP: CspDirectives = Object.freeze({
  "default-src": ["'self'"],
  "script-src": ["'self'"],
  "style-src": ["'self'"],
  "img-src": ["'self'", "data:"],
  "font-src": ["'self'"],
  "connect-src": ["'self'"],
  "worker-src": ["'self'"],
  "object-src": ["'none'"],
  "base-uri": ["'none'"],
  "form-action": ["'self'"],
  "frame-ancestors": ["'none'"],
});

export function formatCsp(directives: CspDirectives): string {
  return Object.entries(directives).map(([name, values]) => `${name} ${values.join(" ")}`).join("; ");
}

/** Sets the strict CSP (with `extend` replacing whole directives) and X-Frame-Options: DENY. */
export function contentSecurityPolicy(extend: Partial<CspDirectives> = {}): MiddlewareHandler {
  const header = formatCsp({ ...STRICT_CSP, ...extend });
  return async (c, next) => {
    await next();
    c.res.headers.set("Content-Security-Policy", header);
    c.res.headers.set("X-Frame-Options", "DENY");
  };
}

/** X-Content-Type-Options: nosniff, so no response is ever read as another type than it says. */
export const noSniff: MiddlewareHandler = async (c, next) => {
  await next();
  c.res.headers.set("X-Content-Type-Options", "nosniff");
};

/** Cache-Control: no-store unless the route chose a policy: API answers carry secrets (tokens, keys,
 * CSRF tokens) or per-caller data, and a new route is safe without remembering to say so. */
export const noStoreByDefault: MiddlewareHandler = async (c, next) => {
  await next();
  if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", "no-store");
};
