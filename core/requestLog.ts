// The request log. One JSON line per request, except for the agents' hot routes (heartbeats, metric
// batches, config pulls and acks, and /healthz): there a fleet sends thousands a second, and a line each cost more CPU
// than the heartbeat itself. Their successful answers are counted per route and status and written as one
// "requests summary" line every SUMMARY_INTERVAL_MS (count, mean and max duration); every answer of 400 or
// more is still written on its own line, as is everything at LOG_LEVEL=debug.
import type { Logger } from "./logger.ts";

export const SUMMARY_INTERVAL_MS = 10_000;

/** Route templates whose successful requests are summarized rather than written one by one. */
export const SUMMARIZED_ROUTES: ReadonlySet<string> = new Set([
  "/healthz", // load balancers probe it every few seconds
  "/api/v1/nodes/:id/heartbeat",
  "/api/v1/nodes/:id/metrics",
  "/api/v1/nodes/:id/config",
  "/api/v1/nodes/:id/config/ack",
]);

export interface RequestLogEntry {
  request_id: string;
  method: string;
  /** The route template ("/api/v1/nodes/:id/heartbeat"), or "unmatched". */
  route: string;
  path: string;
  status: number;
  duration_ms: number;
  address: string;
}

export interface RequestLog {
  record(entry: RequestLogEntry): void;
  /** Writes the summary of what was counted since the last one (nothing when nothing was). */
  flush(): void;
  /** Flushes and stops the timer. */
  close(): void;
}

interface Tally {
  count: number;
  totalMs: number;
  maxMs: number;
}

export function createRequestLog(
  logger: Logger,
  options: { summarize: boolean; intervalMs?: number },
): RequestLog {
  const tallies = new Map<string, Tally>();
  let since = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Once closed (shutdown), answers still going out are written one by one, so no summary can follow the
  // service's last line.
  let closed = false;

  const flush = () => {
    if (tallies.size === 0) return;
    const routes: Record<string, { count: number; mean_ms: number; max_ms: number }> = {};
    for (const [key, tally] of tallies) {
      routes[key] = {
        count: tally.count,
        mean_ms: Math.round((tally.totalMs / tally.count) * 100) / 100,
        max_ms: Math.round(tally.maxMs * 100) / 100,
      };
    }
    tallies.clear();
    const now = Date.now();
    logger.info("requests summary", { window_s: Math.round((now - since) / 100) / 10, routes });
    since = now;
  };

  return {
    record(entry) {
      if (closed || !options.summarize || entry.status >= 400 || !SUMMARIZED_ROUTES.has(entry.route)) {
        logger.info("request", {
          request_id: entry.request_id,
          method: entry.method,
          path: entry.path,
          status: entry.status,
          duration_ms: entry.duration_ms,
          address: entry.address,
        });
        return;
      }
      const key = `${entry.method} ${entry.route} ${entry.status}`;
      let tally = tallies.get(key);
      if (!tally) tallies.set(key, tally = { count: 0, totalMs: 0, maxMs: 0 });
      tally.count++;
      tally.totalMs += entry.duration_ms;
      if (entry.duration_ms > tally.maxMs) tally.maxMs = entry.duration_ms;
      if (timer === undefined) {
        const handle = setTimeout(() => {
          timer = undefined;
          flush();
        }, options.intervalMs ?? SUMMARY_INTERVAL_MS);
        Deno.unrefTimer(handle);
        timer = handle;
      }
    },
    flush,
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      flush();
    },
  };
}
