// `deno run -A bench/replay.ts [--days 30] [--pools 3] [--runs 5]`: how long a what-if replay takes for one
// node. Writes `--days` of 5-minute rollups for a node of `--pools` simulated pools (the simulator's load
// and rule, one reading per 5 minutes) on a throwaway database, then times replayConfig (the proposal and
// the current config, every pool) over the 30-day window. Prints figures, never pass/fail.
import { parseArgs } from "node:util";
import { setNodeConfig } from "../core/configs.ts";
import { JOB_NAMES } from "../core/housekeeping.ts";
import { nodePoolsSeries } from "../core/metricsQuery.ts";
import { replayConfig } from "../core/replay.ts";
import { readJobState, saveJobWatermark } from "../db/jobs.ts";
import { createTestApp } from "../tests/helpers/app.ts";
import { insertNode, insertPool, insertRollups } from "../tests/helpers/fixtures.ts";
import { initialConfig, PoolLoad, ruleFromConfig, SimulatedPool } from "../tools/simulator.ts";
import { positiveFlag } from "./helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { days: { type: "string" }, pools: { type: "string" }, runs: { type: "string" } },
});
const days = positiveFlag("days", values.days, 30, 90);
const poolCount = positiveFlag("pools", values.pools, 3, 50);
const runs = positiveFlag("runs", values.runs, 5, 100);

const NOW = "2026-06-30T12:00:00Z";
const ctx = await createTestApp("bench_replay", { start: NOW });
try {
  const now = Date.parse(NOW);
  const nodeId = await insertNode(ctx, { name: "bench-replay" });
  const config = initialConfig("bench", 1, poolCount, "us-ashburn-1");
  await setNodeConfig(ctx.deps, ctx.services, { principal: { kind: "system", name: "bench" } }, nodeId, {
    config,
  });
  const started = performance.now();
  let rows = 0;
  for (const entry of config.pools as Record<string, unknown>[]) {
    const ocid = String(entry.instance_pool_id);
    const poolId = await insertPool(ctx, nodeId, ocid);
    const pool = new SimulatedPool(ocid, ruleFromConfig(entry), new PoolLoad(1, ocid));
    const batch = [];
    for (let ms = now - days * 86_400_000; ms < now - 300_000; ms += 300_000) {
      const o = pool.step(ms);
      batch.push({
        nodeId,
        poolId,
        bucketStart: new Date(ms),
        samples: 5,
        cpuAvg: o.cpu,
        cpuMin: o.cpu,
        cpuMax: o.cpu,
        memoryAvg: o.ram,
        memoryMin: o.ram,
        memoryMax: o.ram,
        instanceCountLast: o.decision ? o.decision.to : o.count,
      });
    }
    for (let i = 0; i < batch.length; i += 2000) await insertRollups(ctx, "5m", batch.slice(i, i + 2000));
    rows += batch.length;
  }
  await readJobState(ctx.deps.db, JOB_NAMES.rollups);
  await saveJobWatermark(ctx.deps.db, JOB_NAMES.rollups, new Date(now - 120_000));
  console.log(
    `seeded ${rows} 5-minute rollup rows (${days} d x ${poolCount} pools) in ${
      Math.round(performance.now() - started)
    } ms`,
  );

  const proposal = structuredClone(config);
  for (const pool of proposal.pools as Record<string, unknown>[]) pool.cpu_threshold = { min: 20, max: 60 };
  const times: number[] = [];
  let last;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    last = await replayConfig(ctx.deps, { nodeId, document: proposal, window: "30d" });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const t1 = performance.now();
  await nodePoolsSeries(ctx.deps, nodeId, { from: new Date(now - 30 * 86_400_000), to: new Date(now) }, 300);
  const readMs = performance.now() - t1;
  console.log(`of which reading the 5-minute series of every pool: ${Math.round(readMs)} ms`);
  console.log(
    `replay 30d, ${last!.pools.length} pools (proposal + current): median ${
      Math.round(times[runs >> 1])
    } ms, ` +
      `min ${Math.round(times[0])} ms, max ${Math.round(times.at(-1)!)} ms over ${runs} runs`,
  );
  console.log(last!.verdict);
} finally {
  await ctx.close();
}
