// POST /api/v1/nodes/{id}/heartbeat: what it records, config drift, node-token refusals, bad bodies.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { setNodeDecommissioned } from "../db/agents.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import type { ErrorBody } from "./helpers/assertions.ts";
import { testConfig } from "./helpers/configs.ts";

const POOL_A = "ocid1.instancepool.oc1.iad.aaaaaaaapoola";
const POOL_NEW = "ocid1.instancepool.oc1.iad.aaaaaaaapoolnew";
const CONFIG = testConfig(POOL_A);

interface Registered {
  node_id: string;
  node_token: string;
  config: { hash: string } | null;
}

async function registerAgents(ctx: TestApp, names: string[], withConfig = true): Promise<Registered[]> {
  const { token } = await createEnrollmentToken(ctx.deps, { principal: { kind: "system", name: "t" } }, {
    name: "hb",
  });
  const out: Registered[] = [];
  for (const name of names) {
    const res = await ctx.call("POST", "/api/v1/register", {
      json: {
        enrollment_token: token,
        name,
        hostname: `${name}.local`,
        pools: [{ instance_pool_id: POOL_A, current_size: 1 }],
        ...(withConfig ? { config: CONFIG } : {}),
      },
    });
    assert.equal(res.status, 201);
    out.push(await json<Registered>(res));
  }
  return out;
}

