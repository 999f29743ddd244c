// The agents' fast path (routes/agentFastPath.ts) never accepts what the routes' schemas refuse, reads what
// they accept the same way, and answers with the headers the full path gives; what the service would refuse
// is answered by the full route.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { setNodeConfig } from "../core/configs.ts";
import { HeartbeatBody, MetricsBody } from "../routes/api/agents.ts";
import { plainHeartbeat, plainMetricBatch } from "../routes/agentFastPath.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { testPool } from "./helpers/configs.ts";

const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaafastpath";
const HASH = "A".repeat(64);

const BODIES: unknown[] = [
  {},
  { status: "ok", uptime_s: 5, applied_config_hash: HASH, agent_version: "1", address: "10.0.0.1" },
  {
    status: null,
    uptime_s: null,
    applied_config_hash: null,
    agent_version: null,
    address: null,
    pools: null,
  },
  { pools: [] },
  { pools: [{ instance_pool_id: POOL, instance_count: 0 }] },
  { pools: [{ instance_pool_id: POOL, instance_count: 1_000_000 }] },
  { pools: [{ instance_pool_id: POOL, instance_count: 1_000_001 }] },
  { pools: [{ instance_pool_id: POOL, instance_count: 1.5 }] },
  { pools: [{ instance_pool_id: POOL, instance_count: -1 }] },
  { pools: [{ instance_pool_id: POOL }] },
  { pools: [{ instance_pool_id: POOL, instance_count: 1, extra: 1 }] },
  { pools: [{ instance_pool_id: "ocid1.compartment.oc1..aaaa", instance_count: 1 }] },
  { pools: [{ instance_pool_id: 7, instance_count: 1 }] },
  { pools: [null] },
  { pools: Array.from({ length: 101 }, () => ({ instance_pool_id: POOL, instance_count: 1 })) },
  { pools: Array.from({ length: 100 }, () => ({ instance_pool_id: POOL, instance_count: 1 })) },
  { pools: {} },
  { uptime_s: -1 },
  { uptime_s: 1.5 },
  { uptime_s: "10" },
  { uptime_s: Number.MAX_SAFE_INTEGER },
  { uptime_s: Number.MAX_SAFE_INTEGER + 2 },
  { status: "x".repeat(32) },
  { status: "x".repeat(33) },
  { status: 1 },
  { agent_version: "v".repeat(65) },
  { address: "a".repeat(65) },
  { applied_config_hash: "abc" },
  { applied_config_hash: "g".repeat(64) },
  { applied_config_hash: 5 },
  { surprise: 1 },
  { constructor: 1 },
  { __proto__: { status: "ok" } },
  [],
  null,
  "text",
  5,
];

Deno.test("heartbeat fast path: accepts only what the route's schema accepts, read the same way", () => {
  for (const body of BODIES) {
    const fast = plainHeartbeat(body);
    const full = HeartbeatBody.safeParse(body);
    if (fast === undefined) continue; // the full path decides
    assert.ok(full.success, `fast path accepted what the schema refuses: ${JSON.stringify(body)}`);
    assert.deepEqual(fast, full.data, JSON.stringify(body));
  }
  assert.ok(BODIES.filter((b) => plainHeartbeat(b) !== undefined).length >= 6, "the common bodies go fast");
});

/** A node registered over HTTP (the fast path needs a token the replica has checked). */
async function registeredNode(ctx: TestApp, name: string) {
  const { token } = await createEnrollmentToken(ctx.deps, { principal: { kind: "system", name: "t" } }, {
    name: "fast",
  });
  const res = await ctx.call("POST", "/api/v1/register", {
    json: { enrollment_token: token, name, hostname: "h" },
  });
  return await json<{ node_id: string; node_token: string }>(res);
}

