// What-if replay (core/replay.ts, POST /api/v1/nodes/{id}/config/replay): the rule over seeded samples
// against figures computed by hand, the same figures from 5-minute and from 1-hour rollups once raw samples
// are gone, the current config beside the proposal, and every bad input refused with its field.
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { JOB_NAMES } from "../core/housekeeping.ts";
import { replayConfig, type ReplayResult, type ReplayWindow } from "../core/replay.ts";
import { setNodeConfig } from "../core/configs.ts";
import { readJobState, saveJobWatermark } from "../db/jobs.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import * as fixtures from "./helpers/fixtures.ts";
import type { ErrorBody } from "./helpers/assertions.ts";
import type { Principal } from "../core/principal.ts";

const SYSTEM_PRINCIPAL: Principal = { kind: "system", name: "replay-test" };

const NOW = "2026-06-04T12:00:00Z";
const HOUR = 3_600_000;
const OCID = fixtures.poolOcid("replay1");

function document(cpu: { min: number; max: number }, extra: Record<string, unknown> = {}) {
  return {
    pools: [{
      instance_pool_id: OCID,
      compartment_id: "ocid1.compartment.oc1..aaaa",
      region: "us-ashburn-1",
      cpu_threshold: cpu,
      ram_threshold: { min: 20, max: 75 },
      scaling_limits: { min: 1, max: 10 },
      ...extra,
    }],
  };
}

/** Two hours from `start` (aligned to 5 minutes): cpu 60%, memory 40%, 2 instances, a sample a minute. */
function steadyLoad(start: number) {
  return Array.from({ length: 120 }, (_, i) => ({
    ts: new Date(start + i * 60_000),
    cpu: 60,
    memory: 40,
    instances: 2,
  }));
}

/** The same two hours as rollup rows of `stepMs` buckets. */
function steadyRollups(nodeId: string, poolId: number, start: number, stepMs: number) {
  return Array.from({ length: (2 * HOUR) / stepMs }, (_, i) => ({
    nodeId,
    poolId,
    bucketStart: new Date(start + i * stepMs),
    samples: stepMs / 60_000,
    cpuAvg: 60,
    cpuMin: 60,
    cpuMax: 60,
    memoryAvg: 40,
    memoryMin: 40,
    memoryMax: 40,
    instanceCountLast: 2,
  }));
}

/** By hand: load 60% x 2 = 120. Current (cpu 30..75): 60% is in the band, nothing happens, never above.
 * Proposed (cpu max 50): the first evaluation (5 minutes in, on the first slot) sees 60 > 50 and adds one;
 * 120 / 3 = 40%, in the band from then on. Above the proposed max: the first 5 minutes (2 instances at
 * 60%); the recorded load was above 50 for all 120 minutes. Instance-hours: 5 min x 2 + 115 min x 3. */
function assertHandComputed(result: ReplayResult, start: number) {
  assert.equal(result.pools.length, 1, JSON.stringify(result.skipped));
  const pool = result.pools[0];
  assert.equal(pool.slots, 24);
  assert.equal(pool.first_reading, new Date(start).toISOString());
  const p = pool.proposed;
  assert.deepEqual(p.simulated, {
    scale_ups: 1,
    scale_downs: 0,
    above_max_s: 300,
    above_cpu_max_s: 300,
    above_memory_max_s: 0,
    instance_hours: 5.9,
    peak_instances: 3,
  });
  assert.equal(p.recorded_above_max_s, 7200);
  assert.deepEqual(p.events, [{
    ts: new Date(start + 300_000).toISOString(),
    direction: "UP",
    from: 2,
    to: 3,
    by: "autoscaler",
    reason: "cpu 60.0 > max 50",
  }]);
  assert.deepEqual(p.curve, [
    { ts: new Date(start).toISOString(), instances: 2 },
    { ts: new Date(start + 300_000).toISOString(), instances: 3 },
    { ts: new Date(start + 2 * HOUR).toISOString(), instances: null },
  ]);
  const c = pool.current!;
  assert.ok(c, "the current config is replayed too");
  assert.deepEqual(c.simulated, {
    scale_ups: 0,
    scale_downs: 0,
    above_max_s: 0,
    above_cpu_max_s: 0,
    above_memory_max_s: 0,
    instance_hours: 4,
    peak_instances: 2,
  });
  assert.equal(c.recorded_above_max_s, 0);
  assert.deepEqual(pool.recorded.curve, [
    { ts: new Date(start).toISOString(), instances: 2 },
    { ts: new Date(start + 2 * HOUR).toISOString(), instances: null },
  ]);
  assert.equal(pool.recorded.instance_hours, 4);
  assert.equal(
    pool.verdict,
    "1 up, 0 down (current config: 0 up, 0 down); 5 min above its maximum (current: 0 min above its own); " +
      "+48% instance-hours.",
  );
  assert.match(
    result.verdict,
    /^Over the last .*, the proposed config would have scaled this pool 1 times \(current config: 0\) and run 5 min above its cpu or memory maximum \(current: 0 min above its own\), with \+48% instance-hours\.$/,
  );
}

