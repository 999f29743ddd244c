// The fleet's 5-minute rows (metric_rollups_fleet_5m): written by the rollup job from the pools' 5-minute
// rollups, they agree with the raw samples; they advance incrementally, a rerun changes nothing, late
// samples are folded in, a database that had rollups before the table existed is filled in, and retention
// deletes them. The fleet summary read from them equals the summary of every raw sample.
import assert from "node:assert/strict";
import { dashboardOverview } from "../core/dashboard.ts";
import { FLEET_WATERMARK, JOB_NAMES } from "../core/housekeeping.ts";
import { rollupFleet5m } from "../db/jobs.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import { insertEvents, insertNode, insertPool, insertSamples, type SampleSpec } from "./helpers/fixtures.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";

const START = "2026-06-01T12:00:00Z";
const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** Samples every 41 s over [from, until), values from a small hash of the index and the pool. */
function samplesOf(from: string, until: string, pool: number): SampleSpec[] {
  const out: SampleSpec[] = [];
  for (let t = Date.parse(from), i = 0; t < Date.parse(until); t += 41_000, i++) {
    const x = (i * 4931 + pool * 7727) % 997;
    out.push({ ts: new Date(t), cpu: x / 10, memory: ((x * 7) % 997) / 10, instances: 1 + (x % 6) });
  }
  return out;
}

interface RawSample {
  nodeId: string;
  poolId: number;
  ts: Date;
  cpu: number;
  memory: number;
  instances: number;
}

async function rawSamples(ctx: TestApp): Promise<RawSample[]> {
  const [rows] = await ctx.deps.pool.query(
    "SELECT node_id, pool_id, ts, cpu_util, memory_util, instance_count FROM metric_samples ORDER BY ts",
  );
  return (rows as Record<string, unknown>[]).map((r) => ({
    nodeId: String(r.node_id),
    poolId: Number(r.pool_id),
    ts: r.ts as Date,
    cpu: Number(r.cpu_util),
    memory: Number(r.memory_util),
    instances: Number(r.instance_count),
  }));
}

interface FleetRow {
  samples: number;
  pools: number;
  cpuSum: number;
  memorySum: number;
  cpuMax: number;
  cpuMaxAt: string;
  memoryMax: number;
  instances: number;
  scaleUps: number;
  scaleDowns: number;
}

async function eventTimes(ctx: TestApp): Promise<{ ts: Date; direction: string }[]> {
  const [rows] = await ctx.deps.pool.query("SELECT ts, direction FROM scaling_events ORDER BY ts");
  return rows as { ts: Date; direction: string }[];
}

async function fleetRows(ctx: TestApp): Promise<Map<number, FleetRow>> {
  const [rows] = await ctx.deps.pool.query("SELECT * FROM metric_rollups_fleet_5m ORDER BY bucket_start");
  return new Map(
    (rows as Record<string, unknown>[]).map((r) => [(r.bucket_start as Date).getTime(), {
      samples: Number(r.samples),
      pools: Number(r.pools),
      cpuSum: Number(r.cpu_sum),
      memorySum: Number(r.memory_sum),
      cpuMax: Number(r.cpu_max),
      cpuMaxAt: `${r.cpu_max_node_id}/${r.cpu_max_pool_id}`,
      memoryMax: Number(r.memory_max),
      instances: Number(r.instances),
      scaleUps: Number(r.scale_ups),
      scaleDowns: Number(r.scale_downs),
    }]),
  );
}

