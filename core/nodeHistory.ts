// A node's recent history for the console's node page: each pool's series over a preset range, at a step
// that gives a chart 200-300 points, and the scaling events inside the range. Built from the same
// services as the API (poolSeries, listScalingEvents), so the page and /api/v1 show the same figures.
import type { CoreDeps } from "./deps.ts";
import { listScalingEvents, poolSeries, type ScalingEventView, type SeriesPoint } from "./metricsQuery.ts";
import type { PoolView } from "./nodes.ts";

/** The node page's ranges. Steps: 1 h of raw samples in 15 s buckets (240); 24 h in 5 min (288) and
 * 7 d in 40 min (252) from the 5-minute rollups; 30 d in 3 h (240) from the 1-hour rollups. `gapS`: points
 * further apart are not joined, so a node that stopped reporting shows a gap, not a slope. */
export const HISTORY_RANGES = {
  "1h": { label: "1 h", spanS: 3_600, stepS: 15, gapS: 300 },
  "24h": { label: "24 h", spanS: 86_400, stepS: 300, gapS: 1_800 },
  "7d": { label: "7 d", spanS: 7 * 86_400, stepS: 2_400, gapS: 3 * 2_400 },
  "30d": { label: "30 d", spanS: 30 * 86_400, stepS: 10_800, gapS: 3 * 10_800 },
} as const;
export type HistoryRange = keyof typeof HISTORY_RANGES;
export const HISTORY_RANGE_KEYS = Object.keys(HISTORY_RANGES) as HistoryRange[];
export const DEFAULT_HISTORY_RANGE: HistoryRange = "24h";
/** Events drawn as markers at most (the newest); the events list pages through all of them. */
export const HISTORY_MAX_MARKERS = 200;

export interface NodeHistory {
  range: HistoryRange;
  from: string;
  to: string;
  step_s: number;
  gap_s: number;
  pools: { instance_pool_id: string; display_name: string | null; points: SeriesPoint[] }[];
  events: ScalingEventView[];
  /** More events happened in the range than are marked. */
  events_truncated: boolean;
}

/** The history of the node's pools (as listed by getNode) over `range`, ending at the clock's now. */
export async function nodeHistory(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  nodeId: string,
  pools: Pick<PoolView, "instance_pool_id">[],
  range: HistoryRange,
): Promise<NodeHistory> {
  const preset = HISTORY_RANGES[range];
  const to = deps.clock.now();
  const from = new Date(to.getTime() - preset.spanS * 1000);
  const window = { from: from.toISOString(), to: to.toISOString() };
  const [series, events] = await Promise.all([
    Promise.all(
      pools.map((pool) =>
        poolSeries(deps, nodeId, pool.instance_pool_id, { ...window, step: String(preset.stepS) })
      ),
    ),
    listScalingEvents(deps, { nodeId }, { ...window, limit: HISTORY_MAX_MARKERS }),
  ]);
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
    events: events.items,
    events_truncated: events.next_cursor !== null,
  };
}
