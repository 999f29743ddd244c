// How long the periodic jobs take on a given amount of data: N raw samples spread over the past hours, one
// rollup run from scratch (as after an upgrade, or a replica taking over a long backlog), then a retention
// run that deletes them all in batches. Prints figures, never pass/fail.
//
//   deno run -A bench/rollups.ts [--samples 1000000] [--nodes 500] [--pools 3]
import { parseArgs } from "node:util";
import { ManualClock } from "../core/clock.ts";
import type { CoreDeps } from "../core/deps.ts";
import { JOB_NAMES, standardJobs } from "../core/housekeeping.ts";
import { createJobRunner } from "../core/jobs.ts";
import { createLogger } from "../core/logger.ts";
import { createTestDatabase } from "../tests/helpers/app.ts";

const args = parseArgs({
  args: Deno.args,
  options: { samples: { type: "string" }, nodes: { type: "string" }, pools: { type: "string" } },
  strict: true,
});
const SAMPLES = Number(args.values.samples ?? 1_000_000);
const NODES = Number(args.values.nodes ?? 500);
const POOLS = Number(args.values.pools ?? 3);
for (const [name, value] of [["samples", SAMPLES], ["nodes", NODES], ["pools", POOLS]] as const) {
  if (!Number.isInteger(value) || value < 1 || value > 50_000_000) {
    console.error(`--${name} must be a whole number >= 1`);
    Deno.exit(2);
  }
}

const database = await createTestDatabase("bench_rollups");
const clock = new ManualClock("2026-06-10T00:00:00Z");
const deps: CoreDeps = {
  db: database.db,
  pool: database.pool,
  settings: { ...database.settings, RETENTION_BATCH_ROWS: 5000 },
  clock,
  logger: createLogger("warn", (line) => console.error(line)),
};
const series = NODES * POOLS;
const perSeries = Math.ceil(SAMPLES / series);
const intervalMs = 60_000; // one sample a minute per pool, as the autoscaler reports
const end = clock.now().getTime() - 5 * 60_000;
const start = end - perSeries * intervalMs;
console.log(
  `inserting ${
    (series * perSeries).toLocaleString()
  } samples: ${NODES} nodes x ${POOLS} pools, one a minute ` +
    `over ${(perSeries / 60).toFixed(1)} h`,
);
const nodeIds = Array.from({ length: NODES }, () => crypto.randomUUID());
let inserted = 0;
const insertStarted = performance.now();
for (let t = start; t < end; t += intervalMs) {
  const rows: unknown[][] = [];
  const ts = new Date(t);
  for (let n = 0; n < NODES; n++) {
    for (let p = 0; p < POOLS; p++) {
      const x = (n * 31 + p * 7 + t / intervalMs) % 100;
      rows.push([nodeIds[n], n * POOLS + p + 1, ts, x, 100 - x, 1 + (x % 9)]);
    }
  }
  for (let i = 0; i < rows.length; i += 5000) {
    await database.pool.query(
      "INSERT INTO metric_samples (node_id, pool_id, ts, cpu_util, memory_util, instance_count) VALUES ?",
      [rows.slice(i, i + 5000)],
    );
  }
  inserted += rows.length;
}
console.log(`inserted in ${((performance.now() - insertStarted) / 1000).toFixed(1)} s`);

const runner = createJobRunner(deps, standardJobs({ ROLLUP_INTERVAL_S: 60, RETENTION_INTERVAL_S: 3600 }));
const timeJob = async (name: string) => {
  const t0 = performance.now();
  let runs = 0;
  // A run advances at most 48 hours; more data takes more runs (each a minute apart in production).
  for (;;) {
    const outcome = await runner.tick(name);
    runs++;
    const [rows] = await database.pool.query("SELECT watermark FROM job_state WHERE name = ?", [name]);
    const watermark = (rows as { watermark: Date | null }[])[0]?.watermark;
    clock.advance(3_600_000);
    if (outcome !== "ran" || name !== JOB_NAMES.rollups || !watermark) break;
    if (watermark.getTime() >= end - 10 * 60_000) break;
  }
  return { seconds: (performance.now() - t0) / 1000, runs };
};
const rollups = await timeJob(JOB_NAMES.rollups);
const count = async (table: string) => {
  const [rows] = await database.pool.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number((rows as { n: number }[])[0].n);
};
const buckets5m = await count("metric_rollups_5m");
const buckets1h = await count("metric_rollups_1h");
await database.pool.query("ANALYZE TABLE metric_samples, metric_rollups_5m, metric_rollups_1h");
const [sizes] = await database.pool.query(
  `SELECT table_name AS name, data_length + index_length AS bytes FROM information_schema.tables
   WHERE table_schema = ? AND table_name IN ('metric_samples', 'metric_rollups_5m', 'metric_rollups_1h')`,
  [database.name],
);
// Retention: move the clock past RAW_RETENTION_DAYS so every raw sample goes.
clock.advance(deps.settings.RAW_RETENTION_DAYS * 86_400_000 + 86_400_000);
const retention = await timeJob(JOB_NAMES.retention);
const left = await count("metric_samples");
await runner.close();
await database.drop();

console.log(
  `rollups from scratch: ${rollups.seconds.toFixed(1)} s in ${rollups.runs} run(s) for ` +
    `${inserted.toLocaleString()} samples (${
      Math.round(inserted / rollups.seconds).toLocaleString()
    } samples/s); ` +
    `${buckets5m.toLocaleString()} 5-minute and ${buckets1h.toLocaleString()} 1-hour buckets`,
);
console.log(
  `retention: ${retention.seconds.toFixed(1)} s to delete them in batches of 5,000 ` +
    `(${Math.round(inserted / retention.seconds).toLocaleString()} rows/s); ${left} left`,
);
for (const row of sizes as { name: string; bytes: number }[]) {
  console.log(`  ${row.name}: ${(Number(row.bytes) / 1048576).toFixed(0)} MB on disk (data + indexes)`);
}
Deno.exit(0);
