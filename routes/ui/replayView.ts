// What a what-if replay (core/replay.ts) looks like in the console: per pool the figures side by side
// (proposed, current, recorded) and a chart of the instance counts (recorded, proposed, current) with the
// proposal's simulated scaling marked. Rendered by views/partials/replay.eta; any page can embed it:
//
//   const replay = replayView(await replayConfig(deps, { nodeId, document, window }), { idPrefix: "n1-" });
//   ...data { replay }; in the template: <%~ include("@partials/replay", { replay: it.replay }) %>
import {
  formatDuration,
  REPLAY_WINDOWS,
  type ReplayFigures,
  type ReplayResult,
  type ReplayRun,
} from "../../core/replay.ts";
import { buildChart, type ChartMarkerInput, type ChartModel } from "./charts.ts";

/** Simulated actions drawn one by one at most; beyond, counted per group of the window. */
export const REPLAY_MAX_MARKERS = 40;
const MARKER_GROUPS = 48;

export interface ReplayFigureRow {
  label: string;
  proposed: string;
  current: string | null;
  recorded: string;
}

export interface ReplayPoolView {
  id: string;
  name: string;
  ocid: string;
  verdict: string;
  rows: ReplayFigureRow[];
  chart: ChartModel;
  /** Where the readings came from, in words. */
  source: string;
  /** How to read the figures. */
  footnote: string;
  eventsNote: string | null;
}

export interface ReplayViewModel {
  windowLabel: string;
  verdict: string;
  reason: string | null;
  hasCurrent: boolean;
  currentVersion: number | null;
  pools: ReplayPoolView[];
  skipped: { instance_pool_id: string; reason: string }[];
  model: string;
}

const hours = (value: number) =>
  `${value.toLocaleString("en-US", { maximumFractionDigits: value >= 100 ? 0 : 1 })} h`;
const count = (value: number | null) => (value === null ? "–" : String(value));

function fullTime(iso: string): string {
  return iso.slice(0, 16).replace("T", " ") + " UTC";
}

function markersOf(run: ReplayRun, from: string, to: string): ChartMarkerInput[] {
  const total = run.simulated.scale_ups + run.simulated.scale_downs;
  if (total <= REPLAY_MAX_MARKERS && !run.events_truncated) {
    return run.events.map((e) => ({
      t: e.ts,
      kind: e.direction === "UP" ? "up" : "down",
      label: `${e.direction} ${e.from} → ${e.to}`,
      title:
        `Proposed, ${
          e.by === "scheduler" ? "scheduler" : "autoscaler"
        }: ${e.direction} ${e.from} → ${e.to} ` +
        `at ${fullTime(e.ts)} (${e.reason})`,
    }));
  }
  // Many actions: one marker per direction and group of the window, with the count.
  const start = Date.parse(from);
  const span = (Date.parse(to) - start) / MARKER_GROUPS;
  const groups = new Map<string, { t: number; direction: "UP" | "DOWN"; n: number }>();
  for (const e of run.events) {
    const index = Math.min(MARKER_GROUPS - 1, Math.floor((Date.parse(e.ts) - start) / span));
    const key = `${index}:${e.direction}`;
    const group = groups.get(key) ?? { t: start + (index + 0.5) * span, direction: e.direction, n: 0 };
    group.n++;
    groups.set(key, group);
  }
  return [...groups.values()].map((g) => {
    const a = new Date(g.t - span / 2).toISOString();
    const b = new Date(g.t + span / 2).toISOString();
    return {
      t: new Date(g.t),
      kind: g.direction === "UP" ? "up" : "down",
      label: `${g.n} ${g.direction}`,
      title:
        `Proposed: ${g.n} simulated scale-${g.direction === "UP" ? "up" : "down"}${g.n === 1 ? "" : "s"} ` +
        `between ${fullTime(a)} and ${fullTime(b)}`,
    };
  });
}

