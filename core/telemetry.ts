// What GET /metrics exports (Prometheus text format, via prom-client). Counters live in memory; hot paths
// hold pre-bound children so an increment is all they pay. Gauges that need the database (fleet counts)
// are computed at scrape time and cached a few seconds, so frequent scrapes from several Prometheus
// servers cost one query per FLEET_CACHE_MS.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export const FLEET_CACHE_MS = 5_000;

/** Latency buckets (seconds): heartbeats take ~1 ms, long-polls up to 60 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

export type SampleOutcome = "accepted" | "duplicate" | "refused";
export type RegistrationOutcome = "created" | "reregistered" | "refused";
export type ConfigDelivery = "config" | "not_modified" | "none";
export type AckOutcome = "applied" | "failed";

/** Sources of gauges read at scrape time (set by the app once its services exist). */
export interface TelemetrySources {
  longPollsWaiting?: () => number;
  dbPool?: () => { total: number; free: number; queued: number; limit: number };
  configPollErrors?: () => number;
  /** Successful polls of the config watcher (node changes and credential changes). */
  configPolls?: () => number;
  /** Node-token checks answered from memory and from the database (core/nodeAuthCache.ts). */
  nodeTokenChecks?: () => { memory: number; database: number };
  /** Heartbeats received and heartbeat rows written (core/heartbeats.ts). */
  heartbeatRows?: () => number;
  /** Node counts per status and per config state (cached by the caller of this module). */
  fleet?: () => Promise<{ status: Record<string, number>; configState: Record<string, number> }>;
}

export interface Telemetry {
  readonly registry: Registry;
  readonly sources: TelemetrySources;
  /** One finished HTTP request; the route is the template ("/api/v1/nodes/:id/heartbeat"). */
  request(method: string, route: string, status: number, seconds: number): void;
  heartbeat(): void;
  samples(outcome: SampleOutcome, count: number): void;
  registration(outcome: RegistrationOutcome): void;
  configDelivery(outcome: ConfigDelivery): void;
  configAck(outcome: AckOutcome): void;
  /** A request refused by a limit or for protection (413, 429, 503), by the error code it got. */
  refusal(code: string): void;
  /** A database error that reached a request (unavailable: connection level; query: the server refused). */
  dbError(kind: "unavailable" | "query"): void;
  jobRun(job: string, outcome: string, seconds: number, at: Date): void;
  metrics(): Promise<string>;
}

interface RequestChildren {
  labels: { method: string; route: string; status: string };
  /** Kept as a number and handed to prom-client at scrape time: its inc() costs ~2 us a call (it hashes
   * the labels each time), which the heartbeat path paid twice. */
  count: number;
  duration: { observe(value: number): void };
}

