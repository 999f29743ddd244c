// A fleet of simulated autoscalers for demos and load: each node embeds the real TypeScript client, runs a
// few instance pools whose load follows a daily curve with noise and spikes, and scales them with the
// original autoscaler's rule, driven by the thresholds and limits of the config the server gives it.
//
// Time is real: a sample is stamped with the time it describes, and its load is a function of that time
// (see README, "The fleet simulator"). Past history is written by the backfill, at past times, through the
// same client and API; a live fleet then samples the present.
import { CentralManagementClient, type ClientOptions, type MetricSample, toYaml } from "../client/mod.ts";
import {
  type Decision,
  initialRuleState,
  ORIGINAL_TIMING,
  type RuleAction,
  ruleFromPoolConfig,
  type RuleState,
  type RuleTiming,
  type ScalingRule,
  stepRule,
  type Utilization,
} from "../core/scalingRule.ts";

// ---- the scaling rule ---------------------------------------------------------------------------------

// The rule lives in core/scalingRule.ts (the what-if replay uses the same one); these names are kept for
// the simulator's users.
export {
  DEFAULT_RULE,
  inScheduleWindow,
  ORIGINAL_TIMING,
  ruleFromPoolConfig as ruleFromConfig,
  type RuleTiming,
  type ScalingRule as PoolRule,
} from "../core/scalingRule.ts";

// ---- the load model -----------------------------------------------------------------------------------

/** FNV-1a of a string: a pool's identity as a number. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A uniform number in [0, 1) that depends only on its arguments (murmur3's mixing): the load at a time is a
 * function of that time, so a history written twice comes out the same and a re-run only adds what is new. */
