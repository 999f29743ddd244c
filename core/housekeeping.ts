// The periodic jobs: rollups of raw samples into 5-minute and 1-hour tables and the fleet's 5-minute rows,
// retention (batched deletes), and pruning of expired sessions and old login failures. Each runs under
// core/jobs.ts on one replica.
import {
  clearDirtyHour,
  deleteOlderBatch,
  listDirtyHours,
  oldestRollupTime,
  oldestSampleTime,
  readJobState,
  readJobWatermark,
  type RetentionTable,
  rollup1hFrom5m,
  rollup5mFromRaw,
  rollupFleet5m,
  saveJobWatermark,
} from "../db/jobs.ts";
import type { Job, JobContext } from "./jobs.ts";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** A 5-minute bucket is rolled up once it closed this long ago (samples of the last seconds still arrive). */
export const ROLLUP_SETTLE_MS = 2 * MINUTE_MS;
/** Ingestion marks an hour for recomputation when a sample is older than this on arrival: by then the
 * rollup job may have passed its bucket. Less than ROLLUP_SETTLE_MS, with a minute for replica clock skew. */
export const LATE_SAMPLE_MS = 1 * MINUTE_MS;
/** Rollups advance one hour per step (watermark saved after each); a run does at most this many. */
const ROLLUP_CHUNKS_PER_RUN = 48;
const DIRTY_HOURS_PER_RUN = 500;
/** The fleet rows catch up one hour per step; a run does at most this many (a week). */
const FLEET_CHUNKS_PER_RUN = 168;
/** job_state row holding how far the fleet's 5-minute rows go (written by the rollup job). */
export const FLEET_WATERMARK = "rollups_fleet";
/** Retention stops after this many batches per table and run (the next run continues). */
const RETENTION_BATCHES_PER_RUN = 200;
/** Failed logins older than this no longer count toward throttling. */
export const LOGIN_FAILURE_KEEP_MS = DAY_MS;
const PRUNE_INTERVAL_MS = 10 * MINUTE_MS;

export const JOB_NAMES = { rollups: "rollups", retention: "retention", prune: "prune" } as const;

const floorTo = (ms: number, step: number) => Math.floor(ms / step) * step;
const ceilTo = (ms: number, step: number) => Math.ceil(ms / step) * step;

/** The start of the oldest hour whose raw samples are all still kept. */
export function rawCutoff(now: Date, rawRetentionDays: number): Date {
  return new Date(floorTo(now.getTime() - rawRetentionDays * DAY_MS, HOUR_MS));
}

export interface RollupJobOptions {
  /** Called after each hour step has been saved (tests stop a replica there). */
  afterChunk?: (watermark: Date) => Promise<void>;
}

/** Rolls raw samples up to the last settled 5-minute bucket, one hour step at a time from the watermark, then
 * recomputes the hours that late samples marked. Every write replaces a bucket with what the source holds
 * now, so repeating a step (a takeover after a crash) changes nothing. */
export function rollupJob(intervalMs: number, options: RollupJobOptions = {}): Job {
  return {
    name: JOB_NAMES.rollups,
    intervalMs,
    run: async (context: JobContext) => {
      const { deps, now } = context;
      const target = floorTo(now.getTime() - ROLLUP_SETTLE_MS, 5 * MINUTE_MS);
      let from = context.watermark?.getTime();
      if (from === undefined) {
        const oldest = await oldestSampleTime(deps.pool);
        from = oldest ? floorTo(oldest.getTime(), HOUR_MS) : target;
      }
      let steps = 0, buckets5m = 0, buckets1h = 0, bucketsFleet = 0;
      while (from < target && steps < ROLLUP_CHUNKS_PER_RUN && !context.stopping()) {
        const to = Math.min(target, floorTo(from, HOUR_MS) + HOUR_MS);
        buckets5m += await rollup5mFromRaw(deps.pool, new Date(from), new Date(to));
        buckets1h += await rollup1hFrom5m(
          deps.pool,
          new Date(floorTo(from, HOUR_MS)),
          new Date(ceilTo(to, HOUR_MS)),
        );
        await context.saveWatermark(new Date(to));
        from = to;
        steps++;
        await options.afterChunk?.(new Date(to));
      }
      if (context.watermark === null && steps === 0) await context.saveWatermark(new Date(from));

      // The fleet's rows follow the pools' 5-minute rollups, behind a watermark of their own (so a database
      // that had rollups before the fleet table existed is filled in, a few days per run).
      let fleetFrom = (await readJobState(deps.db, FLEET_WATERMARK)).watermark?.getTime();
      if (fleetFrom === undefined) {
        const oldest = await oldestRollupTime(deps.pool);
        fleetFrom = oldest ? floorTo(oldest.getTime(), HOUR_MS) : from;
      }
      for (let i = 0; fleetFrom < from && i < FLEET_CHUNKS_PER_RUN && !context.stopping(); i++) {
        const to = Math.min(from, floorTo(fleetFrom, HOUR_MS) + HOUR_MS);
        bucketsFleet += await rollupFleet5m(deps.pool, new Date(fleetFrom), new Date(to));
        await saveJobWatermark(deps.db, FLEET_WATERMARK, new Date(to));
        fleetFrom = to;
      }

      const cutoff = rawCutoff(now, deps.settings.RAW_RETENTION_DAYS).getTime();
      let lateHours = 0;
      // The fleet's rows of a late hour are recomputed once, after every node's rows of that hour.
      const lateFleetHours = new Set<number>();
      for (const dirty of await listDirtyHours(deps.pool, DIRTY_HOURS_PER_RUN)) {
        if (context.stopping()) break;
        const hour = dirty.hourStart.getTime();
        // At or past the watermark the pass above reads it anyway; before the raw cutoff part of the hour is
        // gone, and recomputing it would lose what the rollup already holds.
        if (hour < from && hour >= cutoff) {
          const end = new Date(hour + HOUR_MS);
          await rollup5mFromRaw(deps.pool, dirty.hourStart, end, dirty.nodeId);
          await rollup1hFrom5m(deps.pool, dirty.hourStart, end, dirty.nodeId);
          lateFleetHours.add(hour);
          lateHours++;
        }
        await clearDirtyHour(deps.pool, dirty);
      }
      for (const hour of lateFleetHours) {
        if (hour >= fleetFrom) continue; // the pass above reaches it
        bucketsFleet += await rollupFleet5m(deps.pool, new Date(hour), new Date(hour + HOUR_MS));
      }
      return {
        steps,
        buckets_5m: buckets5m,
        buckets_1h: buckets1h,
        buckets_fleet: bucketsFleet,
        late_hours: lateHours,
      };
    },
  };
}

