// A node's recent history for the console's node page: each pool's series over a preset range, at a step
// that gives a chart 200-300 points, and the scaling events inside the range. Built from the same reads as
// the API (nodePoolsSeries gives each pool what poolSeries does, in one statement per table for all the
// node's pools; listScalingEvents), so the page and /api/v1 show the same figures.
import { countEventsByBucket, countEventsByDirection } from "../db/metricsQuery.ts";
import type { CoreDeps } from "./deps.ts";
import {
  listScalingEvents,
  nodePoolsSeries,
  type ScalingEventView,
  type SeriesPoint,
} from "./metricsQuery.ts";

/** The node page's ranges. Steps: 1 h of raw samples in 15 s buckets (240); 24 h in 5 min (288) and
 * 7 d in 40 min (252) from the 5-minute rollups; 30 d in 3 h (240) from the 1-hour rollups. `gapS`: points
 * further apart are not joined, so a node that stopped reporting shows a gap, not a slope. `groupS`: when
 * a range holds more than HISTORY_MAX_MARKERS events, they are counted per group of this span instead. */
export const HISTORY_RANGES = {
  "1h": { label: "1 h", spanS: 3_600, stepS: 15, gapS: 300, groupS: 300 },
  "24h": { label: "24 h", spanS: 86_400, stepS: 300, gapS: 1_800, groupS: 3_600 },
  "7d": { label: "7 d", spanS: 7 * 86_400, stepS: 2_400, gapS: 3 * 2_400, groupS: 21_600 },
  "30d": { label: "30 d", spanS: 30 * 86_400, stepS: 10_800, gapS: 3 * 10_800, groupS: 86_400 },
} as const;
export type HistoryRange = keyof typeof HISTORY_RANGES;
export const HISTORY_RANGE_KEYS = Object.keys(HISTORY_RANGES) as HistoryRange[];
export const DEFAULT_HISTORY_RANGE: HistoryRange = "24h";
/** Events drawn one by one at most; beyond, they are drawn as counts per group (the events list below the
 * charts pages through every one). */
export const HISTORY_MAX_MARKERS = 40;

export interface NodeHistory {
  range: HistoryRange;
  from: string;
  to: string;
  step_s: number;
  gap_s: number;
  pools: { instance_pool_id: string; display_name: string | null; points: SeriesPoint[] }[];
  /** Every scaling event in the range, when there are at most HISTORY_MAX_MARKERS; else empty. */
  events: ScalingEventView[];
  /** Otherwise the events counted per group of `group_s` seconds and direction. */
  event_groups: { from: string; to: string; direction: "UP" | "DOWN"; count: number }[];
  group_s: number;
  event_counts: { UP: number; DOWN: number };
}

/** The history of the node's pools (in OCID order, as getNode lists them) over `range`, ending at the
 * clock's now. */
export async function nodeHistory(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  nodeId: string,
  range: HistoryRange,
): Promise<NodeHistory> {
  const preset = HISTORY_RANGES[range];
  const to = deps.clock.now();
  const from = new Date(to.getTime() - preset.spanS * 1000);
  const window = { from: from.toISOString(), to: to.toISOString() };
  const [series, eventCounts] = await Promise.all([
    nodePoolsSeries(deps, nodeId, { from, to }, preset.stepS),
    countEventsByDirection(deps.db, { nodeId, from, to }),
  ]);
  const grouped = eventCounts.UP + eventCounts.DOWN > HISTORY_MAX_MARKERS;
  const events = grouped
    ? []
    : (await listScalingEvents(deps, { nodeId }, { ...window, limit: HISTORY_MAX_MARKERS })).items;
  const groups = grouped
    ? await countEventsByBucket(deps.db, { nodeId, from, to, stepS: preset.groupS })
    : [];
  return {
    range,
    ...window,
    step_s: preset.stepS,
    gap_s: preset.gapS,
    pools: series.map((s) => ({
      instance_pool_id: s.instance_pool_id,
      display_name: s.display_name,
      points: s.points,
    })),
    events,
    event_groups: groups.map((g) => ({
      from: new Date(g.bucket * preset.groupS * 1000).toISOString(),
      to: new Date((g.bucket + 1) * preset.groupS * 1000).toISOString(),
      direction: g.direction === "UP" ? "UP" as const : "DOWN" as const,
      count: g.count,
    })),
    group_s: preset.groupS,
    event_counts: eventCounts,
  };
}

export interface PoolRangeSummary {
  instance_pool_id: string;
  display_name: string | null;
  cpu: { avg: number; peak: number; peak_at: string } | null;
  memory: { avg: number; peak: number; peak_at: string } | null;
  instances: { min: number; max: number } | null;
  last_point_at: string | null;
}

/** Per pool over the range: sample-weighted averages, peaks with their bucket time, the instance span and
 * the last bucket with data (where an offline node stopped reporting). */
export function summarizeHistory(history: NodeHistory): PoolRangeSummary[] {
  return history.pools.map((pool) => {
    const points = pool.points;
    const samples = points.reduce((n, p) => n + p.samples, 0);
    const figure = (pick: (p: SeriesPoint) => { avg: number; max: number }) => {
      if (!points.length || samples === 0) return null;
      const peak = points.reduce((best, p) => (pick(p).max > pick(best).max ? p : best));
      return {
        avg: points.reduce((sum, p) => sum + pick(p).avg * p.samples, 0) / samples,
        peak: pick(peak).max,
        peak_at: peak.ts,
      };
    };
    const counts = points.map((p) => p.instance_count);
    return {
      instance_pool_id: pool.instance_pool_id,
      display_name: pool.display_name,
      cpu: figure((p) => p.cpu),
      memory: figure((p) => p.memory),
      instances: counts.length ? { min: Math.min(...counts), max: Math.max(...counts) } : null,
      last_point_at: points.at(-1)?.ts ?? null,
    };
  });
}