Deno.test("heartbeat", async (t) => {
  const ctx = await createTestApp("heartbeat");
  const node = async (id: string) => {
    const [rows] = await ctx.database.pool.query(
      `SELECT last_heartbeat_at, last_address, claimed_address, reported_status, uptime_s, agent_version, applied_hash, config_state,
              updated_at
         FROM nodes WHERE id = ?`,
      [id],
    );
    return (rows as Record<string, unknown>[])[0];
  };
  const pools = async (id: string) => {
    const [rows] = await ctx.database.pool.query(
      "SELECT pool_ocid, current_size FROM instance_pools WHERE node_id = ? ORDER BY pool_ocid",
      [id],
    );
    return (rows as { pool_ocid: string; current_size: number | null }[]).map((r) => ({ ...r }));
  };
  try {
    const [one, two] = await registerAgents(ctx, ["hb-1", "hb-2"]);
    const hash = one.config!.hash;
    const beat = (
      body: unknown,
      token = one.node_token,
      id = one.node_id,
      headers?: Record<string, string>,
    ) => ctx.call("POST", `/api/v1/nodes/${id}/heartbeat`, { json: body, token, headers });

    await t.step(
      "records time, address, status, uptime, version and pool sizes; answers desired hash",
      async () => {
        ctx.clock.set("2026-06-01T12:01:00Z");
        const res = await beat({
          status: "ok",
          uptime_s: 120,
          agent_version: "2.0.1",
          pools: [{ instance_pool_id: POOL_A, instance_count: 4 }, {
            instance_pool_id: POOL_NEW,
            instance_count: 2,
          }],
        });
        assert.equal(res.status, 200);
        assert.deepEqual(await json(res), {
          desired_config_hash: hash,
          heartbeat_interval_s: 30,
          config_changed: true,
        });
        const row = await node(one.node_id);
        assert.deepEqual(row.last_heartbeat_at, new Date("2026-06-01T12:01:00Z"));
        assert.equal(row.last_address, "unknown"); // app.request() has no socket
        assert.equal(row.reported_status, "ok");
        assert.equal(Number(row.uptime_s), 120);
        assert.equal(row.agent_version, "2.0.1");
        assert.equal(row.config_state, "pending");
        assert.deepEqual(await pools(one.node_id), [
          { pool_ocid: POOL_A, current_size: 4 },
          { pool_ocid: POOL_NEW, current_size: 2 },
        ]);
      },
    );

    await t.step("an empty body keeps what was reported; a body address is only a claim", async () => {
      ctx.clock.set("2026-06-01T12:01:30Z");
      assert.equal((await beat({})).status, 200);
      const res = await beat({ address: "10.9.8.7" });
      assert.equal(res.status, 200);
      const row = await node(one.node_id);
      assert.deepEqual(row.last_heartbeat_at, new Date("2026-06-01T12:01:30Z"));
      assert.equal(row.reported_status, "ok");
      assert.equal(Number(row.uptime_s), 120);
      assert.equal(row.last_address, "unknown", "the connection's address, not the body's");
      assert.equal(row.claimed_address, "10.9.8.7");
    });

    await t.step(
      "applied = desired -> in_sync; another hash later -> drifted; X-API-Key accepted",
      async () => {
        let res = await beat({ applied_config_hash: hash.toUpperCase() });
        assert.equal(res.status, 200);
        assert.equal((await json(res)).config_changed, false);
        assert.equal((await node(one.node_id)).config_state, "in_sync");
        assert.equal((await node(one.node_id)).applied_hash, hash);
        res = await ctx.call("POST", `/api/v1/nodes/${one.node_id}/heartbeat`, {
          json: { applied_config_hash: "a".repeat(64) },
          headers: { "x-api-key": one.node_token },
        });
        assert.equal(res.status, 200);
        assert.equal((await json(res)).config_changed, true);
        assert.equal((await node(one.node_id)).config_state, "drifted");
        res = await beat({ applied_config_hash: hash });
        assert.equal((await node(one.node_id)).config_state, "in_sync");
        await res.body?.cancel();
      },
    );

    await t.step("a node without config: desired null, config_changed false", async () => {
      const [bare] = await registerAgents(ctx, ["hb-bare"], false);
      const res = await beat({ applied_config_hash: null }, bare.node_token, bare.node_id);
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), {
        desired_config_hash: null,
        heartbeat_interval_s: 30,
        config_changed: false,
      });
    });

    await t.step("many at once (one group-committed batch), one with a bad token among them", async () => {
      const agents = await registerAgents(ctx, Array.from({ length: 20 }, (_, i) => `hb-many-${i}`));
      ctx.clock.set("2026-06-01T12:05:00Z");
      const responses = await Promise.all([
        ...agents.map((a, i) => beat({ uptime_s: i }, a.node_token, a.node_id)),
        beat({ uptime_s: 999 }, two.node_token, agents[0].node_id),
      ]);
      assert.deepEqual(responses.slice(0, 20).map((r) => r.status), Array(20).fill(200));
      assert.equal(responses[20].status, 403);
      for (const res of responses) await res.body?.cancel();
      for (const [i, a] of agents.entries()) {
        const row = await node(a.node_id);
        assert.equal(Number(row.uptime_s), i);
        assert.deepEqual(row.last_heartbeat_at, new Date("2026-06-01T12:05:00Z"));
      }
      assert.ok(ctx.services.heartbeats.stats().largest_batch > 1, "heartbeats were batched");
    });

    await t.step(
      "refusals: 401 missing/invalid, 403 other node, 404 unknown, 410 decommissioned; no write",
      async () => {
        ctx.clock.set("2026-06-01T12:10:00Z");
        const before = await node(one.node_id);
        const cases: [Response, number, string][] = [
          [await beat({ uptime_s: 1 }, ""), 401, "unauthorized"],
          [await beat({ uptime_s: 1 }, "acn_wrong"), 401, "unauthorized"],
          [await beat({ uptime_s: 1 }, "ack_an_api_key"), 401, "invalid_api_key"], // the API-key middleware
          [await beat({ uptime_s: 1 }, two.node_token), 403, "forbidden"],
          [
            await beat({ uptime_s: 1 }, one.node_token, "00000000-0000-0000-0000-000000000000"),
            404,
            "not_found",
          ],
        ];
        for (const [res, status, code] of cases) {
          assert.equal(res.status, status);
          assert.equal((await json<ErrorBody>(res)).error.code, code);
        }
        assert.deepEqual(await node(one.node_id), before);
        await setNodeDecommissioned(ctx.deps.db, two.node_id, ctx.clock.now());
        // Written straight to the database: this replica forgets the node's token as the service would (other
        // replicas at their next poll).
        ctx.services.nodeAuth.forget(two.node_id);
        const beforeTwo = await node(two.node_id);
        const gone = await beat({ uptime_s: 1 }, two.node_token, two.node_id);
        assert.equal(gone.status, 410);
        assert.equal((await json<ErrorBody>(gone)).error.code, "node_decommissioned");
        assert.deepEqual(await node(two.node_id), beforeTwo);
      },
    );

    await t.step("bad bodies: 422 naming the field, nothing written", async () => {
      const before = await node(one.node_id);
      const poolsBefore = await pools(one.node_id);
      const cases: [unknown, string][] = [
        [{ uptime_s: -1 }, "uptime_s"],
        [{ uptime_s: 1.5 }, "uptime_s"],
        [{ uptime_s: "10" }, "uptime_s"],
        [{ status: "x".repeat(33) }, "status"],
        [{ applied_config_hash: "abc" }, "applied_config_hash"],
        [{ pools: [{ instance_pool_id: POOL_A, instance_count: -1 }] }, "pools.0.instance_count"],
        [{ pools: [{ instance_pool_id: "nope", instance_count: 1 }] }, "pools.0.instance_pool_id"],
        [{ pools: [{ instance_pool_id: POOL_A }] }, "pools.0.instance_count"],
        [{ pools: [{ instance_pool_id: POOL_A, instance_count: 1, extra: 1 }] }, "pools.0.extra"],
        [{ surprise: 1 }, ""],
      ];
      for (const [body, field] of cases) {
        const res = await beat(body);
        assert.equal(res.status, 422, JSON.stringify(body));
        const error = (await json<ErrorBody>(res)).error;
        assert.equal(error.code, "validation_failed");
        assert.ok(
          error.details?.some((d) => (field ? d.field === field : true)),
          `${field}: ${JSON.stringify(error.details)}`,
        );
      }
      const wrongType = await ctx.call("POST", `/api/v1/nodes/${one.node_id}/heartbeat`, {
        token: one.node_token,
        body: '{"uptime_s": 5}',
        headers: { "content-type": "text/plain" },
      });
      assert.equal(wrongType.status, 415);
      await wrongType.body?.cancel();
      assert.deepEqual(await node(one.node_id), before);
      assert.deepEqual(await pools(one.node_id), poolsBefore);
    });

    await t.step("documented in /openapi.json with node-token security", async () => {
      const doc = await json<{ paths: Record<string, Record<string, { security?: unknown[] }>> }>(
        await ctx.call("GET", "/openapi.json"),
      );
      assert.deepEqual(doc.paths["/api/v1/nodes/{id}/heartbeat"]?.post?.security, [{ nodeToken: [] }]);
    });
  } finally {
    await ctx.close();
  }
});
