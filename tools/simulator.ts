// A fleet of simulated autoscalers for demos and load: each node embeds the real TypeScript client, runs a
// few instance pools whose load follows a daily curve with noise and spikes, and scales them with the
// original autoscaler's rule, driven by the thresholds and limits of the config the server gives it.
//
// Simulated time runs `speed` times faster than real time (the daily curve and the cooldown use it);
// samples are stamped with real time, as the server only takes samples near its own clock.
import { CentralManagementClient, type ClientOptions, toYaml } from "../client/mod.ts";

// ---- the scaling rule ---------------------------------------------------------------------------------

export interface PoolRule {
  cpuMin: number;
  cpuMax: number;
  ramMin: number;
  ramMax: number;
  minCount: number;
  maxCount: number;
  /** During a schedule window the pool runs at least this many instances. */
  schedulerMax?: number;
  schedules: { start: string; end: string }[];
}

export const DEFAULT_RULE: PoolRule = {
  cpuMin: 30,
  cpuMax: 75,
  ramMin: 20,
  ramMax: 75,
  minCount: 1,
  maxCount: 10,
  schedules: [],
};

/** Simulated seconds between two scaling actions of one pool. */
export const COOLDOWN_S = 300;

export interface Decision {
  direction: "UP" | "DOWN";
  to: number;
  reason: string;
}

/** The original autoscaler's rule: one instance up when cpu or ram is over its max, one down when under its
 * min, within scaling_limits; inside a schedule window, at least scheduler_max_instances. */
export function decide(
  rule: PoolRule,
  sample: { cpu: number; ram: number; count: number },
  inSchedule: boolean,
): Decision | null {
  const { cpu, ram, count } = sample;
  const floor = inSchedule && rule.schedulerMax !== undefined
    ? Math.min(rule.maxCount, Math.max(rule.minCount, rule.schedulerMax))
    : rule.minCount;
  if (count < floor) {
    return {
      direction: "UP",
      to: count + 1,
      reason: inSchedule ? `schedule wants ${floor}` : `below scaling_limits.min ${rule.minCount}`,
    };
  }
  if (count > rule.maxCount) {
    return { direction: "DOWN", to: count - 1, reason: `above scaling_limits.max ${rule.maxCount}` };
  }
  if ((cpu > rule.cpuMax || ram > rule.ramMax) && count < rule.maxCount) {
    const why = cpu > rule.cpuMax
      ? `cpu ${cpu.toFixed(1)} > max ${rule.cpuMax}`
      : `ram ${ram.toFixed(1)} > max ${rule.ramMax}`;
    return { direction: "UP", to: count + 1, reason: why };
  }
  if (cpu > rule.cpuMax || ram > rule.ramMax) return null; // at the limit: hold
  if ((cpu < rule.cpuMin || ram < rule.ramMin) && count > floor) {
    const why = cpu < rule.cpuMin
      ? `cpu ${cpu.toFixed(1)} < min ${rule.cpuMin}`
      : `ram ${ram.toFixed(1)} < min ${rule.ramMin}`;
    return { direction: "DOWN", to: count - 1, reason: why };
  }
  return null;
}

/** True when the simulated time of day (UTC) is inside one of the HH:MM windows. */
export function inScheduleWindow(schedules: PoolRule["schedules"], simMs: number): boolean {
  const date = new Date(simMs);
  const hhmm = `${String(date.getUTCHours()).padStart(2, "0")}:${
    String(date.getUTCMinutes()).padStart(2, "0")
  }`;
  return schedules.some((s) => hhmm >= s.start && hhmm < s.end);
}

/** The rule a pool entry of config.yaml describes (missing parts keep the defaults). */
export function ruleFromConfig(pool: Record<string, unknown>): PoolRule {
  const range = (value: unknown, min: number, max: number) => {
    const r = value as { min?: unknown; max?: unknown } | undefined;
    return {
      min: typeof r?.min === "number" ? r.min : min,
      max: typeof r?.max === "number" ? r.max : max,
    };
  };
  const cpu = range(pool.cpu_threshold, DEFAULT_RULE.cpuMin, DEFAULT_RULE.cpuMax);
  const ram = range(pool.ram_threshold, DEFAULT_RULE.ramMin, DEFAULT_RULE.ramMax);
  const limits = range(pool.scaling_limits, DEFAULT_RULE.minCount, DEFAULT_RULE.maxCount);
  const schedules = Array.isArray(pool.schedules)
    ? (pool.schedules as { start_time?: unknown; end_time?: unknown }[])
      .filter((s) => typeof s?.start_time === "string" && typeof s?.end_time === "string")
      .map((s) => ({ start: s.start_time as string, end: s.end_time as string }))
    : [];
  return {
    cpuMin: cpu.min,
    cpuMax: cpu.max,
    ramMin: ram.min,
    ramMax: ram.max,
    minCount: limits.min,
    maxCount: limits.max,
    schedulerMax: typeof pool.scheduler_max_instances === "number" ? pool.scheduler_max_instances : undefined,
    schedules,
  };
}