/** Deletes rows past their retention in batches of RETENTION_BATCH_ROWS. Raw samples go only once rolled
 * up: the cutoff never passes the rollup watermark, so a stalled rollup job keeps raw data. */
export function retentionJob(intervalMs: number): Job {
  return {
    name: JOB_NAMES.retention,
    intervalMs,
    run: async (context: JobContext) => {
      const { deps, now } = context;
      const s = deps.settings;
      const daysAgo = (days: number) => new Date(now.getTime() - days * DAY_MS);
      const rolledUpTo = await readJobWatermark(deps.db, JOB_NAMES.rollups);
      const plan: [RetentionTable, Date | null][] = [
        [
          "metric_samples",
          rolledUpTo
            ? new Date(
              Math.min(
                rawCutoff(now, s.RAW_RETENTION_DAYS).getTime(),
                floorTo(rolledUpTo.getTime(), HOUR_MS),
              ),
            )
            : null,
        ],
        ["metric_rollups_5m", daysAgo(s.ROLLUP_5M_RETENTION_DAYS)],
        ["metric_rollups_1h", daysAgo(s.ROLLUP_1H_RETENTION_DAYS)],
        // One row per 5 minutes for the whole fleet: kept as long as the 1-hour rollups, the longest range
        // a summary may span.
        ["metric_rollups_fleet_5m", daysAgo(s.ROLLUP_1H_RETENTION_DAYS)],
        ["scaling_events", daysAgo(s.SCALING_EVENTS_RETENTION_DAYS)],
        ["audit_log", daysAgo(s.AUDIT_RETENTION_DAYS)],
      ];
      const deleted: Record<string, number> = {};
      for (const [table, before] of plan) {
        if (before) deleted[`deleted_${table}`] = await deleteInBatches(context, table, before);
      }
      return deleted;
    },
  };
}

/** Expired sessions, failed logins that no longer count (logins also sweep a few of each) and node
 * credential changes every replica has seen. */
export function pruneJob(intervalMs = PRUNE_INTERVAL_MS): Job {
  return {
    name: JOB_NAMES.prune,
    intervalMs,
    run: async (context: JobContext) => ({
      deleted_sessions: await deleteInBatches(context, "sessions", context.now),
      deleted_login_failures: await deleteInBatches(
        context,
        "login_failures",
        new Date(context.now.getTime() - LOGIN_FAILURE_KEEP_MS),
      ),
      // Replicas read back a few seconds of these (core/configWatcher.ts); an hour is plenty.
      deleted_node_auth_changes: await deleteInBatches(
        context,
        "node_auth_changes",
        new Date(context.now.getTime() - 3_600_000),
      ),
    }),
  };
}

async function deleteInBatches(context: JobContext, table: RetentionTable, before: Date): Promise<number> {
  const batch = context.deps.settings.RETENTION_BATCH_ROWS;
  let total = 0;
  for (let i = 0; i < RETENTION_BATCHES_PER_RUN && !context.stopping(); i++) {
    const deleted = await deleteOlderBatch(context.deps.pool, table, before, batch);
    total += deleted;
    if (deleted < batch) break;
    // A breath between batches lets ingestion's transactions through.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return total;
}

/** The jobs every replica runs, with the intervals from the settings. */
export function standardJobs(
  settings: { ROLLUP_INTERVAL_S: number; RETENTION_INTERVAL_S: number },
  options: RollupJobOptions = {},
): Job[] {
  return [
    rollupJob(settings.ROLLUP_INTERVAL_S * 1000, options),
    retentionJob(settings.RETENTION_INTERVAL_S * 1000),
    pruneJob(),
  ];
}