export function hashUnit(seed: number, ...values: number[]): number {
  let h = seed >>> 0;
  for (const value of values) {
    // Times in milliseconds exceed 32 bits: mix both halves.
    for (const part of [value >>> 0, Math.floor(value / 4294967296) >>> 0]) {
      h = Math.imul(h ^ part, 0xcc9e2d51);
      h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value));
const HOUR_MS = 3_600_000;

export interface LoadShape {
  /** Demand at the daily peak, in instances' worth of work at 100% cpu. */
  peakDemand: number;
  /** Hour (UTC) of the daily peak. */
  peakHour: number;
  /** Share of the peak at night (0..1). */
  nightShare: number;
  /** Chance per hour that a spike starts. */
  spikeRatePerHour: number;
}

/** Demand at a time: a daily cosine curve between nightShare and 1 of the peak. */
export function dailyDemand(shape: LoadShape, ms: number): number {
  const hours = (ms / HOUR_MS) % 24;
  const daily = 0.5 + 0.5 * Math.cos((2 * Math.PI * (hours - shape.peakHour)) / 24);
  return shape.peakDemand * (shape.nightShare + (1 - shape.nightShare) * daily);
}

// Salts that keep the independent draws of one pool apart.
const SALT = { peak: 1, hour: 2, night: 3, spike: 4, spikeStart: 5, spikeLength: 6, spikeSize: 7, noise: 8 };

/** The load of one pool: daily curve, noise and spikes, all functions of (seed, pool, time). */
export class PoolLoad {
  readonly seed: number;
  readonly shape: LoadShape;

  constructor(seed: number, ocid: string, shape?: LoadShape) {
    this.seed = (hashString(ocid) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
    this.shape = shape ?? {
      peakDemand: 2 + hashUnit(this.seed, SALT.peak) * 5,
      peakHour: 11 + hashUnit(this.seed, SALT.hour) * 6,
      nightShare: 0.15 + hashUnit(this.seed, SALT.night) * 0.25,
      spikeRatePerHour: 0.08,
    };
  }

  /** A standard normal draw for this time (Box-Muller); `salt` tells apart draws at the same time. */
  gaussian(ms: number, salt: number): number {
    const u = Math.max(hashUnit(this.seed, SALT.noise, salt, ms), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) *
      Math.cos(2 * Math.PI * hashUnit(this.seed, SALT.noise, salt + 1, ms));
  }

  /** Extra demand of a spike running at this time. Each hour may start one (10 to 40 minutes long), so
   * only this hour's and the previous hour's can be running. */
  spike(ms: number): number {
    const hour = Math.floor(ms / HOUR_MS);
    let extra = 0;
    for (const slot of [hour - 1, hour]) {
      if (hashUnit(this.seed, SALT.spike, slot) >= this.shape.spikeRatePerHour) continue;
      const start = slot * HOUR_MS + hashUnit(this.seed, SALT.spikeStart, slot) * HOUR_MS;
      const length = (10 + 30 * hashUnit(this.seed, SALT.spikeLength, slot)) * 60_000;
      if (ms >= start && ms < start + length) {
        extra += this.shape.peakDemand * (0.3 + 0.7 * hashUnit(this.seed, SALT.spikeSize, slot));
      }
    }
    return extra;
  }

  /** Demand at a time: the daily curve with 6% noise, plus any spike. */
  demand(ms: number): number {
    return Math.max(0, dailyDemand(this.shape, ms) * (1 + 0.06 * this.gaussian(ms, 0)) + this.spike(ms));
  }
}

export interface Observation {
  cpu: number;
  ram: number;
  /** The instance count the sample saw (before the decision). */
  count: number;
  /** What the rule changed at this step (a scheduler window's addition and an evaluation's step, when both
   * happen at once, as one change). */
  decision: Decision | null;
}

/** The rule's actions at one step as one change (from the first one's count to the last one's). */
function combined(actions: RuleAction[]): Decision | null {
  if (actions.length === 0) return null;
  const to = actions.at(-1)!.to;
  return {
    direction: to > actions[0].from ? "UP" : "DOWN",
    to,
    reason: actions.map((action) => action.reason).join("; "),
  };
}

export class SimulatedPool {
  state: RuleState;
  scaledUp = 0;
  scaledDown = 0;

  constructor(
    readonly ocid: string,
    public rule: ScalingRule,
    readonly load: PoolLoad,
    /** The autoscaler's evaluation interval and cooldown (the original's by default). */
    readonly timing: RuleTiming = ORIGINAL_TIMING,
  ) {
    this.state = initialRuleState(
      clamp(Math.round(load.shape.peakDemand / 1.5), rule.limits.min, rule.limits.max),
    );
  }

  /** The pool's instance count now. */
  get count(): number {
    return this.state.size;
  }

  /** What the pool's instances report at time `ms` when `count` of them share the load. */
  measure(ms: number, count: number): Utilization {
    const cpu = clamp((100 * this.load.demand(ms)) / Math.max(1, count), 0, 100);
    const ram = clamp(22 + 0.55 * cpu + 3 * this.load.gaussian(ms, 2), 0, 100);
    const round = (value: number) => Math.round(value * 10) / 10;
    return { cpu: round(cpu), ram: round(ram) };
  }

  /** One observation at time `ms` (later than the previous one): utilization, and the scaling it leads to
   * (core/scalingRule.ts: the scheduler's tick, then the evaluation when it is due). */
  step(ms: number): Observation {
    const count = this.count;
    const observed = this.measure(ms, count);
    const { state, actions } = stepRule(
      this.rule,
      this.state,
      ms,
      (size) => (size === count ? observed : this.measure(ms, size)),
      this.timing,
    );
    this.state = state;
    for (const action of actions) {
      if (action.direction === "UP") this.scaledUp++;
      else this.scaledDown++;
    }
    return { ...observed, count, decision: combined(actions) };
  }
}

// ---- history ------------------------------------------------------------------------------------------

export interface BackfillWindow {
  fromMs: number;
  toMs: number;
  stepMs: number;
  /** Observations per pool. */
  points: number;
}

/** The times a backfill of `spanMs` before `nowMs` samples at: on the grid of the step, so a re-run sends
 * the same times again (the server counts them as duplicates), and the oldest a minute inside the span, so
 * it is not already past the server's retention when it arrives. */
export function backfillWindow(nowMs: number, spanMs: number, stepMs: number): BackfillWindow {
  const toMs = Math.floor(nowMs / stepMs) * stepMs;
  const fromMs = Math.ceil((nowMs - spanMs + 60_000) / stepMs) * stepMs;
  const points = toMs < fromMs ? 0 : Math.floor((toMs - fromMs) / stepMs) + 1;
  return { fromMs, toMs, stepMs, points };
}

export interface HistoryEntry {
  ms: number;
  pool: SimulatedPool;
  observation: Observation;
}

/** A node's history, oldest first, every pool at each time: what the pools would have observed and
 * decided. It moves the pools' state (count, cooldown) forward, so live ticks continue from it. */
export function* nodeHistory(pools: SimulatedPool[], window: BackfillWindow): Generator<HistoryEntry> {
  for (let i = 0; i < window.points; i++) {
    const ms = window.fromMs + i * window.stepMs;
    for (const pool of pools) yield { ms, pool, observation: pool.step(ms) };
  }
}

/** An observation as the client's sample, its scaling event included. */
export function toClientSample(pool: SimulatedPool, ms: number, observation: Observation): MetricSample {
  const { cpu, ram, count, decision } = observation;
  return {
    instancePoolId: pool.ocid,
    ts: ms,
    cpuUtil: cpu,
    memoryUtil: ram,
    instanceCount: decision ? decision.to : count,
    ...(decision
      ? {
        scalingEvent: true,
        scalingDirection: decision.direction,
        fromCount: count,
        toCount: decision.to,
        reason: decision.reason,
      }
      : {}),
  };
}

// ---- the fleet ----------------------------------------------------------------------------------------

export interface SimulationOptions {
  url: string;
  token: string;
  nodes: number;
  pools?: number;
  /** Real milliseconds between two live observations of a pool. Default 1,000. */
  tickMs?: number;
  /** Where config files and state live (one sub-directory per node). */
  dir: string;
  /** Node names are `<prefix>-001`, ... Default "sim". */
  prefix?: string;
  /** Same seed and prefix, same load at the same times. Default 1. */
  seed?: number;
  /** The autoscaler's evaluation interval and cooldown; default the original's (300 s, 900 s). Tests
   * shorten them. */
  timing?: Partial<RuleTiming>;
  /** Write this much past history for each node before going live, up to `untilMs` (default: now). */
  backfill?: { spanMs: number; stepMs: number; untilMs?: number };
  /** How long the backfill waits for the nodes to register; one still unregistered is left out. Default
   * 60,000 ms. */
  registerTimeoutMs?: number;
  /** The clock (epoch milliseconds). Default Date.now. */
  now?: () => number;
  /** Extra client options (short intervals in tests). */
  clientOptions?: Partial<ClientOptions>;
  /** Nodes (by name, e.g. "sim-007") whose agent refuses every config the server sends: it keeps running
   * what it had and acks the new one as failed with an error message, as a real agent does when it cannot
   * apply a config. For trying out rollouts that must pause. */
  rejectConfig?: readonly string[];
  /** Labels every node registers with, besides `simulated` and `fleet` (e.g. `{ env: "staging" }`). */
  labels?: Record<string, string>;
}

const REGIONS = ["us-ashburn-1", "us-phoenix-1", "eu-frankfurt-1", "uk-london-1"];

export interface SimulatedNodeStats {
  name: string;
  nodeId: string | undefined;
  pools: { ocid: string; count: number; scaledUp: number; scaledDown: number }[];
  configsApplied: number;
  samplesSent: number;
}

export interface BackfillSummary {
  from: string;
  to: string;
  step_s: number;
  /** Nodes whose history was written (a node that did not register in time is left out). */
  nodes: number;
  /** Samples generated (nodes x pools x points once done). */
  samples: number;
  /** What the server answered: stored, and already stored (a re-run). */
  accepted: number;
  duplicates: number;
  dropped: number;
  scaling_events: number;
  seconds: number;
  done: boolean;
  /** Why the server refused the history (e.g. older than its retention), else null. */
  refused: string | null;
}

export interface SimulationSummary {
  nodes: number;
  registered: number;
  samples_sent: number;
  samples_buffered: number;
  samples_dropped: number;
  scaling_up: number;
  scaling_down: number;
  configs_applied: number;
  configs_failed: number;
  heartbeats: number;
  errors: number;
  backfill: BackfillSummary | null;
}

/** Samples a backfill lets wait in a client's buffer (which drops the oldest beyond 10,000): a batch in
 * flight and the next one ready. */
const BACKFILL_IN_FLIGHT = 2_000;

export class SimulatedAutoscaler {
  readonly pools = new Map<string, SimulatedPool>();
  readonly client: CentralManagementClient;
  errors = 0;
  lastError: string | undefined;
  /** Refuse every config the server sends (SimulationOptions.rejectConfig). */
  rejectConfigs = false;

  constructor(
    readonly name: string,
    readonly configPath: string,
    readonly region: string,
    private readonly seed: number,
    private readonly timing: RuleTiming,
    clientOptions: ClientOptions,
  ) {
    this.client = new CentralManagementClient({
      ...clientOptions,
      // The thresholds and limits the server sends drive the rule from now on; a rejecting node throws,
      // which the client acks as failed with the message.
      onConfig: (config) => {
        if (this.rejectConfigs) {
          throw new Error(
            `simulated rejection: ${this.name} refuses config version ${config.version} ` +
              `(${config.hash.slice(0, 12)}); it keeps running its previous config`,
          );
        }
        this.applyConfig(config.body);
      },
    });
    this.client.on("error", ({ error, context }) => {
      this.errors++;
      this.lastError = `${context}: ${error.message}`;
    });
  }

  applyConfig(body: Record<string, unknown>): void {
    const pools = body.pools;
    if (!Array.isArray(pools)) throw new Error("config has no pools list");
    const seen = new Set<string>();
    for (const entry of pools as Record<string, unknown>[]) {
      const ocid = String(entry.instance_pool_id);
      seen.add(ocid);
      const rule = ruleFromPoolConfig(entry);
      const pool = this.pools.get(ocid);
      if (pool) pool.rule = rule;
      else {
        this.pools.set(ocid, new SimulatedPool(ocid, rule, new PoolLoad(this.seed, ocid), this.timing));
      }
    }
    for (const ocid of [...this.pools.keys()]) if (!seen.has(ocid)) this.pools.delete(ocid);
  }

  /** One live observation of every pool, stamped with the time it describes. */
  tick(ms: number): void {
    for (const pool of this.pools.values()) this.client.sendMetrics(toClientSample(pool, ms, pool.step(ms)));
  }

  /** Sends the node's history through its client, oldest first, never more than BACKFILL_IN_FLIGHT
   * waiting. The first full batch is sent alone: when the server refuses it (too old for its retention),
   * nothing of the history is stored and the refusal is returned. */
  async backfill(
    window: BackfillWindow,
    progress: { samples: number; events: number },
    stopped: () => boolean,
  ): Promise<string | undefined> {
    const client = this.client;
    const base = client.stats;
    const settled = () => {
      const now = client.stats;
      return now.sent - base.sent + now.dropped - base.dropped;
    };
    const firstBatch = Math.min(1_000, window.points * this.pools.size);
    let generated = 0;
    for (const { ms, pool, observation } of nodeHistory([...this.pools.values()], window)) {
      if (stopped()) return undefined;
      client.sendMetrics(toClientSample(pool, ms, observation));
      generated++;
      progress.samples++;
      if (observation.decision) progress.events++;
      if (generated === firstBatch) {
        await waitUntil(() => settled() >= firstBatch || stopped());
        if (client.stats.droppedRejected > base.droppedRejected) {
          return this.lastError ?? "the server refused the history";
        }
      } else if (generated % 100 === 0) {
        await waitUntil(() => client.stats.buffered <= BACKFILL_IN_FLIGHT || stopped());
      }
    }
    await waitUntil(() => settled() >= generated || stopped());
    return undefined;
  }

  stats(): SimulatedNodeStats {
    return {
      name: this.name,
      nodeId: this.client.nodeId,
      pools: [...this.pools.values()].map((p) => ({
        ocid: p.ocid,
        count: p.count,
        scaledUp: p.scaledUp,
        scaledDown: p.scaledDown,
      })),
      configsApplied: this.client.stats.configsApplied,
      samplesSent: this.client.stats.sent,
    };
  }
}

async function waitUntil(done: () => boolean, pollMs = 10): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, pollMs));
}