// ---- the load model -----------------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32), so a run can be repeated with --seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value));

export interface LoadShape {
  /** Demand at the daily peak, in instances' worth of work at 100% cpu. */
  peakDemand: number;
  /** Hour (UTC, simulated) of the daily peak. */
  peakHour: number;
  /** Share of the peak at night (0..1). */
  nightShare: number;
  /** Chance per simulated hour that a spike starts. */
  spikeRatePerHour: number;
}

/** Demand at a simulated time: a daily cosine curve between nightShare and 1 of the peak. */
export function dailyDemand(shape: LoadShape, simMs: number): number {
  const hours = (simMs / 3_600_000) % 24;
  const daily = 0.5 + 0.5 * Math.cos((2 * Math.PI * (hours - shape.peakHour)) / 24);
  return shape.peakDemand * (shape.nightShare + (1 - shape.nightShare) * daily);
}

export class SimulatedPool {
  count: number;
  lastScaleSimMs = Number.NEGATIVE_INFINITY;
  spikeUntilSimMs = 0;
  spikeSize = 0;
  scaledUp = 0;
  scaledDown = 0;

  constructor(
    readonly ocid: string,
    public rule: PoolRule,
    readonly shape: LoadShape,
    readonly random: () => number,
  ) {
    this.count = clamp(Math.round(shape.peakDemand / 1.5), rule.minCount, rule.maxCount);
  }

  /** One observation `dtSimMs` after the previous: utilization now, and the scaling it leads to. */
  step(
    simMs: number,
    dtSimMs: number,
  ): { cpu: number; ram: number; count: number; decision: Decision | null } {
    const hours = dtSimMs / 3_600_000;
    if (simMs >= this.spikeUntilSimMs && this.random() < this.shape.spikeRatePerHour * hours) {
      this.spikeSize = this.shape.peakDemand * (0.3 + 0.7 * this.random());
      this.spikeUntilSimMs = simMs + (10 + 30 * this.random()) * 60_000;
    }
    const spike = simMs < this.spikeUntilSimMs ? this.spikeSize : 0;
    const demand = Math.max(0, dailyDemand(this.shape, simMs) * (1 + 0.06 * gaussian(this.random)) + spike);
    const cpu = clamp((100 * demand) / Math.max(1, this.count), 0, 100);
    const ram = clamp(22 + 0.55 * cpu + 3 * gaussian(this.random), 0, 100);
    const round = (value: number) => Math.round(value * 10) / 10;
    const observed = { cpu: round(cpu), ram: round(ram), count: this.count };
    let decision: Decision | null = null;
    if (simMs - this.lastScaleSimMs >= COOLDOWN_S * 1000) {
      decision = decide(this.rule, observed, inScheduleWindow(this.rule.schedules, simMs));
      if (decision) {
        this.count = decision.to;
        this.lastScaleSimMs = simMs;
        if (decision.direction === "UP") this.scaledUp++;
        else this.scaledDown++;
      }
    }
    return { ...observed, decision };
  }
}

// ---- the fleet ----------------------------------------------------------------------------------------

export interface SimulationOptions {
  url: string;
  token: string;
  nodes: number;
  pools?: number;
  /** Simulated seconds per real second. Default 60 (a day in 24 minutes). */
  speed?: number;
  /** Real milliseconds between two observations of a pool. Default 1,000. */
  tickMs?: number;
  /** Where config files and state live (one sub-directory per node). */
  dir: string;
  /** Node names are `<prefix>-001`, ... Default "sim". */
  prefix?: string;
  seed?: number;
  /** Simulated time at the start. Default: now. */
  startSimMs?: number;
  /** Extra client options (short intervals in tests). */
  clientOptions?: Partial<ClientOptions>;
}

const REGIONS = ["us-ashburn-1", "us-phoenix-1", "eu-frankfurt-1", "uk-london-1"];

export interface SimulatedNodeStats {
  name: string;
  nodeId: string | undefined;
  pools: { ocid: string; count: number; scaledUp: number; scaledDown: number }[];
  configsApplied: number;
  samplesSent: number;
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
  simulated_time: string;
}

export class SimulatedAutoscaler {
  readonly pools = new Map<string, SimulatedPool>();
  readonly client: CentralManagementClient;
  errors = 0;
  lastError: string | undefined;