export function createTelemetry(options: { clock?: () => number } = {}): Telemetry {
  const now = options.clock ?? (() => performance.now());
  const registry = new Registry();
  const sources: TelemetrySources = {};
  const registers = [registry];
  /** A counter of a total that another part of the process keeps (a source), read at each scrape. */
  const sourcedCounter = (name: string, help: string, total: () => number | undefined) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(total() ?? 0);
      },
    });

  // Children made once per (route, method, status): the request path pays an addition and one observe.
  const children = new Map<string, Map<string, Map<number, RequestChildren>>>();
  new Counter({
    name: "autoscaler_central_http_requests_total",
    help: "HTTP requests answered, by method, route template and status",
    labelNames: ["method", "route", "status"] as const,
    registers,
    collect() {
      this.reset();
      for (const byMethod of children.values()) {
        for (const byStatus of byMethod.values()) {
          for (const child of byStatus.values()) this.inc(child.labels, child.count);
        }
      }
    },
  });
  const latency = new Histogram({
    name: "autoscaler_central_http_request_duration_seconds",
    help: "HTTP request latency, by method, route template and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  let heartbeats = 0;
  sourcedCounter("autoscaler_central_heartbeats_total", "Heartbeats recorded", () => heartbeats);
  /** A counter with one label whose values are known: each child bound once and exported from zero. */
  const outcomes = <const V extends string>(
    name: string,
    help: string,
    label: string,
    values: readonly V[],
  ) => {
    const counter = new Counter({ name, help, labelNames: [label], registers });
    const children = {} as Record<V, { inc(value?: number): void }>;
    for (const value of values) {
      children[value] = counter.labels(value);
      children[value].inc(0);
    }
    return children;
  };
  const sampleChildren = outcomes(
    "autoscaler_central_metric_samples_total",
    "Metric samples received, by outcome (accepted, duplicate, refused)",
    "outcome",
    ["accepted", "duplicate", "refused"],
  );
  const registrationChildren = outcomes(
    "autoscaler_central_registrations_total",
    "Node registrations, by outcome (created, reregistered, refused)",
    "outcome",
    ["created", "reregistered", "refused"],
  );
  const deliveryChildren = outcomes(
    "autoscaler_central_config_deliveries_total",
    "Config pulls answered, by outcome (config sent, not_modified, none)",
    "outcome",
    ["config", "not_modified", "none"],
  );
  const ackChildren = outcomes(
    "autoscaler_central_config_acks_total",
    "Config acks from nodes, by outcome (applied, failed)",
    "outcome",
    ["applied", "failed"],
  );
  const dbErrorChildren = outcomes(
    "autoscaler_central_db_errors_total",
    "Database errors that reached a request, by kind (unavailable, query)",
    "kind",
    ["unavailable", "query"],
  );
  const refusals = new Counter({
    name: "autoscaler_central_refusals_total",
    help: "Requests refused by a limit or for protection (413, 429, 503), by error code",
    labelNames: ["code"] as const,
    registers,
  });
  const jobRuns = new Counter({
    name: "autoscaler_central_job_runs_total",
    help: "Periodic job attempts on this replica, by job and outcome (ran, failed, busy, not_due)",
    // Not "job": Prometheus sets that label on every scraped series (the scrape job) and would rename ours.
    labelNames: ["job_name", "outcome"] as const,
    registers,
  });
  const jobDuration = new Histogram({
    name: "autoscaler_central_job_duration_seconds",
    help: "Duration of the job runs this replica did",
    labelNames: ["job_name"] as const,
    buckets: JOB_BUCKETS,
    registers,
  });
  const jobLastSuccess = new Gauge({
    name: "autoscaler_central_job_last_success_timestamp_seconds",
    help: "When this replica last ran the job successfully (unix seconds)",
    labelNames: ["job_name"] as const,
    registers,
  });
  new Gauge({
    name: "autoscaler_central_long_polls_waiting",
    help: "Config pulls waiting on this replica",
    registers,
    collect() {
      this.set(sources.longPollsWaiting?.() ?? 0);
    },
  });
  new Gauge({
    name: "autoscaler_central_process_memory_bytes",
    help: "This replica's memory: resident set (rss), JavaScript heap used and reserved (heap_used, " +
      "heap_total), and memory of JavaScript objects held outside the heap (external)",
    labelNames: ["kind"] as const,
    registers,
    collect() {
      const memory = Deno.memoryUsage();
      this.set({ kind: "rss" }, memory.rss);
      this.set({ kind: "heap_used" }, memory.heapUsed);
      this.set({ kind: "heap_total" }, memory.heapTotal);
      this.set({ kind: "external" }, memory.external);
    },
  });
  new Gauge({
    name: "autoscaler_central_db_pool_connections",
    help: "Database pool connections of this replica, by state (in_use, idle, limit) and requests queued",
    labelNames: ["state"] as const,
    registers,
    collect() {
      const pool = sources.dbPool?.();
      if (!pool) return;
      this.set({ state: "in_use" }, pool.total - pool.free);
      this.set({ state: "idle" }, pool.free);
      this.set({ state: "queued" }, pool.queued);
      this.set({ state: "limit" }, pool.limit);
    },
  });
  sourcedCounter(
    "autoscaler_central_config_watch_poll_errors_total",
    "Failed polls of the config watcher (the query that wakes waiting config pulls)",
    () => sources.configPollErrors?.(),
  );
  sourcedCounter(
    "autoscaler_central_config_watch_polls_total",
    "Polls of the config watcher: one query per CONFIG_POLL_MS finds changed configs and node credentials",
    () => sources.configPolls?.(),
  );
  new Counter({
    name: "autoscaler_central_node_token_checks_total",
    help: "Node-token checks, by where they were answered (memory, database)",
    labelNames: ["source"] as const,
    registers,
    collect() {
      const checks = sources.nodeTokenChecks?.() ?? { memory: 0, database: 0 };
      this.reset();
      this.labels("memory").inc(checks.memory);
      this.labels("database").inc(checks.database);
    },
  });
  sourcedCounter(
    "autoscaler_central_heartbeat_rows_written_total",
    "Heartbeat rows written: the latest heartbeat per node, every HEARTBEAT_FLUSH_MS",
    () => sources.heartbeatRows?.(),
  );
  type FleetFigures = Awaited<ReturnType<NonNullable<TelemetrySources["fleet"]>>>;
  // One read per FLEET_CACHE_MS, shared by both fleet gauges (a promise, so they never query twice).
  let fleetCache: { at: number; value: Promise<FleetFigures | undefined> } | undefined;
  const fleet = () => {
    if (!sources.fleet) return Promise.resolve(undefined);
    if (!fleetCache || now() - fleetCache.at > FLEET_CACHE_MS) {
      const previous = fleetCache?.value;
      // The database is away or slow: /metrics still answers (its counters matter most then), with the
      // last fleet figures; db_errors_total and the alerts say what is wrong.
      fleetCache = {
        at: now(),
        value: sources.fleet().catch(() => {
          dbErrorChildren.unavailable.inc();
          return previous;
        }),
      };
    }
    return fleetCache.value;
  };
  new Gauge({
    name: "autoscaler_central_nodes",
    help: "Nodes by status (online, offline, never_seen, decommissioned); fleet-wide, cached 5 s",
    labelNames: ["status"] as const,
    registers,
    async collect() {
      const value = await fleet();
      for (const [status, count] of Object.entries(value?.status ?? {})) this.set({ status }, count);
    },
  });
  new Gauge({
    name: "autoscaler_central_nodes_by_config_state",
    help:
      "Nodes that are not decommissioned, by config state (pending, in_sync, failed, drifted); cached 5 s",
    labelNames: ["state"] as const,
    registers,
    async collect() {
      const value = await fleet();
      for (const [state, count] of Object.entries(value?.configState ?? {})) this.set({ state }, count);
    },
  });

  return {
    registry,
    sources,
    request(method, route, status, seconds) {
      let byMethod = children.get(route);
      if (!byMethod) children.set(route, byMethod = new Map());
      let byStatus = byMethod.get(method);
      if (!byStatus) byMethod.set(method, byStatus = new Map());
      let child = byStatus.get(status);
      if (!child) {
        const labels = { method, route, status: String(status) };
        child = { labels, count: 0, duration: latency.labels(labels) };
        byStatus.set(status, child);
      }
      child.count++;
      child.duration.observe(seconds);
    },
    heartbeat: () => {
      heartbeats++;
    },
    samples: (outcome, count) => {
      if (count > 0) sampleChildren[outcome].inc(count);
    },
    registration: (outcome) => registrationChildren[outcome].inc(),
    configDelivery: (outcome) => deliveryChildren[outcome].inc(),
    configAck: (outcome) => ackChildren[outcome].inc(),
    refusal: (code) => refusals.labels(code).inc(),
    dbError: (kind) => dbErrorChildren[kind].inc(),
    jobRun(job, outcome, seconds, at) {
      jobRuns.labels(job, outcome).inc();
      if (outcome === "ran" || outcome === "failed") jobDuration.labels(job).observe(seconds);
      if (outcome === "ran") jobLastSuccess.labels(job).set(at.getTime() / 1000);
    },
    metrics: () => registry.metrics(),
  };
}
