// POST /api/v1/register: enrollment, node creation and re-registration, pools, the agent's config as v1.
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { createEnrollmentToken, revokeEnrollmentToken } from "../core/enrollment.ts";
import type { Principal } from "../core/principal.ts";
import { keyedHash } from "../core/secrets.ts";
import { setNodeDecommissioned } from "../db/agents.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { countIn, type ErrorBody } from "./helpers/assertions.ts";
import { enrollmentTokenUses } from "./helpers/fixtures.ts";
import { testConfig } from "./helpers/configs.ts";

const ADMIN: Principal = { kind: "system", name: "test" };
const POOL_A = "ocid1.instancepool.oc1.iad.aaaaaaaapoola";
const POOL_B = "ocid1.instancepool.oc1.iad.aaaaaaaapoolb";

const CONFIG = testConfig(POOL_A);

// The same kind of document as the agent reads it from its config.yaml: YAML text.
const CONFIG_YAML = stringify(testConfig(POOL_B));

Deno.test("register", async (t) => {
  const ctx = await createTestApp("register");
  const count = (table: string, where?: string, params?: unknown[]) => countIn(ctx, table, where, params);
  const uses = (id: number) => enrollmentTokenUses(ctx, id);
  const snapshot = async () => ({
    nodes: await count("nodes"),
    pools: await count("instance_pools"),
    configs: await count("config_versions"),
    audit: await count("audit_log"),
  });
  const { token: enrollment, view: enrollmentView } = await createEnrollmentToken(ctx.deps, {
    principal: ADMIN,
  }, { name: "fleet" });
  const register = (body: Record<string, unknown>, headers?: Record<string, string>) =>
    ctx.call("POST", "/api/v1/register", { json: { enrollment_token: enrollment, ...body }, headers });

  try {
    let nodeId = "";
    let firstToken = "";
    let firstHash = "";
    await t.step(
      "a new name: 201, node token once (only its hash stored), pools, config as version 1",
      async () => {
        const res = await register({
          name: "scaler-1",
          hostname: "scaler-1.internal",
          address: "10.1.2.3",
          agent_version: "2.0.0",
          region: "us-ashburn-1",
          labels: { env: "prod", team: "web" },
          pools: [{
            instance_pool_id: POOL_A,
            display_name: "web",
            current_size: 2,
            min_size: 1,
            max_size: 10,
          }],
          config: CONFIG,
        });
        assert.equal(res.status, 201);
        const body = await json<{
          node_id: string;
          node_token: string;
          heartbeat_interval_s: number;
          config: { version: number; hash: string; body: unknown };
        }>(res);
        assert.match(body.node_id, /^[0-9a-f-]{36}$/);
        assert.match(body.node_token, /^acn_[A-Za-z0-9_-]{43}$/);
        assert.equal(body.heartbeat_interval_s, 30);
        assert.equal(body.config.version, 1);
        assert.match(body.config.hash, /^[0-9a-f]{64}$/);
        assert.deepEqual(body.config.body, CONFIG);
        nodeId = body.node_id;
        firstToken = body.node_token;
        firstHash = body.config.hash;

        const [rows] = await ctx.database.pool.query("SELECT * FROM nodes WHERE id = ?", [nodeId]);
        const node = (rows as Record<string, unknown>[])[0];
        assert.equal(node.name, "scaler-1");
        assert.equal(node.hostname, "scaler-1.internal");
        assert.equal(node.last_address, "unknown"); // app.request() has no socket: the claim is kept apart
        assert.equal(node.claimed_address, "10.1.2.3");
        assert.equal(node.agent_version, "2.0.0");
        assert.deepEqual(JSON.parse(String(node.labels)), { env: "prod", team: "web" });
        assert.equal(node.token_hash, await keyedHash(ctx.deps.settings.SECRET_KEY, firstToken));
        assert.equal(node.desired_hash, firstHash);
        assert.equal(node.config_state, "pending");
        const [pools] = await ctx.database.pool.query("SELECT * FROM instance_pools WHERE node_id = ?", [
          nodeId,
        ]);
        assert.equal((pools as unknown[]).length, 1);
        assert.equal((pools as Record<string, unknown>[])[0].display_name, "web");
        assert.equal((pools as Record<string, unknown>[])[0].max_size, 10);
        const [versions] = await ctx.database.pool.query(
          "SELECT source, version FROM config_versions WHERE node_id = ?",
          [
            nodeId,
          ],
        );
        assert.deepEqual((versions as unknown[]).map((v) => ({ ...(v as object) })), [{
          source: "agent",
          version: 1,
        }]);
        assert.equal(await count("audit_log", "action = 'node.register' AND target_id = ?", [nodeId]), 1);
        assert.equal(await count("audit_log", "action = 'enrollment_token.use'"), 1);
        assert.equal(await uses(enrollmentView.id), 1);
        const [audit] = await ctx.database.pool.query("SELECT details FROM audit_log");
        for (const entry of audit as { details: string | null }[]) {
          assert.ok(!String(entry.details).includes(firstToken), "the node token is never logged");
          assert.ok(!String(entry.details).includes(enrollment), "the enrollment token is never logged");
        }
        assert.ok(!JSON.stringify(ctx.logger.lines).includes(firstToken));
      },
    );

    await t.step(
      "the known name with its own token: 200, token rotated (old one refused), config kept",
      async () => {
        const res = await register({
          name: "scaler-1",
          hostname: "scaler-1b.internal",
          agent_version: "2.1.0",
          pools: [{ instance_pool_id: POOL_A, current_size: 4 }, { instance_pool_id: POOL_B }],
          config: CONFIG_YAML, // ignored: the node has a config already
        }, { authorization: `Bearer ${firstToken}` });
        assert.equal(res.status, 200);
        const body = await json<
          { node_id: string; node_token: string; config: { version: number; hash: string } }
        >(res);
        assert.equal(body.node_id, nodeId);
        assert.notEqual(body.node_token, firstToken);
        assert.equal(body.config.version, 1);
        assert.equal(body.config.hash, firstHash);
        const old = await ctx.call("POST", `/api/v1/nodes/${nodeId}/heartbeat`, {
          token: firstToken,
          json: {},
        });
        assert.equal(old.status, 401);
        const fresh = await ctx.call("POST", `/api/v1/nodes/${nodeId}/heartbeat`, {
          token: body.node_token,
          json: {},
        });
        assert.equal(fresh.status, 200);
        const [rows] = await ctx.database.pool.query(
          "SELECT hostname, agent_version, labels FROM nodes WHERE id = ?",
          [
            nodeId,
          ],
        );
        const node = (rows as Record<string, unknown>[])[0];
        assert.equal(node.hostname, "scaler-1b.internal");
        assert.equal(node.agent_version, "2.1.0");
        assert.deepEqual(
          JSON.parse(String(node.labels)),
          { env: "prod", team: "web" },
          "labels kept when not sent",
        );
        const [pools] = await ctx.database.pool.query(
          "SELECT pool_ocid, current_size, display_name, max_size FROM instance_pools WHERE node_id = ? ORDER BY pool_ocid",
          [nodeId],
        );
        const [a, b] = pools as Record<string, unknown>[];
        assert.equal(a.current_size, 4);
        assert.equal(a.display_name, "web", "fields not sent are kept");
        assert.equal(a.max_size, 10);
        assert.equal(b.pool_ocid, POOL_B);
        assert.equal(await count("config_versions", "node_id = ?", [nodeId]), 1);
        assert.equal(await count("audit_log", "action = 'node.reregister' AND target_id = ?", [nodeId]), 1);
        assert.equal(await count("nodes"), 1);
      },
    );

    await t.step("config as YAML text is stored as version 1 of a new node", async () => {
      const res = await register({ name: "scaler-yaml", hostname: "h", config: CONFIG_YAML });
      assert.equal(res.status, 201);
      const body = await json<
        { config: { version: number; body: { pools: { instance_pool_id: string }[] } } }
      >(res);
      assert.equal(body.config.version, 1);
      assert.equal(body.config.body.pools[0].instance_pool_id, POOL_B);
    });

    await t.step("no config: config null, no version", async () => {
      const res = await register({ name: "scaler-bare", hostname: "h" });
      assert.equal(res.status, 201);
      assert.equal((await json(res)).config, null);
    });

    await t.step("an invalid config: 422 naming config.<path>, nothing written, no use taken", async () => {
      const before = await snapshot();
      const usesBefore = await uses(enrollmentView.id);
      const bad = structuredClone(CONFIG);
      bad.pools[0].cpu_threshold = { min: 80, max: 75 };
      const res = await register({ name: "scaler-bad-config", hostname: "h", config: bad });
      assert.equal(res.status, 422);
      const body = await json<ErrorBody>(res);
      assert.equal(body.error.code, "validation_failed");
      assert.ok(
        body.error.details?.some((d) => d.field === "config.pools.0.cpu_threshold.min"),
        body.error.message,
      );
      const yamlRes = await register({ name: "scaler-bad-yaml", hostname: "h", config: "pools: [unclosed" });
      assert.equal(yamlRes.status, 422);
      assert.ok((await json<ErrorBody>(yamlRes)).error.details?.some((d) => d.field?.startsWith("config")));
      assert.deepEqual(await snapshot(), before);
      assert.equal(await uses(enrollmentView.id), usesBefore);
    });

    await t.step("bad fields: 422 naming each field, nothing written", async () => {
      const before = await snapshot();
      const cases: [Record<string, unknown>, string][] = [
        [{ hostname: "h" }, "name"],
        [{ name: "x" }, "hostname"],
        [{ name: "has space", hostname: "h" }, "name"],
        [{ name: "x".repeat(129), hostname: "h" }, "name"],
        [{ name: 42, hostname: "h" }, "name"],
        [{ name: "x", hostname: "h", surprise: true }, ""],
        [{ name: "x", hostname: "h", labels: { "bad key!": "v" } }, "labels.bad key!"],
        [{ name: "x", hostname: "h", labels: { env: 3 } }, "labels.env"],
        [
          { name: "x", hostname: "h", pools: [{ instance_pool_id: "not-an-ocid" }] },
          "pools.0.instance_pool_id",
        ],
        [
          { name: "x", hostname: "h", pools: [{ instance_pool_id: POOL_A, current_size: -1 }] },
          "pools.0.current_size",
        ],
        [{ name: "x", hostname: "h", config: 42 }, "config"],
      ];
      for (const [body, field] of cases) {
        const res = await register(body);
        assert.equal(res.status, 422, JSON.stringify(body));
        const error = (await json<ErrorBody>(res)).error;
        assert.equal(error.code, "validation_failed");
        if (field) assert.ok(error.details?.some((d) => d.field === field), `${field}: ${error.message}`);
        else assert.match(error.message, /surprise|unrecognized/i);
      }
      // Credentials come first: without a token the body is not even validated.
      const noToken = await ctx.call("POST", "/api/v1/register", { json: { name: "x", hostname: "h" } });
      assert.equal(noToken.status, 401);
      assert.equal((await json<ErrorBody>(noToken)).error.code, "enrollment_token_invalid");
      const notJson = await ctx.call("POST", "/api/v1/register", {
        body: "name=x",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      assert.ok(
        notJson.status === 422 || notJson.status === 400 || notJson.status === 415,
        String(notJson.status),
      );
      assert.deepEqual(await snapshot(), before);
    });

    await t.step(
      "enrollment token unknown / revoked / expired / exhausted: 401 with its code, nothing written",
      async () => {
        const before = await snapshot();
        const attempt = async (token: string, code: string) => {
          const res = await ctx.call("POST", "/api/v1/register", {
            json: { enrollment_token: token, name: "scaler-refused", hostname: "h" },
          });
          assert.equal(res.status, 401);
          assert.equal((await json<ErrorBody>(res)).error.code, code);
        };
        await attempt("ace_nope", "enrollment_token_invalid");
        await attempt("garbage", "enrollment_token_invalid");
        const revoked = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, { name: "r" });
        await revokeEnrollmentToken(ctx.deps, { principal: ADMIN }, revoked.view.id);
        await attempt(revoked.token, "enrollment_token_revoked");
        const expiring = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
          name: "e",
          expires_in_s: 60,
        });
        const once = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, { name: "o", max_uses: 1 });
        const ok = await ctx.call("POST", "/api/v1/register", {
          json: { enrollment_token: once.token, name: "scaler-once", hostname: "h" },
        });
        assert.equal(ok.status, 201);
        const afterOnce = await snapshot();
        await attempt(once.token, "enrollment_token_exhausted");
        ctx.clock.advance(61_000);
        await attempt(expiring.token, "enrollment_token_expired");
        assert.deepEqual(await snapshot(), afterOnce);
        assert.equal(afterOnce.nodes, before.nodes + 1);
      },
    );

    await t.step("two concurrent registrations on a max_uses 1 token: exactly one wins", async () => {
      const single = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
        name: "single",
        max_uses: 1,
      });
      const nodesBefore = await count("nodes");
      const responses = await Promise.all(
        ["race-a", "race-b", "race-c"].map((name) =>
          ctx.call("POST", "/api/v1/register", {
            json: { enrollment_token: single.token, name, hostname: "h" },
          })
        ),
      );
      const statuses = responses.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 401, 401]);
      for (const res of responses.filter((r) => r.status === 401)) {
        assert.equal((await json<ErrorBody>(res)).error.code, "enrollment_token_exhausted");
      }
      for (const res of responses.filter((r) => r.status === 201)) await res.body?.cancel();
      assert.equal(await count("nodes"), nodesBefore + 1);
      assert.equal(await uses(single.view.id), 1);
    });

    await t.step("two concurrent first registrations of one name: one node, the other 409", async () => {
      const responses = await Promise.all([1, 2].map(() => register({ name: "same-name", hostname: "h" })));
      assert.deepEqual(responses.map((r) => r.status).sort(), [201, 409]);
      const loser = responses.find((r) => r.status === 409)!;
      assert.equal((await json<ErrorBody>(loser)).error.code, "node_name_taken");
      await responses.find((r) => r.status === 201)!.body?.cancel();
      assert.equal(await count("nodes", "name = 'same-name'"), 1);
    });

    await t.step(
      "a decommissioned name: 409 node_decommissioned, nothing written, no use taken",
      async () => {
        await setNodeDecommissioned(ctx.deps.db, nodeId, ctx.clock.now());
        const before = await snapshot();
        const usesBefore = await uses(enrollmentView.id);
        const res = await register({ name: "scaler-1", hostname: "again" });
        assert.equal(res.status, 409);
        assert.equal((await json<ErrorBody>(res)).error.code, "node_decommissioned");
        assert.deepEqual(await snapshot(), before);
        assert.equal(await uses(enrollmentView.id), usesBefore);
        const [rows] = await ctx.database.pool.query("SELECT hostname FROM nodes WHERE id = ?", [nodeId]);
        assert.equal((rows as { hostname: string }[])[0].hostname, "scaler-1b.internal");
      },
    );

    await t.step("documented in /openapi.json without node security", async () => {
      const doc = await json<{ paths: Record<string, Record<string, { security?: unknown[] }>> }>(
        await ctx.call("GET", "/openapi.json"),
      );
      const op = doc.paths["/api/v1/register"]?.post;
      assert.ok(op, "register documented");
      assert.ok(!op.security || op.security.length === 0);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("register retried with its registration_id (the answer was lost): the node back until it heartbeats", async (t) => {
  const ctx = await createTestApp("register_retry");
  try {
    // Two uses, one for each name: a retry takes none.
    const { token, view } = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
      name: "once",
      max_uses: 2,
    });
    const register = (name: string, registrationId: string | undefined) =>
      ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: token, name, hostname: "h", registration_id: registrationId },
      });
    const heartbeat = (nodeId: string, nodeToken: string) =>
      ctx.call("POST", `/api/v1/nodes/${nodeId}/heartbeat`, { json: {}, token: nodeToken });
    const RETRY = "retry-id-0123456789abcdef";

    let first = { node_id: "", node_token: "" };
    await t.step("the retry gets the same node and a new token; the lost one no longer works", async () => {
      const res = await register("retry-1", RETRY);
      assert.equal(res.status, 201);
      first = await json(res);
      const again = await register("retry-1", RETRY);
      assert.equal(again.status, 200);
      const second = await json<{ node_id: string; node_token: string }>(again);
      assert.equal(second.node_id, first.node_id);
      assert.notEqual(second.node_token, first.node_token);
      assert.equal((await heartbeat(first.node_id, first.node_token)).status, 401);
      assert.equal((await heartbeat(second.node_id, second.node_token)).status, 200);
      assert.equal(await enrollmentTokenUses(ctx, view.id), 1, "the retry took no second use");
      const [rows] = await ctx.database.pool.query(
        "SELECT JSON_UNQUOTE(JSON_EXTRACT(details, '$.proof')) AS proof FROM audit_log WHERE action = 'node.reregister'",
      );
      assert.deepEqual((rows as { proof: string }[]).map((r) => r.proof), ["registration_retry"]);
    });

    await t.step(
      "after the node's first heartbeat the same retry is 409: its agent has its token",
      async () => {
        const res = await register("retry-1", RETRY);
        assert.equal(res.status, 409);
        assert.equal((await json<ErrorBody>(res)).error.code, "node_name_taken");
      },
    );

    await t.step(
      "another registration_id, none, or the same after 15 minutes: refused, nothing changed",
      async () => {
        assert.equal((await register("retry-2", RETRY)).status, 201); // the token's last use
        // The token is used up, and only the same registration may pass the credential check without a use.
        for (const other of ["another-id-0123456789abcdef", undefined]) {
          const res = await register("retry-2", other);
          assert.equal(res.status, 401, String(other));
          assert.equal((await json<ErrorBody>(res)).error.code, "enrollment_token_exhausted");
        }
        assert.equal((await register("retry-2", RETRY)).status, 200, "within the window: the node back");
        ctx.clock.advance(15 * 60_000 + 1);
        const late = await register("retry-2", RETRY);
        assert.equal(late.status, 401, "past the window the used-up token counts again");
        await late.body?.cancel();
        assert.equal(await countIn(ctx, "nodes"), 2);
      },
    );

    await t.step("a malformed registration_id: 422 naming it, nothing written", async () => {
      const fresh = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, { name: "fresh" });
      const res = await ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: fresh.token, name: "retry-3", hostname: "h", registration_id: "short" },
      });
      assert.equal(res.status, 422);
      const body = await json<ErrorBody>(res);
      assert.ok(body.error.details?.some((d) => d.field === "registration_id"), JSON.stringify(body));
      assert.equal(await countIn(ctx, "nodes"), 2);
    });
  } finally {
    await ctx.close();
  }
});