function sourceOf(sources: ReplayResult["pools"][number]["sources"]): string {
  const hourly = sources.find((s) => s.step_s === 3600);
  return hourly
    ? `5-minute averages; hourly averages before ${fullTime(hourly.to)} (older 5-minute rollups are gone)`
    : "5-minute averages of the recorded samples";
}

/** The view of a replay result; `idPrefix` keeps chart ids unique when a page shows several. */
export function replayView(
  result: ReplayResult,
  options: { idPrefix?: string; width?: number } = {},
): ReplayViewModel {
  const prefix = options.idPrefix ?? "";
  const label = REPLAY_WINDOWS[result.window].label;
  const pools = result.pools.map((pool, index): ReplayPoolView => {
    const p = pool.proposed;
    const c = pool.current;
    const row = (label: string, pick: (f: ReplayFigures) => string, recorded: string): ReplayFigureRow => ({
      label,
      proposed: pick(p.simulated),
      current: c ? pick(c.simulated) : null,
      recorded,
    });
    const rows = [
      row("Scale-ups", (f) => String(f.scale_ups), String(pool.recorded.scale_ups)),
      row("Scale-downs", (f) => String(f.scale_downs), String(pool.recorded.scale_downs)),
      row(
        "Above max",
        (f) => formatDuration(f.above_max_s),
        formatDuration(c ? c.recorded_above_max_s : p.recorded_above_max_s),
      ),
      row("Peak instances", (f) => count(f.peak_instances), count(pool.recorded.peak_instances)),
      row("Instance-hours", (f) => hours(f.instance_hours), hours(pool.recorded.instance_hours)),
    ];
    const curve = (points: { ts: string; instances: number | null }[]) =>
      points.map((point) => ({ t: point.ts, v: point.instances }));
    const series = [
      { name: "recorded", points: curve(pool.recorded.curve) },
      { name: "proposed", points: curve(p.curve) },
      ...(c ? [{ name: "current config", points: curve(c.curve), dashed: true }] : []),
    ];
    const name = pool.display_name || pool.instance_pool_id.slice(-12);
    const chart = buildChart({
      id: `${prefix}replay-${index}`,
      title: `Instances of ${name}: recorded and replayed`,
      unit: "instances",
      from: result.from,
      to: result.to,
      series,
      markers: markersOf(p, result.from, result.to),
      curve: "step",
      decimals: 0,
      hideTitle: true,
      width: options.width,
    });
    const total = p.simulated.scale_ups + p.simulated.scale_downs;
    return {
      id: `${prefix}replay-pool-${index}`,
      name,
      ocid: pool.instance_pool_id,
      verdict: pool.verdict,
      rows,
      chart,
      source: sourceOf(pool.sources),
      footnote: `Scale-ups include the scheduler's additions. Above max: time with cpu or memory above the ` +
        `config's own maximum${
          c ? "; recorded: against the current config's maxima" : "; recorded: against the proposed maxima"
        }.`,
      eventsNote: total > REPLAY_MAX_MARKERS
        ? `${total} simulated actions: the chart marks them counted per ${
          formatDuration((Date.parse(result.to) - Date.parse(result.from)) / 1000 / MARKER_GROUPS)
        }`
        : null,
    };
  });
  return {
    windowLabel: label,
    verdict: result.verdict,
    reason: result.reason,
    hasCurrent: pools.length > 0 && result.pools.every((pool) => pool.current),
    currentVersion: result.current_version,
    pools,
    skipped: result.skipped,
    model:
      `Rule of the original autoscaler: evaluated every ${result.model.evaluation_s / 60} min on 5-minute ` +
      `averages, one instance per step, ${
        result.model.cooldown_s / 60
      } min cooldown after a change, schedule ` +
      `windows in UTC. Load = recorded utilization × recorded instances, shared by the simulated instances ` +
      `(at most 100% each); no boot delay, no queueing.`,
  };
}
