// What-if replay: what the original autoscaler's rule (core/scalingRule.ts, the simulator's too) would have
// done with a proposed config over a node's recorded metrics, next to what the node's current config would
// have done and what was recorded.
//
// The model (README, "What-if replay"): the work a pool did is its recorded utilization times its recorded
// instances; the simulated pool shares that work among its own instances (util' = util x recorded /
// simulated, at most 100%). Readings are 5-minute averages (raw samples where the rollup job has not
// reached, 5-minute rollups elsewhere, 1-hour rollups where those are gone, each hour's figures then
// standing for its twelve 5-minute slots). The rule runs on a one-minute clock: the scheduler ticks every
// minute, the autoscaler evaluates every 300 s on the last 5 minutes' average (and 900 s later after a
// change). Schedule windows are read in UTC.
import { countEventsByDirection } from "../db/metricsQuery.ts";
import { findNodeRow, listPoolRows } from "../db/nodes.ts";
import { getDesiredConfig } from "./configs.ts";
import { parseConfigInput, prefixDetails } from "./configDocument.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, describeDetails, type ErrorDetail, notFound, validationFailed } from "./errors.ts";
import { nodePoolsSeries, type SeriesPoint } from "./metricsQuery.ts";
import {
  initialRuleState,
  ORIGINAL_TIMING,
  ruleFromPoolConfig,
  type RuleState,
  type ScalingRule,
  SCHEDULER_TICK_MS,
  stepRule,
} from "./scalingRule.ts";

export const REPLAY_WINDOWS = {
  "24h": { label: "24 h", spanS: 86_400 },
  "7d": { label: "7 d", spanS: 7 * 86_400 },
  "30d": { label: "30 d", spanS: 30 * 86_400 },
} as const;
export type ReplayWindow = keyof typeof REPLAY_WINDOWS;
export const REPLAY_WINDOW_KEYS = Object.keys(REPLAY_WINDOWS) as ReplayWindow[];
export const DEFAULT_REPLAY_WINDOW: ReplayWindow = "7d";
/** Simulated scaling events listed per run; beyond, only counted. */
export const MAX_REPLAY_EVENTS = 200;

const SLOT_MS = 300_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** One step of an instance-count curve: `instances` from `ts` until the next point (null: no data). */
export interface CurvePoint {
  ts: string;
  instances: number | null;
}

export interface ReplayEvent {
  ts: string;
  direction: "UP" | "DOWN";
  from: number;
  to: number;
  by: "autoscaler" | "scheduler";
  reason: string;
}

export interface ReplayFigures {
  scale_ups: number;
  scale_downs: number;
  /** Seconds with cpu above cpu_threshold.max or memory above ram_threshold.max. */
  above_max_s: number;
  above_cpu_max_s: number;
  above_memory_max_s: number;
  instance_hours: number;
  peak_instances: number | null;
}

/** One config replayed over the pool's recorded load. */
export interface ReplayRun {
  rule: {
    cpu: { min: number; max: number };
    memory: { min: number; max: number };
    instances: { min: number; max: number };
    scheduler_max_instances: number;
    schedules: { start_time: string; end_time: string }[];
  };
  simulated: ReplayFigures;
  /** The recorded utilization against this config's maxima. */
  recorded_above_max_s: number;
  events: ReplayEvent[];
  events_truncated: boolean;
  curve: CurvePoint[];
}

export interface PoolReplay {
  instance_pool_id: string;
  display_name: string | null;
  /** Where the readings came from: [from, to) at a resolution (300: 5-minute buckets; 3600: hourly). */
  sources: { from: string; to: string; step_s: number }[];
  /** 5-minute slots with a reading, and the span they cover. */
  slots: number;
  first_reading: string;
  last_reading: string;
  recorded: {
    scale_ups: number;
    scale_downs: number;
    instance_hours: number;
    peak_instances: number | null;
    curve: CurvePoint[];
  };
  proposed: ReplayRun;
  /** The node's desired config replayed the same way; null when it has no entry for this pool. */
  current: ReplayRun | null;
  verdict: string;
}

