// Metric reads for operators: a pool's bucketed series over a range, the fleet summary, and scaling event
// lists. Ranges and steps are checked here so the API and the pages refuse the same inputs the same way.
import {
  countActivePoolsAndInstances,
  findNodeRow,
  findPoolRow,
  listPoolRows,
  type StatusCounts,
} from "../db/nodes.ts";
import {
  countEventsByDirection,
  type EventRow,
  type ExtremeAt,
  type FleetMetric,
  fleetRollupEvents,
  fleetRollupMax,
  fleetRollupTotals,
  listEventRows,
  nodeAndPoolNames,
  poolsSeriesRows,
  rawSampleTotals,
  rawSampleWith,
  reportingSince,
  type SampleTotals,
  type SeriesRow,
  type SeriesSource,
} from "../db/metricsQuery.ts";
import { readJobWatermark } from "../db/jobs.ts";
import { FLEET_WATERMARK, JOB_NAMES, rawCutoff } from "./housekeeping.ts";
import { cursorDate, decodeCursor, encodeCursor, invalidCursor } from "./cursor.ts";
import type { CoreDeps } from "./deps.ts";
import { notFound, validationFailed } from "./errors.ts";
import { fleetStatusCounts } from "./nodes.ts";

/** At most this many buckets per series (step too small for the range is refused). */
export const MAX_POINTS = 1000;
/** Without a step, the smallest of these giving at most DEFAULT_POINTS buckets. */
export const NICE_STEPS_S = [60, 300, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400] as const;
export const DEFAULT_POINTS = 300;
export const DEFAULT_HOURS = 24;

/** The table whose buckets tile the step's: 1-hour rollups for whole hours, 5-minute rollups for multiples
 * of 5 minutes, raw samples otherwise. */
export function seriesSourceFor(stepS: number): SeriesSource {
  if (stepS % 3600 === 0) return "rollup_1h";
  if (stepS % 300 === 0) return "rollup_5m";
  return "raw";
}

const GRANULARITY_MS: Record<SeriesSource, number> = { raw: 1, rollup_5m: 300_000, rollup_1h: 3_600_000 };

/** Combines partial rows of the same bucket (parts given oldest first): sums, weighted averages, extremes
 * of extremes, the newest part's last instance count. */
export function mergeSeriesParts(parts: SeriesRow[][]): SeriesRow[] {
  const byBucket = new Map<number, SeriesRow>();
  for (const part of parts) {
    for (const row of part) {
      const seen = byBucket.get(row.bucket);
      if (!seen) {
        byBucket.set(row.bucket, { ...row });
        continue;
      }
      const samples = seen.samples + row.samples;
      seen.cpuAvg = (seen.cpuAvg * seen.samples + row.cpuAvg * row.samples) / samples;
      seen.memoryAvg = (seen.memoryAvg * seen.samples + row.memoryAvg * row.samples) / samples;
      seen.samples = samples;
      seen.cpuMin = Math.min(seen.cpuMin, row.cpuMin);
      seen.cpuMax = Math.max(seen.cpuMax, row.cpuMax);
      seen.memoryMin = Math.min(seen.memoryMin, row.memoryMin);
      seen.memoryMax = Math.max(seen.memoryMax, row.memoryMax);
      seen.instanceCountLast = row.instanceCountLast;
    }
  }
  return [...byBucket.values()].sort((a, b) => a.bucket - b.bucket);
}

/** Reads the series of one or more pools of a node from the table that fits the step: whole rollup buckets
 * inside the range and before the rollup job's watermark come from the rollup table; the edges of the range
 * and what is newer than the watermark come from raw samples, so the answer is the same whichever table
 * serves it. One statement per part for all the pools. Rows per pool id. */
