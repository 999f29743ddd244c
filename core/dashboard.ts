// The console's dashboard in one call: node counts by status and config state, pools and instances,
// current fleet cpu/memory, the nodes that need attention, the latest scaling events and the fleet's
// instance count over the last 24 hours. Every figure comes from the same rules the API uses.
import { fleetInstanceRows, fleetRollupInstances } from "../db/dashboard.ts";
import { readJobWatermark } from "../db/jobs.ts";
import { FLEET_WATERMARK } from "./housekeeping.ts";
import { activePoolFigures, countNodesByStatusAndConfig, type StatusCounts } from "../db/nodes.ts";
import type { CoreDeps } from "./deps.ts";
import { listNodes, type NodeSummary } from "./nodes.ts";
import { listScalingEvents, type ScalingEventView } from "./metricsQuery.ts";
import { CONFIG_STATES, onlineSince } from "./nodeStatus.ts";

/** Pools whose latest figures are older than this do not count in the current averages. */
export const CURRENT_FIGURES_MAX_AGE_MS = 15 * 60_000;
/** At most this many nodes listed under "needs attention" per reason. */
export const ATTENTION_LIMIT = 10;
export const DASHBOARD_CHART_HOURS = 24;
const CHART_STEP_S = 3600;
/** The fleet series is recomputed at most this often per replica (the dashboard polls every 10 s). */
export const SERIES_CACHE_MS = 60_000;

/** Remembers the last fleet series of this replica (held by the console, one per app). */
export interface SeriesCache {
  value?: { at: number; points: { ts: string; instances: number }[] };
}

export type AttentionReason = "offline" | "never_seen" | "config_failed" | "config_drifted";

/** A node that needs attention, once, with every reason it is listed for. */
export interface AttentionItem {
  node: NodeSummary;
  reasons: AttentionReason[];
}

export interface Dashboard {
  generated_at: string;
  nodes: StatusCounts;
  config_states: Record<string, number>;
  pools: number;
  instances: number;
  current: { pools_reporting: number; avg_cpu_util: number | null; avg_memory_util: number | null };
  attention: AttentionItem[];
  /** Whether more nodes need attention than are listed (per reason). */
  attention_more: Record<AttentionReason, boolean>;
  events: ScalingEventView[];
  instances_series: { from: string; to: string; step_s: number; points: { ts: string; instances: number }[] };
}

const FIVE_MIN_S = 300;

/** Fleet instances per hour over [from, now]: each hour the average of its 5-minute fleet totals from the
 * fleet rows (a few hundred rows, whatever the fleet's size), then "now" from the pools' current sizes,
 * which stands for the minutes the rollup job has not settled yet (reading them from raw samples took a
 * second at 10,000 nodes). Before the rollup job has ever run, raw samples serve the whole range. */
async function fleetInstancesSeries(
  deps: Pick<CoreDeps, "db">,
  from: Date,
  now: Date,
  currentInstances: number,
  cache: SeriesCache,
): Promise<{ ts: string; instances: number }[]> {
  const cached = cache.value;
  let points = cached && now.getTime() - cached.at < SERIES_CACHE_MS && cached.at <= now.getTime()
    ? cached.points
    : undefined;
  if (!points) {
    const hour = CHART_STEP_S * 1000;
    const step = FIVE_MIN_S * 1000;
    const start = new Date(Math.ceil(from.getTime() / hour) * hour);
    const watermark = await readJobWatermark(deps.db, FLEET_WATERMARK);
    const [rolled, recent] = watermark
      ? [
        await fleetRollupInstances(deps.db, start, new Date(Math.min(watermark.getTime(), now.getTime()))),
        [],
      ]
      : [[], await fleetInstanceRows(deps.db, start, now, FIVE_MIN_S)];
    const byHour = new Map<number, number[]>();
    const add = (ms: number, instances: number) => {
      const key = Math.floor(ms / hour) * hour;
      byHour.set(key, [...(byHour.get(key) ?? []), instances]);
    };
    for (const row of rolled) add(row.bucketStart.getTime(), row.instances);
    for (const row of recent) add(row.bucket * step, row.instances);
    points = [...byHour.entries()].sort((a, b) => a[0] - b[0]).map(([ms, values]) => ({
      ts: new Date(ms).toISOString(),
      instances: Math.round(values.reduce((a, b) => a + b, 0) / values.length * 10) / 10,
    }));
    cache.value = { at: now.getTime(), points };
  }
  return [...points, { ts: now.toISOString(), instances: currentInstances }];
}

export async function dashboardOverview(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  cache: SeriesCache = {},
): Promise<Dashboard> {
  const now = deps.clock.now();
  const from = new Date(now.getTime() - DASHBOARD_CHART_HOURS * 3600_000);
  const attentionList = (params: Parameters<typeof listNodes>[1]) =>
    listNodes(deps, { ...params, sort: "last_heartbeat", limit: ATTENTION_LIMIT });
  const [counts, inventory, offline, neverSeen, failed, drifted, events] = await Promise
    .all([
      countNodesByStatusAndConfig(
        deps.db,
        onlineSince(now, deps.settings.OFFLINE_AFTER_S),
        CONFIG_STATES,
      ),
      activePoolFigures(deps.db, new Date(now.getTime() - CURRENT_FIGURES_MAX_AGE_MS)),
      attentionList({ status: ["offline"] }),
      attentionList({ status: ["never_seen"] }),
      attentionList({ config_state: ["failed"], status: ["online", "offline", "never_seen"] }),
      attentionList({ config_state: ["drifted"], status: ["online", "offline", "never_seen"] }),
      listScalingEvents(deps, {}, { limit: 10 }),
    ]);
  const series = await fleetInstancesSeries(deps, from, now, inventory.instances, cache);
  // Worst first: offline, then failed and drifted configs, then nodes that never reported.
  const byNode = new Map<string, AttentionItem>();
  const add = (nodes: NodeSummary[], reason: AttentionReason) => {
    for (const node of nodes) {
      const item = byNode.get(node.id);
      if (item) item.reasons.push(reason);
      else byNode.set(node.id, { node, reasons: [reason] });
    }
  };
  add(offline.items, "offline");
  add(failed.items, "config_failed");
  add(drifted.items, "config_drifted");
  add(neverSeen.items, "never_seen");
  const attention = [...byNode.values()];
  return {
    generated_at: now.toISOString(),
    nodes: counts.status,
    config_states: Object.fromEntries(CONFIG_STATES.map((s) => [s, counts.configStates[s] ?? 0])),
    pools: inventory.pools,
    instances: inventory.instances,
    current: {
      pools_reporting: inventory.current.pools,
      avg_cpu_util: inventory.current.cpuAvg,
      avg_memory_util: inventory.current.memoryAvg,
    },
    attention,
    attention_more: {
      offline: offline.next_cursor !== null,
      never_seen: neverSeen.next_cursor !== null,
      config_failed: failed.next_cursor !== null,
      config_drifted: drifted.next_cursor !== null,
    },
    events: events.items,
    instances_series: {
      from: from.toISOString(),
      to: now.toISOString(),
      step_s: CHART_STEP_S,
      points: series,
    },
  };
}