/** Every fleet row before `until` equals what the raw samples of its bucket give; none is missing. */
async function assertFleetMatchesRaw(ctx: TestApp, until: Date): Promise<number> {
  const byBucket = new Map<number, RawSample[]>();
  for (const s of await rawSamples(ctx)) {
    const bucket = Math.floor(s.ts.getTime() / 300_000) * 300_000;
    if (bucket + 300_000 > until.getTime()) continue;
    byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), s]);
  }
  const rows = await fleetRows(ctx);
  const events = await eventTimes(ctx);
  for (const [bucket, samples] of byBucket) {
    const inBucket = events.filter((e) => Math.floor(e.ts.getTime() / 300_000) * 300_000 === bucket);
    assert.equal(rows.get(bucket)?.scaleUps, inBucket.filter((e) => e.direction === "UP").length, "ups");
    assert.equal(rows.get(bucket)?.scaleDowns, inBucket.filter((e) => e.direction === "DOWN").length);
    const row = rows.get(bucket);
    const at = new Date(bucket).toISOString();
    assert.ok(row, `no fleet row for ${at}`);
    const lastPerPool = new Map<string, number>();
    for (const s of samples) lastPerPool.set(`${s.nodeId}/${s.poolId}`, s.instances); // ordered by ts
    const cpuMax = Math.max(...samples.map((s) => s.cpu));
    assert.equal(row.samples, samples.length, `${at} samples`);
    assert.equal(row.pools, lastPerPool.size, `${at} pools`);
    assert.ok(Math.abs(row.cpuSum - samples.reduce((n, s) => n + s.cpu, 0)) < 1e-6, `${at} cpu sum`);
    assert.ok(Math.abs(row.memorySum - samples.reduce((n, s) => n + s.memory, 0)) < 1e-6, `${at} memory`);
    assert.equal(row.cpuMax, cpuMax, `${at} cpu max`);
    assert.ok(samples.some((s) => `${s.nodeId}/${s.poolId}` === row.cpuMaxAt && s.cpu === cpuMax));
    assert.equal(row.memoryMax, Math.max(...samples.map((s) => s.memory)), `${at} memory max`);
    assert.equal(row.instances, [...lastPerPool.values()].reduce((a, b) => a + b, 0), `${at} instances`);
  }
  for (const bucket of rows.keys()) {
    if (bucket + 300_000 <= until.getTime()) assert.ok(byBucket.has(bucket), `stray row ${bucket}`);
  }
  return byBucket.size;
}

/** The summary's metrics computed from every raw sample in [from, to]. */
async function rawSummary(ctx: TestApp, from: Date, to: Date) {
  const samples = (await rawSamples(ctx)).filter((s) => s.ts >= from && s.ts <= to);
  const names = new Map<string, string>();
  const [rows] = await ctx.deps.pool.query(
    "SELECT p.id, p.node_id, p.pool_ocid, n.name FROM instance_pools p JOIN nodes n ON n.id = p.node_id",
  );
  for (const r of rows as Record<string, unknown>[]) {
    names.set(`${r.node_id}/${r.id}`, `${r.name}|${r.pool_ocid}`);
  }
  const extreme = (pick: (s: RawSample) => number) => {
    const best = samples.reduce((a, b) => pick(b) > pick(a) || (pick(b) === pick(a) && b.ts > a.ts) ? b : a);
    const [nodeName, ocid] = names.get(`${best.nodeId}/${best.poolId}`)!.split("|");
    return {
      value: pick(best),
      ts: best.ts.toISOString(),
      node_id: best.nodeId,
      node_name: nodeName,
      instance_pool_id: ocid,
    };
  };
  return {
    samples: samples.length,
    reporting_nodes: new Set(samples.map((s) => s.nodeId)).size,
    reporting_pools: new Set(samples.map((s) => `${s.nodeId}/${s.poolId}`)).size,
    avg_cpu_util: round3(samples.reduce((n, s) => n + s.cpu, 0) / samples.length),
    avg_memory_util: round3(samples.reduce((n, s) => n + s.memory, 0) / samples.length),
    max_cpu: extreme((s) => s.cpu),
    max_memory: extreme((s) => s.memory),
  };
}

async function watermarks(ctx: TestApp): Promise<{ rollups: string; fleet: string }> {
  const [rows] = await ctx.deps.pool.query("SELECT name, watermark FROM job_state");
  const of = (name: string) =>
    ((rows as { name: string; watermark: Date }[]).find((r) => r.name === name)?.watermark)?.toISOString() ??
      "";
  return { rollups: of(JOB_NAMES.rollups), fleet: of(FLEET_WATERMARK) };
}

