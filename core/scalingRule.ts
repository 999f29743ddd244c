// The original autoscaler's scaling rule (../shared/ORIGINAL-SYSTEM.md, "Scaling rule"), pure and clock-free:
// whoever drives it passes the time of each step. The fleet simulator (tools/simulator.ts) steps it as its
// simulated pools observe their load, the what-if replay (core/replay.ts) over recorded metrics. One
// implementation, so a replay shows what a simulated (or real) autoscaler would do.
//
// Per pool, two loops of the original:
// - the autoscaler evaluates every 300 s: skip when cpu or ram is negative or both are 0; below
//   scaling_limits.min one up, above max one down; cpu > max or ram > max one up (none at max); else cpu < min
//   or ram < min one down (none at min, none while a schedule window is active). Comparisons are strict. A
//   change blocks the loop for 900 s (cooldown) before its next 300 s sleep.
// - the scheduler ticks every 60 s: inside a window (start <= time <= end, local time, no wrap past
//   midnight), once per window, it adds scheduler_max_instances in one step when the result stays within
//   scaling_limits.max (the window counts as served even when refused); outside windows it forgets.

/** The rule of one pool, from its config.yaml entry. */
export interface ScalingRule {
  cpu: { min: number; max: number };
  ram: { min: number; max: number };
  limits: { min: number; max: number };
  /** Instances a schedule window adds, once per window (0: none). */
  schedulerMaxInstances: number;
  /** Windows as "HH:MM", both ends included. */
  schedules: { start: string; end: string }[];
}

/** How often the autoscaler evaluates, and how long a change blocks it. */
export interface RuleTiming {
  evaluationMs: number;
  cooldownMs: number;
}

export const ORIGINAL_TIMING: RuleTiming = { evaluationMs: 300_000, cooldownMs: 900_000 };
/** The original scheduler's tick. */
export const SCHEDULER_TICK_MS = 60_000;

/** The original config.yaml's values, for entries that leave something out (the simulator's lenience). */
export const DEFAULT_RULE: ScalingRule = {
  cpu: { min: 30, max: 75 },
  ram: { min: 20, max: 75 },
  limits: { min: 1, max: 10 },
  schedulerMaxInstances: 0,
  schedules: [],
};

/** Where a pool stands between two steps. */
export interface RuleState {
  size: number;
  /** When the autoscaler evaluates next; null: at the next step. */
  nextEvaluationMs: number | null;
  /** The scheduler has served the window it is in (added, or refused to). */
  windowServed: boolean;
}

export interface Utilization {
  cpu: number;
  ram: number;
}

export interface Decision {
  direction: "UP" | "DOWN";
  to: number;
  reason: string;
}

export interface RuleAction extends Decision {
  by: "autoscaler" | "scheduler";
  from: number;
}

export function initialRuleState(size: number): RuleState {
  return { size, nextEvaluationMs: null, windowServed: false };
}

/** The rule of a config.yaml pool entry; missing or malformed parts keep DEFAULT_RULE's. */
export function ruleFromPoolConfig(pool: Record<string, unknown>): ScalingRule {
  const range = (value: unknown, fallback: { min: number; max: number }) => {
    const r = value as { min?: unknown; max?: unknown } | undefined;
    return {
      min: typeof r?.min === "number" ? r.min : fallback.min,
      max: typeof r?.max === "number" ? r.max : fallback.max,
    };
  };
  const schedules = Array.isArray(pool.schedules)
    ? (pool.schedules as { start_time?: unknown; end_time?: unknown }[])
      .filter((s) => typeof s?.start_time === "string" && typeof s?.end_time === "string")
      .map((s) => ({ start: s.start_time as string, end: s.end_time as string }))
    : [];
  return {
    cpu: range(pool.cpu_threshold, DEFAULT_RULE.cpu),
    ram: range(pool.ram_threshold, DEFAULT_RULE.ram),
    limits: range(pool.scaling_limits, DEFAULT_RULE.limits),
    schedulerMaxInstances: typeof pool.scheduler_max_instances === "number"
      ? pool.scheduler_max_instances
      : 0,
    schedules,
  };
}

const DAY_MS = 86_400_000;

function clockMs(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number);
  return (h * 60 + m) * 60_000;
}

// Windows in milliseconds of the day, parsed once per schedules list (a replay asks every minute).
const parsedWindows = new WeakMap<ScalingRule["schedules"], [number, number][]>();

