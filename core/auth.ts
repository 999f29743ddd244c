// Who is calling: turns the credentials of a request into a Principal. Shared by the JSON API and the
// pages, so it takes plain values instead of a Hono context.
//   - `Authorization: Bearer ack_...` -> API key (a bad one is refused at once with 401).
//   - node tokens (`acn_...`, or any X-API-Key header) are left to the node routes (core/nodeAuth.ts).
//   - otherwise the `acs_session` cookie -> user; unsafe methods then need the CSRF token and a
//     same-origin Origin (when the browser sends one).
import { resolveApiKey } from "./apiKeys.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError } from "./errors.ts";
import type { Principal } from "./principal.ts";
import { constantTimeEqual, SECRET_PREFIX } from "./secrets.ts";
import { resolveSession } from "./sessions.ts";

export interface RequestCredentials {
  method: string;
  authorization?: string | null;
  xApiKey?: string | null;
  sessionCookie?: string | null;
  /** X-CSRF-Token header (or a form field the page layer reads). */
  csrfToken?: string | null;
  origin?: string | null;
  /** The host the request was sent to (Host, or X-Forwarded-Host behind a trusted proxy). */
  host?: string | null;
  /** Skip the session cookie entirely (the login route: a stale cookie must not block a new login). */
  ignoreSession?: boolean;
}

export interface ResolvedCaller {
  principal?: Principal;
  /** The session's CSRF token, when the caller came by cookie (pages embed it in forms). */
  csrfToken?: string;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function isUnsafeMethod(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

export const csrfFailed = (message: string) => new AppError(403, "csrf_failed", message);

export async function resolveCaller(
  deps: CoreDeps,
  credentials: RequestCredentials,
): Promise<ResolvedCaller> {
  const bearer = credentials.authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  if (bearer?.startsWith(`${SECRET_PREFIX.apiKey}_`)) {
    return { principal: await resolveApiKey(deps, bearer) };
  }
  // Any other explicit credential (node token, X-API-Key) is the node routes' business; the cookie is
  // not consulted then, so a node request never trips over CSRF.
  if (credentials.authorization || credentials.xApiKey) return {};
  if (!credentials.sessionCookie || credentials.ignoreSession) return {};
  const session = await resolveSession(deps, credentials.sessionCookie);
  if (!session) return {};
  if (isUnsafeMethod(credentials.method)) checkCsrf(session.csrfToken, credentials);
  return { principal: session.principal, csrfToken: session.csrfToken };
}

/** Cookie-authenticated unsafe requests must carry the session's CSRF token, and come from our own
 * origin when the browser says where they come from. */
export function checkCsrf(expected: string, credentials: RequestCredentials): void {
  const presented = credentials.csrfToken ?? "";
  if (!presented || !constantTimeEqual(presented, expected)) {
    throw csrfFailed("missing or wrong X-CSRF-Token for a cookie-authenticated request");
  }
  checkSameOrigin(credentials);
}

/** Refuses a request whose Origin (when the browser sent one) is not this host: also the login and setup
 * forms, which have no CSRF token yet, so another site cannot log a browser into an account of its choosing. */
export function checkSameOrigin(credentials: Pick<RequestCredentials, "origin" | "host">): void {
  if (credentials.origin) {
    let originHost: string | undefined;
    try {
      originHost = new URL(credentials.origin).host.toLowerCase();
    } catch {
      originHost = undefined; // "null" (sandboxed frames, some redirects) or garbage
    }
    if (!originHost || originHost !== (credentials.host ?? "").toLowerCase()) {
      throw csrfFailed(`cross-origin request refused (Origin ${credentials.origin})`);
    }
  }
}
