// The client's HTTP layer: one JSON request with its own timeout, the error it throws, and reading the
// server's error answers. No state: the client passes its fetch, URL and token.

/** What the server answered: status, parsed JSON body (or the text), headers. */
export interface HttpResult {
  status: number;
  body: unknown;
  headers: Headers;
}

export interface RequestOptions {
  json?: unknown;
  token?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal: AbortSignal;
}

/** A refused or failed request to the server. */
export class CentralRequestError extends Error {
  constructor(message: string, readonly status?: number, readonly code?: string) {
    super(message);
    this.name = "CentralRequestError";
  }
}

/** Thrown out of a request or a wait when the client is stopping (the caller's signal aborted). */
export class Stopped extends Error {}

/** One request to `url` (`method` and `path` name it in errors) with a JSON body and answer, aborted after
 * `timeoutMs` or when `signal` aborts (then Stopped). Network trouble throws CentralRequestError; any
 * answer, whatever its status, is returned. */
export async function request(
  fetchFn: typeof fetch,
  url: string,
  method: string,
  path: string,
  options: RequestOptions & { timeoutMs: number },
): Promise<HttpResult> {
  const headers: Record<string, string> = { accept: "application/json", ...options.headers };
  if (options.json !== undefined) headers["content-type"] = "application/json";
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  // Our own timer rather than AbortSignal.timeout, so nothing is left pending after the call.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onAbort = () => controller.abort();
  options.signal.addEventListener("abort", onAbort, { once: true });
  if (options.signal.aborted) controller.abort();
  let text: string;
  let response: Response;
  try {
    response = await fetchFn(url, {
      method,
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      signal: controller.signal,
    });
    text = await response.text();
  } catch (error) {
    if (options.signal.aborted) throw new Stopped("stopped");
    const reason = timedOut ? "timed out" : error instanceof Error ? error.message : String(error);
    throw new CentralRequestError(`${method} ${path}: ${reason}`);
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener("abort", onAbort);
  }
  let body: unknown = null;
  if (text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: response.status, body, headers: response.headers };
}

/** A delay that resolves early on notify() or when the signal aborts; leaves no timer behind. */
export class Waker {
  #resolvers = new Set<() => void>();
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.#resolvers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
      this.#resolvers.add(done);
    });
  }
  notify(): void {
    for (const resolve of [...this.#resolvers]) resolve();
  }
}

/** A plain delay that ends early when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Waker().wait(ms, signal);
}

/** `promise`, or Stopped as soon as `signal` aborts. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Stopped("stopped"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Stopped("stopped"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** The error code of a JSON error answer. */
export function errorCode(body: unknown): string | undefined {
  return (body as { error?: { code?: string } } | null)?.error?.code;
}

/** A CentralRequestError for a refused answer: `what`, the status, the server's code and message. */
export function refusal(result: HttpResult, what: string): CentralRequestError {
  const error = (result.body as { error?: { code?: string; message?: string } } | null)?.error;
  const detail = error?.message ? `: ${error.code ?? ""} ${error.message}`.replace(/:\s+/, ": ") : "";
  return new CentralRequestError(`${what} (HTTP ${result.status}${detail})`, result.status, error?.code);
}

/** Whether a 422 answer names `prefix` or a field under it. */
export function namesField(body: unknown, prefix: string): boolean {
  const details = (body as { error?: { details?: { field?: string }[] } } | null)?.error?.details ?? [];
  return details.some((d) => d.field === prefix || d.field?.startsWith(`${prefix}.`));
}

/** The sample indexes a refused metrics batch names (samples.<i>...). */
export function refusedIndexes(body: unknown): Set<number> {
  const details = (body as { error?: { details?: { field?: string }[] } } | null)?.error?.details ?? [];
  const indexes = new Set<number>();
  for (const detail of details) {
    const match = detail.field?.match(/^samples\.(\d+)(?:\.|$)/);
    if (match) indexes.add(Number(match[1]));
  }
  return indexes;
}
