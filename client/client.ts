// CentralManagementClient: what an autoscaler embeds to register with Autoscaler Central, heartbeat,
// report metrics and receive its config. Uses only fetch; files go through a ClientStore.
//
// Failure model: nothing here throws for network or server trouble. Calls with bad arguments throw at
// once (TypeError/RangeError naming the field); everything else is retried in the background and
// reported through the "error" event.
import { type ClientRuntime, type ClientStore, defaultRuntime, fileSystemStore } from "./store.ts";
import { toYaml } from "./yaml.ts";
import {
  CentralRequestError,
  errorCode,
  type HttpResult,
  namesField,
  raceSignal,
  refusal,
  refusedIndexes,
  request,
  type RequestOptions,
  sleep,
  Stopped,
  Waker,
} from "./http.ts";
import { type MetricSample, validateSample, type WireSample } from "./samples.ts";

export interface PoolInfo {
  instance_pool_id: string;
  display_name?: string;
  compartment_id?: string;
  region?: string;
  current_size?: number;
  min_size?: number;
  max_size?: number;
}

/** A config received from the server, as passed to onConfig. */
export interface ReceivedConfig {
  version: number;
  hash: string;
  body: Record<string, unknown>;
  /** The YAML text written to localConfigPath: the server's text as the operator wrote it. */
  yaml: string;
}

export interface ClientOptions {
  /** The API root, e.g. "http://central:8000/api" ("/api/v1" and a trailing slash are accepted too). */
  centralApiUrl: string;
  /** The autoscaler's config.yaml: sent at registration, replaced when the server has a new config. */
  localConfigPath: string;
  /** Needed to register (and to re-enroll when the node token is refused). Default: env
   * CENTRAL_ENROLLMENT_TOKEN. */
  enrollmentToken?: string;
  /** Unique node name, [A-Za-z0-9._-]{1,128}. Default: env CENTRAL_NODE_NAME, else the host name. */
  nodeName?: string;
  hostname?: string;
  address?: string;
  region?: string;
  labels?: Record<string, string>;
  pools?: PoolInfo[];
  agentVersion?: string;
  /** Where node id and token are kept. Default: `<localConfigPath>.central-state.json` (mode 0600). */
  statePath?: string;
  /** Samples kept while the server is unreachable; the oldest are dropped beyond it. Default 10,000. */
  bufferSize?: number;
  /** Samples per request, at most 1,000. Default 1,000. */
  batchSize?: number;
  /** How long a sample may wait for a fuller batch. Default 5,000 ms. */
  flushIntervalMs?: number;
  /** Called after a new config is written; throw (or reject) to ack it as failed. */
  onConfig?: (config: ReceivedConfig) => void | Promise<void>;
  /** Send the current config.yaml at registration (the server keeps it as version 1). Default true. */
  sendConfigAtRegistration?: boolean;
  /** Overrides the heartbeat interval the server asks for (tests, simulations). */
  heartbeatIntervalMs?: number;
  /** Seconds a config long-poll waits on the server (0..60). Default 30. */
  configWaitS?: number;
  /** Backoff after failures: first delay and cap. Defaults 1,000 ms and 60,000 ms. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Timeout of ordinary requests. Default 15,000 ms. */
  requestTimeoutMs?: number;
  /** Wait between registration attempts while the server answers 409 node_name_taken (the name belongs to
   * a node this agent cannot prove it is). Default 300,000 ms; setEnrollmentToken() ends the wait. */
  nameTakenRetryMs?: number;
  fetch?: typeof fetch;
  store?: ClientStore;
  runtime?: ClientRuntime;
}

export interface ClientStats {
  /** Samples waiting to be sent (including a batch in flight). */
  buffered: number;
  /** Samples the server took (accepted + duplicates). */
  sent: number;
  accepted: number;
  duplicates: number;
  /** Samples lost: overflow of the buffer, refused by the server (422), or given after stop(). */
  dropped: number;
  droppedOverflow: number;
  droppedRejected: number;
  droppedAfterStop: number;
  heartbeats: number;
  registrations: number;
  /** Registrations refused because the name belongs to a node this agent could not prove it is. */
  nameTaken: number;
  configsApplied: number;
  configsFailed: number;
}

export type ClientEventMap = {
  error: { error: Error; context: string };
  registered: { nodeId: string; nodeName: string; created: boolean; reason: "initial" | "reenroll" };
  config: { hash: string; version: number; status: "applied" | "failed"; error?: string };
  dropped: { count: number; reason: "overflow" | "rejected" | "stopped"; total: number };
  heartbeat: { desiredConfigHash: string | null; heartbeatIntervalS: number; configChanged: boolean };
};