Deno.test("heartbeat fast path: same answer and headers as the full path", async () => {
  const ctx = await createTestApp("heartbeat_fast_path");
  try {
    const node = await registeredNode(ctx, "fast-1");
    const path = `/api/v1/nodes/${node.node_id}/heartbeat`;
    // The same body, plainly valid (fast) and with text/json's charset parameter (the full path).
    const before = ctx.agentFastPath.answered;
    const fast = await ctx.call("POST", path, { json: { uptime_s: 1 }, token: node.node_token });
    assert.equal(ctx.agentFastPath.answered, before + 1, "the fast path answered the plain heartbeat");
    const full = await ctx.call("POST", path, {
      body: JSON.stringify({ uptime_s: 2 }),
      token: node.node_token,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    assert.equal(fast.status, 200);
    assert.equal(full.status, 200);
    assert.deepEqual(await json(fast), await json(full));
    for (const header of ["content-type", "cache-control", "x-content-type-options"]) {
      assert.equal(fast.headers.get(header)?.split(";")[0], full.headers.get(header)?.split(";")[0], header);
    }
    assert.ok(fast.headers.get("x-request-id"));
    const mine = await ctx.call("POST", path, {
      json: {},
      token: node.node_token,
      headers: { "x-request-id": "agent-42" },
    });
    assert.equal(mine.headers.get("x-request-id"), "agent-42");
    await mine.body?.cancel();
  } finally {
    await ctx.close();
  }
});

const SAMPLE = {
  instance_pool_id: POOL,
  ts: "2026-01-01T00:00:00Z",
  cpu_util: 50,
  memory_util: 40,
  instance_count: 2,
};
const sample = (changes: Record<string, unknown>) => ({ samples: [{ ...SAMPLE, ...changes }] });

const BATCHES: unknown[] = [
  { samples: [SAMPLE] },
  { samples: [SAMPLE, { ...SAMPLE, ts: "2026-01-01T00:00:30.123456+02:00" }] },
  sample({ scaling_event: true, scaling_direction: "UP", from_count: 2, to_count: 3, reason: "cpu" }),
  sample({ scaling_event: false, scaling_direction: null, from_count: null, to_count: null, reason: null }),
  sample({ cpu_util: 0, memory_util: 100, instance_count: 0 }),
  sample({ cpu_util: 99.5 }),
  sample({ cpu_util: 100.1 }),
  sample({ memory_util: -1 }),
  sample({ cpu_util: "50" }),
  sample({ instance_count: 1.5 }),
  sample({ instance_count: 1_000_001 }),
  sample({ from_count: -1 }),
  sample({ to_count: 2.5 }),
  sample({ scaling_event: "yes" }),
  sample({ scaling_direction: "up" }),
  sample({ reason: "r".repeat(500) }),
  sample({ reason: "r".repeat(501) }),
  sample({ reason: 5 }),
  sample({ ts: "2026-01-01T00:00:00" }),
  sample({ ts: "2026-02-30T00:00:00Z" }),
  sample({ ts: "2026-01-01T00:00:00Z" + " ".repeat(60) }),
  sample({ ts: 1767225600 }),
  sample({ instance_pool_id: "ocid1.compartment.oc1..aaaa" }),
  sample({ instance_pool_id: null }),
  sample({ extra: 1 }),
  sample({ __proto__: { cpu_util: 1 } }),
  { samples: [] },
  { samples: [SAMPLE], more: 1 },
  { samples: [null] },
  { samples: SAMPLE },
  { samples: Array.from({ length: 10_001 }, () => SAMPLE) },
  [],
  null,
];

Deno.test("metrics fast path: accepts only what the route's schema accepts, read the same way", () => {
  for (const body of BATCHES) {
    const fast = plainMetricBatch(body);
    const full = MetricsBody.safeParse(body);
    if (fast === undefined) continue;
    assert.ok(
      full.success,
      `fast path accepted what the schema refuses: ${JSON.stringify(body)?.slice(0, 200)}`,
    );
    assert.deepEqual(fast, full.data.samples, JSON.stringify(body));
  }
  assert.ok(
    BATCHES.filter((b) => plainMetricBatch(b) !== undefined).length >= 6,
    "the common batches go fast",
  );
});

Deno.test("metrics fast path: same answers as the full path, refusals from the full route", async () => {
  const ctx = await createTestApp("metrics_fast_path");
  try {
    const node = await registeredNode(ctx, "fast-2");
    const path = `/api/v1/nodes/${node.node_id}/metrics`;
    const now = ctx.deps.clock.now().getTime();
    const at = (s: number) => new Date(now - 600_000 + s * 1000).toISOString();
    const batch = { samples: [0, 30, 60].map((s) => ({ ...SAMPLE, ts: at(s) })) };
    const before = ctx.agentFastPath.answered;
    const fast = await ctx.call("POST", path, { json: batch, token: node.node_token });
    assert.equal(ctx.agentFastPath.answered, before + 1, "the fast path answered the plain batch");
    assert.equal(fast.status, 200);
    assert.deepEqual(await json(fast), { accepted: 3, duplicates: 0 });
    assert.equal(fast.headers.get("cache-control"), "no-store");
    assert.ok(fast.headers.get("x-request-id"));
    // The same batch again by the full path (charset parameter): all duplicates, as the fast path says too.
    const full = await ctx.call("POST", path, {
      body: JSON.stringify(batch),
      token: node.node_token,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    assert.deepEqual(await json(full), { accepted: 0, duplicates: 3 });
    const again = await ctx.call("POST", path, { json: batch, token: node.node_token });
    assert.deepEqual(await json(again), { accepted: 0, duplicates: 3 });
    const [[{ stored }]] = await ctx.deps.pool.query(
      "SELECT COUNT(*) AS stored FROM metric_samples WHERE node_id = ?",
      [node.node_id],
    ) as unknown as [[{ stored: number }]];
    assert.equal(Number(stored), 3);

    // What the service refuses comes from the full route, with the field named and nothing stored.
    const future = await ctx.call("POST", path, {
      json: { samples: [{ ...SAMPLE, ts: new Date(now + 3_600_000).toISOString() }] },
      token: node.node_token,
    });
    assert.equal(future.status, 422);
    const problem = await json<{ error: { details: { field: string }[] } }>(future);
    assert.equal(problem.error.details[0].field, "samples.0.ts");
    const unpaired = await ctx.call("POST", path, {
      json: { samples: [{ ...SAMPLE, ts: at(90), scaling_event: true }] },
      token: node.node_token,
    });
    assert.equal(unpaired.status, 422);
    const tooMany = await ctx.call("POST", path, {
      json: { samples: Array.from({ length: 1_001 }, (_, i) => ({ ...SAMPLE, ts: at(i) })) },
      token: node.node_token,
    });
    assert.equal(tooMany.status, 413);
    const stranger = await ctx.call("POST", path, {
      json: batch,
      token: `${node.node_token.slice(0, -4)}abcd`,
    });
    assert.equal(stranger.status, 401);
    await Promise.all([unpaired, tooMany, stranger].map((r) => r.body?.cancel()));
    const [[{ after }]] = await ctx.deps.pool.query(
      "SELECT COUNT(*) AS after FROM metric_samples WHERE node_id = ?",
      [node.node_id],
    ) as unknown as [[{ after: number }]];
    assert.equal(Number(after), 3);
  } finally {
    await ctx.close();
  }
});

const NODE_CONFIG = (max: number) => ({
  pools: [testPool(POOL, { scaling_limits: { min: 1, max } })],
});
/** A new config for the node, as an operator sets it. */
const setConfig = (ctx: TestApp, nodeId: string, max: number) =>
  setNodeConfig(ctx.deps, ctx.services, { principal: { kind: "system", name: "t" } }, nodeId, {
    config: NODE_CONFIG(max),
  });

Deno.test("config pull fast path: a plain waiting pull is parked and answered as the full route answers", async (t) => {
  const ctx = await createTestApp("pull_fast_path");
  try {
    const node = await registeredNode(ctx, "fast-3");
    const path = `/api/v1/nodes/${node.node_id}/config`;
    const set = await setConfig(ctx, node.node_id, 10);
    const known = { "if-none-match": `"${set.hash}"` };
    const untilWaiting = async (count: number) => {
      while (ctx.services.configWatcher.waiting < count) await new Promise((r) => setTimeout(r, 5));
    };

    await t.step("unchanged at the end of the wait: 304 with the full route's headers", async () => {
      const before = ctx.agentFastPath.answered;
      // wait=1 is the plain form (fast); wait=01 means the same to the route's schema (full path).
      const [fast, full] = await Promise.all([
        ctx.call("GET", `${path}?wait=1`, { token: node.node_token, headers: known }),
        ctx.call("GET", `${path}?wait=01`, { token: node.node_token, headers: known }),
      ]);
      assert.equal(ctx.agentFastPath.answered, before + 1, "only the plain pull went fast");
      assert.equal(fast.status, 304);
      assert.equal(full.status, 304);
      const names = (r: Response) => [...r.headers.keys()].filter((n) => n !== "x-request-id").sort();
      assert.deepEqual(names(fast), names(full));
      for (const name of names(full)) assert.equal(fast.headers.get(name), full.headers.get(name), name);
      assert.ok(fast.headers.get("x-request-id"));
    });

    await t.step("woken by a change: 200 with the new config, counted once under the route", async () => {
      const before = ctx.agentFastPath.answered;
      const waiting = ctx.call("GET", `${path}?wait=30`, {
        token: node.node_token,
        headers: { ...known, "x-request-id": "pull-7" },
      });
      await untilWaiting(1);
      const changed = await setConfig(ctx, node.node_id, 12);
      const res = await waiting;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("etag"), `"${changed.hash}"`);
      assert.equal(res.headers.get("x-request-id"), "pull-7");
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.equal((await json<{ hash: string }>(res)).hash, changed.hash);
      assert.equal(ctx.agentFastPath.answered, before + 1);
      known["if-none-match"] = `"${changed.hash}"`;
    });

    await t.step("an agent behind: answered at once, and nothing is left waiting", async () => {
      const before = ctx.agentFastPath.answered;
      const res = await ctx.call("GET", `${path}?wait=30`, {
        token: node.node_token,
        headers: { "if-none-match": `"${set.hash}"` },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("etag"), known["if-none-match"]);
      await res.body?.cancel();
      assert.equal(ctx.agentFastPath.answered, before + 1);
      assert.equal(ctx.services.configWatcher.waiting, 0);
    });

    await t.step("a pull that hangs up stops waiting", async () => {
      const hangUp = new AbortController();
      const waiting = ctx.app.request(
        new Request(`http://localhost${path}?wait=60`, {
          headers: { authorization: `Bearer ${node.node_token}`, ...known },
          signal: hangUp.signal,
        }),
      );
      await untilWaiting(1);
      hangUp.abort();
      assert.equal((await waiting).status, 304);
      assert.equal(ctx.services.configWatcher.waiting, 0);
    });

    await t.step("refusals come from the full route, with the field named, and nothing waits", async () => {
      const before = ctx.agentFastPath.answered;
      const stranger = await ctx.call("GET", `${path}?wait=5`, {
        token: `${node.node_token.slice(0, -4)}abcd`,
      });
      assert.equal(stranger.status, 401);
      const tooLong = await ctx.call("GET", `${path}?wait=61`, { token: node.node_token });
      assert.equal(tooLong.status, 422);
      const problem = await json<{ error: { details: { field: string }[] } }>(tooLong);
      assert.equal(problem.error.details[0].field, "wait");
      const unknown = await ctx.call("GET", `/api/v1/nodes/${crypto.randomUUID()}/config?wait=5`, {
        token: node.node_token,
      });
      assert.equal(unknown.status, 404);
      const other = await registeredNode(ctx, "fast-4");
      const notMine = await ctx.call("GET", `${path}?wait=5`, { token: other.node_token });
      assert.equal(notMine.status, 403);
      await Promise.all([stranger, unknown, notMine].map((r) => r.body?.cancel()));
      assert.equal(ctx.agentFastPath.answered, before, "none of them went fast");
      assert.equal(ctx.services.configWatcher.waiting, 0);
    });
  } finally {
    await ctx.close();
  }
});
