import assert from "node:assert/strict";
import { seriesSourceFor } from "../core/metricsQuery.ts";
import { seriesRows } from "../db/metricsQuery.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import * as fixtures from "./helpers/fixtures.ts";
import { expectGetRefused } from "./helpers/assertions.ts";

type Point = {
  ts: string;
  samples: number;
  cpu: { avg: number; min: number; max: number };
  memory: { avg: number; min: number; max: number };
  instance_count: number;
};
type Series = { from: string; to: string; step_s: number; source: string; points: Point[] };

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** The series computed in JS from the samples, to compare with what SQL aggregated. */
function expectedPoints(samples: fixtures.SampleSpec[], from: Date, to: Date, stepS: number): Point[] {
  const buckets = new Map<number, fixtures.SampleSpec[]>();
  for (const s of samples) {
    const ms = new Date(s.ts).getTime();
    if (ms < from.getTime() || ms > to.getTime()) continue;
    const bucket = Math.floor(Math.floor(ms / 1000) / stepS);
    buckets.set(bucket, [...(buckets.get(bucket) ?? []), s]);
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([bucket, items]) => {
    const cpu = items.map((s) => s.cpu);
    const memory = items.map((s) => s.memory);
    const last = items.reduce((a, b) => (new Date(a.ts) > new Date(b.ts) ? a : b));
    const avg = (v: number[]) => round3(v.reduce((x, y) => x + y, 0) / v.length);
    return {
      ts: new Date(bucket * stepS * 1000).toISOString(),
      samples: items.length,
      cpu: { avg: avg(cpu), min: Math.min(...cpu), max: Math.max(...cpu) },
      memory: { avg: avg(memory), min: Math.min(...memory), max: Math.max(...memory) },
      instance_count: last.instances,
    };
  });
}