async function readSeries(
  deps: Pick<CoreDeps, "db">,
  query: { nodeId: string; poolIds: number[]; from: Date; to: Date; stepS: number },
): Promise<{ source: SeriesSource; rows: Map<number, SeriesRow[]> }> {
  const table = seriesSourceFor(query.stepS);
  const raw = (from: Date, to: Date, toExclusive: boolean) =>
    poolsSeriesRows(deps.db, "raw", { ...query, from, to, toExclusive });
  const perPool = (parts: (SeriesRow & { poolId: number })[][]) =>
    new Map(
      query.poolIds.map((poolId) => [
        poolId,
        mergeSeriesParts(parts.map((part) => part.filter((row) => row.poolId === poolId))),
      ]),
    );
  if (table === "raw") return { source: "raw", rows: perPool([await raw(query.from, query.to, false)]) };
  const granularity = GRANULARITY_MS[table];
  const rolledUpTo = await readJobWatermark(deps.db, JOB_NAMES.rollups);
  const headEnd = Math.ceil(query.from.getTime() / granularity) * granularity;
  const settledEnd = Math.min(
    Math.floor((rolledUpTo?.getTime() ?? 0) / granularity) * granularity,
    Math.floor((query.to.getTime() + 1) / granularity) * granularity,
  );
  if (settledEnd <= headEnd) {
    return { source: "raw", rows: perPool([await raw(query.from, query.to, false)]) };
  }
  const parts = await Promise.all([
    query.from.getTime() < headEnd ? raw(query.from, new Date(headEnd), true) : Promise.resolve([]),
    poolsSeriesRows(deps.db, table, {
      ...query,
      from: new Date(headEnd),
      to: new Date(settledEnd),
      toExclusive: true,
    }),
    raw(new Date(settledEnd), query.to, false),
  ]);
  return { source: table, rows: perPool(parts) };
}

const queryError = (field: string, message: string) =>
  validationFailed(`invalid query: ${field}: ${message}`, [{ field, message, location: "query" }]);

const DURATION = /^(\d{1,9})([smhd]?)$/;
const UNIT_S: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** "300", "300s", "5m", "1h", "1d" -> seconds; 422 naming "step" otherwise. */
export function parseStep(step: string): number {
  const match = DURATION.exec(step.trim());
  const seconds = match ? Number(match[1]) * UNIT_S[match[2]] : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    throw queryError("step", "a whole number of seconds >= 1, or a duration like 30s, 5m, 1h, 1d");
  }
  return seconds;
}

function parseTime(value: string, field: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw queryError(field, "an ISO 8601 time with zone");
  return date;
}

export interface RangeParams {
  from?: string;
  to?: string;
  hours?: number;
}

export interface TimeRange {
  from: Date;
  to: Date;
}

/** from/to, or hours back from now (the original API's `hours=24`), within what is kept. */
export function resolveRange(
  deps: Pick<CoreDeps, "clock" | "settings">,
  params: RangeParams,
  defaultHours = DEFAULT_HOURS,
): TimeRange {
  const now = deps.clock.now();
  // The 1-hour rollups are the longest-kept series: a range may reach back that far.
  const maxDays = deps.settings.ROLLUP_1H_RETENTION_DAYS;
  const maxMs = maxDays * 86_400_000;
  if (params.hours !== undefined) {
    if (params.from !== undefined || params.to !== undefined) {
      throw queryError("hours", "give either hours or from/to, not both");
    }
    if (!Number.isInteger(params.hours) || params.hours < 1 || params.hours * 3_600_000 > maxMs) {
      throw queryError(
        "hours",
        `a whole number of hours in 1..${maxDays * 24} (metrics are kept ${maxDays} days)`,
      );
    }
  }
  const to = params.to !== undefined ? parseTime(params.to, "to") : now;
  const from = params.from !== undefined
    ? parseTime(params.from, "from")
    : new Date(to.getTime() - (params.hours ?? defaultHours) * 3_600_000);
  if (from.getTime() >= to.getTime()) throw queryError("from", "must be before to");
  if (to.getTime() - from.getTime() > maxMs) {
    throw queryError("from", `the range may span at most ${maxDays} days (metrics are kept ${maxDays} days)`);
  }
  return { from, to };
}

/** Buckets (aligned to multiples of the step since the epoch) that [from, to] touches. */
export function bucketCount(range: TimeRange, stepS: number): number {
  const fromS = Math.floor(range.from.getTime() / 1000);
  const toS = Math.floor(range.to.getTime() / 1000);
  return Math.floor(toS / stepS) - Math.floor(fromS / stepS) + 1;
}

/** The step: the one asked for (refused when it makes more than MAX_POINTS buckets), else a nice default.
 * A range reaching back before `rawSince` (where raw samples have been deleted) needs a step the rollups
 * serve: a multiple of 5 minutes. */
