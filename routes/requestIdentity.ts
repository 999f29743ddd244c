// Which request this is and where it came from: one answer for the app's middleware (app.ts) and for the
// agents' fast path (routes/agentFastPath.ts), which answers before that middleware runs.
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The caller's X-Request-Id when it is a plain one, else a new id. */
export function requestIdFor(incoming: string | null | undefined): string {
  return incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
}

/** The client's address: behind a trusted proxy (TRUST_PROXY) the first X-Forwarded-For address, else the
 * connection's (`remote`, read only when needed); "unknown" without either. */
export function clientAddressOf(
  forwardedFor: string | null | undefined,
  remote: () => string | undefined,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    const forwarded = forwardedFor?.split(",")[0]?.trim();
    if (forwarded) return forwarded.slice(0, 64);
  }
  return remote() ?? "unknown";
}
