// The original autoscaler's rule (core/scalingRule.ts) against cases computed by hand from
// ORIGINAL-SYSTEM.md "Scaling rule": strict comparisons, skipped readings, one step at a time outside the
// limits, the 300 s evaluation and the 900 s blocking cooldown, and the scheduler's once-per-window
// addition.
import assert from "node:assert/strict";
import {
  activeWindow,
  evaluate,
  initialRuleState,
  type RuleAction,
  ruleFromPoolConfig,
  type RuleState,
  type ScalingRule,
  stepRule,
  type Utilization,
} from "../core/scalingRule.ts";

const RULE: ScalingRule = {
  cpu: { min: 30, max: 75 },
  ram: { min: 20, max: 75 },
  limits: { min: 2, max: 5 },
  schedulerMaxInstances: 0,
  schedules: [],
};

/** What evaluate() decides: one step up or down to `to`, and why. */
const up = (to: number, reason: string) => ({ direction: "UP", to, reason });
const down = (to: number, reason: string) => ({ direction: "DOWN", to, reason });

const at = (hhmm: string, day = 1) => Date.parse(`2026-06-0${day}T${hhmm}:00Z`);

Deno.test("evaluate: strict comparisons on cpu or ram", () => {
  assert.deepEqual(evaluate(RULE, 3, { cpu: 80, ram: 50 }, false), up(4, "cpu 80.0 > max 75"));
  assert.deepEqual(evaluate(RULE, 3, { cpu: 50, ram: 75.5 }, false), up(4, "ram 75.5 > max 75"));
  assert.equal(evaluate(RULE, 3, { cpu: 75, ram: 75 }, false), null); // equal to max: not over
  assert.equal(evaluate(RULE, 3, { cpu: 30, ram: 20 }, false), null); // equal to min: not under
  assert.equal(evaluate(RULE, 3, { cpu: 50, ram: 50 }, false), null); // in the band
  assert.deepEqual(evaluate(RULE, 3, { cpu: 29.9, ram: 50 }, false), down(2, "cpu 29.9 < min 30"));
  assert.deepEqual(evaluate(RULE, 3, { cpu: 50, ram: 10 }, false), down(2, "ram 10.0 < min 20"));
  // Over a max wins over under a min (cpu high, ram low): up.
  assert.equal(evaluate(RULE, 3, { cpu: 90, ram: 5 }, false)?.direction, "UP");
});

Deno.test("evaluate: both zero or a negative reading is skipped; limits hold", () => {
  assert.equal(evaluate(RULE, 3, { cpu: 0, ram: 0 }, false), null);
  assert.equal(evaluate(RULE, 1, { cpu: 0, ram: 0 }, false), null); // even below min: skipped first
  assert.equal(evaluate(RULE, 3, { cpu: -1, ram: 99 }, false), null);
  assert.equal(evaluate(RULE, 3, { cpu: 99, ram: -0.5 }, false), null);
  // One of them zero is a reading: cpu 0 is under its min.
  assert.equal(evaluate(RULE, 3, { cpu: 0, ram: 50 }, false)?.direction, "DOWN");
  assert.equal(evaluate(RULE, 5, { cpu: 99, ram: 99 }, false), null); // at scaling_limits.max
  assert.equal(evaluate(RULE, 2, { cpu: 1, ram: 1 }, false), null); // at scaling_limits.min
});

Deno.test("evaluate: below min or above max steps by one, whatever the load", () => {
  assert.deepEqual(evaluate(RULE, 0, { cpu: 50, ram: 50 }, false), up(1, "below scaling_limits.min 2"));
  assert.deepEqual(evaluate(RULE, 9, { cpu: 99, ram: 99 }, false), down(8, "above scaling_limits.max 5"));
  // Above max while a window is active: still down (only the low-load scale-down waits for the window).
  assert.equal(evaluate(RULE, 9, { cpu: 10, ram: 10 }, true)?.to, 8);
  // Low load inside a window: nothing.
  assert.equal(evaluate(RULE, 4, { cpu: 10, ram: 10 }, true), null);
  assert.equal(evaluate(RULE, 4, { cpu: 10, ram: 10 }, false)?.direction, "DOWN");
});

/** Steps the rule every minute from `from` to `to` with a fixed reading; the actions with their times. */
function run(
  rule: ScalingRule,
  size: number,
  from: number,
  to: number,
  reading: (ms: number, size: number) => Utilization | null,
): { actions: (RuleAction & { ms: number })[]; state: RuleState } {
  let state = initialRuleState(size);
  const actions: (RuleAction & { ms: number })[] = [];
  for (let ms = from; ms <= to; ms += 60_000) {
    const step = stepRule(rule, state, ms, (s) => reading(ms, s));
    state = step.state;
    actions.push(...step.actions.map((action) => ({ ...action, ms })));
  }
  return { actions, state };
}