/** A pool OCID from names ([a-z0-9] only in the unique part). */
export function simulatedPoolOcid(prefix: string, node: number, pool: number): string {
  const safe = prefix.toLowerCase().replace(/[^a-z0-9]/g, "") || "sim";
  return `ocid1.instancepool.oc1.iad.aaaa${safe}n${String(node).padStart(3, "0")}p${pool}`;
}

/** A pool entry of config.yaml that passes every rule of core/configDocument.ts, with the original
 * autoscaler's usual figures: cpu 30–75 %, memory 20–75 %, 1 to 10 instances, at most 4 in the daily
 * 05:30–05:50 schedule. */
export function poolConfig(
  instancePoolId: string,
  compartmentId: string,
  region: string,
): Record<string, unknown> {
  return {
    instance_pool_id: instancePoolId,
    compartment_id: compartmentId,
    region,
    monitoring_method: "oci",
    cpu_threshold: { min: 30, max: 75 },
    ram_threshold: { min: 20, max: 75 },
    scaling_limits: { min: 1, max: 10 },
    scheduler_max_instances: 4,
    schedules: [{ start_time: "05:30", end_time: "05:50" }],
  };
}

/** The config.yaml a simulated node starts with (sent at registration; the server keeps it as version 1). */
export function initialConfig(
  prefix: string,
  node: number,
  pools: number,
  region: string,
): Record<string, unknown> {
  return {
    pools: Array.from(
      { length: pools },
      (_, index) =>
        poolConfig(
          simulatedPoolOcid(prefix, node, index + 1),
          "ocid1.compartment.oc1..aaaasimulated",
          region,
        ),
    ),
  };
}

