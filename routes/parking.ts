// Waiting config pulls, parked outside the app. A pull that waits (GET .../config?wait=60 while nothing
// changed) used to wait inside the route handler, so for up to a minute every middleware around it stayed
// suspended with its request context: at 10,000 waiting pulls that was more memory than the waits
// themselves. Now the handler hands back a placeholder answer tied to the pull's pending answer, the app's
// middleware finishes with it (request id, headers), and the wrapper around app.fetch returns the real
// answer when it comes, with those headers; the pull then holds only what core/configs.ts startPull keeps
// (node id, known hashes, waiter) and Deno's own request. The request is counted in /metrics and logged
// when it is answered, not when it is parked.
import type { RequestLog } from "../core/requestLog.ts";
import type { Telemetry } from "../core/telemetry.ts";

type Fetch = (request: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response>;

const PLACEHOLDER_STATUS = 202;

export interface Parking {
  /** A placeholder for the route to return; `answer` is the real response, built without the context. */
  park(answer: Promise<Response>, route: string, path: string, address: string): Response;
  /** True for a placeholder (the request middleware does not count or log it: the wrapper will). */
  isParked(response: Response): boolean;
  /** app.fetch, with parked answers awaited and given the placeholder's headers. */
  wrap(appFetch: Fetch): Fetch;
}

interface Parked {
  answer: Promise<Response>;
  route: string;
  path: string;
  address: string;
}

export function createParking(telemetry: Telemetry, requestLog: RequestLog): Parking {
  const parked = new WeakMap<Response, Parked>();
  return {
    park(answer, route, path, address) {
      const placeholder = new Response(null, { status: PLACEHOLDER_STATUS });
      parked.set(placeholder, { answer, route, path, address });
      return placeholder;
    },
    isParked: (response) => parked.has(response),
    wrap: (appFetch) => async (request, info) => {
      const started = performance.now();
      const response = await appFetch(request, info);
      const entry = parked.get(response);
      if (!entry) return response;
      parked.delete(response);
      // What the middleware set on the placeholder (request id, nosniff) goes on the answer.
      const headers = [...response.headers];
      const { route, path, address } = entry;
      const answer = await entry.answer;
      for (const [name, value] of headers) if (!answer.headers.has(name)) answer.headers.set(name, value);
      const durationMs = performance.now() - started;
      telemetry.request(request.method, route, answer.status, durationMs / 1000);
      requestLog.record({
        request_id: answer.headers.get("x-request-id") ?? "",
        method: request.method,
        route,
        path,
        status: answer.status,
        duration_ms: Math.round(durationMs * 100) / 100,
        address,
      });
      return answer;
    },
  };
}