export function resolveStep(range: TimeRange, step?: string, rawSince?: Date): number {
  const needsRollups = rawSince !== undefined && range.from.getTime() < rawSince.getTime();
  const spanS = Math.floor(range.to.getTime() / 1000) - Math.floor(range.from.getTime() / 1000);
  const smallest = Math.max(1, Math.ceil(spanS / (MAX_POINTS - 1)));
  if (step !== undefined) {
    const stepS = parseStep(step);
    if (bucketCount(range, stepS) > MAX_POINTS) {
      throw queryError(
        "step",
        `${stepS}s makes ${
          bucketCount(range, stepS)
        } points over this range; at most ${MAX_POINTS} (use step >= ${smallest})`,
      );
    }
    if (needsRollups && stepS % 300 !== 0) {
      throw queryError(
        "step",
        "must be a multiple of 300 (5m) for a range older than the raw samples kept; only rollups reach back there",
      );
    }
    return stepS;
  }
  const nice = NICE_STEPS_S.find((s) =>
    bucketCount(range, s) <= DEFAULT_POINTS && (!needsRollups || s % 300 === 0)
  );
  // Past the nice steps, whole hours: the 1-hour rollups serve them.
  return nice ?? Math.ceil(smallest / 3600) * 3600;
}

export interface SeriesParams extends RangeParams {
  step?: string;
}

export interface SeriesPoint {
  ts: string;
  samples: number;
  cpu: { avg: number; min: number; max: number };
  memory: { avg: number; min: number; max: number };
  instance_count: number;
}