export interface ReplayResult {
  node_id: string;
  node_name: string;
  window: ReplayWindow;
  from: string;
  to: string;
  /** The desired version the proposal is compared with (null: the node has none). */
  current_version: number | null;
  model: {
    evaluation_s: number;
    cooldown_s: number;
    scheduler_tick_s: number;
    reading_s: number;
    schedule_time_zone: "UTC";
    load: string;
  };
  pools: PoolReplay[];
  /** Pools of the proposed config that could not be replayed, and why. */
  skipped: { instance_pool_id: string; reason: string }[];
  /** One line for people: the proposal against the current config (or the record). */
  verdict: string;
  /** Why nothing was replayed (no pool with metrics in the window); null when something was. */
  reason: string | null;
}

export interface ReplayInput {
  nodeId: string;
  /** A valid config document (parseConfigInput's body). */
  document: Record<string, unknown>;
  window: ReplayWindow;
}

/** 422 naming "window" unless it is one of REPLAY_WINDOW_KEYS. */
export function parseReplayWindow(value: unknown, field = "window"): ReplayWindow {
  if (value === undefined || value === null || value === "") return DEFAULT_REPLAY_WINDOW;
  if (typeof value === "string" && (REPLAY_WINDOW_KEYS as string[]).includes(value)) {
    return value as ReplayWindow;
  }
  const message = `must be one of ${REPLAY_WINDOW_KEYS.join(", ")}`;
  throw validationFailed(`invalid ${field}: ${message}`, [{ field, message, location: "body" }]);
}

/** The replay of a config given as YAML text or an object: 422 naming "config.<path>" (with line and
 * column for YAML) when it is invalid, "window" for an unknown window; 404 unknown node. */
export async function replayConfigInput(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  input: { nodeId: string; config: unknown; window?: unknown },
): Promise<ReplayResult> {
  const details: ErrorDetail[] = [];
  if (input.config === undefined || input.config === "") {
    details.push({
      field: "config",
      message: "required: the config.yaml document (object or YAML text)",
      location: "body",
    });
  }
  const parsed = details.length ? null : parseConfigInput(input.config);
  if (parsed && !parsed.ok) details.push(...prefixDetails(parsed.details, "config"));
  let window: ReplayWindow = DEFAULT_REPLAY_WINDOW;
  try {
    window = parseReplayWindow(input.window);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    details.push(...(error.details ?? []));
  }
  if (details.length || !parsed?.ok) {
    throw validationFailed(`invalid replay: ${describeDetails(details)}`, details);
  }
  return await replayConfig(deps, { nodeId: input.nodeId, document: parsed.body, window });
}

/**
 * Replays `document` (valid) and the node's desired config over the node's recorded metrics of the last
 * `window`, for every pool of the document the node has metrics for. 404 for an unknown node; a node
 * without metrics in the window gets an empty result with its reason. Reads only.
 */
export async function replayConfig(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  input: ReplayInput,
): Promise<ReplayResult> {
  const node = await findNodeRow(deps.db, input.nodeId);
  if (!node) throw notFound(`node ${input.nodeId}`);
  const to = deps.clock.now();
  const from = new Date(to.getTime() - REPLAY_WINDOWS[input.window].spanS * 1000);
  const [desired, knownPools] = await Promise.all([
    getDesiredConfig(deps, input.nodeId),
    listPoolRows(deps.db, input.nodeId),
  ]);
  const currentRules = rulesByPool(desired?.body);
  const proposedRules = rulesByPool(input.document);
  const known = new Map(knownPools.map((pool) => [pool.poolOcid, pool]));
  const { readings, sources } = await readReadings(deps, input.nodeId, from, to);

  const pools: PoolReplay[] = [];
  const skipped: ReplayResult["skipped"] = [];
  for (const [ocid, rule] of proposedRules) {
    const pool = known.get(ocid);
    const slots = readings.get(ocid);
    if (!pool) {
      skipped.push({ instance_pool_id: ocid, reason: "the node has never reported this pool" });
      continue;
    }
    if (!slots || slots.size === 0) {
      skipped.push({
        instance_pool_id: ocid,
        reason: `no metrics recorded in the last ${REPLAY_WINDOWS[input.window].label}`,
      });
      continue;
    }
    const events = await countEventsByDirection(deps.db, { nodeId: input.nodeId, poolId: pool.id, from, to });
    const current = currentRules.get(ocid);
    pools.push(replayPool({
      ocid,
      displayName: pool.displayName,
      slots,
      sources,
      recordedEvents: events,
      proposed: rule,
      current: current ?? null,
      to: to.getTime(),
    }));
  }
  const label = REPLAY_WINDOWS[input.window].label;
  const reason = pools.length
    ? null
    : skipped.length
    ? `Nothing to replay: none of the proposed config's pools has metrics in the last ${label}.`
    : "Nothing to replay: the proposed config has no pools.";
  return {
    node_id: input.nodeId,
    node_name: node.name,
    window: input.window,
    from: from.toISOString(),
    to: to.toISOString(),
    current_version: desired?.version ?? null,
    model: {
      evaluation_s: ORIGINAL_TIMING.evaluationMs / 1000,
      cooldown_s: ORIGINAL_TIMING.cooldownMs / 1000,
      scheduler_tick_s: SCHEDULER_TICK_MS / 1000,
      reading_s: SLOT_MS / 1000,
      schedule_time_zone: "UTC",
      load:
        "recorded utilization x recorded instances, shared by the simulated instances (at most 100% each)",
    },
    pools,
    skipped,
    verdict: reason ?? overallVerdict(pools, label),
    reason,
  };
}

