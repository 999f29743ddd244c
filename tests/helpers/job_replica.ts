// A second service process for the jobs test: a job runner over the test's database with the clock it is
// given, that runs the rollup job and stops dead after its first hour step (printing "step <watermark>"),
// so the test can kill it mid-run the way a crashed replica dies: holding the job's lock, run unfinished.
// Usage: deno run -A tests/helpers/job_replica.ts <database> <clock ISO time>
import { ManualClock } from "../../core/clock.ts";
import { rollupJob } from "../../core/housekeeping.ts";
import { createJobRunner } from "../../core/jobs.ts";
import { createLogger } from "../../core/logger.ts";
import { createDatabase } from "../../db/client.ts";
import { testSettings } from "./app.ts";

const [database, now] = Deno.args;
const settings = testSettings(database);
const handle = createDatabase(settings.database, 3);
const logger = createLogger("error", (line) => console.error(line));
const deps = { ...handle, settings, clock: new ManualClock(now), logger };
const job = rollupJob(60_000, {
  afterChunk: async (watermark) => {
    console.log(`step ${watermark.toISOString()}`);
    await new Promise(() => {}); // hangs here until killed
  },
});
const runner = createJobRunner(deps, [job], { owner: "replica-process" });
console.log(`outcome ${await runner.tick(job.name)}`);