export interface PoolSeries {
  node_id: string;
  instance_pool_id: string;
  display_name: string | null;
  from: string;
  to: string;
  step_s: number;
  source: SeriesSource;
  points: SeriesPoint[];
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;

/** The pool's metrics per step bucket over the range; only buckets with samples are listed. */
export async function poolSeries(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  nodeId: string,
  poolOcid: string,
  params: SeriesParams,
): Promise<PoolSeries> {
  const range = resolveRange(deps, params);
  const stepS = resolveStep(
    range,
    params.step,
    rawCutoff(deps.clock.now(), deps.settings.RAW_RETENTION_DAYS),
  );
  const node = await findNodeRow(deps.db, nodeId);
  if (!node) throw notFound(`node ${nodeId}`);
  const pool = await findPoolRow(deps.db, nodeId, poolOcid);
  if (!pool) throw notFound(`pool ${poolOcid} on node ${node.name}`);
  const { source, rows } = await readSeries(deps, { nodeId, poolIds: [pool.id], ...range, stepS });
  return {
    node_id: nodeId,
    instance_pool_id: pool.poolOcid,
    display_name: pool.displayName,
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    step_s: stepS,
    source,
    points: toPoints(rows.get(pool.id) ?? [], stepS),
  };
}

/** Rows of a series as the API gives its points. */
export function toPoints(rows: SeriesRow[], stepS: number): SeriesPoint[] {
  return rows.map((row) => ({
    ts: new Date(row.bucket * stepS * 1000).toISOString(),
    samples: row.samples,
    cpu: { avg: round3(row.cpuAvg), min: row.cpuMin, max: row.cpuMax },
    memory: { avg: round3(row.memoryAvg), min: row.memoryMin, max: row.memoryMax },
    instance_count: row.instanceCountLast,
  }));
}

/** Every pool of a node over a range at a given step (the node page's charts): the same figures as
 * poolSeries gives for each pool, read in one statement per table for all of them. Pools in OCID order. */
export async function nodePoolsSeries(
  deps: Pick<CoreDeps, "db">,
  nodeId: string,
  range: TimeRange,
  stepS: number,
): Promise<{ instance_pool_id: string; display_name: string | null; points: SeriesPoint[] }[]> {
  const pools = await listPoolRows(deps.db, nodeId);
  const { rows } = await readSeries(deps, { nodeId, poolIds: pools.map((p) => p.id), ...range, stepS });
  return pools.map((pool) => ({
    instance_pool_id: pool.poolOcid,
    display_name: pool.displayName,
    points: toPoints(rows.get(pool.id) ?? [], stepS),
  }));
}

export interface Extreme {
  value: number;
  ts: string;
  node_id: string;
  node_name: string;
  instance_pool_id: string;
}

export interface FleetSummary {
  from: string;
  to: string;
  hours: number;
  nodes: StatusCounts;
  pools: number;
  instances: number;
  metrics: {
    samples: number;
    reporting_nodes: number;
    reporting_pools: number;
    avg_cpu_util: number | null;
    avg_memory_util: number | null;
    max_cpu: Extreme | null;
    max_memory: Extreme | null;
  };
  scaling_events: { UP: number; DOWN: number; total: number };
}

const FIVE_MIN_MS = 300_000;

type Extremum = ExtremeAt;
const extremumTime = (c: Extremum) => (c.ts ?? c.bucketStart)!.getTime();

export interface FleetFigures {
  samples: number;
  cpuAvg: number | null;
  memoryAvg: number | null;
  maxCpu: Extremum | undefined;
  maxMemory: Extremum | undefined;
  events: { UP: number; DOWN: number };
}

/** Every sample of the fleet in [from, to]: whole 5-minute buckets the rollup job has settled come from the
 * fleet's rows (one per bucket, whatever the fleet's size); the partial bucket at `from` and what is newer
 * than the fleet watermark (the last minutes) from raw samples, in one pass each; scaling events likewise.
 * The same figures as reading every raw sample and event. Where an extreme was is looked up only in the part that holds it (the latest
 * part among equal values: the latest sample wins ties). */
export async function fleetFigures(deps: Pick<CoreDeps, "db">, from: Date, to: Date): Promise<FleetFigures> {
  const watermark = await readJobWatermark(deps.db, FLEET_WATERMARK);
  const head = Math.ceil(from.getTime() / FIVE_MIN_MS) * FIVE_MIN_MS;
  const settledEnd = Math.min(
    Math.floor((watermark?.getTime() ?? 0) / FIVE_MIN_MS) * FIVE_MIN_MS,
    Math.floor((to.getTime() + 1) / FIVE_MIN_MS) * FIVE_MIN_MS,
  );
  const none: SampleTotals = { samples: 0, cpuSum: 0, memorySum: 0, cpuMax: null, memoryMax: null };
  // Oldest first: [from, head) raw, [head, settledEnd) fleet rows, [settledEnd, to] raw; without settled
  // buckets in between, all of [from, to] raw.
  const split = settledEnd > head;
  const spans = split
    ? [
      { from, to: new Date(head), toExclusive: true },
      null,
      { from: new Date(settledEnd), to, toExclusive: false },
    ]
    : [{ from, to, toExclusive: false }];
  const totals = await Promise.all(
    spans.map((span) =>
      span === null
        ? fleetRollupTotals(deps.db, new Date(head), new Date(settledEnd))
        : span.from < span.to || !span.toExclusive
        ? rawSampleTotals(deps.db, span.from, span.to, span.toExclusive)
        : Promise.resolve(none)
    ),
  );
  const locate = async (metric: FleetMetric): Promise<Extremum | undefined> => {
    const pick = (t: SampleTotals) => (metric === "cpu" ? t.cpuMax : t.memoryMax);
    const values = totals.map(pick).filter((v): v is number => v !== null);
    if (!values.length) return undefined;
    const best = Math.max(...values);
    const index = totals.findLastIndex((t) => pick(t) === best);
    const span = spans[index];
    return span === null
      ? await fleetRollupMax(deps.db, metric, new Date(head), new Date(settledEnd))
      : await rawSampleWith(deps.db, metric, best, span.from, span.to, span.toExclusive);
  };
  // Scaling events the same way: counted in the fleet rows, and in the raw spans (a few minutes).
  const eventParts = Promise.all(
    spans.map((span) =>
      span === null
        ? fleetRollupEvents(deps.db, new Date(head), new Date(settledEnd))
        : span.from < span.to || !span.toExclusive
        ? countEventsByDirection(deps.db, {
          from: span.from,
          to: span.toExclusive ? new Date(span.to.getTime() - 1) : span.to,
        })
        : Promise.resolve({ UP: 0, DOWN: 0 })
    ),
  );
  const [maxCpu, maxMemory, events] = await Promise.all([locate("cpu"), locate("memory"), eventParts]);
  const samples = totals.reduce((n, p) => n + p.samples, 0);
  const sum = (pick: (p: SampleTotals) => number) => totals.reduce((n, p) => n + pick(p), 0);
  return {
    samples,
    cpuAvg: samples ? sum((p) => p.cpuSum) / samples : null,
    memoryAvg: samples ? sum((p) => p.memorySum) / samples : null,
    maxCpu,
    maxMemory,
    events: {
      UP: events.reduce((n, e) => n + e.UP, 0),
      DOWN: events.reduce((n, e) => n + e.DOWN, 0),
    },
  };
}

/** Fleet figures over the last `hours`: averages, extremes, scaling events; current node counts per status
 * and the pools and instances of nodes that are not decommissioned. */
export async function fleetSummary(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  hours = DEFAULT_HOURS,
): Promise<FleetSummary> {
  const { from, to } = resolveRange(deps, { hours });
  const [counts, inventory, figures, reporting] = await Promise.all([
    fleetStatusCounts(deps),
    countActivePoolsAndInstances(deps.db),
    fleetFigures(deps, from, to),
    reportingSince(deps.db, from),
  ]);
  const events = figures.events;
  const extreme = async (found: Extremum | undefined): Promise<Extreme | null> => {
    if (!found) return null;
    const names = await nodeAndPoolNames(deps.db, found.nodeId, found.poolId);
    return {
      value: found.value,
      ts: new Date(extremumTime(found)).toISOString(),
      node_id: found.nodeId,
      node_name: names?.nodeName ?? found.nodeId,
      instance_pool_id: names?.poolOcid ?? String(found.poolId),
    };
  };
  const [maxCpu, maxMemory] = await Promise.all([extreme(figures.maxCpu), extreme(figures.maxMemory)]);
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    hours,
    nodes: counts,
    pools: inventory.pools,
    instances: inventory.instances,
    metrics: {
      samples: figures.samples,
      reporting_nodes: figures.samples ? reporting.nodes : 0,
      reporting_pools: figures.samples ? reporting.pools : 0,
      avg_cpu_util: figures.cpuAvg === null ? null : round3(figures.cpuAvg),
      avg_memory_util: figures.memoryAvg === null ? null : round3(figures.memoryAvg),
      max_cpu: maxCpu,
      max_memory: maxMemory,
    },
    scaling_events: { ...events, total: events.UP + events.DOWN },
  };
}