  constructor(
    readonly name: string,
    readonly configPath: string,
    readonly region: string,
    private readonly random: () => number,
    clientOptions: ClientOptions,
  ) {
    this.client = new CentralManagementClient({
      ...clientOptions,
      // The thresholds and limits the server sends drive the rule from now on.
      onConfig: (config) => this.applyConfig(config.body),
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
      const rule = ruleFromConfig(entry);
      const pool = this.pools.get(ocid);
      if (pool) pool.rule = rule;
      else this.pools.set(ocid, new SimulatedPool(ocid, rule, randomShape(this.random), this.random));
    }
    for (const ocid of [...this.pools.keys()]) if (!seen.has(ocid)) this.pools.delete(ocid);
  }

  tick(simMs: number, dtSimMs: number): void {
    for (const pool of this.pools.values()) {
      const { cpu, ram, count, decision } = pool.step(simMs, dtSimMs);
      this.client.sendMetrics({
        instancePoolId: pool.ocid,
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
      });
    }
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

function randomShape(random: () => number): LoadShape {
  return {
    peakDemand: 2 + random() * 5,
    peakHour: 11 + random() * 6,
    nightShare: 0.15 + random() * 0.25,
    spikeRatePerHour: 0.08,
  };
}

/** A pool OCID from names ([a-z0-9] only in the unique part). */
export function simulatedPoolOcid(prefix: string, node: number, pool: number): string {
  const safe = prefix.toLowerCase().replace(/[^a-z0-9]/g, "") || "sim";
  return `ocid1.instancepool.oc1.iad.aaaa${safe}n${String(node).padStart(3, "0")}p${pool}`;
}

/** The config.yaml a simulated node starts with (sent at registration; the server keeps it as version 1). */
export function initialConfig(
  prefix: string,
  node: number,
  pools: number,
  region: string,
): Record<string, unknown> {
  return {
    pools: Array.from({ length: pools }, (_, index) => ({
      instance_pool_id: simulatedPoolOcid(prefix, node, index + 1),
      compartment_id: "ocid1.compartment.oc1..aaaasimulated",
      region,
      monitoring_method: "oci",
      cpu_threshold: { min: 30, max: 75 },
      ram_threshold: { min: 20, max: 75 },
      scaling_limits: { min: 1, max: 10 },
      scheduler_max_instances: 4,
      schedules: [{ start_time: "05:30", end_time: "05:50" }],
    })),
  };
}

export interface Fleet {
  agents: SimulatedAutoscaler[];
  /** The simulated time now. */
  simNow(): number;
  summary(): SimulationSummary;
  /** Stops ticking and stops every client (each flushes within `deadlineMs`). */
  stop(deadlineMs?: number): Promise<SimulationSummary>;
}

/** Starts the fleet: writes each node's config.yaml under `dir`, starts the clients, ticks every tickMs. */
export async function startFleet(options: SimulationOptions): Promise<Fleet> {
  const poolsPerNode = options.pools ?? 3;
  const speed = options.speed ?? 60;
  const tickMs = options.tickMs ?? 1_000;
  const prefix = options.prefix ?? "sim";
  const random = seededRandom(options.seed ?? Date.now());
  const realStart = Date.now();
  const simStart = options.startSimMs ?? realStart;
  const simNow = () => simStart + (Date.now() - realStart) * speed;

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
    const agent = new SimulatedAutoscaler(name, configPath, region, random, {
      centralApiUrl: options.url,
      localConfigPath: configPath,
      enrollmentToken: options.token,
      nodeName: name,
      hostname: `${name}.simulated.internal`,
      region,
      labels: { simulated: "true", fleet: prefix },
      agentVersion: "simulator-1.0",
      pools: (config.pools as { instance_pool_id: string; region: string }[]).map((p) => ({
        instance_pool_id: p.instance_pool_id,
        region: p.region,
        display_name: p.instance_pool_id.slice(-8),
      })),
      ...options.clientOptions,
    });
    agent.applyConfig(config);
    agents.push(agent);
  }
  await Promise.all(agents.map((agent) => agent.client.start()));

  let lastTickSim = simNow();
  let ticking = true;
  const timer = setInterval(() => {
    if (!ticking) return;
    const now = simNow();
    const dt = now - lastTickSim;
    lastTickSim = now;
    for (const agent of agents) agent.tick(now, dt);
  }, tickMs);

  const summary = (): SimulationSummary => {
    const result: SimulationSummary = {
      nodes: agents.length,
      registered: 0,
      samples_sent: 0,
      samples_buffered: 0,
      samples_dropped: 0,
      scaling_up: 0,
      scaling_down: 0,
      configs_applied: 0,
      configs_failed: 0,
      heartbeats: 0,
      errors: 0,
      simulated_time: new Date(simNow()).toISOString(),
    };
    for (const agent of agents) {
      const stats = agent.client.stats;
      if (agent.client.nodeId) result.registered++;
      result.samples_sent += stats.sent;
      result.samples_buffered += stats.buffered;
      result.samples_dropped += stats.dropped;
      result.configs_applied += stats.configsApplied;
      result.configs_failed += stats.configsFailed;
      result.heartbeats += stats.heartbeats;
      result.errors += agent.errors;
      for (const pool of agent.pools.values()) {
        result.scaling_up += pool.scaledUp;
        result.scaling_down += pool.scaledDown;
      }
    }
    return result;
  };

  return {
    agents,
    simNow,
    summary,
    stop: async (deadlineMs = 5_000) => {
      ticking = false;
      clearInterval(timer);
      await Promise.all(agents.map((agent) => agent.client.stop({ deadlineMs })));
      return summary();
    },
  };
}
