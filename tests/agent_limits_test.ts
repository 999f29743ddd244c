// Issue 13, items 8, 10 and 11: every length the API accepts is storable wherever it is copied; the address
// recorded for a node is the connection's (or the trusted proxy's), the agent's claim kept beside it; and
// the pools a node may create are bounded by MAX_POOLS_PER_NODE.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import type { ErrorBody } from "./helpers/assertions.ts";
import { testConfig } from "./helpers/configs.ts";

const pool = (n: number) => `ocid1.instancepool.oc1.iad.aaaaaaaalimit${n}`;
const CONFIG = testConfig(pool(1));

Deno.test("agent limits", async (t) => {
  const ctx = await createTestApp("agent_limits", { env: { MAX_POOLS_PER_NODE: "3", TRUST_PROXY: "true" } });
  const setup = { kind: "system", name: "test" } as const;
  const { token: enrollment } = await createEnrollmentToken(ctx.deps, { principal: setup }, {
    name: "fleet",
  });
  const query = async (sql: string, params: unknown[] = []) =>
    (await ctx.database.pool.query(sql, params))[0] as Record<string, unknown>[];
  const register = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: enrollment, hostname: "h", ...body },
      headers,
    });

  try {
    await t.step("item 8: node names of 124..128 characters register; actor names fit", async () => {
      for (const length of [123, 124, 127, 128]) {
        const name = "n".repeat(length - 4) + String(length).padStart(4, "0");
        const res = await register({ name, config: CONFIG });
        assert.equal(res.status, 201, `${length}: ${await res.clone().text()}`);
        const { node_id } = await json<{ node_id: string }>(res);
        const audit = await query("SELECT actor_name FROM audit_log WHERE target_id = ?", [node_id]);
        assert.ok(audit.some((row) => row.actor_name === `node:${name}`));
        const versions = await query("SELECT author FROM config_versions WHERE node_id = ?", [node_id]);
        assert.equal(versions[0].author, `node:${name}`);
      }
      const tooLong = await register({ name: "n".repeat(129) });
      assert.equal(tooLong.status, 422);
      assert.ok((await json<ErrorBody>(tooLong)).error.details?.some((d) => d.field === "name"));
    });

    await t.step("item 8: API keys named 125..128 characters make audited changes", async () => {
      const [nodeRow] = await query("SELECT id FROM nodes ORDER BY LENGTH(name) DESC LIMIT 1");
      for (const length of [125, 128]) {
        const name = "k".repeat(length);
        const admin = await createApiKeyWithRole(ctx, "admin", { name });
        const token = await ctx.call("POST", "/api/v1/enrollment-tokens", {
          token: admin.token,
          json: { name: "by-long-key" },
        });
        assert.equal(token.status, 201, await token.clone().text());
        assert.equal((await json<{ created_by: string }>(token)).created_by, `key:${name}`);
        const config = await ctx.call("POST", `/api/v1/nodes/${nodeRow.id}/configs`, {
          token: admin.token,
          json: { config: { ...CONFIG, note: length } },
        });
        assert.equal(config.status, 201, await config.clone().text());
        const reenroll = await ctx.call("POST", `/api/v1/nodes/${nodeRow.id}/reenrollment-token`, {
          token: admin.token,
        });
        assert.equal(reenroll.status, 201, await reenroll.clone().text());
        await reenroll.body?.cancel();
        const key = await ctx.call("POST", "/api/v1/api-keys", {
          token: admin.token,
          json: { name: "x".repeat(128), role: "viewer" },
        });
        assert.equal(key.status, 201, await key.clone().text());
        await key.body?.cancel();
        const audit = await query("SELECT COUNT(*) AS n FROM audit_log WHERE actor_name = ?", [
          `key:${name}`,
        ]);
        assert.ok(Number(audit[0].n) >= 4);
      }
    });

    let node = { node_id: "", node_token: "" };
    await t.step(
      "item 10: the connection's address is recorded, the agent's claim kept beside it",
      async () => {
        const res = await register({ name: "addr-1", address: "10.9.9.9" }, {
          "x-forwarded-for": "203.0.113.7",
        });
        assert.equal(res.status, 201);
        node = await json<{ node_id: string; node_token: string }>(res);
        let [row] = await query("SELECT last_address, claimed_address FROM nodes WHERE id = ?", [
          node.node_id,
        ]);
        assert.deepEqual({ ...row }, { last_address: "203.0.113.7", claimed_address: "10.9.9.9" });
        const audit = await query(
          "SELECT address, details FROM audit_log WHERE action = 'node.register' AND target_id = ?",
          [
            node.node_id,
          ],
        );
        assert.equal(audit[0].address, "203.0.113.7");
        assert.equal(JSON.parse(String(audit[0].details)).claimed_address, "10.9.9.9");

        const hb = await ctx.call("POST", `/api/v1/nodes/${node.node_id}/heartbeat`, {
          token: node.node_token,
          json: { address: "192.0.2.1" },
          // What the client sent, then what an appending load balancer saw: only the last is believed.
          headers: { "x-forwarded-for": "198.51.100.66, 203.0.113.8" },
        });
        assert.equal(hb.status, 200);
        [row] = await query("SELECT last_address, claimed_address FROM nodes WHERE id = ?", [node.node_id]);
        assert.deepEqual({ ...row }, { last_address: "203.0.113.8", claimed_address: "192.0.2.1" });

        const viewer = await createApiKeyWithRole(ctx, "viewer");
        const detail = await json<{ last_address: string; claimed_address: string }>(
          await ctx.call("GET", `/api/v1/nodes/${node.node_id}`, { token: viewer.token }),
        );
        assert.equal(detail.last_address, "203.0.113.8");
        assert.equal(detail.claimed_address, "192.0.2.1");
      },
    );

    const poolCount = async () =>
      Number(
        (await query("SELECT COUNT(*) AS n FROM instance_pools WHERE node_id = ?", [node.node_id]))[0].n,
      );
    const sample = (n: number, second: number) => ({
      instance_pool_id: pool(n),
      ts: new Date(ctx.clock.now().getTime() - 60_000 + second * 1000).toISOString(),
      cpu_util: 10,
      memory_util: 10,
      instance_count: 1,
    });

    await t.step(
      "item 11: register naming more pools than MAX_POOLS_PER_NODE: 422, nothing written",
      async () => {
        const before = await query("SELECT COUNT(*) AS n FROM nodes");
        const res = await register({
          name: "pools-1",
          pools: [1, 2, 3, 4].map((n) => ({ instance_pool_id: pool(n) })),
        });
        assert.equal(res.status, 422);
        const error = (await json<ErrorBody>(res)).error;
        assert.deepEqual(error.details?.map((d) => d.field), ["pools.3.instance_pool_id"]);
        assert.deepEqual(await query("SELECT COUNT(*) AS n FROM nodes"), before);
      },
    );

    await t.step(
      "item 11: a metrics batch with new pools beyond the limit: 422 naming them, nothing stored",
      async () => {
        const first = await ctx.call("POST", `/api/v1/nodes/${node.node_id}/metrics`, {
          token: node.node_token,
          json: { samples: [sample(1, 1), sample(2, 2)] },
        });
        assert.equal(first.status, 200, await first.clone().text());
        assert.equal(await poolCount(), 2);
        const res = await ctx.call("POST", `/api/v1/nodes/${node.node_id}/metrics`, {
          token: node.node_token,
          json: { samples: [sample(1, 3), sample(3, 3), sample(4, 3), sample(5, 3), sample(4, 4)] },
        });
        assert.equal(res.status, 422);
        const error = (await json<ErrorBody>(res)).error;
        // pool 3 fits (the node's third); pools 4 and 5 do not
        assert.deepEqual(error.details?.map((d) => d.field), [
          "samples.2.instance_pool_id",
          "samples.3.instance_pool_id",
          "samples.4.instance_pool_id",
        ]);
        assert.equal(await poolCount(), 2, "nothing created");
        const [samples] = await query("SELECT COUNT(*) AS n FROM metric_samples WHERE node_id = ?", [
          node.node_id,
        ]);
        assert.equal(Number(samples.n), 2);
        const fits = await ctx.call("POST", `/api/v1/nodes/${node.node_id}/metrics`, {
          token: node.node_token,
          json: { samples: [sample(1, 5), sample(3, 5)] },
        });
        assert.equal(fits.status, 200);
        assert.equal(await poolCount(), 3);
      },
    );

    await t.step(
      "item 11: a heartbeat naming an unknown pool beyond the limit: 422, known pools fine",
      async () => {
        const ok = await ctx.call("POST", `/api/v1/nodes/${node.node_id}/heartbeat`, {
          token: node.node_token,
          json: { pools: [{ instance_pool_id: pool(1), instance_count: 2 }] },
        });
        assert.equal(ok.status, 200);
        const res = await ctx.call("POST", `/api/v1/nodes/${node.node_id}/heartbeat`, {
          token: node.node_token,
          json: {
            pools: [{ instance_pool_id: pool(2), instance_count: 2 }, {
              instance_pool_id: pool(9),
              instance_count: 1,
            }],
          },
        });
        assert.equal(res.status, 422);
        assert.deepEqual((await json<ErrorBody>(res)).error.details?.map((d) => d.field), [
          "pools.1.instance_pool_id",
        ]);
        assert.equal(await poolCount(), 3);
        const [row] = await query(
          "SELECT current_size FROM instance_pools WHERE node_id = ? AND pool_ocid = ?",
          [
            node.node_id,
            pool(2),
          ],
        );
        assert.notEqual(row.current_size, 2, "a refused heartbeat writes nothing");
      },
    );

    await t.step(
      "item 11, on a replica that never saw the node: its pools are found by a read, a new one beyond the limit is still 422",
      async () => {
        // Closed with the app at the end.
        const replica = await ctx.replica();
        const heartbeat = (ocids: string[]) =>
          replica.call("POST", `/api/v1/nodes/${node.node_id}/heartbeat`, {
            token: node.node_token,
            json: { pools: ocids.map((id) => ({ instance_pool_id: id, instance_count: 1 })) },
          });
        // First heartbeats arriving together: their pool lookups share one read.
        const first = await Promise.all([
          heartbeat([pool(1)]),
          heartbeat([pool(1), pool(2)]),
          heartbeat([pool(2)]),
        ]);
        for (const res of first) assert.equal(res.status, 200, await res.clone().text());
        await Promise.all(first.map((res) => res.body?.cancel()));
        const refused = await heartbeat([pool(1), pool(8)]);
        assert.equal(refused.status, 422);
        assert.deepEqual((await json<ErrorBody>(refused)).error.details?.map((d) => d.field), [
          "pools.1.instance_pool_id",
        ]);
        assert.equal(await poolCount(), 3);
      },
    );

    await t.step(
      "items 7, 11: MAX_POOLS_PER_NODE and MAX_CONFIG_WAITS_PER_NODE are validated settings",
      async () => {
        const { parseSettings } = await import("../config.ts");
        assert.equal(parseSettings({}).MAX_POOLS_PER_NODE, 50);
        assert.throws(() => parseSettings({ MAX_POOLS_PER_NODE: "0" }), /MAX_POOLS_PER_NODE/);
        assert.throws(() => parseSettings({ MAX_POOLS_PER_NODE: "lots" }), /MAX_POOLS_PER_NODE/);
        assert.equal(parseSettings({}).MAX_CONFIG_WAITS_PER_NODE, 4);
        assert.throws(() => parseSettings({ MAX_CONFIG_WAITS_PER_NODE: "0" }), /MAX_CONFIG_WAITS_PER_NODE/);
      },
    );
  } finally {
    await ctx.close();
  }
});
