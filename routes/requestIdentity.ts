// Which request this is and where it came from: one answer for the app's middleware (app.ts) and for the
// agents' fast path (routes/agentFastPath.ts), which answers before that middleware runs.
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The caller's X-Request-Id when it is a plain one, else a new id. */
export function requestIdFor(incoming: string | null | undefined): string {
  return incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
}

/** The client's address: behind a trusted proxy (TRUST_PROXY) the last X-Forwarded-For address, else the
 * connection's (`remote`, read only when needed); "unknown" without either. The last one is what the proxy
 * saw: most load balancers append to the header the client sent, so an earlier entry is the client's word
 * and would let it pick its own login and registration throttles and its audited address. */
export function clientAddressOf(
  forwardedFor: string | null | undefined,
  remote: () => string | undefined,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    const forwarded = forwardedFor?.split(",").at(-1)?.trim();
    if (forwarded) return forwarded.slice(0, 64);
  }
  return remote() ?? "unknown";
}
