// The agents' fast path (routes/agentFastPath.ts) never accepts what the routes' schemas refuse, reads what
// they accept the same way, and answers with the headers the full path gives; what the service would refuse
// is answered by the full route.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { HeartbeatBody, MetricsBody } from "../routes/api/agents.ts";
import { plainHeartbeat, plainMetricBatch } from "../routes/agentFastPath.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";

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
