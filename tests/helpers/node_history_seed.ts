// Weeks of believable history for one node's pools (for the node page's browser test and its benchmark):
// cpu follows a daily curve with some noise, memory lags behind it, the instance count follows the cpu
// within the pool's limits, and every change of the count is a scaling event at that time.
import type { TestApp } from "./app.ts";
import { type EventSpec, insertEvents, insertSamples, type SampleSpec } from "./fixtures.ts";

export interface HistoryPoolSpec {
  poolId: number;
  min: number;
  max: number;
  /** Shifts this pool's daily peak (hours), so two pools do not draw the same line. */
  phaseH?: number;
  /** Added to the cpu (percentage points). */
  load?: number;
}

export interface HistorySpec {
  nodeId: string;
  pools: HistoryPoolSpec[];
  /** Newest sample time (the node stopped reporting then when it is before now). */
  until: Date;
  days: number;
  everyS: number;
}

// Deterministic noise in [-1, 1), so screenshots and figures repeat run to run.
function noise(seed: number): number {
  const x = Math.sin(seed * 12.9898) * 43_758.5453;
  return (x - Math.floor(x)) * 2 - 1;
}

export function historyFor(spec: HistorySpec, pool: HistoryPoolSpec, poolIndex: number) {
  const samples: SampleSpec[] = [];
  const events: EventSpec[] = [];
  const stepMs = spec.everyS * 1000;
  const end = Math.floor(spec.until.getTime() / stepMs) * stepMs;
  const start = end - spec.days * 86_400_000;
  let instances = pool.min;
  let lastChange = -Infinity;
  for (let t = start, i = 0; t <= end; t += stepMs, i++) {
    const hour = (t / 3_600_000 + (pool.phaseH ?? 0)) % 24;
    const daily = Math.sin(((hour - 8) / 24) * 2 * Math.PI); // peaks mid-afternoon UTC
    const cpu = Math.min(
      99,
      Math.max(2, 42 + (pool.load ?? 0) + 28 * daily + 6 * noise(i + poolIndex * 7919)),
    );
    const memory = Math.min(
      95,
      Math.max(5, 48 + 14 * Math.sin(((hour - 10) / 24) * 2 * Math.PI) + 2 * noise(i)),
    );
    // Scale at most once per 45 min, towards a count that keeps cpu near 55 %.
    const wanted = Math.min(pool.max, Math.max(pool.min, Math.round((instances * cpu) / 55)));
    if (wanted !== instances && t - lastChange >= 45 * 60_000) {
      events.push({
        ts: new Date(t),
        direction: wanted > instances ? "UP" : "DOWN",
        from: instances,
        to: wanted,
        reason: `cpu ${cpu.toFixed(0)}% ${wanted > instances ? "above" : "below"} the 55% target`,
      });
      instances = wanted;
      lastChange = t;
    }
    samples.push({
      ts: new Date(t),
      cpu: Math.round(cpu * 10) / 10,
      memory: Math.round(memory * 10) / 10,
      instances,
    });
  }
  return { samples, events };
}

/** Inserts the history (in batches) and returns how many samples and events it wrote. */
export async function seedNodeHistory(
  ctx: TestApp,
  spec: HistorySpec,
): Promise<{ samples: number; events: number }> {
  let samples = 0, events = 0;
  for (const [index, pool] of spec.pools.entries()) {
    const history = historyFor(spec, pool, index);
    for (let i = 0; i < history.samples.length; i += 5_000) {
      await insertSamples(ctx, spec.nodeId, pool.poolId, history.samples.slice(i, i + 5_000));
    }
    for (let i = 0; i < history.events.length; i += 1_000) {
      await insertEvents(ctx, spec.nodeId, pool.poolId, history.events.slice(i, i + 1_000));
    }
    samples += history.samples.length;
    events += history.events.length;
  }
  return { samples, events };
}