/** The rollup job's watermark, as if it had run up to `at` (the rollup tables are then read up to it). */
async function rolledUpTo(ctx: TestApp, at: Date) {
  await readJobState(ctx.deps.db, JOB_NAMES.rollups);
  await saveJobWatermark(ctx.deps.db, JOB_NAMES.rollups, at);
}

/** The proposal every case replays: cpu_threshold.max 50 instead of 75. */
function proposeCpuMax50(ctx: TestApp, nodeId: string, window: ReplayWindow) {
  return replayConfig(ctx.deps, { nodeId, document: document({ min: 30, max: 50 }), window });
}

async function nodeWithConfig(ctx: TestApp, name: string) {
  const nodeId = await fixtures.insertNode(ctx, { name });
  const poolId = await fixtures.insertPool(ctx, nodeId, OCID);
  await setNodeConfig(ctx.deps, ctx.services, { principal: SYSTEM_PRINCIPAL }, nodeId, {
    config: document({ min: 30, max: 75 }),
  });
  return { nodeId, poolId };
}

Deno.test("replay: raw samples, 5-minute rollups, 1-hour rollups give the hand-computed figures", async (t) => {
  const ctx = await createTestApp("replay", { start: NOW });
  try {
    const now = Date.parse(NOW);
    await t.step("raw samples of the last day", async () => {
      const { nodeId, poolId } = await nodeWithConfig(ctx, "replay-raw");
      const start = now - 3 * HOUR;
      await fixtures.insertSamples(ctx, nodeId, poolId, steadyLoad(start));
      await fixtures.insertEvents(ctx, nodeId, poolId, [{
        ts: new Date(start + HOUR),
        direction: "UP",
        from: 2,
        to: 3,
      }]);
      const result = await proposeCpuMax50(ctx, nodeId, "24h");
      assert.equal(result.window, "24h");
      assert.equal(result.to, new Date(NOW).toISOString());
      assert.equal(result.current_version, 1);
      assert.deepEqual(result.pools[0].sources, [{
        from: new Date(now - 24 * HOUR).toISOString(),
        to: new Date(NOW).toISOString(),
        step_s: 300,
      }]);
      assertHandComputed(result, start);
      assert.equal(result.pools[0].recorded.scale_ups, 1); // from the recorded scaling events
    });

    await t.step("raw gone: 5-minute rollups of 15 days ago", async () => {
      const { nodeId, poolId } = await nodeWithConfig(ctx, "replay-5m");
      const start = now - 15 * 24 * HOUR;
      await fixtures.insertRollups(ctx, "5m", steadyRollups(nodeId, poolId, start, 300_000));
      await rolledUpTo(ctx, new Date(now - 10 * 60_000));
      const result = await proposeCpuMax50(ctx, nodeId, "30d");
      assertHandComputed(result, start);
      // The 7-day window does not reach back there: nothing to replay, and it says why.
      const recent = await proposeCpuMax50(ctx, nodeId, "7d");
      assert.deepEqual(recent.pools, []);
      assert.deepEqual(recent.skipped, [{
        instance_pool_id: OCID,
        reason: "no metrics recorded in the last 7 d",
      }]);
      assert.match(recent.reason!, /none of the proposed config's pools has metrics in the last 7 d/);
      assert.equal(recent.verdict, recent.reason);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("replay: where 5-minute rollups are gone, hourly ones stand for their twelve slots", async () => {
  const ctx = await createTestApp("replay_hourly", { start: NOW, env: { ROLLUP_5M_RETENTION_DAYS: "10" } });
  try {
    const now = Date.parse(NOW);
    const { nodeId, poolId } = await nodeWithConfig(ctx, "replay-1h");
    const start = now - 20 * 24 * HOUR;
    await fixtures.insertRollups(ctx, "1h", steadyRollups(nodeId, poolId, start, HOUR));
    await rolledUpTo(ctx, new Date(now - 10 * 60_000));
    const result = await proposeCpuMax50(ctx, nodeId, "30d");
    assertHandComputed(result, start);
    assert.deepEqual(result.pools[0].sources.map((s) => s.step_s), [3600, 300]);
    assert.equal(result.pools[0].sources[0].to, new Date(now - 10 * 24 * HOUR).toISOString());
  } finally {
    await ctx.close();
  }
});

Deno.test("replay API: viewers may replay; bad inputs are refused with the field, nothing written", async (t) => {
  const ctx = await createTestApp("replay_api", { start: NOW });
  try {
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
    const now = Date.parse(NOW);
    const { nodeId, poolId } = await nodeWithConfig(ctx, "replay-api");
    await fixtures.insertSamples(ctx, nodeId, poolId, steadyLoad(now - 3 * HOUR));
    const url = `/api/v1/nodes/${nodeId}/config/replay`;
    const before = await fixtures.countNodeRows(ctx, nodeId);
    const expectError = async (res: Response, status: number, field?: string) => {
      const body = await json<ErrorBody>(res);
      assert.equal(res.status, status, JSON.stringify(body));
      if (field) assert.ok(body.error.details?.some((d) => d.field === field), JSON.stringify(body));
      return body;
    };

    await t.step("a viewer replays a JSON document over 24 h", async () => {
      const res = await ctx.call("POST", url, {
        token: viewer,
        json: { config: document({ min: 30, max: 50 }), window: "24h" },
      });
      assert.equal(res.status, 200);
      assertHandComputed(await json<ReplayResult>(res), now - 3 * HOUR);
    });

    await t.step("YAML text in JSON, and as application/yaml with ?window=", async () => {
      const yaml = stringify(document({ min: 30, max: 50 }));
      const inJson = await ctx.call("POST", url, { token: viewer, json: { config: yaml, window: "24h" } });
      assert.equal(inJson.status, 200);
      assert.equal((await json<ReplayResult>(inJson)).pools[0].proposed.simulated.scale_ups, 1);
      const raw = await ctx.call("POST", `${url}?window=24h`, {
        token: viewer,
        body: yaml,
        headers: { "content-type": "application/yaml" },
      });
      assert.equal(raw.status, 200, await raw.clone().text());
      const body = await json<ReplayResult>(raw);
      assert.equal(body.window, "24h");
      assert.equal(body.pools[0].proposed.simulated.scale_ups, 1);
    });

    await t.step("an invalid document: 422 at the field, with its line for YAML", async () => {
      const bad = await ctx.call("POST", url, {
        token: viewer,
        json: { config: document({ min: 30, max: 150 }) },
      });
      await expectError(bad, 422, "config.pools.0.cpu_threshold.max");
      const yaml =
        `pools:\n  - instance_pool_id: ${OCID}\n    compartment_id: ocid1.compartment.oc1..aaaa\n` +
        `    region: us-ashburn-1\n    cpu_threshold: {min: 80, max: 50}\n    ram_threshold: {min: 20, max: 75}\n` +
        `    scaling_limits: {min: 1, max: 10}\n`;
      const body = await expectError(
        await ctx.call("POST", url, { token: viewer, json: { config: yaml } }),
        422,
        "config.pools.0.cpu_threshold.min",
      );
      assert.equal(body.error.details?.[0].line, 5);
      await expectError(await ctx.call("POST", url, { token: viewer, json: {} }), 422, "config");
      await expectError(await ctx.call("POST", url, { token: viewer, json: { config: 42 } }), 422, "config");
    });

    await t.step("a window other than 24h, 7d, 30d: 422 naming window", async () => {
      await expectError(
        await ctx.call("POST", url, {
          token: viewer,
          json: { config: document({ min: 30, max: 50 }), window: "2d" },
        }),
        422,
        "window",
      );
      await expectError(
        await ctx.call("POST", `${url}?window=1y`, {
          token: viewer,
          body: "pools: []\n",
          headers: { "content-type": "application/yaml" },
        }),
        422,
        "window",
      );
    });

    await t.step("unknown node 404; anonymous 401", async () => {
      const res = await ctx.call("POST", `/api/v1/nodes/${crypto.randomUUID()}/config/replay`, {
        token: viewer,
        json: { config: document({ min: 30, max: 50 }) },
      });
      await expectError(res, 404);
      await expectError(
        await ctx.call("POST", url, { json: { config: document({ min: 30, max: 50 }) } }),
        401,
      );
    });

    await t.step("a node without metrics: 200, no pools, the reason", async () => {
      const quiet = await fixtures.insertNode(ctx, { name: "replay-quiet" });
      const res = await ctx.call("POST", `/api/v1/nodes/${quiet}/config/replay`, {
        token: viewer,
        json: { config: document({ min: 30, max: 50 }), window: "30d" },
      });
      assert.equal(res.status, 200);
      const body = await json<ReplayResult>(res);
      assert.deepEqual(body.pools, []);
      assert.equal(body.current_version, null);
      assert.deepEqual(body.skipped, [{
        instance_pool_id: OCID,
        reason: "the node has never reported this pool",
      }]);
      assert.match(body.reason!, /^Nothing to replay/);
    });

    await t.step("nothing was written", async () => {
      assert.deepEqual(await fixtures.countNodeRows(ctx, nodeId), before);
    });

    await t.step("in /openapi.json for viewers", async () => {
      const spec = await json<{ paths: Record<string, Record<string, Record<string, unknown>>> }>(
        await ctx.call("GET", "/openapi.json"),
      );
      const op = spec.paths["/api/v1/nodes/{id}/config/replay"]?.post;
      assert.ok(op, "documented");
      assert.equal(op["x-min-role"], "viewer");
    });
  } finally {
    await ctx.close();
  }
});
