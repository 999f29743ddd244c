// Server-side charts: scales, ticks and SVG paths computed here with d3-scale and d3-shape (no DOM, no
// client script), drawn by views/partials/chart.eta as inline SVG. Every chart has axes with units, a
// <title> per point (hover), markers for events (scaling UP/DOWN), and a text fallback: a description for
// screen readers and the data as a table in a <details>.
//
// Usage (a page handler):
//   const chart = buildChart({ id: "cpu", title: "CPU", unit: "%", yDomain: [0, 100], from, to,
//     series: [{ name: "avg", points: [{ t, v }] }], markers: [{ t, label: "UP 3→4", kind: "up" }] });
//   ...render with data { chart }; the template does <%~ include("@partials/chart", { chart: it.chart }) %>
// Several series share one y axis (e.g. cpu avg and max); use one chart per unit.
// @ts-types="@types/d3-scale"
import { scaleLinear, scaleUtc } from "d3-scale";
// @ts-types="@types/d3-shape"
import { curveStepAfter, line } from "d3-shape";

export interface ChartPoint {
  t: Date | string;
  /** null: no data from here to the next point (the line breaks). */
  v: number | null;
}

export interface ChartSeriesInput {
  name: string;
  points: ChartPoint[];
  /** Drawn dashed (a comparison beside the main lines). */
  dashed?: boolean;
}

export interface ChartMarkerInput {
  t: Date | string;
  label: string;
  kind: "up" | "down" | "info";
  /** The whole hover text, instead of "<label> at <time>" (a marker that stands for a span). */
  title?: string;
}

export interface ChartInput {
  /** Unique on the page (ids of title/description elements derive from it). */
  id: string;
  title: string;
  /** Shown on the y axis and in titles, e.g. "%", "instances". */
  unit: string;
  from: Date | string;
  to: Date | string;
  series: ChartSeriesInput[];
  markers?: ChartMarkerInput[];
  /** Fixed y range (e.g. [0, 100] for percentages); otherwise 0..max, nicely rounded. */
  yDomain?: [number, number];
  /** Points further apart than this are not joined (a gap in reporting stays visible). */
  gapMs?: number;
  /** "step": each value holds until the next point (counts that change at events), else straight lines. */
  curve?: "linear" | "step";
  width?: number;
  height?: number;
  /** Decimals in titles and the table. */
  decimals?: number;
  /** Leave the caption out when the page already has a heading for the chart. */
  hideTitle?: boolean;
  /** Where the data table is loaded from when asked for (a link without JavaScript); without it the table
   * is in the page. */
  tableUrl?: string;
}

export interface ChartModel {
  id: string;
  title: string;
  unit: string;
  width: number;
  height: number;
  plot: { left: number; top: number; right: number; bottom: number };
  xTicks: { x: number; label: string }[];
  yTicks: { y: number; label: string }[];
  lines: { d: string; series: number; name: string; dashed: boolean }[];
  dots: { x: number; y: number; series: number; title: string }[];
  markers: { x: number; kind: string; title: string }[];
  legend: { name: string; series: number; dashed: boolean }[];
  empty: boolean;
  showTitle: boolean;
  /** Many points: dots stay invisible (hover targets only) so the line reads clearly. */
  quietDots: boolean;
  /** Many events: their dashed lines are faint so the data stays readable (the ▲/▼ glyphs stay). */
  quietMarkers: boolean;
  description: string;
  table: { columns: string[]; rows: string[][] };
  tableUrl: string | null;
}

const MARGIN = { left: 48, right: 16, top: 24, bottom: 28 };

function timeLabel(date: Date, spanMs: number): string {
  const iso = date.toISOString();
  if (spanMs <= 2 * 86_400_000) return iso.slice(11, 16);
  const month = date.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
  return `${month} ${date.getUTCDate()}`;
}