function rulesByPool(document: Record<string, unknown> | undefined): Map<string, ScalingRule> {
  const rules = new Map<string, ScalingRule>();
  const pools = document?.pools;
  if (!Array.isArray(pools)) return rules;
  for (const entry of pools as Record<string, unknown>[]) {
    if (entry && typeof entry.instance_pool_id === "string") {
      rules.set(entry.instance_pool_id, ruleFromPoolConfig(entry));
    }
  }
  return rules;
}

interface Reading {
  cpu: number;
  ram: number;
  instances: number;
}

/** Each pool's 5-minute readings (slot start ms -> reading) over [from, to]: 5-minute buckets where the
 * 5-minute rollups are kept (raw samples fill what they have not reached), hourly buckets before that,
 * each standing for its twelve slots. */
async function readReadings(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  nodeId: string,
  from: Date,
  to: Date,
): Promise<{ readings: Map<string, Map<number, Reading>>; sources: PoolReplay["sources"] }> {
  const fineSince = Math.ceil(
    (deps.clock.now().getTime() - deps.settings.ROLLUP_5M_RETENTION_DAYS * DAY_MS) / HOUR_MS,
  ) * HOUR_MS;
  const parts: { from: Date; to: Date; stepS: number }[] = [];
  if (from.getTime() < fineSince) {
    parts.push({ from, to: new Date(Math.min(fineSince, to.getTime()) - 1), stepS: 3600 });
  }
  if (to.getTime() >= fineSince) {
    parts.push({ from: new Date(Math.max(fineSince, from.getTime())), to, stepS: SLOT_MS / 1000 });
  }
  const readings = new Map<string, Map<number, Reading>>();
  for (const part of parts) {
    const series = await nodePoolsSeries(deps, nodeId, { from: part.from, to: part.to }, part.stepS);
    for (const pool of series) {
      let slots = readings.get(pool.instance_pool_id);
      if (!slots) readings.set(pool.instance_pool_id, slots = new Map());
      for (const point of pool.points) addReading(slots, point, part.stepS * 1000);
    }
  }
  const sources = parts.map((part) => ({
    from: part.from.toISOString(),
    to: new Date(part.to.getTime() + (part.stepS === 3600 ? 1 : 0)).toISOString(),
    step_s: part.stepS,
  }));
  return { readings, sources };
}

function addReading(slots: Map<number, Reading>, point: SeriesPoint, stepMs: number): void {
  if (point.samples <= 0) return;
  const start = Date.parse(point.ts);
  const reading = { cpu: point.cpu.avg, ram: point.memory.avg, instances: point.instance_count };
  for (let slot = start; slot < start + stepMs; slot += SLOT_MS) slots.set(slot, reading);
}

interface PoolReplayInput {
  ocid: string;
  displayName: string | null;
  slots: Map<number, Reading>;
  sources: PoolReplay["sources"];
  recordedEvents: { UP: number; DOWN: number };
  proposed: ScalingRule;
  current: ScalingRule | null;
  to: number;
}