/** The window (index in `schedules`) active at `ms`: start <= time of day (UTC) <= end, else -1. */
export function activeWindow(schedules: ScalingRule["schedules"], ms: number): number {
  if (schedules.length === 0) return -1;
  let windows = parsedWindows.get(schedules);
  if (!windows) {
    windows = schedules.map((s) => [clockMs(s.start), clockMs(s.end)]);
    parsedWindows.set(schedules, windows);
  }
  const timeOfDay = ((ms % DAY_MS) + DAY_MS) % DAY_MS;
  for (let i = 0; i < windows.length; i++) {
    if (windows[i][0] <= timeOfDay && timeOfDay <= windows[i][1]) return i;
  }
  return -1;
}

export function inScheduleWindow(schedules: ScalingRule["schedules"], ms: number): boolean {
  return activeWindow(schedules, ms) !== -1;
}

const one = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(1));

/** The autoscaler's evaluation for one reading: the change it makes, or null (skipped, in band, or at a
 * limit). `schedulerActive` suppresses the scale-down for low load only. */
export function evaluate(
  rule: ScalingRule,
  size: number,
  util: Utilization,
  schedulerActive: boolean,
): Decision | null {
  const { cpu, ram } = util;
  if (cpu < 0 || ram < 0) return null;
  if (cpu === 0 && ram === 0) return null;
  const up = (reason: string): Decision | null =>
    size >= rule.limits.max ? null : { direction: "UP", to: size + 1, reason };
  const down = (reason: string): Decision | null =>
    size <= rule.limits.min ? null : { direction: "DOWN", to: size - 1, reason };
  if (size < rule.limits.min) return up(`below scaling_limits.min ${rule.limits.min}`);
  if (size > rule.limits.max) return down(`above scaling_limits.max ${rule.limits.max}`);
  if (cpu > rule.cpu.max) return up(`cpu ${cpu.toFixed(1)} > max ${one(rule.cpu.max)}`);
  if (ram > rule.ram.max) return up(`ram ${ram.toFixed(1)} > max ${one(rule.ram.max)}`);
  if (cpu < rule.cpu.min || ram < rule.ram.min) {
    if (schedulerActive) return null;
    return cpu < rule.cpu.min
      ? down(`cpu ${cpu.toFixed(1)} < min ${one(rule.cpu.min)}`)
      : down(`ram ${ram.toFixed(1)} < min ${one(rule.ram.min)}`);
  }
  return null;
}

export interface RuleStep {
  state: RuleState;
  /** What changed the size at this step, in order (the scheduler first). */
  actions: RuleAction[];
  /** The autoscaler evaluated at this step (it was due). */
  evaluated: boolean;
}

/**
 * Everything the rule does at time `ms` (later than the previous step): the scheduler's tick, then the
 * autoscaler's evaluation when it is due. `utilization(size)` gives the reading the evaluation sees with
 * `size` instances (after the scheduler's change), or null when there is none (the evaluation is skipped).
 * Steps should come at least once a minute (the scheduler's tick) for windows to be caught as the original
 * catches them.
 */
export function stepRule(
  rule: ScalingRule,
  state: RuleState,
  ms: number,
  utilization: (size: number) => Utilization | null,
  timing: RuleTiming = ORIGINAL_TIMING,
): RuleStep {
  const next: RuleState = { ...state };
  const actions: RuleAction[] = [];
  const window = activeWindow(rule.schedules, ms);
  if (window === -1) {
    next.windowServed = false;
  } else if (!next.windowServed) {
    next.windowServed = true;
    const add = rule.schedulerMaxInstances;
    if (add > 0 && next.size < rule.limits.max && next.size + add <= rule.limits.max) {
      const { start, end } = rule.schedules[window];
      actions.push({
        by: "scheduler",
        direction: "UP",
        from: next.size,
        to: next.size + add,
        reason: `schedule ${start}-${end} adds ${add}`,
      });
      next.size += add;
    }
  }
  const due = next.nextEvaluationMs === null || ms >= next.nextEvaluationMs;
  if (due) {
    const util = utilization(next.size);
    const decision = util ? evaluate(rule, next.size, util, window !== -1) : null;
    next.nextEvaluationMs = ms + timing.evaluationMs;
    if (decision) {
      actions.push({ by: "autoscaler", from: next.size, ...decision });
      next.size = decision.to;
      // The original sleeps out the cooldown inside the evaluation, then its usual interval.
      next.nextEvaluationMs += timing.cooldownMs;
    }
  }
  return { state: next, actions, evaluated: due };
}
