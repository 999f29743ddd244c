// Graceful shutdown without losing request bodies. Deno's server.shutdown() makes every body still being
// read fail ("Cannot read body as underlying resource unavailable"), which the JSON validator would answer
// 400, and clients drop batches answered 400. So on SIGTERM the server drains first: requests already
// in the handler finish (their bodies keep arriving) while new ones get 503 with Connection: close, and
// only when none is left, or the grace period is over, does shutdown() close the connections. A request
// still reading its body then is answered 503 (the server failed to read it), never 400.
import type { Logger } from "../core/logger.ts";

export interface Drain {
  /** Wraps the app's fetch: counts requests in flight, refuses new ones while draining. */
  fetch(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** Starts draining; resolves when no request is in flight or after `graceMs`. */
  drain(graceMs: number): Promise<void>;
  /** From now on the server is closing connections: a 400 for a request with a body means its body could
   * not be read, and becomes a 503. */
  closing(): void;
  readonly inFlight: number;
}

/** app.fetch: Hono takes Deno's handler info as its env (getConnInfo reads the remote address there). */
type Fetch = (request: Request, env?: Deno.ServeHandlerInfo) => Response | Promise<Response>;

export function createDrain(appFetch: Fetch, logger: Pick<Logger, "warn">): Drain {
  let inFlight = 0;
  let draining = false;
  let closing = false;
  let idle: (() => void) | undefined;
  const unavailable = (message: string) =>
    // The API's error shape (routes/errors.ts), built here: this answer never reaches the app.
    new Response(JSON.stringify({ error: { code: "shutting_down", message } }), {
      status: 503,
      headers: { "content-type": "application/json", connection: "close", "retry-after": "1" },
    });
  const settled = () => {
    if (--inFlight === 0) idle?.();
  };
  const passOn = (response: Response) => {
    settled();
    return response;
  };
  const failed = (error: unknown) => {
    settled();
    throw error;
  };
  /** A 400 for a request with a body, while connections close: its body could not be read. */
  const unreadableAtShutdown = async (request: Request, response: Response) => {
    if (response.status !== 400 || request.body === null) return response;
    await response.body?.cancel();
    // The request log above says 400: that was the validator's view of an unreadable body.
    logger.warn("request body unreadable at shutdown: answered 503", {
      request_id: response.headers.get("x-request-id"),
      path: new URL(request.url).pathname,
    });
    return unavailable("the server shut down while reading the request body; send it again");
  };
  return {
    get inFlight() {
      return inFlight;
    },
    fetch(request, info) {
      if (draining) {
        return Promise.resolve(
          unavailable("this replica is shutting down; retry (another replica will answer)"),
        );
      }
      inFlight++;
      // Promise callbacks rather than an async frame: a waiting config pull holds this for up to a minute.
      let answer: Promise<Response>;
      try {
        answer = Promise.resolve(appFetch(request, info));
      } catch (error) {
        answer = Promise.reject(error);
      }
      // A request without a body needs nothing of its own here (no closure while a config pull waits).
      if (request.method === "GET" || request.method === "HEAD") return answer.then(passOn, failed);
      return answer.then(
        (response) => closing ? unreadableAtShutdown(request, response).finally(settled) : passOn(response),
        failed,
      );
    },
    drain(graceMs) {
      draining = true;
      if (inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, graceMs);
        function done() {
          clearTimeout(timer);
          idle = undefined;
          resolve();
        }
        idle = done;
      });
    },
    closing() {
      closing = true;
    },
  };
}