function replayPool(input: PoolReplayInput): PoolReplay {
  const times = [...input.slots.keys()].sort((a, b) => a - b);
  const first = times[0];
  const last = times.at(-1)!;
  const end = Math.min(last + SLOT_MS, input.to);
  const proposed = runRule(input.proposed, input.slots, first, end);
  const current = input.current ? runRule(input.current, input.slots, first, end) : null;
  // The recorded curve and its figures, minute by minute as the runs are counted.
  const recordedCurve = new CurveBuilder();
  let recordedHours = 0;
  let peak: number | null = null;
  for (let ms = first; ms < end; ms += SCHEDULER_TICK_MS) {
    const reading = input.slots.get(slotOf(ms));
    recordedCurve.add(ms, reading ? reading.instances : null);
    if (!reading) continue;
    recordedHours += reading.instances / 60;
    peak = Math.max(peak ?? 0, reading.instances);
  }
  const recorded = {
    scale_ups: input.recordedEvents.UP,
    scale_downs: input.recordedEvents.DOWN,
    instance_hours: round1(recordedHours),
    peak_instances: peak,
    curve: recordedCurve.finish(end),
  };
  const result: Omit<PoolReplay, "verdict"> = {
    instance_pool_id: input.ocid,
    display_name: input.displayName,
    sources: input.sources,
    slots: times.length,
    first_reading: new Date(first).toISOString(),
    last_reading: new Date(last).toISOString(),
    recorded,
    proposed,
    current,
  };
  return { ...result, verdict: poolVerdict(result) };
}

const slotOf = (ms: number) => Math.floor(ms / SLOT_MS) * SLOT_MS;
const round1 = (value: number) => Math.round(value * 10) / 10;

/** A step curve from per-minute values: a point where the value changes. */
class CurveBuilder {
  private points: CurvePoint[] = [];
  private last: number | null | undefined = undefined;

  add(ms: number, value: number | null): void {
    if (value === this.last) return;
    this.points.push({ ts: new Date(ms).toISOString(), instances: value });
    this.last = value;
  }

  /** The curve, ending with a null point at `end` (where the data stops). */
  finish(end: number): CurvePoint[] {
    if (this.last !== null && this.last !== undefined) {
      this.points.push({ ts: new Date(end).toISOString(), instances: null });
    }
    return this.points;
  }
}

/** The work of a slot shared by `size` instances: the utilization each would show. */
export function sharedUtilization(reading: Reading, size: number): { cpu: number; ram: number } {
  const share = (util: number) => {
    const work = util * reading.instances;
    if (work <= 0) return 0;
    return size <= 0 ? 100 : Math.min(100, work / size);
  };
  return { cpu: share(reading.cpu), ram: share(reading.ram) };
}

const noFigures = (): ReplayFigures => ({
  scale_ups: 0,
  scale_downs: 0,
  above_max_s: 0,
  above_cpu_max_s: 0,
  above_memory_max_s: 0,
  instance_hours: 0,
  peak_instances: null,
});

/** The rule over the slots [start, end) on a one-minute clock, from the first slot's recorded size. */
function runRule(rule: ScalingRule, slots: Map<number, Reading>, start: number, end: number): ReplayRun {
  let state: RuleState = initialRuleState(slots.get(start)!.instances);
  const events: ReplayEvent[] = [];
  const figures = noFigures();
  let recordedAbove = 0;
  const curve = new CurveBuilder();
  const tickS = SCHEDULER_TICK_MS / 1000;
  // The first evaluation sees the first complete slot.
  for (let ms = start; ms < end; ms += SCHEDULER_TICK_MS) {
    const previous = slots.get(slotOf(ms) - SLOT_MS);
    const step = stepRule(rule, state, ms, (size) => (previous ? sharedUtilization(previous, size) : null));
    state = step.state;
    for (const action of step.actions) {
      if (action.direction === "UP") figures.scale_ups++;
      else figures.scale_downs++;
      if (events.length < MAX_REPLAY_EVENTS) {
        events.push({
          ts: new Date(ms).toISOString(),
          direction: action.direction,
          from: action.from,
          to: action.to,
          by: action.by,
          reason: action.reason,
        });
      }
    }
    const reading = slots.get(slotOf(ms));
    curve.add(ms, reading ? state.size : null);
    if (!reading) continue;
    const util = sharedUtilization(reading, state.size);
    const cpuAbove = util.cpu > rule.cpu.max;
    const ramAbove = util.ram > rule.ram.max;
    if (cpuAbove) figures.above_cpu_max_s += tickS;
    if (ramAbove) figures.above_memory_max_s += tickS;
    if (cpuAbove || ramAbove) figures.above_max_s += tickS;
    if (reading.cpu > rule.cpu.max || reading.ram > rule.ram.max) recordedAbove += tickS;
    figures.instance_hours += state.size / 60;
    figures.peak_instances = Math.max(figures.peak_instances ?? 0, state.size);
  }
  figures.instance_hours = round1(figures.instance_hours);
  return {
    rule: {
      cpu: rule.cpu,
      memory: rule.ram,
      instances: rule.limits,
      scheduler_max_instances: rule.schedulerMaxInstances,
      schedules: rule.schedules.map((s) => ({ start_time: s.start, end_time: s.end })),
    },
    simulated: figures,
    recorded_above_max_s: recordedAbove,
    events,
    events_truncated: figures.scale_ups + figures.scale_downs > events.length,
    curve: curve.finish(end),
  };
}

