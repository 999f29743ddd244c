// Periodic jobs across replicas. Every replica runs a runner; each run of a job happens under a MySQL named
// lock, so one replica at a time does it, and the job's row in job_state says when it last ran (others skip
// it until it is due again) and how far it got (its watermark). A replica that dies releases the lock with
// its connection; the next replica to look takes the job over and continues from the watermark. Jobs are
// written so that running a piece twice gives the same result (upserts that replace, deletes by age), so a
// takeover in the middle never counts anything twice.
import { createHash } from "node:crypto";
import { tryWithNamedLock } from "../db/client.ts";
import { markJobFinished, markJobStarted, readJobState, saveJobWatermark } from "../db/jobs.ts";
import type { CoreDeps } from "./deps.ts";

export interface JobContext {
  deps: CoreDeps;
  /** The clock when the run started. */
  now: Date;
  /** Where the last run (of any replica) got to; null before the first. */
  watermark: Date | null;
  saveWatermark(watermark: Date): Promise<void>;
  /** True once the runner is closing: long jobs stop between batches. */
  stopping(): boolean;
}

export interface Job {
  name: string;
  intervalMs: number;
  /** Returns counts worth logging (rows deleted, buckets written, ...). */
  run(context: JobContext): Promise<Record<string, number>>;
}

/** ran: this replica ran it; failed: it ran and threw; busy: another replica holds it; not_due: it ran
 * recently (here or elsewhere). */
export type JobOutcome = "ran" | "failed" | "busy" | "not_due";

export interface JobObserver {
  (name: string, outcome: JobOutcome, durationS: number): void;
}

export interface JobRunner {
  /** This replica's name in job_state.owner. */
  readonly owner: string;
  readonly jobs: readonly Job[];
  /** Tries one job now (tests call this; the timers call it in production). */
  tick(name: string): Promise<JobOutcome>;
  /** Ticks every job in turn. */
  tickAll(): Promise<Record<string, JobOutcome>>;
  /** Starts the timers: each job is looked at every min(interval, 15 s), with jitter. */
  start(): void;
  close(): Promise<void>;
}

const MAX_CHECK_MS = 15_000;

/** A MySQL lock name (64 characters at most) per job and database: lock names are server-wide, and several
 * databases (tests, staging) may share one server. */
export function jobLockName(database: string, job: string): string {
  const digest = createHash("sha256").update(database).digest("hex").slice(0, 20);
  return `ac_job_${job.slice(0, 30)}_${digest}`;
}

export function createJobRunner(
  deps: CoreDeps,
  jobs: Job[],
  options: { owner?: string; observe?: JobObserver } = {},
): JobRunner {
  const owner = options.owner ??
    `${Deno.hostname().slice(0, 80)}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const byName = new Map(jobs.map((job) => [job.name, job]));
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const running = new Set<Promise<unknown>>();
  let closing = false;

  async function runLocked(job: Job): Promise<JobOutcome> {
    const state = await readJobState(deps.db, job.name);
    const now = deps.clock.now();
    // A run that started and finished within the interval makes the job not due; a run that started but
    // never finished (its replica died) leaves it due at once.
    const finished = state.startedAt && state.finishedAt && state.finishedAt >= state.startedAt;
    if (finished && now.getTime() - state.startedAt!.getTime() < job.intervalMs) return "not_due";
    await markJobStarted(deps.db, job.name, owner, now);
    const started = performance.now();
    let outcome: JobOutcome = "ran";
    let error: string | null = null;
    try {
      const counts = await job.run({
        deps,
        now,
        watermark: state.watermark,
        saveWatermark: (watermark) => saveJobWatermark(deps.db, job.name, watermark),
        stopping: () => closing,
      });
      deps.logger.info("job ran", {
        job: job.name,
        duration_ms: Math.round(performance.now() - started),
        ...counts,
      });
    } catch (caught) {
      outcome = "failed";
      error = caught instanceof Error ? caught.message : String(caught);
      deps.logger.error("job failed", { job: job.name, error: caught });
    }
    const durationMs = performance.now() - started;
    await markJobFinished(deps.db, job.name, {
      at: deps.clock.now(),
      outcome: outcome === "ran" ? "ok" : "error",
      error,
      durationMs,
    });
    options.observe?.(job.name, outcome, durationMs / 1000);
    return outcome;
  }

  async function tick(name: string): Promise<JobOutcome> {
    const job = byName.get(name);
    if (!job) throw new Error(`no job named ${name}`);
    const lock = jobLockName(deps.settings.database.database, job.name);
    try {
      const outcome = await tryWithNamedLock(deps.pool, lock, () => runLocked(job)) ?? "busy";
      if (outcome === "busy" || outcome === "not_due") options.observe?.(job.name, outcome, 0);
      return outcome;
    } catch (error) {
      // The database is away or the state row could not be written: try again at the next tick.
      deps.logger.warn("job could not start", { job: job.name, error });
      options.observe?.(job.name, "failed", 0);
      return "failed";
    }
  }

  function schedule(job: Job) {
    if (closing) return;
    const every = Math.min(job.intervalMs, MAX_CHECK_MS);
    timers.set(
      job.name,
      setTimeout(() => {
        const run = tick(job.name).finally(() => {
          running.delete(run);
          schedule(job);
        });
        running.add(run);
      }, every * (0.5 + Math.random())),
    );
  }

  return {
    owner,
    jobs,
    tick,
    tickAll: async () => {
      const outcomes: Record<string, JobOutcome> = {};
      for (const job of jobs) outcomes[job.name] = await tick(job.name);
      return outcomes;
    },
    start: () => {
      for (const job of jobs) if (!timers.has(job.name)) schedule(job);
    },
    close: async () => {
      closing = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...running]);
    },
  };
}