type Listener<K extends keyof ClientEventMap> = (event: ClientEventMap[K]) => void;

interface SavedState {
  central_api_url: string;
  node_name: string;
  node_id: string;
  node_token: string;
  applied_config_hash: string | null;
  updated_at: string;
}

const NODE_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_BATCH = 1000;

/** Normalizes ".../api", ".../api/", ".../api/v1" (and a bare origin) to ".../api/v1". */
export function normalizeApiUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`centralApiUrl must be an http(s) URL (got ${JSON.stringify(raw)})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`centralApiUrl must be an http(s) URL (got ${JSON.stringify(raw)})`);
  }
  let path = url.pathname.replace(/\/+$/, "");
  if (path.endsWith("/api/v1")) { /* as is */ }
  else if (path.endsWith("/api")) path += "/v1";
  else path += "/api/v1";
  return `${url.origin}${path}`;
}

export class CentralManagementClient {
  readonly apiUrl: string;
  readonly localConfigPath: string;
  readonly statePath: string;

  #options: ClientOptions;
  #fetch: typeof fetch;
  #store: ClientStore;
  #runtime: ClientRuntime;
  #bufferSize: number;
  #batchSize: number;
  #flushIntervalMs: number;
  #retryBaseMs: number;
  #retryMaxMs: number;
  #requestTimeoutMs: number;
  #configWaitS: number;

  #listeners = new Map<keyof ClientEventMap, Set<(event: never) => void>>();
  #nodeName = "";
  #hostname = "";
  #enrollmentToken: string | undefined;
  #nodeId: string | undefined;
  #nodeToken: string | undefined;
  /** The last node token this client held: presented at registration, so a node whose token still works
   * rotates it without an operator (the server ignores it otherwise). */
  #lastNodeToken: string | undefined;
  #nameTakenRetryMs: number;
  /** Ends the wait after a name clash when an operator's re-enrollment token arrives. */
  #registerWaker = new Waker();
  #appliedHash: string | null = null;
  /** The hash the config watch waits past: applied or, after a failure, the refused one. */
  #seenHash: string | null = null;
  #heartbeatIntervalMs = 30_000;
  #startedAt = 0;
  #registering: Promise<void> | undefined;
  #registeredWaiters: Array<() => void> = [];
  #decommissioned = false;

  #buffer: WireSample[] = [];
  #inFlight: WireSample[] = [];
  #firstBufferedAt = 0;
  #stats: ClientStats = {
    buffered: 0,
    sent: 0,
    accepted: 0,
    duplicates: 0,
    dropped: 0,
    droppedOverflow: 0,
    droppedRejected: 0,
    droppedAfterStop: 0,
    heartbeats: 0,
    registrations: 0,
    nameTaken: 0,
    configsApplied: 0,
    configsFailed: 0,
  };
  #lastCounts = new Map<string, number>();
  #lastAutoMs = new Map<string, number>();

  #state: "new" | "running" | "stopping" | "stopped" = "new";
  /** Aborts heartbeats, the config watch and registration retries at stop(). */
  #background = new AbortController();
  /** Aborts the metrics sender when the stop deadline passes. */
  #sender = new AbortController();
  /** Wakes the metrics sender: first sample into an empty buffer, a full batch, stop(). */
  #senderWaker = new Waker();
  /** A config adopted at registration that still needs its ack. */
  #pendingAck: string | undefined;
  #loops: Promise<void>[] = [];
  #statePersist: Promise<void> = Promise.resolve();

  constructor(options: ClientOptions) {
    if (!options || typeof options !== "object") throw new TypeError("options are required");
    this.apiUrl = normalizeApiUrl(options.centralApiUrl);
    if (typeof options.localConfigPath !== "string" || options.localConfigPath === "") {
      throw new TypeError("localConfigPath must be a file path");
    }
    if (options.nodeName !== undefined && !NODE_NAME.test(options.nodeName)) {
      throw new TypeError(
        `nodeName must be 1..128 of A-Z a-z 0-9 . _ - (got ${JSON.stringify(options.nodeName)})`,
      );
    }
    this.localConfigPath = options.localConfigPath;
    this.statePath = options.statePath ?? `${options.localConfigPath}.central-state.json`;
    this.#options = options;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#store = options.store ?? fileSystemStore;
    this.#runtime = options.runtime ?? defaultRuntime;
    this.#bufferSize = positiveInt("bufferSize", options.bufferSize, 10_000);
    this.#batchSize = Math.min(positiveInt("batchSize", options.batchSize, MAX_BATCH), MAX_BATCH);
    this.#flushIntervalMs = nonNegative("flushIntervalMs", options.flushIntervalMs, 5_000);
    this.#retryBaseMs = positiveInt("retryBaseMs", options.retryBaseMs, 1_000);
    this.#retryMaxMs = Math.max(this.#retryBaseMs, positiveInt("retryMaxMs", options.retryMaxMs, 60_000));
    this.#requestTimeoutMs = positiveInt("requestTimeoutMs", options.requestTimeoutMs, 15_000);
    this.#nameTakenRetryMs = positiveInt("nameTakenRetryMs", options.nameTakenRetryMs, 300_000);
    this.#configWaitS = nonNegative("configWaitS", options.configWaitS, 30);
    if (this.#configWaitS > 60) {
      throw new RangeError(`configWaitS must be within 0..60 (got ${this.#configWaitS})`);
    }
    if (options.heartbeatIntervalMs !== undefined) {
      this.#heartbeatIntervalMs = positiveInt("heartbeatIntervalMs", options.heartbeatIntervalMs, 30_000);
    }
  }

  // ---- public surface -------------------------------------------------------------------------------

  get nodeId(): string | undefined {
    return this.#nodeId;
  }
  get nodeName(): string {
    return this.#nodeName;
  }
  get appliedConfigHash(): string | null {
    return this.#appliedHash;
  }
  /** Total samples dropped (overflow + refused + after stop). */
  get droppedSamples(): number {
    return this.#stats.dropped;
  }
  get stats(): ClientStats {
    return { ...this.#stats, buffered: this.#buffer.length + this.#inFlight.length };
  }

  on<K extends keyof ClientEventMap>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, set = new Set());
    set.add(listener as (event: never) => void);
    return () => this.off(event, listener);
  }
  off<K extends keyof ClientEventMap>(event: K, listener: Listener<K>): void {
    this.#listeners.get(event)?.delete(listener as (event: never) => void);
  }

  /** Resolves the node name and tokens, loads the saved state, and starts the background loops.
   * Resolves at once: registration happens in the background (see whenRegistered()). */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("start() may be called once");
    this.#state = "running";
    this.#startedAt = Date.now();
    this.#hostname = this.#options.hostname ?? await this.#runtime.hostname();
    this.#enrollmentToken = this.#options.enrollmentToken ??
      await this.#runtime.env("CENTRAL_ENROLLMENT_TOKEN");
    const envName = await this.#runtime.env("CENTRAL_NODE_NAME");
    if (this.#options.nodeName) this.#nodeName = this.#options.nodeName;
    else if (envName) {
      if (!NODE_NAME.test(envName)) {
        this.#state = "new";
        throw new TypeError(
          `CENTRAL_NODE_NAME must be 1..128 of A-Z a-z 0-9 . _ - (got ${JSON.stringify(envName)})`,
        );
      }
      this.#nodeName = envName;
    } else {
      this.#nodeName = this.#hostname.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 128) || "autoscaler";
    }
    await this.#loadState();
    this.#loops.push(
      this.#heartbeatLoop(),
      this.#configLoop(),
      this.#senderLoop(),
    );
    if (!this.#nodeId) void this.#ensureRegistered().catch(() => {});
  }

  /** Replaces the enrollment token, e.g. with a re-enrollment token an operator made for this node after
   * the server answered 409 node_name_taken; a registration waiting after such a refusal tries at once. */
  setEnrollmentToken(token: string): void {
    if (typeof token !== "string" || token.trim() === "") {
      throw new TypeError("token must be a non-empty string");
    }
    this.#enrollmentToken = token.trim();
    this.#registerWaker.notify();
  }

  /** Resolves once the client holds a node id and token (at once when it already does). */
  whenRegistered(): Promise<void> {
    if (this.#nodeId && this.#nodeToken) return Promise.resolve();
    return new Promise((resolve) => this.#registeredWaiters.push(resolve));
  }

  /** Queues one sample; never blocks, never throws for network trouble. Throws TypeError/RangeError
   * naming the field for bad arguments. */
  sendMetrics(sample: MetricSample): void {
    const wire = validateSample(sample);
    if (sample.ts === undefined) {
      // Samples are keyed by (node, pool, millisecond): two calls within one millisecond must not collapse
      // into a duplicate, so an automatic time is kept strictly increasing per pool.
      let ms = Date.parse(wire.ts);
      const last = this.#lastAutoMs.get(wire.instance_pool_id);
      if (last !== undefined && ms <= last) ms = last + 1;
      this.#lastAutoMs.set(wire.instance_pool_id, ms);
      wire.ts = new Date(ms).toISOString();
    }
    if (this.#state === "stopped") {
      this.#drop(1, "stopped");
      return;
    }
    this.#lastCounts.set(wire.instance_pool_id, wire.instance_count);
    if (this.#buffer.length === 0) this.#firstBufferedAt = Date.now();
    this.#buffer.push(wire);
    const overflow = this.#buffer.length + this.#inFlight.length - this.#bufferSize;
    if (overflow > 0) {
      const removable = Math.min(overflow, this.#buffer.length - 1);
      if (removable > 0) this.#buffer.splice(0, removable);
      this.#drop(overflow, "overflow");
      if (removable < overflow) this.#buffer.pop(); // everything older is in flight: the new one goes
    }
    if (this.#buffer.length === 1 || this.#buffer.length >= this.#batchSize) this.#senderWaker.notify();
  }

  /** Stops the loops, sends what it can of the buffer within the deadline (default 5 s), and returns. */
  async stop(options: { deadlineMs?: number } = {}): Promise<ClientStats> {
    if (this.#state === "new") {
      this.#state = "stopped";
      return this.stats;
    }
    if (this.#state !== "running") {
      await Promise.allSettled(this.#loops);
      return this.stats;
    }
    const deadlineMs = options.deadlineMs ?? 5_000;
    this.#state = "stopping";
    this.#background.abort();
    this.#senderWaker.notify();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs));
    const loops = Promise.allSettled(this.#loops);
    await Promise.race([loops, deadline]);
    clearTimeout(timer);
    this.#sender.abort();
    this.#senderWaker.notify();
    await loops;
    await this.#registering?.catch(() => {});
    await this.#statePersist;
    this.#state = "stopped";
    for (const resolve of this.#registeredWaiters.splice(0)) resolve();
    return this.stats;
  }

  // ---- events ---------------------------------------------------------------------------------------

  #emit<K extends keyof ClientEventMap>(event: K, payload: ClientEventMap[K]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) {
      if (event === "error") {
        const { error, context } = payload as ClientEventMap["error"];
        console.warn(`[central-mgmt] ${context}: ${error.message}`);
      }
      return;
    }
    for (const listener of set) {
      try {
        (listener as Listener<K>)(payload);
      } catch { /* a listener's failure is not ours */ }
    }
  }

  #error(context: string, error: unknown): void {
    this.#emit("error", { error: error instanceof Error ? error : new Error(String(error)), context });
  }

  #drop(count: number, reason: "overflow" | "rejected" | "stopped"): void {
    if (count <= 0) return;
    this.#stats.dropped += count;
    if (reason === "overflow") this.#stats.droppedOverflow += count;
    else if (reason === "rejected") this.#stats.droppedRejected += count;
    else this.#stats.droppedAfterStop += count;
    this.#emit("dropped", { count, reason, total: this.#stats.dropped });
  }

  // ---- state file -----------------------------------------------------------------------------------

  async #loadState(): Promise<void> {
    let text: string | null;
    try {
      text = await this.#store.readText(this.statePath);
    } catch (error) {
      this.#error("reading state file", error);
      return;
    }
    if (text === null) return;
    try {
      const saved = JSON.parse(text) as Partial<SavedState>;
      // Another server or another name means another node: register afresh.
      if (saved.central_api_url !== this.apiUrl || saved.node_name !== this.#nodeName) return;
      if (typeof saved.node_id !== "string" || typeof saved.node_token !== "string") return;
      this.#nodeId = saved.node_id;
      this.#nodeToken = saved.node_token;
      this.#appliedHash = typeof saved.applied_config_hash === "string" ? saved.applied_config_hash : null;
      this.#seenHash = this.#appliedHash;
    } catch (error) {
      this.#error("state file is not valid JSON; registering again", error);
    }
  }

  #saveState(): Promise<void> {
    if (!this.#nodeId || !this.#nodeToken) return this.#statePersist;
    const state: SavedState = {
      central_api_url: this.apiUrl,
      node_name: this.#nodeName,
      node_id: this.#nodeId,
      node_token: this.#nodeToken,
      applied_config_hash: this.#appliedHash,
      updated_at: new Date().toISOString(),
    };
    // Chained so two saves never race on the rename.
    this.#statePersist = this.#statePersist.then(() =>
      this.#store.writeAtomic(this.statePath, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 })
    ).catch((error) => this.#error("writing state file", error));
    return this.#statePersist;
  }

  // ---- HTTP -----------------------------------------------------------------------------------------

  #http(method: string, path: string, options: RequestOptions): Promise<HttpResult> {
    return request(this.#fetch, `${this.apiUrl}${path}`, method, path, {
      ...options,
      timeoutMs: options.timeoutMs ?? this.#requestTimeoutMs,
    });
  }

  /** A node route with the node token; re-enrolls once on 401/403/404, marks 410 decommissioned. */
  async #nodeCall(
    method: string,
    suffix: string,
    options: { json?: unknown; headers?: Record<string, string>; timeoutMs?: number; signal: AbortSignal },
  ): Promise<HttpResult> {
    for (let attempt = 0;; attempt++) {
      await this.#ensureRegistered(options.signal);
      const token = this.#nodeToken!;
      const result = await this.#http(method, `/nodes/${this.#nodeId}${suffix}`, { ...options, token });
      if ((result.status === 401 || result.status === 403 || result.status === 404) && attempt === 0) {
        this.#error(`${method} ${suffix || "/"}`, refusal(result, "node token refused; re-enrolling"));
        await this.#reenroll(token, options.signal);
        continue;
      }
      if (result.status === 410) {
        this.#decommissioned = true;
        throw refusal(result, "this node is decommissioned");
      }
      return result;
    }
  }

  // ---- registration ---------------------------------------------------------------------------------

  /** Waits until registered, registering (with backoff) if needed. Throws Stopped when stopping. */
  #ensureRegistered(signal: AbortSignal = this.#background.signal): Promise<void> {
    if (this.#decommissioned) {
      return Promise.reject(new CentralRequestError("this node is decommissioned", 410));
    }
    if (this.#nodeId && this.#nodeToken) return Promise.resolve();
    this.#registering ??= this.#registerUntilDone().finally(() => this.#registering = undefined);
    return raceSignal(this.#registering, signal);
  }

  async #reenroll(refusedToken: string, signal: AbortSignal): Promise<void> {
    if (this.#nodeToken === refusedToken) {
      this.#lastNodeToken = refusedToken;
      this.#nodeToken = undefined;
      this.#nodeId = undefined;
    }
    await this.#ensureRegistered(signal);
  }

  async #registerUntilDone(): Promise<void> {
    // Registration attempts stop at stop() unless the sender still needs a node to flush to.
    const signal = this.#sender.signal;
    // One id for this registration and its retries: a retry whose first answer was lost (a timeout, a
    // dropped connection) gets the node back instead of 409 node_name_taken.
    const registrationId = randomId();
    for (let failures = 0;; failures++) {
      if (signal.aborted) throw new Stopped("stopped");
      if (this.#decommissioned) throw new CentralRequestError("this node is decommissioned", 410);
      try {
        if (await this.#registerOnce(signal, registrationId)) return;
      } catch (error) {
        if (error instanceof Stopped) throw error;
        this.#error("register", error);
        if (error instanceof CentralRequestError && error.code === "node_name_taken") {
          // Never fight over a name: asking again soon would change nothing. Wait long, or for
          // setEnrollmentToken() with the operator's re-enrollment token.
          await this.#registerWaker.wait(this.#nameTakenRetryMs * (0.9 + Math.random() * 0.2), signal);
          continue;
        }
      }
      await sleep(this.#backoff(failures), signal);
    }
  }

  async #registerOnce(signal: AbortSignal, registrationId: string): Promise<boolean> {
    if (!this.#enrollmentToken) {
      throw new CentralRequestError(
        "no enrollment token: pass enrollmentToken or set CENTRAL_ENROLLMENT_TOKEN to register this node",
      );
    }
    const body: Record<string, unknown> = { ...this.#registrationBody(), registration_id: registrationId };
    let sentConfig = await this.#attachLocalConfig(body);
    const token = this.#nodeToken ?? this.#lastNodeToken;
    let result = await this.#http("POST", "/register", { json: body, signal, token });
    if (result.status === 422 && sentConfig && namesField(result.body, "config")) {
      // The server refuses our config.yaml; register without it rather than not at all.
      this.#error("register", refusal(result, "the server refused config.yaml; registering without it"));
      delete body.config;
      sentConfig = false;
      result = await this.#http("POST", "/register", { json: body, signal, token });
    }
    this.#checkRegistered(result);
    await this.#adoptRegistration(result, sentConfig);
    return true;
  }

  /** The register body, without the config. */
  #registrationBody(): Record<string, unknown> {
    const body: Record<string, unknown> = {
      enrollment_token: this.#enrollmentToken,
      name: this.#nodeName,
      hostname: this.#hostname.slice(0, 255),
    };
    const o = this.#options;
    if (o.address) body.address = o.address;
    if (o.agentVersion) body.agent_version = o.agentVersion;
    if (o.region) body.region = o.region;
    if (o.labels) body.labels = o.labels;
    if (o.pools) body.pools = o.pools;
    return body;
  }

  /** Adds config.yaml to the register body (unless sendConfigAtRegistration is false); true when it did. */
  async #attachLocalConfig(body: Record<string, unknown>): Promise<boolean> {
    if (this.#options.sendConfigAtRegistration === false) return false;
    try {
      const text = await this.#store.readText(this.localConfigPath);
      if (text === null || text.trim() === "") return false;
      body.config = text;
      return true;
    } catch (error) {
      this.#error(`reading ${this.localConfigPath}`, error);
      return false;
    }
  }

  /** Throws for a refused registration: a name this agent could not prove it owns (wait for an operator),
   * a decommissioned name (stop), anything else (retry). */
  #checkRegistered(result: HttpResult): void {
    if (result.status === 409 && errorCode(result.body) === "node_name_taken") {
      this.#stats.nameTaken++;
      throw refusal(
        result,
        `node name "${this.#nodeName}" is registered to a node this agent could not prove it is; not ` +
          `taking it over. Waiting for an operator's re-enrollment token (setEnrollmentToken or ` +
          `CENTRAL_ENROLLMENT_TOKEN)`,
      );
    }
    if (result.status === 409) {
      this.#decommissioned = true;
      throw refusal(result, "this node name is decommissioned");
    }
    if (result.status !== 200 && result.status !== 201) throw refusal(result, "registration refused");
  }

  /** Takes the node id and token of an accepted registration, saves them, and tells who waits. */
  async #adoptRegistration(result: HttpResult, sentConfig: boolean): Promise<void> {
    const answer = result.body as {
      node_id: string;
      node_token: string;
      heartbeat_interval_s?: number;
      config?: { version: number; hash: string; body: Record<string, unknown> } | null;
    };
    if (typeof answer?.node_id !== "string" || typeof answer?.node_token !== "string") {
      throw new CentralRequestError("registration answer lacks node_id/node_token", result.status);
    }
    const reason = this.#stats.registrations > 0 || this.#appliedHash !== null ? "reenroll" : "initial";
    this.#nodeId = answer.node_id;
    this.#nodeToken = answer.node_token;
    this.#lastNodeToken = answer.node_token;
    this.#stats.registrations++;
    if (this.#options.heartbeatIntervalMs === undefined && typeof answer.heartbeat_interval_s === "number") {
      this.#heartbeatIntervalMs = answer.heartbeat_interval_s * 1000;
    }
    // A new node whose config.yaml became version 1: the file already holds that config.
    if (result.status === 201 && sentConfig && answer.config && this.#appliedHash === null) {
      this.#appliedHash = answer.config.hash;
      this.#seenHash = answer.config.hash;
      this.#pendingAck = answer.config.hash;
    }
    await this.#saveState();
    this.#emit("registered", {
      nodeId: answer.node_id,
      nodeName: this.#nodeName,
      created: result.status === 201,
      reason,
    });
    for (const resolve of this.#registeredWaiters.splice(0)) resolve();
  }

  #backoff(failures: number): number {
    const ceiling = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** Math.min(failures, 30));
    return ceiling / 2 + Math.random() * ceiling / 2;
  }

  // ---- heartbeats -----------------------------------------------------------------------------------

  async #heartbeatLoop(): Promise<void> {
    const signal = this.#background.signal;
    while (!signal.aborted && !this.#decommissioned) {
      try {
        await this.#heartbeatOnce(signal);
      } catch (error) {
        if (error instanceof Stopped) break;
        this.#error("heartbeat", error);
      }
      const jitter = 0.9 + Math.random() * 0.2;
      await sleep(this.#heartbeatIntervalMs * jitter, signal);
    }
  }

  async #heartbeatOnce(signal: AbortSignal): Promise<void> {
    const body: Record<string, unknown> = {
      status: "ok",
      uptime_s: Math.floor((Date.now() - this.#startedAt) / 1000),
      applied_config_hash: this.#appliedHash,
    };
    if (this.#options.agentVersion) body.agent_version = this.#options.agentVersion;
    if (this.#options.address) body.address = this.#options.address;
    if (this.#lastCounts.size > 0) {
      body.pools = [...this.#lastCounts].map(([id, count]) => ({
        instance_pool_id: id,
        instance_count: count,
      }));
    }
    const result = await this.#nodeCall("POST", "/heartbeat", { json: body, signal });
    if (result.status !== 200) throw refusal(result, "heartbeat refused");
    this.#stats.heartbeats++;
    const answer = result.body as {
      desired_config_hash?: string | null;
      heartbeat_interval_s?: number;
      config_changed?: boolean;
    };
    if (this.#options.heartbeatIntervalMs === undefined && typeof answer.heartbeat_interval_s === "number") {
      this.#heartbeatIntervalMs = Math.max(1, answer.heartbeat_interval_s) * 1000;
    }
    this.#emit("heartbeat", {
      desiredConfigHash: answer.desired_config_hash ?? null,
      heartbeatIntervalS: answer.heartbeat_interval_s ?? this.#heartbeatIntervalMs / 1000,
      configChanged: answer.config_changed === true,
    });
  }

  // ---- config ---------------------------------------------------------------------------------------

  async #configLoop(): Promise<void> {
    const signal = this.#background.signal;
    let failures = 0;
    while (!signal.aborted && !this.#decommissioned) {
      const began = Date.now();
      let quick = false;
      try {
        await this.#ensureRegistered(signal); // registration may adopt config.yaml as the known version
        if (this.#pendingAck) {
          const hash = this.#pendingAck;
          this.#pendingAck = undefined;
          await this.#ack(hash, undefined, signal);
        }
        const headers: Record<string, string> = {};
        if (this.#seenHash) headers["if-none-match"] = `"${this.#seenHash}"`;
        const result = await this.#nodeCall("GET", `/config?wait=${this.#configWaitS}`, {
          headers,
          signal,
          timeoutMs: this.#configWaitS * 1000 + this.#requestTimeoutMs,
        });
        if (result.status === 200) {
          failures = 0;
          await this.#applyConfig(result.body as ReceivedConfig, signal);
          continue;
        }
        if (result.status !== 304 && result.status !== 204) throw refusal(result, "config request refused");
        failures = 0;
        // A server that answers at once without waiting must not make this loop spin.
        quick = Date.now() - began < 500 && this.#configWaitS > 0;
      } catch (error) {
        if (error instanceof Stopped) break;
        this.#error("config", error);
        await sleep(this.#backoff(failures++), signal);
        continue;
      }
      if (quick) await sleep(1_000, signal);
    }
  }

  async #applyConfig(config: ReceivedConfig, signal: AbortSignal): Promise<void> {
    const { hash, version, body } = config;
    if (typeof hash !== "string" || body === null || typeof body !== "object") {
      throw new CentralRequestError("config answer lacks hash/body");
    }
    this.#seenHash = hash;
    if (hash === this.#appliedHash) {
      await this.#ack(hash, undefined, signal); // already running it: nothing to write, confirm only
      return;
    }
    let failure: string | undefined;
    // The server sends the text the operator wrote; older servers send only the body, rendered here.
    const yaml = typeof config.yaml === "string" ? config.yaml : toYaml(body, [
      `Managed by Autoscaler Central: version ${version}, hash ${hash.slice(0, 12)}.`,
      "Local edits are replaced when the server's config changes; edit it there.",
    ]);
    try {
      await this.#store.writeAtomic(this.localConfigPath, yaml, {
        backupPath: `${this.localConfigPath}.bak`,
      });
    } catch (error) {
      failure = `could not write ${this.localConfigPath}: ${(error as Error).message ?? error}`;
    }
    if (failure === undefined && this.#options.onConfig) {
      try {
        await this.#options.onConfig({ version, hash, body, yaml });
      } catch (error) {
        failure = error instanceof Error ? error.message || error.name : String(error);
      }
    }
    if (failure === undefined) {
      this.#appliedHash = hash;
      this.#stats.configsApplied++;
      await this.#saveState();
    } else {
      this.#stats.configsFailed++;
      this.#error("config", new Error(`config ${hash.slice(0, 12)} not applied: ${failure}`));
    }
    this.#emit("config", {
      hash,
      version,
      status: failure === undefined ? "applied" : "failed",
      error: failure,
    });
    await this.#ack(hash, failure, signal);
  }

  async #ack(hash: string, failure: string | undefined, signal: AbortSignal): Promise<void> {
    const json = failure === undefined
      ? { hash, status: "applied" }
      : { hash, status: "failed", error: failure.slice(0, 2000) };
    for (let attempt = 0; attempt < 5 && !signal.aborted; attempt++) {
      try {
        const result = await this.#nodeCall("POST", "/config/ack", { json, signal });
        if (result.status === 200) return;
        if (result.status < 500 && result.status !== 429) throw refusal(result, "config ack refused");
      } catch (error) {
        if (error instanceof Stopped) return;
        if (error instanceof CentralRequestError && error.status !== undefined && error.status < 500) {
          this.#error("config ack", error);
          return;
        }
        this.#error("config ack", error);
      }
      await sleep(this.#backoff(attempt), signal);
    }
  }

  // ---- metrics --------------------------------------------------------------------------------------

  async #senderLoop(): Promise<void> {
    const signal = this.#sender.signal;
    let failures = 0;
    while (!signal.aborted) {
      const stopping = this.#state !== "running";
      if (this.#buffer.length === 0) {
        if (stopping) return;
        await this.#senderWaker.wait(60_000, this.#background.signal);
        if (this.#background.signal.aborted && this.#buffer.length === 0) return;
        continue;
      }
      if (this.#decommissioned) {
        return;
      }
      if (!stopping && this.#buffer.length < this.#batchSize) {
        const due = this.#firstBufferedAt + this.#flushIntervalMs - Date.now();
        if (due > 0) {
          await this.#senderWaker.wait(due, this.#background.signal);
          continue;
        }
      }
      const batch = this.#buffer.splice(0, this.#batchSize);
      this.#inFlight = batch;
      let outcome: "sent" | "retry" | "done";
      try {
        outcome = await this.#sendBatch(batch, signal);
      } catch (error) {
        if (!(error instanceof Stopped)) this.#error("metrics", error);
        outcome = "retry";
      }
      this.#inFlight = [];
      if (outcome === "retry") {
        this.#buffer.unshift(...batch);
        if (signal.aborted) return;
        // Not woken by new samples: a backoff is a backoff. stop() ends it to try a last flush.
        const wakeOn = this.#state === "running" ? this.#background.signal : signal;
        await sleep(this.#backoff(failures++), wakeOn);
      } else {
        failures = 0;
      }
      if (this.#buffer.length > 0) this.#firstBufferedAt = Math.min(this.#firstBufferedAt, Date.now());
      else this.#firstBufferedAt = Date.now();
    }
  }

  async #sendBatch(batch: WireSample[], signal: AbortSignal): Promise<"sent" | "retry" | "done"> {
    let samples = batch;
    for (let round = 0; round < 2; round++) {
      const result = await this.#nodeCall("POST", "/metrics", { json: { samples }, signal });
      if (result.status === 200) {
        const answer = result.body as { accepted?: number; duplicates?: number };
        const accepted = answer.accepted ?? samples.length;
        const duplicates = answer.duplicates ?? 0;
        this.#stats.accepted += accepted;
        this.#stats.duplicates += duplicates;
        this.#stats.sent += accepted + duplicates;
        this.#drop(batch.length - samples.length, "rejected");
        return "sent";
      }
      if (result.status === 413) {
        // Too large for the server's body limit: send smaller batches from now on.
        if (this.#batchSize > 1) {
          this.#batchSize = Math.max(1, Math.floor(Math.min(this.#batchSize, samples.length) / 2));
          this.#error("metrics", refusal(result, `batch too large; batch size now ${this.#batchSize}`));
          if (samples !== batch) this.#drop(batch.length - samples.length, "rejected");
          return samples === batch ? "retry" : "done";
        }
        this.#error("metrics", refusal(result, "a single sample is too large; dropped"));
        this.#drop(batch.length, "rejected");
        return "done";
      }
      if (result.status === 422 && round === 0) {
        // Drop only the samples the server names, then send the rest once more.
        const bad = refusedIndexes(result.body);
        this.#error("metrics", refusal(result, `samples refused (${bad.size || "all"}); dropped`));
        if (bad.size === 0 || bad.size >= samples.length) break;
        samples = samples.filter((_, index) => !bad.has(index));
        continue;
      }
      // Only a 422 judges the samples. Anything else is kept and sent again: 400 means the server could not
      // read the body (this client always sends valid JSON; a server shutting down answers so), 401/403/404
      // that survived a re-enrollment are the node's trouble, 429 and 5xx the server's.
      if (result.status === 422) {
        this.#error("metrics", refusal(result, "batch refused; dropped"));
        break;
      }
      throw refusal(result, "metrics not accepted; will retry");
    }
    this.#drop(batch.length, "rejected");
    return "done";
  }
}

// ---- option checks ----------------------------------------------------------------------------------

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${field} must be a whole number (got ${JSON.stringify(value)})`);
  }
  if (value < 1) throw new RangeError(`${field} must be at least 1 (got ${value})`);
  return value;
}

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${field} must be a number (got ${JSON.stringify(value)})`);
  }
  if (value < 0) throw new RangeError(`${field} must be at least 0 (got ${value})`);
  return value;
}

/** 32 random characters of A-Z a-z 0-9 - _ (24 random bytes). */
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}