Deno.test("fleet rollup", async (t) => {
  const ctx = await createTestApp("fleet_rollup", { start: START });
  try {
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
    const summary = async (hours: number) => {
      const res = await ctx.call("GET", `/api/v1/metrics/summary?hours=${hours}`, { token: viewer });
      const body = await json<
        { from: string; to: string; metrics: Record<string, unknown>; scaling_events: Record<string, number> }
      >(res);
      assert.equal(res.status, 200, JSON.stringify(body));
      return body;
    };
    const nodeA = await insertNode(ctx, { name: "fleet-a" });
    const nodeB = await insertNode(ctx, { name: "fleet-b" });
    const pools = [
      [nodeA, await insertPool(ctx, nodeA, "ocid1.instancepool.oc1.iad.fa1")],
      [nodeA, await insertPool(ctx, nodeA, "ocid1.instancepool.oc1.iad.fa2")],
      [nodeB, await insertPool(ctx, nodeB, "ocid1.instancepool.oc1.iad.fb1")],
    ] as const;
    // Scaling events in settled buckets, in the head and tail spans of the summaries below, and at a
    // bucket's edge.
    await insertEvents(ctx, nodeA, pools[0][1], [
      { ts: "2026-06-01T08:12:00Z", direction: "UP" },
      { ts: "2026-06-01T09:01:30Z", direction: "UP" },
      { ts: "2026-06-01T10:00:00Z", direction: "DOWN" },
      { ts: "2026-06-01T11:01:00Z", direction: "UP" },
      { ts: "2026-06-01T11:03:00Z", direction: "DOWN" }, // in the 1-hour summary's head (11:02 .. 11:05)
      { ts: "2026-06-01T12:01:00Z", direction: "DOWN" },
    ]);
    await insertEvents(ctx, nodeB, pools[2][1], [
      { ts: "2026-06-01T09:01:31Z", direction: "DOWN" },
      { ts: "2026-06-01T11:59:59.999Z", direction: "UP" },
    ]);
    // 08:00 .. 11:59: four hours per pool; the third pool starts an hour later.
    for (const [i, [node, pool]] of pools.entries()) {
      await insertSamples(
        ctx,
        node,
        pool,
        samplesOf(i === 2 ? "2026-06-01T09:00:00Z" : "2026-06-01T08:00:00Z", "2026-06-01T12:00:00Z", i),
      );
    }

    await t.step("the rollup job writes one row per bucket that agrees with the raw samples", async () => {
      ctx.clock.advance(2 * 60_000); // 12:02: settled up to 12:00
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
      const marks = await watermarks(ctx);
      assert.equal(marks.rollups, "2026-06-01T12:00:00.000Z");
      assert.equal(marks.fleet, marks.rollups);
      assert.equal(await assertFleetMatchesRaw(ctx, new Date(marks.fleet)), 48); // 08:00 .. 11:55
    });

    await t.step(
      "the summary from the fleet rows and the raw tail equals the summary of raw samples",
      async () => {
        for (const hours of [1, 3, 24]) {
          const body = await summary(hours);
          assert.deepEqual(body.metrics, await rawSummary(ctx, new Date(body.from), new Date(body.to)));
          const events = (await eventTimes(ctx)).filter((e) =>
            e.ts >= new Date(body.from) && e.ts <= new Date(body.to)
          );
          const ups = events.filter((e) => e.direction === "UP").length;
          assert.deepEqual(body.scaling_events, { UP: ups, DOWN: events.length - ups, total: events.length });
        }
      },
    );

    await t.step(
      "the dashboard's instance chart: each hour the average of its fleet rows, then now",
      async () => {
        const dashboard = await dashboardOverview(ctx.deps, {});
        const rows = await fleetRows(ctx);
        const hours = new Map<number, number[]>();
        for (const [bucket, row] of rows) {
          const hour = Math.floor(bucket / 3_600_000) * 3_600_000;
          hours.set(hour, [...(hours.get(hour) ?? []), row.instances]);
        }
        const expected = [...hours.entries()].sort((a, b) => a[0] - b[0]).map(([hour, values]) => ({
          ts: new Date(hour).toISOString(),
          instances: Math.round(values.reduce((a, b) => a + b, 0) / values.length * 10) / 10,
        }));
        const points = dashboard.instances_series.points;
        assert.deepEqual(points.slice(0, -1), expected);
        assert.deepEqual(points.at(-1), {
          ts: ctx.clock.now().toISOString(),
          instances: dashboard.instances,
        });
      },
    );

    await t.step("a rerun changes nothing; the next run adds only the newly settled buckets", async () => {
      const before = await fleetRows(ctx);
      assert.equal(
        await rollupFleet5m(
          ctx.deps.pool,
          new Date("2026-06-01T08:00:00Z"),
          new Date("2026-06-01T12:00:00Z"),
        ),
        48,
      );
      assert.deepEqual(await fleetRows(ctx), before);
      ctx.clock.advance(60_000);
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
      assert.deepEqual(await fleetRows(ctx), before);

      await insertSamples(ctx, nodeB, pools[2][1], [
        { ts: "2026-06-01T12:01:00Z", cpu: 12.5, memory: 40, instances: 3 },
        { ts: "2026-06-01T12:03:00Z", cpu: 14.5, memory: 44, instances: 4 },
      ]);
      ctx.clock.advance(5 * 60_000); // 12:08: settled up to 12:05
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
      const after = await fleetRows(ctx);
      assert.equal((await watermarks(ctx)).fleet, "2026-06-01T12:05:00.000Z");
      assert.equal(after.size, before.size + 1); // 12:00
      for (const [bucket, row] of before) assert.deepEqual(after.get(bucket), row);
      await assertFleetMatchesRaw(ctx, new Date("2026-06-01T12:05:00Z"));
    });

    await t.step(
      "late samples (an agent's buffer after an outage) are folded into the fleet rows",
      async () => {
        const node = await createNodeWithToken(ctx, "fleet-late");
        const res = await ctx.call("POST", `/api/v1/nodes/${node.nodeId}/metrics`, {
          token: node.token,
          json: {
            samples: [
              {
                instance_pool_id: "ocid1.instancepool.oc1.iad.late",
                ts: "2026-06-01T09:31:07Z",
                cpu_util: 100,
                memory_util: 3,
                instance_count: 9,
              },
              {
                instance_pool_id: "ocid1.instancepool.oc1.iad.late",
                ts: "2026-06-01T09:32:00Z",
                cpu_util: 50,
                memory_util: 3,
                instance_count: 8,
              },
            ],
          },
        });
        assert.equal(res.status, 200, await res.clone().text());
        ctx.clock.advance(60_000);
        assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
        await assertFleetMatchesRaw(ctx, new Date("2026-06-01T12:05:00Z"));
        const body = await summary(24);
        assert.deepEqual(body.metrics, await rawSummary(ctx, new Date(body.from), new Date(body.to)));
        assert.deepEqual((body.metrics.max_cpu as Record<string, unknown>).ts, "2026-06-01T09:31:07.000Z");
      },
    );

    await t.step("rollups made before the fleet table existed are filled in by the next run", async () => {
      const before = await fleetRows(ctx);
      await ctx.deps.pool.query("DELETE FROM metric_rollups_fleet_5m");
      await ctx.deps.pool.query("DELETE FROM job_state WHERE name = ?", [FLEET_WATERMARK]);
      ctx.clock.advance(60_000);
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
      assert.deepEqual(await fleetRows(ctx), before);
    });

    await t.step("retention deletes fleet rows past the 1-hour rollups' age, not before", async () => {
      const kept = ctx.deps.settings.ROLLUP_1H_RETENTION_DAYS * 86_400_000;
      ctx.clock.set(new Date(Date.parse("2026-06-01T07:00:00Z") + kept)); // every row is younger
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.retention), "ran");
      assert.equal((await fleetRows(ctx)).size, 49);
      ctx.clock.set(new Date(Date.parse("2026-06-01T12:10:00Z") + kept));
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.retention), "ran");
      assert.equal((await fleetRows(ctx)).size, 0);
    });
  } finally {
    await ctx.close();
  }
});
