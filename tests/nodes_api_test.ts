import assert from "node:assert/strict";
import { setNodeConfig } from "../core/configs.ts";
import { updateNode } from "../core/nodes.ts";
import { AppError } from "../core/errors.ts";
import { keyedHash, newSecret, SECRET_PREFIX } from "../core/secrets.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole, createUserWithRole, loginAs, TEST_SETUP } from "./helpers/auth.ts";
import {
  auditEntries,
  countNodeRows,
  insertEvents,
  insertNode,
  insertPool,
  insertRollups,
  insertSamples,
  poolOcid,
} from "./helpers/fixtures.ts";
import type { ErrorBody } from "./helpers/assertions.ts";
import { testConfig } from "./helpers/configs.ts";
import type { NodeInsert } from "../db/nodes.ts";

type NodeItem = {
  id: string;
  name: string;
  status: string;
  labels: Record<string, string>;
  pool_count: number;
  display_name: string | null;
  config: Record<string, unknown>;
};
type NodePage = { items: NodeItem[]; next_cursor: string | null };

const fields = (body: ErrorBody) => (body.error.details ?? []).map((d) => d.field);

Deno.test("nodes API", async (t) => {
  // TRUST_PROXY so X-Forwarded-For sets the address the audit log records.
  const ctx = await createTestApp("nodes_api", { env: { TRUST_PROXY: "true" } });
  try {
    const now = ctx.clock.now();
    const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000);
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
    const operator = (await createApiKeyWithRole(ctx, "operator")).token;
    const admin = (await createApiKeyWithRole(ctx, "admin")).token;

    // A node of `region` registered `registeredAgo` seconds ago.
    const node = (
      name: string,
      hostname: string,
      region: string,
      registeredAgo: number,
      more: Partial<NodeInsert>,
    ) => insertNode(ctx, { name, hostname, region, registeredAt: ago(registeredAgo), ...more });
    const alpha = await node("alpha", "alpha.example.internal", "us-ashburn-1", 3000, {
      displayName: "Alpha Prod",
      labels: { env: "prod", team: "a" },
      lastHeartbeatAt: ago(10),
      reportedStatus: "ok",
      agentVersion: "2.1.0",
    });
    const bravo = await node("bravo", "bravo.example.internal", "eu-frankfurt-1", 2000, {
      labels: { env: "staging" },
      lastHeartbeatAt: ago(3600),
      configState: "failed",
      configError: "bad yaml",
    });
    const charlie = await node("charlie", "c.example.internal", "us-ashburn-1", 1000, {
      labels: { env: "prod" },
    });
    const delta = await insertNode(ctx, {
      name: "delta_x",
      hostname: "d.example.internal",
      labels: {},
      lastHeartbeatAt: ago(5),
      decommissionedAt: ago(1),
      registeredAt: ago(500),
    });
    const alphaPool1 = await insertPool(ctx, alpha, poolOcid("alpha1"), {
      displayName: "web",
      currentSize: 3,
      minSize: 1,
      maxSize: 10,
      lastCpuUtil: 40,
      lastMemoryUtil: 50,
      lastMetricsAt: ago(20),
    });
    await insertPool(ctx, alpha, poolOcid("alpha2"), {
      currentSize: 2,
      lastCpuUtil: 80,
      lastMemoryUtil: 30,
      lastMetricsAt: ago(30),
    });
    await insertPool(ctx, bravo, poolOcid("bravo1"), { currentSize: 1 });
    await insertEvents(ctx, alpha, alphaPool1, [
      { ts: ago(600), direction: "UP", from: 2, to: 3 },
      { ts: ago(90_000), direction: "DOWN" }, // older than 24h: not in the figures
    ]);

    const list = async (query: string, token = viewer) => {
      const res = await ctx.call("GET", `/api/v1/nodes${query}`, { token });
      const body = await json(res);
      assert.equal(res.status, 200, JSON.stringify(body));
      return body as unknown as NodePage;
    };
    const names = (page: NodePage) => page.items.map((n) => n.name);

    await t.step("anonymous callers get 401", async () => {
      const res = await ctx.call("GET", "/api/v1/nodes");
      assert.equal(res.status, 401);
      assert.equal((await json<ErrorBody>(res)).error.code, "unauthorized");
    });

    await t.step("lists every node by name with derived status, config and pool count", async () => {
      const page = await list("");
      assert.deepEqual(names(page), ["alpha", "bravo", "charlie", "delta_x"]);
      assert.equal(page.next_cursor, null);
      const byName = Object.fromEntries(page.items.map((n) => [n.name, n]));
      assert.equal(byName.alpha.status, "online");
      assert.equal(byName.bravo.status, "offline");
      assert.equal(byName.charlie.status, "never_seen");
      assert.equal(byName.delta_x.status, "decommissioned");
      assert.equal(byName.alpha.pool_count, 2);
      assert.equal(byName.bravo.pool_count, 1);
      assert.equal(byName.charlie.pool_count, 0);
      assert.deepEqual(byName.alpha.labels, { env: "prod", team: "a" });
      assert.equal(byName.alpha.display_name, "Alpha Prod");
      assert.deepEqual(byName.bravo.config, {
        state: "failed",
        desired_hash: null,
        desired_version: null,
        applied_hash: null,
        error: "bad yaml",
      });
    });

    await t.step("filters: status, region, labels, q, config_state", async () => {
      assert.deepEqual(names(await list("?status=online")), ["alpha"]);
      assert.deepEqual(names(await list("?status=online&status=never_seen")), ["alpha", "charlie"]);
      assert.deepEqual(names(await list("?status=offline")), ["bravo"]);
      assert.deepEqual(names(await list("?status=decommissioned")), ["delta_x"]);
      assert.deepEqual(names(await list("?region=us-ashburn-1")), ["alpha", "charlie"]);
      assert.deepEqual(names(await list("?label=env:prod")), ["alpha", "charlie"]);
      assert.deepEqual(names(await list("?label=env:prod&label=team:a")), ["alpha"]);
      assert.deepEqual(names(await list("?label=team")), ["alpha"]);
      assert.deepEqual(names(await list("?label=env:nope")), []);
      assert.deepEqual(names(await list("?label=env:PROD")), []); // label values match exactly
      assert.deepEqual(names(await list("?q=PROD")), ["alpha"]); // display name, case-insensitive collation
      assert.deepEqual(names(await list("?q=bravo.example")), ["bravo"]); // hostname
      assert.deepEqual(names(await list("?q=_")), ["delta_x"]); // LIKE wildcards are literal
      assert.deepEqual(names(await list("?config_state=failed")), ["bravo"]);
      assert.deepEqual(names(await list("?status=online&region=eu-frankfurt-1")), []);
    });

    await t.step("status follows the clock: a node goes offline after OFFLINE_AFTER_S", async () => {
      ctx.clock.advance(80_000); // alpha's heartbeat is now 90s old: still online (boundary inclusive)
      assert.deepEqual(names(await list("?status=online")), ["alpha"]);
      ctx.clock.advance(1_000);
      assert.deepEqual(names(await list("?status=online")), []);
      assert.deepEqual(names(await list("?status=offline")), ["alpha", "bravo"]);
      ctx.clock.set(now);
    });

    await t.step("cursor pages walk every sort and order without gaps or repeats", async () => {
      for (const sort of ["name", "last_heartbeat", "registered"]) {
        for (const order of ["asc", "desc"]) {
          const whole = names(await list(`?sort=${sort}&order=${order}&limit=500`));
          const walked: string[] = [];
          let cursor: string | null = null;
          let pages = 0;
          do {
            const query: string = `?sort=${sort}&order=${order}&limit=1${cursor ? `&cursor=${cursor}` : ""}`;
            const page = await list(query);
            walked.push(...names(page));
            cursor = page.next_cursor;
            pages++;
          } while (cursor && pages < 10);
          assert.deepEqual(walked, whole, `${sort} ${order}`);
          assert.equal(whole.length, 4);
        }
      }
      // Times default to newest first; never-heartbeated nodes come last.
      assert.deepEqual(names(await list("?sort=last_heartbeat")), ["delta_x", "alpha", "bravo", "charlie"]);
      assert.deepEqual(names(await list("?sort=registered&order=asc")), [
        "alpha",
        "bravo",
        "charlie",
        "delta_x",
      ]);
    });

    await t.step("bad filters are 422 naming the parameter", async () => {
      const cases: [string, string][] = [
        ["?status=bogus", "status.0"],
        ["?limit=0", "limit"],
        ["?limit=501", "limit"],
        ["?limit=abc", "limit"],
        ["?sort=status", "sort"],
        ["?order=up", "order"],
        ["?config_state=weird", "config_state.0"],
        ["?cursor=!!!", "cursor"],
        ["?cursor=bm90LWpzb24", "cursor"], // base64url of "not-json"
        ['?label=bad"key:x', "label"],
      ];
      for (const [query, field] of cases) {
        const res = await ctx.call("GET", `/api/v1/nodes${query}`, { token: viewer });
        const body = await json<ErrorBody>(res);
        assert.equal(res.status, 422, query);
        assert.equal(body.error.code, "validation_failed", query);
        assert.ok(fields(body).includes(field), `${query}: ${JSON.stringify(body)}`);
      }
      // A cursor issued for another sort is refused rather than misread.
      const first = await list("?sort=name&limit=1");
      const res = await ctx.call("GET", `/api/v1/nodes?sort=registered&limit=1&cursor=${first.next_cursor}`, {
        token: viewer,
      });
      assert.equal(res.status, 422);
      assert.deepEqual(fields(await json<ErrorBody>(res)), ["cursor"]);
    });

    await t.step("detail: pools, latest figures; unknown node 404", async () => {
      const res = await ctx.call("GET", `/api/v1/nodes/${alpha}`, { token: viewer });
      assert.equal(res.status, 200);
      const node = await json<Record<string, unknown> & { pools: Record<string, unknown>[] }>(res);
      assert.equal(node.name, "alpha");
      assert.equal(node.status, "online");
      assert.equal(node.pools.length, 2);
      assert.deepEqual(node.pools[0], {
        instance_pool_id: poolOcid("alpha1"),
        display_name: "web",
        compartment_id: null,
        region: null,
        current_size: 3,
        min_size: 1,
        max_size: 10,
        last_cpu_util: 40,
        last_memory_util: 50,
        last_metrics_at: ago(20).toISOString(),
      });
      assert.deepEqual(node.figures, {
        instances: 5,
        avg_cpu_util: 60,
        avg_memory_util: 40,
        max_cpu_util: 80,
        max_memory_util: 50,
        last_metrics_at: ago(20).toISOString(),
        scaling_events_24h: { UP: 1, DOWN: 0 },
      });
      const missing = await ctx.call("GET", `/api/v1/nodes/${crypto.randomUUID()}`, { token: viewer });
      assert.equal(missing.status, 404);
      assert.equal((await json<ErrorBody>(missing)).error.code, "not_found");
    });

    await t.step("PATCH: viewer refused, operator changes display name and labels, audited", async () => {
      const refused = await ctx.call("PATCH", `/api/v1/nodes/${charlie}`, {
        token: viewer,
        json: { display_name: "nope" },
      });
      assert.equal(refused.status, 403);
      assert.equal((await json<ErrorBody>(refused)).error.code, "forbidden");

      const res = await ctx.call("PATCH", `/api/v1/nodes/${charlie}`, {
        token: operator,
        json: { display_name: "Charlie", labels: { env: "prod", tier: "gold" } },
        headers: { "x-forwarded-for": "203.0.113.9" },
      });
      assert.equal(res.status, 200);
      const node = await json<NodeItem>(res);
      assert.equal(node.display_name, "Charlie");
      assert.deepEqual(node.labels, { env: "prod", tier: "gold" });
      assert.deepEqual(names(await list("?label=tier:gold")), ["charlie"]);
      const audit = await auditEntries(ctx, "node.update");
      assert.equal(audit.length, 1);
      assert.equal(audit[0].target_id, charlie);
      assert.equal(audit[0].address, "203.0.113.9");
      assert.match(audit[0].actor_name, /^key:operator-key/);
      assert.deepEqual(audit[0].details?.after, {
        display_name: "Charlie",
        labels: { env: "prod", tier: "gold" },
      });
      assert.deepEqual(audit[0].details?.before, { display_name: null, labels: { env: "prod" } });

      // Clearing the display name; the same change twice writes one entry only.
      for (let i = 0; i < 2; i++) {
        const cleared = await ctx.call("PATCH", `/api/v1/nodes/${charlie}`, {
          token: operator,
          json: { display_name: null },
        });
        assert.equal(cleared.status, 200);
        assert.equal((await json<NodeItem>(cleared)).display_name, null);
      }
      assert.equal((await auditEntries(ctx, "node.update")).length, 2);
    });

    await t.step("PATCH with an operator's session cookie needs the CSRF token", async () => {
      const user = await createUserWithRole(ctx, "operator");
      const session = await loginAs(ctx, user.username, user.password);
      const withoutCsrf = await ctx.call("PATCH", `/api/v1/nodes/${charlie}`, {
        json: { display_name: "via session" },
        headers: { cookie: session.cookie },
      });
      assert.equal(withoutCsrf.status, 403);
      await withoutCsrf.body?.cancel();
      const res = await ctx.call("PATCH", `/api/v1/nodes/${charlie}`, {
        json: { display_name: null },
        headers: session.headers,
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      // Already null: no change, so no audit entry; the session's user reads like a key does.
      const read = await ctx.call("GET", `/api/v1/nodes/${charlie}`, { headers: { cookie: session.cookie } });
      assert.equal(read.status, 200);
      assert.equal((await json<NodeItem>(read)).display_name, null);
      assert.equal((await auditEntries(ctx, "node.update")).length, 2);
    });

    await t.step("PATCH: bad bodies are 422 naming the field and change nothing", async () => {
      const cases: [unknown, string][] = [
        [{ labels: { "bad key": "x" } }, "labels.bad key"],
        [{ labels: { env: 5 } }, "labels.env"],
        [{ display_name: "" }, "display_name"],
        [{ display_name: "x".repeat(256) }, "display_name"],
        [{ nickname: "x" }, "body"],
        [{}, "body"],
      ];
      for (const [body, field] of cases) {
        const res = await ctx.call("PATCH", `/api/v1/nodes/${charlie}`, { token: operator, json: body });
        const error = await json<ErrorBody>(res);
        assert.equal(res.status, 422, JSON.stringify(body));
        assert.ok(fields(error).includes(field), `${JSON.stringify(body)}: ${JSON.stringify(error)}`);
      }
      // The service checks the same rules for callers that skip the API schema (the pages).
      await assert.rejects(
        updateNode(ctx.deps, { principal: TEST_SETUP }, charlie, { labels: { 'x"y': "1" } }),
        (error: unknown) =>
          error instanceof AppError && error.status === 422 && error.details?.[0].field === 'labels.x"y',
      );
      const node = await json<NodeItem>(await ctx.call("GET", `/api/v1/nodes/${charlie}`, { token: viewer }));
      assert.deepEqual(node.labels, { env: "prod", tier: "gold" });
      assert.equal((await auditEntries(ctx, "node.update")).length, 2);
      const missing = await ctx.call("PATCH", `/api/v1/nodes/${crypto.randomUUID()}`, {
        token: operator,
        json: { display_name: "x" },
      });
      assert.equal(missing.status, 404);
    });

    await t.step("decommission: operator only, token stops at once, twice is 409", async () => {
      const token = newSecret(SECRET_PREFIX.nodeToken);
      await ctx.deps.pool.query("UPDATE nodes SET token_hash = ? WHERE id = ?", [
        await keyedHash(ctx.deps.settings.SECRET_KEY, token),
        bravo,
      ]);
      const before = await ctx.call("GET", `/api/v1/nodes/${bravo}/config`, { token });
      assert.equal(before.status, 204); // the token works: no config yet
      await before.body?.cancel();

      const refused = await ctx.call("POST", `/api/v1/nodes/${bravo}/decommission`, { token: viewer });
      assert.equal(refused.status, 403);
      await refused.body?.cancel();

      const res = await ctx.call("POST", `/api/v1/nodes/${bravo}/decommission`, { token: operator });
      assert.equal(res.status, 200);
      const node = await json<NodeItem & { decommissioned_at: string }>(res);
      assert.equal(node.status, "decommissioned");
      assert.equal(node.decommissioned_at, now.toISOString());
      const [rows] = await ctx.deps.pool.query("SELECT token_hash FROM nodes WHERE id = ?", [bravo]);
      assert.equal((rows as { token_hash: string | null }[])[0].token_hash, null);

      const after = await ctx.call("GET", `/api/v1/nodes/${bravo}/config`, { token });
      assert.equal(after.status, 410);
      assert.equal((await json<ErrorBody>(after)).error.code, "node_decommissioned");

      const twice = await ctx.call("POST", `/api/v1/nodes/${bravo}/decommission`, { token: operator });
      assert.equal(twice.status, 409);
      assert.equal((await json<ErrorBody>(twice)).error.code, "already_decommissioned");
      assert.equal((await auditEntries(ctx, "node.decommission")).length, 1);

      const missing = await ctx.call("POST", `/api/v1/nodes/${crypto.randomUUID()}/decommission`, {
        token: operator,
      });
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    });

    await t.step("delete: admin only, removes every row of the node and nothing else", async () => {
      const poolId = await insertPool(ctx, delta, poolOcid("delta1"), { currentSize: 4 });
      await insertSamples(ctx, delta, poolId, [
        { ts: ago(120), cpu: 10, memory: 20, instances: 4 },
        { ts: ago(60), cpu: 11, memory: 21, instances: 4 },
      ]);
      await insertEvents(ctx, delta, poolId, [{ ts: ago(60), direction: "UP" }]);
      const rollup = {
        nodeId: delta,
        poolId,
        bucketStart: ago(3600),
        samples: 2,
        cpuAvg: 10,
        cpuMin: 10,
        cpuMax: 10,
        memoryAvg: 20,
        memoryMin: 20,
        memoryMax: 20,
        instanceCountLast: 4,
      };
      await insertRollups(ctx, "5m", [rollup]);
      await insertRollups(ctx, "1h", [rollup]);
      // Config versions through the real service (the node is decommissioned, so set it on alpha too).
      await ctx.deps.pool.query("UPDATE nodes SET decommissioned_at = NULL WHERE id = ?", [delta]);
      for (const ocid of [poolOcid("delta1"), poolOcid("delta2")]) {
        await setNodeConfig(ctx.deps, ctx.services, { principal: TEST_SETUP }, delta, {
          config: testConfig(ocid),
        });
      }
      await setNodeConfig(ctx.deps, ctx.services, { principal: TEST_SETUP }, alpha, {
        config: testConfig(poolOcid("alpha1")),
      });
      const alphaBefore = await countNodeRows(ctx, alpha);
      // Delta's rows, table by table: what the delete must report and leave none of.
      const deltaRows = {
        nodes: 1,
        instance_pools: 1,
        metric_samples: 2,
        metric_rollups_5m: 1,
        metric_rollups_1h: 1,
        scaling_events: 1,
        config_versions: 2,
      };
      assert.deepEqual(await countNodeRows(ctx, delta), deltaRows);

      for (const token of [viewer, operator]) {
        const refused = await ctx.call("DELETE", `/api/v1/nodes/${delta}`, { token });
        assert.equal(refused.status, 403);
        await refused.body?.cancel();
      }
      assert.equal((await countNodeRows(ctx, delta)).nodes, 1);

      const res = await ctx.call("DELETE", `/api/v1/nodes/${delta}`, { token: admin });
      assert.equal(res.status, 200);
      const body = await json<{ id: string; deleted: Record<string, number> }>(res);
      assert.deepEqual(body.deleted, deltaRows);
      assert.deepEqual(
        await countNodeRows(ctx, delta),
        Object.fromEntries(Object.keys(deltaRows).map((table) => [table, 0])),
      );
      assert.deepEqual(await countNodeRows(ctx, alpha), alphaBefore);
      const audit = await auditEntries(ctx, "node.delete");
      assert.equal(audit.length, 1);
      assert.equal(audit[0].details?.name, "delta_x");

      const again = await ctx.call("DELETE", `/api/v1/nodes/${delta}`, { token: admin });
      assert.equal(again.status, 404);
      await again.body?.cancel();
    });
  } finally {
    await ctx.close();
  }
});
