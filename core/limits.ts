// Limits that protect the service, each a setting: refusals are 413 or 429 with Retry-After and are counted
// in /metrics (autoscaler_central_refusals_total{code}).
import type { Clock } from "./clock.ts";
import { AppError } from "./errors.ts";

/** Fixed-window counter per key (a client address) in this process's memory. Replicas count separately: a
 * limit of N per replica lets a client at most N times the replica count through a load balancer, which is
 * what such a limit is for (stopping floods, not metering). */
export interface RateLimiter {
  /** Counts one request for `key`; returns the seconds to wait when it is over the limit. */
  take(key: string): number | undefined;
}

const MAX_KEYS = 50_000;

export function createRateLimiter(options: { limit: number; windowMs: number; clock: Clock }): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    take(key) {
      const now = options.clock.now().getTime();
      let window = windows.get(key);
      if (!window || now - window.start >= options.windowMs) {
        // Forget finished windows once the map grows, so a scan of many addresses cannot grow it forever.
        if (windows.size >= MAX_KEYS) {
          for (const [k, w] of windows) if (now - w.start >= options.windowMs) windows.delete(k);
          if (windows.size >= MAX_KEYS) windows.clear();
        }
        window = { start: now, count: 0 };
        windows.set(key, window);
      }
      window.count++;
      if (window.count <= options.limit) return undefined;
      return Math.max(1, Math.ceil((window.start + options.windowMs - now) / 1000));
    },
  };
}

export const tooManyRequests = (code: string, message: string, retryAfterS: number) =>
  new AppError(429, code, message, undefined, { "Retry-After": String(retryAfterS) });