Deno.test("metrics API", async (t) => {
  const ctx = await createTestApp("metrics_api");
  try {
    const now = ctx.clock.now(); // 2026-06-01T12:00:00Z
    const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000);
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;

    const web = await fixtures.insertNode(ctx, { name: "web-1", lastHeartbeatAt: ago(5) });
    const db = await fixtures.insertNode(ctx, { name: "db-1", lastHeartbeatAt: ago(500) });
    const gone = await fixtures.insertNode(ctx, { name: "gone-1", decommissionedAt: ago(100) });
    const webPool = await fixtures.insertPool(ctx, web, fixtures.poolOcid("web1"), {
      displayName: "web",
      currentSize: 3,
    });
    const webPool2 = await fixtures.insertPool(ctx, web, fixtures.poolOcid("web2"), { currentSize: 2 });
    const dbPool = await fixtures.insertPool(ctx, db, fixtures.poolOcid("db1"), { currentSize: 5 });
    await fixtures.insertPool(ctx, gone, fixtures.poolOcid("gone1"), { currentSize: 7 });

    // One sample a minute for 3 hours (the newest exactly at now), and a few older than 24h.
    const webSamples: fixtures.SampleSpec[] = [];
    for (let k = 0; k < 180; k++) {
      webSamples.push({
        ts: ago(k * 60),
        cpu: (k * 7) % 101,
        memory: 20 + (k % 13) * 0.5,
        instances: 1 + (Math.floor(k / 7) % 5),
      });
    }
    const oldSamples: fixtures.SampleSpec[] = [{ ts: ago(90_000), cpu: 100, memory: 100, instances: 9 }];
    await fixtures.insertSamples(ctx, web, webPool, [...webSamples, ...oldSamples]);
    await fixtures.insertSamples(ctx, web, webPool2, [{ ts: ago(30), cpu: 99, memory: 1, instances: 2 }]);
    const dbSamples: fixtures.SampleSpec[] = [
      { ts: ago(3600), cpu: 10, memory: 99.5, instances: 5 },
      { ts: ago(7200), cpu: 20, memory: 60, instances: 5 },
    ];
    await fixtures.insertSamples(ctx, db, dbPool, dbSamples);
    await fixtures.insertEvents(ctx, web, webPool, [
      { ts: ago(600), direction: "UP" },
      { ts: ago(1200), direction: "UP" },
      { ts: ago(1800), direction: "DOWN" },
      { ts: ago(100_000), direction: "DOWN" }, // outside 24h
    ]);

    const seriesPath = (query: string, node = web, pool = fixtures.poolOcid("web1")) =>
      `/api/v1/nodes/${node}/metrics/${pool}${query}`;
    const series = async (query: string) => {
      const res = await ctx.call("GET", seriesPath(query), { token: viewer });
      const body = await json(res);
      assert.equal(res.status, 200, JSON.stringify(body));
      return body as unknown as Series;
    };
    const refused = (path: string, status: number, field?: string) =>
      expectGetRefused(ctx, path, viewer, status, field);

    await t.step("anonymous 401, viewer reads", async () => {
      const res = await ctx.call("GET", seriesPath("?hours=3"));
      assert.equal(res.status, 401);
      await res.body?.cancel();
      await series("?hours=3");
    });

    await t.step("hours=3&step=1h: per-bucket avg/min/max, last instance count, sample count", async () => {
      const body = await series("?hours=3&step=1h");
      assert.equal(body.step_s, 3600);
      assert.equal(body.source, "raw");
      assert.equal(body.from, ago(3 * 3600).toISOString());
      assert.equal(body.to, now.toISOString());
      const expected = expectedPoints(webSamples, ago(3 * 3600), now, 3600);
      assert.deepEqual(body.points, expected);
      assert.equal(body.points.length, 4); // 09:00 (the sample at 09:00 itself), 10:00, 11:00, 12:00
      assert.equal(body.points.reduce((n, p) => n + p.samples, 0), 180);
    });

    await t.step("explicit from/to with step 15m matches the samples; other pools stay out", async () => {
      const from = "2026-06-01T10:07:30Z";
      const to = "2026-06-01T11:52:00+00:00";
      const body = await series(`?from=${from}&to=${encodeURIComponent(to)}&step=900`);
      assert.equal(body.step_s, 900);
      assert.deepEqual(body.points, expectedPoints(webSamples, new Date(from), new Date(to), 900));
      // The other pool of the node has a cpu-99 sample in an hour bucket: the 1h series must not see it.
      const hourly = await series("?hours=1&step=1h");
      assert.deepEqual(hourly.points, expectedPoints(webSamples, ago(3600), now, 3600));
    });

    await t.step("default window is 24h with a step giving at most 300 points", async () => {
      const body = await series("");
      assert.equal(body.from, ago(86_400).toISOString());
      assert.equal(body.step_s, 300);
      assert.deepEqual(body.points, expectedPoints(webSamples, ago(86_400), now, 300));
    });

    await t.step("points are capped at 1000: a too-small step is 422 naming step", async () => {
      const body = await refused(seriesPath("?hours=24&step=60"), 422, "step");
      assert.match(body.error.message, /at most 1000.*step >= 87/);
      const ok = await series("?hours=24&step=87");
      assert.ok(ok.points.length <= 1000);
    });

    await t.step("bad ranges and steps are 422 naming the parameter", async () => {
      await refused(seriesPath("?from=2026-06-01T11:00:00Z&to=2026-06-01T10:00:00Z"), 422, "from");
      await refused(seriesPath("?from=2026-06-01T11:00:00Z&to=2026-06-01T11:00:00Z"), 422, "from");
      await refused(seriesPath("?from=2024-05-01T00:00:00Z"), 422, "from"); // more than 730 days
      await refused(seriesPath("?hours=17521"), 422, "hours");
      await refused(seriesPath("?hours=0"), 422, "hours");
      await refused(seriesPath("?hours=3&from=2026-06-01T10:00:00Z"), 422, "hours");
      await refused(seriesPath("?from=yesterday"), 422, "from");
      await refused(seriesPath("?from=2026-06-01T10:00:00"), 422, "from"); // no zone
      await refused(seriesPath("?step=0"), 422, "step");
      await refused(seriesPath("?step=5x"), 422, "step");
      await refused(seriesPath("?step=-60"), 422, "step");
    });

    await t.step("unknown node, unknown pool, another node's pool: 404", async () => {
      await refused(seriesPath("", crypto.randomUUID()), 404);
      await refused(seriesPath("", web, fixtures.poolOcid("nope")), 404);
      await refused(seriesPath("", web, fixtures.poolOcid("db1")), 404);
    });

    await t.step(
      "summary: averages, extremes, events by direction, node counts, pools and instances",
      async () => {
        const res = await ctx.call("GET", "/api/v1/metrics/summary?hours=24", { token: viewer });
        assert.equal(res.status, 200);
        const body = await json<Record<string, unknown>>(res);
        const inWindow = [...webSamples, { ts: ago(30), cpu: 99, memory: 1, instances: 2 }, ...dbSamples];
        const avg = (values: number[]) => round3(values.reduce((a, b) => a + b, 0) / values.length);
        assert.deepEqual(body, {
          from: ago(86_400).toISOString(),
          to: now.toISOString(),
          hours: 24,
          nodes: { never_seen: 0, online: 1, offline: 1, decommissioned: 1, total: 3 },
          pools: 3,
          instances: 10,
          metrics: {
            samples: inWindow.length,
            reporting_nodes: 2,
            reporting_pools: 3,
            avg_cpu_util: avg(inWindow.map((s) => s.cpu)),
            avg_memory_util: avg(inWindow.map((s) => s.memory)),
            max_cpu: {
              value: 100,
              ts: ago(72 * 60).toISOString(), // cpu 100 at k = 72 and 173: the latest wins the tie
              node_id: web,
              node_name: "web-1",
              instance_pool_id: fixtures.poolOcid("web1"),
            },
            max_memory: {
              value: 99.5,
              ts: ago(3600).toISOString(),
              node_id: db,
              node_name: "db-1",
              instance_pool_id: fixtures.poolOcid("db1"),
            },
          },
          scaling_events: { UP: 2, DOWN: 1, total: 3 },
        });
      },
    );

    await t.step("summary: original default hours=24, bad hours 422, anonymous 401", async () => {
      const res = await ctx.call("GET", "/api/v1/metrics/summary", { token: viewer });
      assert.equal(res.status, 200);
      assert.equal((await json(res)).hours, 24);
      await refused("/api/v1/metrics/summary?hours=0", 422, "hours");
      await refused("/api/v1/metrics/summary?hours=17521", 422, "hours");
      await refused("/api/v1/metrics/summary?hours=two", 422, "hours");
      const anonymous = await ctx.call("GET", "/api/v1/metrics/summary");
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
    });

    await t.step("summary over an empty window has nulls, not errors", async () => {
      ctx.clock.set("2026-06-20T12:00:00Z");
      const res = await ctx.call("GET", "/api/v1/metrics/summary?hours=1", { token: viewer });
      const body = await json<{ metrics: Record<string, unknown>; nodes: Record<string, number> }>(res);
      assert.equal(res.status, 200);
      assert.deepEqual(body.metrics, {
        samples: 0,
        reporting_nodes: 0,
        reporting_pools: 0,
        avg_cpu_util: null,
        avg_memory_util: null,
        max_cpu: null,
        max_memory: null,
      });
      assert.equal(body.nodes.offline, 2);
      ctx.clock.set(now);
    });

    await t.step("rollup seam: source choice by step, and the rollup query weights averages", async () => {
      assert.equal(seriesSourceFor(300), "rollup_5m");
      assert.equal(seriesSourceFor(7200), "rollup_1h");
      assert.equal(seriesSourceFor(90), "raw");
      const base = { nodeId: db, poolId: dbPool, cpuMin: 0, memoryMin: 0, memoryAvg: 50, memoryMax: 90 };
      await fixtures.insertRollups(ctx, "5m", [
        {
          ...base,
          bucketStart: new Date("2026-06-01T10:00:00Z"),
          samples: 1,
          cpuAvg: 10,
          cpuMax: 10,
          instanceCountLast: 2,
        },
        {
          ...base,
          bucketStart: new Date("2026-06-01T10:05:00Z"),
          samples: 3,
          cpuAvg: 30,
          cpuMax: 70,
          instanceCountLast: 4,
        },
      ]);
      const rows = await seriesRows(ctx.deps.db, "rollup_5m", {
        nodeId: db,
        poolId: dbPool,
        from: new Date("2026-06-01T10:00:00Z"),
        to: new Date("2026-06-01T11:00:00Z"),
        stepS: 3600,
      });
      assert.deepEqual(rows, [{
        bucket: Date.parse("2026-06-01T10:00:00Z") / 3_600_000,
        samples: 4,
        cpuAvg: 25,
        cpuMin: 0,
        cpuMax: 70,
        memoryAvg: 50,
        memoryMin: 0,
        memoryMax: 90,
        instanceCountLast: 4,
      }]);
    });
  } finally {
    await ctx.close();
  }
});