function fullTime(date: Date): string {
  return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

export function buildChart(input: ChartInput): ChartModel {
  const width = input.width ?? 720;
  const height = input.height ?? 240;
  const decimals = input.decimals ?? 1;
  const from = new Date(input.from);
  const to = new Date(input.to);
  const spanMs = to.getTime() - from.getTime();
  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    right: width - MARGIN.right,
    bottom: height - MARGIN.bottom,
  };
  // Where a series has no data (a null point), its line breaks until the next value.
  const breaks = input.series.map((s) =>
    s.points.filter((p) => p.v === null).map((p) => new Date(p.t).getTime()).sort((a, b) => a - b)
  );
  const series = input.series.map((s) => ({
    name: s.name,
    dashed: s.dashed ?? false,
    points: s.points
      .filter((p): p is { t: Date | string; v: number } => p.v !== null)
      .map((p) => ({ t: new Date(p.t), v: p.v }))
      .filter((p) => Number.isFinite(p.v) && p.t >= from && p.t <= to)
      .sort((a, b) => a.t.getTime() - b.t.getTime()),
  }));
  const values = series.flatMap((s) => s.points.map((p) => p.v));
  const empty = values.length === 0;
  const x = scaleUtc().domain([from, to]).range([plot.left, plot.right]);
  const maxValue = values.length ? Math.max(...values) : 1;
  const y = scaleLinear()
    .domain(input.yDomain ?? [0, maxValue > 0 ? maxValue * 1.1 : 1])
    .range([plot.bottom, plot.top]);
  if (!input.yDomain) y.nice(5);
  const format = (v: number) => `${v.toFixed(decimals).replace(/\.0+$/, "")} ${input.unit}`.trim();
  const round = (n: number) => Math.round(n * 10) / 10;

  const xTicks = x.ticks(width < 500 ? 4 : 6).map((t) => ({ x: round(x(t)), label: timeLabel(t, spanMs) }));
  const yTicks = y.ticks(4).map((v) => ({ y: round(y(v)), label: y.tickFormat(4)(v) }));
  const gapMs = input.gapMs ?? Infinity;
  const lines = series.map((s, index) => {
    const points = s.points;
    const path = line<{ t: Date; v: number }>()
      .x((p) => round(x(p.t)))
      .y((p) => round(y(p.v)));
    if (input.curve === "step") path.curve(curveStepAfter);
    const breakAt = breaks[index];
    // Break the line at gaps: draw each run of close points as its own sub-path; a step run holds its last
    // value up to the break that ends it.
    const runs: { t: Date; v: number }[][] = [];
    for (const [i, p] of points.entries()) {
      const previous = points[i - 1];
      const broken = previous && breakAt.some((b) => b > previous.t.getTime() && b <= p.t.getTime());
      if (i === 0 || broken || p.t.getTime() - previous.t.getTime() > gapMs) {
        if (input.curve === "step" && previous) closeStep(runs.at(-1)!, breakAt, to);
        runs.push([]);
      }
      runs.at(-1)!.push(p);
    }
    if (input.curve === "step" && runs.length) closeStep(runs.at(-1)!, breakAt, to);
    return { d: runs.map((run) => path(run) ?? "").join(""), series: index, name: s.name, dashed: s.dashed };
  });
  const dots = series.flatMap((s, index) =>
    s.points.map((p) => ({
      x: round(x(p.t)),
      y: round(y(p.v)),
      series: index,
      title: `${s.name}: ${format(p.v)} at ${fullTime(p.t)}`,
    }))
  );
  const markers = (input.markers ?? [])
    .map((m) => ({ ...m, t: new Date(m.t) }))
    .filter((m) => m.t >= from && m.t <= to)
    .map((m) => ({ x: round(x(m.t)), kind: m.kind, title: m.title ?? `${m.label} at ${fullTime(m.t)}` }));

  // Text fallback: a sentence per series, and every point in a table (times as rows, series as columns).
  const description = empty
    ? `${input.title}: no data between ${fullTime(from)} and ${fullTime(to)}.`
    : series.map((s) => {
      if (!s.points.length) return `${s.name}: no data.`;
      const vs = s.points.map((p) => p.v);
      return `${s.name}: from ${format(Math.min(...vs))} to ${format(Math.max(...vs))}, last ${
        format(vs.at(-1)!)
      } at ${fullTime(s.points.at(-1)!.t)}.`;
    }).join(" ") + (markers.length ? ` ${markers.length} event(s) marked.` : "");
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p.t.getTime())))].sort((a, b) => a - b);
  const byTime = series.map((s) => new Map(s.points.map((p) => [p.t.getTime(), p.v])));
  const rows = times.map((time) => [
    fullTime(new Date(time)),
    ...byTime.map((values) => {
      const value = values.get(time);
      return value === undefined ? "" : format(value);
    }),
  ]);
  return {
    id: input.id,
    title: input.title,
    unit: input.unit,
    width,
    height,
    plot,
    xTicks,
    yTicks,
    lines,
    dots,
    markers,
    legend: series.map((s, index) => ({ name: s.name, series: index, dashed: s.dashed })),
    empty,
    showTitle: !input.hideTitle,
    quietDots: dots.length > 60,
    quietMarkers: markers.length > 24,
    description,
    table: { columns: ["Time", ...series.map((s) => `${s.name} (${input.unit})`)], rows },
    tableUrl: input.tableUrl ?? null,
  };
}

/** A step run ends at the first break after its last point (else at the chart's end): its last value is
 * held until then. */
function closeStep(run: { t: Date; v: number }[], breakAt: number[], end: Date): void {
  const last = run.at(-1)!;
  const stop = breakAt.find((b) => b > last.t.getTime()) ?? end.getTime();
  if (stop > last.t.getTime()) run.push({ t: new Date(Math.min(stop, end.getTime())), v: last.v });
}