export const EVENT_LIST_DEFAULT_LIMIT = 50;
export const EVENT_LIST_MAX_LIMIT = 500;

export interface EventListParams {
  from?: string;
  to?: string;
  direction?: "UP" | "DOWN";
  cursor?: string;
  limit?: number;
}

export interface ScalingEventView {
  id: number;
  node_id: string;
  node_name: string;
  instance_pool_id: string;
  pool_display_name: string | null;
  ts: string;
  direction: string;
  from_count: number | null;
  to_count: number | null;
  reason: string | null;
}

function toEventView(row: EventRow): ScalingEventView {
  return {
    id: row.id,
    node_id: row.nodeId,
    node_name: row.nodeName,
    instance_pool_id: row.poolOcid,
    pool_display_name: row.poolDisplayName,
    ts: row.ts.toISOString(),
    direction: row.direction,
    from_count: row.fromCount,
    to_count: row.toCount,
    reason: row.reason,
  };
}

/** Scaling events newest first, fleet-wide or for one node or one of its pools (404 when unknown). */
export async function listScalingEvents(
  deps: Pick<CoreDeps, "db">,
  scope: { nodeId?: string; poolOcid?: string },
  params: EventListParams,
): Promise<{ items: ScalingEventView[]; next_cursor: string | null }> {
  const limit = params.limit ?? EVENT_LIST_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > EVENT_LIST_MAX_LIMIT) {
    throw queryError("limit", `must be an integer in 1..${EVENT_LIST_MAX_LIMIT}`);
  }
  const from = params.from !== undefined ? parseTime(params.from, "from") : undefined;
  const to = params.to !== undefined ? parseTime(params.to, "to") : undefined;
  if (from && to && from.getTime() > to.getTime()) throw queryError("from", "must not be after to");
  let before: { ts: Date; id: number } | undefined;
  if (params.cursor) {
    const [ts, id] = decodeCursor(params.cursor);
    if (!Number.isSafeInteger(id)) throw invalidCursor("not a cursor this server issued");
    before = { ts: cursorDate(ts), id: id as number };
  }
  let poolId: number | undefined;
  if (scope.nodeId !== undefined) {
    const node = await findNodeRow(deps.db, scope.nodeId);
    if (!node) throw notFound(`node ${scope.nodeId}`);
    if (scope.poolOcid !== undefined) {
      const pool = await findPoolRow(deps.db, scope.nodeId, scope.poolOcid);
      if (!pool) throw notFound(`pool ${scope.poolOcid} on node ${node.name}`);
      poolId = pool.id;
    }
  }
  const rows = await listEventRows(deps.db, {
    nodeId: scope.nodeId,
    poolId,
    from,
    to,
    direction: params.direction,
    before,
    limit,
  });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toEventView),
    next_cursor: rows.length > limit && last ? encodeCursor([last.ts.toISOString(), last.id]) : null,
  };
}
