// The heartbeat's fast path (routes/heartbeatFastPath.ts) never accepts what the route's schema refuses,
// reads what it accepts the same way, and answers with the headers the full path gives.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { HeartbeatBody } from "../routes/api/agents.ts";
import { plainHeartbeat } from "../routes/heartbeatFastPath.ts";
import { createTestApp, json } from "./helpers/app.ts";

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

Deno.test("heartbeat fast path: same answer and headers as the full path", async () => {
  const ctx = await createTestApp("heartbeat_fast_path");
  try {
    const { token } = await createEnrollmentToken(ctx.deps, { principal: { kind: "system", name: "t" } }, {
      name: "fast",
    });
    const res = await ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: token, name: "fast-1", hostname: "h" },
    });
    const node = await json<{ node_id: string; node_token: string }>(res);
    const path = `/api/v1/nodes/${node.node_id}/heartbeat`;
    // The same body, plainly valid (fast) and with text/json's charset parameter (the full path).
    const fast = await ctx.call("POST", path, { json: { uptime_s: 1 }, token: node.node_token });
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