Deno.test("stepRule: evaluation every 300 s; a change blocks 900 s more", () => {
  const t0 = at("10:00");
  const hot = run(
    { ...RULE, limits: { min: 1, max: 10 } },
    1,
    t0,
    t0 + 3_600_000,
    () => ({ cpu: 90, ram: 50 }),
  );
  // 10:00 change, then 15 min cooldown + 5 min interval: 10:20, 10:40, 11:00.
  assert.deepEqual(hot.actions.map((a) => [(a.ms - t0) / 60_000, a.from, a.to]), [
    [0, 1, 2],
    [20, 2, 3],
    [40, 3, 4],
    [60, 4, 5],
  ]);
  // Without a change the next evaluation is 5 minutes later: a reading that turns hot at 10:07 is acted on
  // at 10:10.
  const late = run(RULE, 3, t0, t0 + 900_000, (ms) => ({ cpu: ms >= t0 + 420_000 ? 90 : 50, ram: 50 }));
  assert.deepEqual(late.actions.map((a) => (a.ms - t0) / 60_000), [10]);
  // No reading: the evaluation is skipped and comes again 5 minutes later.
  const silent = run(RULE, 1, t0, t0 + 900_000, (ms) => (ms < t0 + 600_000 ? null : { cpu: 50, ram: 50 }));
  assert.deepEqual(silent.actions.map((a) => [(a.ms - t0) / 60_000, a.reason]), [
    [10, "below scaling_limits.min 2"],
  ]);
  assert.equal(silent.state.nextEvaluationMs, t0 + 600_000 + 1_200_000);
});

Deno.test("scheduler: once per window, within max, low load not trimmed inside it", () => {
  const rule: ScalingRule = {
    ...RULE,
    limits: { min: 1, max: 10 },
    schedulerMaxInstances: 3,
    schedules: [{ start: "05:30", end: "05:50" }],
  };
  assert.equal(activeWindow(rule.schedules, at("05:29")), -1);
  assert.equal(activeWindow(rule.schedules, at("05:30")), 0);
  assert.equal(activeWindow(rule.schedules, at("05:50")), 0); // the end minute is inside
  assert.equal(activeWindow(rule.schedules, at("05:51")), -1);

  // Quiet load (cpu 10 < min 30): from 2 instances at 05:00.
  const quiet = () => ({ cpu: 10, ram: 30 });
  const day = run(rule, 2, at("05:00"), at("07:00"), quiet);
  const times = day.actions.map((a) => [new Date(a.ms).toISOString().slice(11, 16), a.by, a.from, a.to]);
  assert.deepEqual(times, [
    ["05:00", "autoscaler", 2, 1], // trimmed to min before the window
    ["05:30", "scheduler", 1, 4], // the window adds 3 at once, once
    // No trimming inside the window (evaluations at 05:35, 05:40, 05:45, 05:50 do nothing).
    ["05:55", "autoscaler", 4, 3], // after it, one per evaluation + cooldown
    ["06:15", "autoscaler", 3, 2],
    ["06:35", "autoscaler", 2, 1],
  ]);

  // The next day's window adds again.
  const twoDays = run(rule, 1, at("05:00"), at("05:40", 2), quiet);
  assert.equal(twoDays.actions.filter((a) => a.by === "scheduler").length, 2);

  // Refused when the addition would pass max (8 + 3 > 10), and the window counts as served: no addition
  // later in it either, even after the size drops.
  const full = run(rule, 8, at("05:30"), at("05:50"), () => ({ cpu: 50, ram: 50 }));
  assert.deepEqual(full.actions, []);
  assert.equal(full.state.windowServed, true);
  const dropping = run({ ...rule, limits: { min: 1, max: 10 } }, 11, at("05:30"), at("05:50"), quiet);
  assert.deepEqual(dropping.actions.map((a) => [a.by, a.from, a.to]), [
    ["autoscaler", 11, 10], // above max: down even inside the window
  ]);
  // At max exactly: nothing to add.
  const atMax = run(rule, 10, at("05:29"), at("05:31"), () => ({ cpu: 50, ram: 50 }));
  assert.deepEqual(atMax.actions, []);
});

Deno.test("ruleFromPoolConfig: the config entry's keys, defaults for what is missing", () => {
  assert.deepEqual(
    ruleFromPoolConfig({
      cpu_threshold: { min: 10, max: 60 },
      ram_threshold: { min: 5, max: 90 },
      scaling_limits: { min: 0, max: 4 },
      scheduler_max_instances: 2,
      schedules: [{ start_time: "06:00", end_time: "07:00" }],
    }),
    {
      cpu: { min: 10, max: 60 },
      ram: { min: 5, max: 90 },
      limits: { min: 0, max: 4 },
      schedulerMaxInstances: 2,
      schedules: [{ start: "06:00", end: "07:00" }],
    },
  );
  assert.deepEqual(ruleFromPoolConfig({}).limits, { min: 1, max: 10 });
  assert.equal(ruleFromPoolConfig({}).schedulerMaxInstances, 0);
});