/** "2 h 05 min", "45 min", "0 min". */
export function formatDuration(seconds: number): string {
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (hours >= 48 && rest === 0) return `${hours} h`;
  return rest ? `${hours} h ${String(rest).padStart(2, "0")} min` : `${hours} h`;
}

const actions = (f: { scale_ups: number; scale_downs: number }) => f.scale_ups + f.scale_downs;

/** "+16% instance-hours" against a baseline, or "" when the same. */
function instanceHoursChange(proposed: ReplayFigures, baseline: ReplayFigures): string {
  if (baseline.instance_hours <= 0) return "";
  const change = Math.round((proposed.instance_hours / baseline.instance_hours - 1) * 100);
  return change === 0 ? "the same instance-hours" : `${change > 0 ? "+" : ""}${change}% instance-hours`;
}

function poolVerdict(pool: Omit<PoolReplay, "verdict">): string {
  const p = pool.proposed.simulated;
  const c = pool.current?.simulated;
  const moves = `${p.scale_ups} up, ${p.scale_downs} down`;
  const above = `${formatDuration(p.above_max_s)} above its maximum`;
  if (c) {
    const hours = instanceHoursChange(p, c);
    return `${moves} (current config: ${c.scale_ups} up, ${c.scale_downs} down); ${above} (current: ` +
      `${formatDuration(c.above_max_s)} above its own)${hours ? `; ${hours}` : ""}.`;
  }
  return `${moves}; ${above}. No current config for this pool; recorded: ${pool.recorded.scale_ups} up, ` +
    `${pool.recorded.scale_downs} down, ${formatDuration(pool.proposed.recorded_above_max_s)} above the ` +
    `proposed maximum.`;
}

function sum(figures: ReplayFigures[]): ReplayFigures {
  const total = noFigures();
  for (const f of figures) {
    total.scale_ups += f.scale_ups;
    total.scale_downs += f.scale_downs;
    total.above_max_s += f.above_max_s;
    total.above_cpu_max_s += f.above_cpu_max_s;
    total.above_memory_max_s += f.above_memory_max_s;
    total.instance_hours += f.instance_hours;
  }
  return total;
}

function overallVerdict(pools: PoolReplay[], label: string): string {
  const proposed = sum(pools.map((p) => p.proposed.simulated));
  const scope = pools.length === 1 ? "this pool" : `these ${pools.length} pools`;
  const compared = pools.filter((p) => p.current);
  const current = compared.length === pools.length ? sum(compared.map((p) => p.current!.simulated)) : null;
  const times = `${actions(proposed)} times${current ? ` (current config: ${actions(current)})` : ""}`;
  const above = `${formatDuration(proposed.above_max_s)} above its cpu or memory maximum${
    current ? ` (current: ${formatDuration(current.above_max_s)} above its own)` : ""
  }`;
  const hours = current ? instanceHoursChange(proposed, current) : "";
  return `Over the last ${label}, the proposed config would have scaled ${scope} ${times} and run ${above}` +
    `${hours ? `, with ${hours}` : ""}.`;
}