export interface Fleet {
  agents: SimulatedAutoscaler[];
  /** Resolves when the backfill is over (at once without one) and the fleet ticks live. */
  live: Promise<BackfillSummary | null>;
  summary(): SimulationSummary;
  /** Stops the backfill and the ticking, and stops every client (each flushes within `deadlineMs`). */
  stop(deadlineMs?: number): Promise<SimulationSummary>;
}

/** Starts the fleet: writes each node's config.yaml under `dir` and starts the clients; then writes the
 * backfill when asked, and ticks live every tickMs. */
export async function startFleet(options: SimulationOptions): Promise<Fleet> {
  const poolsPerNode = options.pools ?? 3;
  const tickMs = options.tickMs ?? 1_000;
  const prefix = options.prefix ?? "sim";
  const seed = options.seed ?? 1;
  const timing = { ...ORIGINAL_TIMING, ...options.timing };
  const now = options.now ?? Date.now;
  const rejecting = new Set(options.rejectConfig ?? []);

  const agents: SimulatedAutoscaler[] = [];
  for (let i = 1; i <= options.nodes; i++) {
    const name = `${prefix}-${String(i).padStart(3, "0")}`;
    const nodeDir = `${options.dir}/${name}`;
    await Deno.mkdir(nodeDir, { recursive: true });
    const configPath = `${nodeDir}/config.yaml`;
    const region = REGIONS[(i - 1) % REGIONS.length];
    const config = initialConfig(prefix, i, poolsPerNode, region);
    // A node that ran before keeps its config (and its state file); a new one starts from the default.
    try {
      await Deno.stat(configPath);
    } catch {
      await Deno.writeTextFile(configPath, toYaml(config));
    }
    const agent = new SimulatedAutoscaler(name, configPath, region, seed, timing, {
      centralApiUrl: options.url,
      localConfigPath: configPath,
      enrollmentToken: options.token,
      nodeName: name,
      hostname: `${name}.simulated.internal`,
      region,
      labels: { ...options.labels, simulated: "true", fleet: prefix },
      agentVersion: "simulator-1.0",
      pools: (config.pools as { instance_pool_id: string; region: string }[]).map((p) => ({
        instance_pool_id: p.instance_pool_id,
        region: p.region,
        display_name: p.instance_pool_id.slice(-8),
      })),
      ...options.clientOptions,
    });
    agent.applyConfig(config);
    agent.rejectConfigs = rejecting.has(name);
    agents.push(agent);
  }
  await Promise.all(agents.map((agent) => agent.client.start()));

  let stopping = false;
  let backfill: BackfillSummary | null = null;
  const progress = { samples: 0, events: 0 };
  let timer: ReturnType<typeof setInterval> | undefined;

  const runBackfill = async (spanMs: number, stepMs: number, untilMs?: number): Promise<BackfillSummary> => {
    const started = now();
    const window = backfillWindow(untilMs ?? started, spanMs, stepMs);
    const bases = agents.map((agent) => agent.client.stats);
    const summary: BackfillSummary = {
      from: new Date(window.fromMs).toISOString(),
      to: new Date(window.toMs).toISOString(),
      step_s: stepMs / 1000,
      nodes: 0,
      samples: 0,
      accepted: 0,
      duplicates: 0,
      dropped: 0,
      scaling_events: 0,
      seconds: 0,
      done: false,
      refused: null,
    };
    backfill = summary;
    // Every node registers before any history goes out: registrations queued behind a flood of metric
    // batches would time out.
    let waited: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(agents.map((agent) => agent.client.whenRegistered())),
      new Promise((resolve) => waited = setTimeout(resolve, options.registerTimeoutMs ?? 60_000)),
    ]);
    clearTimeout(waited);
    const refusals = await Promise.all(agents.map(async (agent) => {
      if (!agent.client.nodeId || stopping) return undefined;
      summary.nodes++;
      return await agent.backfill(window, progress, () => stopping || summary.refused !== null)
        .then((refusal) => {
          if (refusal !== undefined) summary.refused ??= refusal;
          return refusal;
        });
    }));
    agents.forEach((agent, index) => {
      const stats = agent.client.stats;
      summary.accepted += stats.accepted - bases[index].accepted;
      summary.duplicates += stats.duplicates - bases[index].duplicates;
      summary.dropped += stats.dropped - bases[index].dropped;
    });
    summary.samples = progress.samples;
    summary.scaling_events = progress.events;
    summary.refused = refusals.find((refusal) => refusal !== undefined) ?? null;
    summary.done = !stopping && summary.refused === null;
    summary.seconds = Math.round((now() - started) / 100) / 10;
    return summary;
  };

  const live = (async () => {
    const result = options.backfill
      ? await runBackfill(options.backfill.spanMs, options.backfill.stepMs, options.backfill.untilMs)
      : null;
    if (!stopping && (result === null || result.done)) {
      timer = setInterval(() => {
        if (stopping) return;
        const at = now();
        for (const agent of agents) agent.tick(at);
      }, tickMs);
    }
    return result;
  })();

  const summary = (): SimulationSummary => {
    // One figure summed over the agents, or over every agent's pools.
    const total = (figure: (agent: SimulatedAutoscaler) => number) =>
      agents.reduce((sum, agent) => sum + figure(agent), 0);
    const overPools = (figure: (pool: SimulatedPool) => number) =>
      total((agent) => [...agent.pools.values()].reduce((sum, pool) => sum + figure(pool), 0));
    return {
      nodes: agents.length,
      registered: agents.filter((agent) => agent.client.nodeId).length,
      samples_sent: total((agent) => agent.client.stats.sent),
      samples_buffered: total((agent) => agent.client.stats.buffered),
      samples_dropped: total((agent) => agent.client.stats.dropped),
      scaling_up: overPools((pool) => pool.scaledUp),
      scaling_down: overPools((pool) => pool.scaledDown),
      configs_applied: total((agent) => agent.client.stats.configsApplied),
      configs_failed: total((agent) => agent.client.stats.configsFailed),
      heartbeats: total((agent) => agent.client.stats.heartbeats),
      errors: total((agent) => agent.errors),
      backfill: backfill && { ...backfill, samples: progress.samples, scaling_events: progress.events },
    };
  };

  return {
    agents,
    live,
    summary,
    stop: async (deadlineMs = 5_000) => {
      stopping = true;
      clearInterval(timer);
      // Stopped clients release a backfill still waiting for their registration.
      await Promise.all(agents.map((agent) => agent.client.stop({ deadlineMs })));
      await live;
      return summary();
    },
  };
}
