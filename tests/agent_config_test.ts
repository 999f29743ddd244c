// Config versions and the agent's config protocol (pull with ETag/long-poll, ack), on a real database.
import assert from "node:assert/strict";
import { count, desc, eq } from "drizzle-orm";
import {
  ackConfig,
  configOverview,
  configStatus,
  createConfigVersion,
  diffConfigVersions,
  diffRows,
  getConfigVersion,
  getDesiredConfig,
  listConfigVersions,
  rollbackConfig,
  setNodeConfig,
} from "../core/configs.ts";
import { configHash, toYaml } from "../core/configDocument.ts";
import { AppError } from "../core/errors.ts";
import type { Principal } from "../core/principal.ts";
import { auditLog, configVersions, nodes } from "../db/schema.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { expectError } from "./helpers/assertions.ts";
import { auditEntries } from "./helpers/fixtures.ts";
import { createNodeWithToken, decommissionNode } from "./helpers/nodes.ts";

const OPERATOR: Principal = { kind: "user", userId: 7, username: "alice", role: "operator" };
const POOL_OCID = "ocid1.instancepool.oc1.iad.aaaaaaaaexamplepool0001";
const COMPARTMENT_OCID = "ocid1.compartment.oc1..aaaaaaaaexamplecompartment";

function configYaml(options: { cpuMax?: number; region?: string; extra?: string } = {}): string {
  return `pools:
  - instance_pool_id: ${POOL_OCID}
    compartment_id: ${COMPARTMENT_OCID}
    region: ${options.region ?? "us-ashburn-1"}
    monitoring_method: oci
    cpu_threshold: {min: 30, max: ${options.cpuMax ?? 75}}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
    scheduler_max_instances: 3
    schedules: [{start_time: "05:30", end_time: "05:50"}]
${options.extra ?? ""}`;
}

function configObject(cpuMax = 75): Record<string, unknown> {
  return {
    pools: [{
      instance_pool_id: POOL_OCID,
      compartment_id: COMPARTMENT_OCID,
      region: "us-ashburn-1",
      cpu_threshold: { min: 30, max: cpuMax },
      ram_threshold: { min: 20, max: 75 },
      scaling_limits: { min: 1, max: 10 },
    }],
  };
}

async function expectAppError(promise: Promise<unknown>, status: number, code: string, field?: string) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    if (field !== undefined) {
      assert.ok(error.details?.some((d) => d.field === field), JSON.stringify(error.details));
    }
    return error;
  }
  assert.fail(`expected AppError ${status} ${code}`);
}

async function nodeRow(ctx: TestApp, nodeId: string) {
  const [row] = await ctx.deps.db.select().from(nodes).where(eq(nodes.id, nodeId));
  return row;
}

async function versionCount(ctx: TestApp, nodeId: string): Promise<number> {
  const [row] = await ctx.deps.db.select({ n: count() }).from(configVersions)
    .where(eq(configVersions.nodeId, nodeId));
  return row.n;
}

async function auditCount(ctx: TestApp, action: string): Promise<number> {
  const [row] = await ctx.deps.db.select({ n: count() }).from(auditLog).where(eq(auditLog.action, action));
  return row.n;
}

/** Waits (without a time assertion) until `n` pulls wait in that app's watcher. */
async function untilWaiting(ctx: TestApp, n: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (ctx.services.configWatcher.waiting >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`never saw ${n} waiting pulls`);
}

const pull = (
  ctx: TestApp,
  nodeId: string,
  token: string,
  query = "",
  headers: Record<string, string> = {},
) => ctx.call("GET", `/api/v1/nodes/${nodeId}/config${query}`, { token, headers });

Deno.test("agent config protocol", async (t) => {
  // Room for the 50 pulls of one node the poll-cost step holds (the cap itself has its own step).
  const ctx = await createTestApp("agent_config", { env: { MAX_CONFIG_WAITS_PER_NODE: "50" } });
  try {
    const node = await createNodeWithToken(ctx, "scaler-1");
    const other = await createNodeWithToken(ctx, "scaler-2");
    const empty = await createNodeWithToken(ctx, "scaler-empty");
    // `n` pulls of node's current config (If-None-Match its hash), once `app` holds them all waiting.
    const waitingPulls = async (app: TestApp, n: number) => {
      const current = (await getDesiredConfig(ctx.deps, node.nodeId))!;
      const pulls = Array.from(
        { length: n },
        () => pull(app, node.nodeId, node.token, "?wait=60", { "if-none-match": `"${current.hash}"` }),
      );
      await untilWaiting(app, n);
      return pulls;
    };
    let firstHash = "";

    await t.step("204 when the node has no config (wait=0 and at the end of a short wait)", async () => {
      const res = await pull(ctx, empty.nodeId, empty.token);
      assert.equal(res.status, 204);
      assert.equal(await res.text(), "");
      const waited = await pull(ctx, empty.nodeId, empty.token, "?wait=1");
      assert.equal(waited.status, 204);
      assert.equal(ctx.services.configWatcher.waiting, 0);
    });

    await t.step("setNodeConfig from YAML creates version 1 and makes it desired (pending)", async () => {
      const view = await setNodeConfig(
        ctx.deps,
        ctx.services,
        { principal: OPERATOR, address: "10.0.0.1" },
        node.nodeId,
        { config: configYaml(), comment: "first" },
      );
      assert.equal(view.version, 1);
      assert.equal(view.source, "operator");
      assert.equal(view.author, "alice");
      assert.equal(view.comment, "first");
      assert.equal(view.created_at, ctx.clock.now().toISOString());
      firstHash = view.hash;
      const row = await nodeRow(ctx, node.nodeId);
      assert.equal(row.desiredHash, view.hash);
      assert.equal(row.configState, "pending");
      assert.equal(row.desiredChangedAt?.toISOString(), ctx.clock.now().toISOString());
      const [audit] = await ctx.deps.db.select().from(auditLog).where(eq(auditLog.action, "config.create"));
      assert.equal(audit.targetId, node.nodeId);
      assert.equal(audit.actorName, "alice");
      assert.equal(audit.address, "10.0.0.1");
    });

    await t.step("200 with ETag and the body", async () => {
      const res = await pull(ctx, node.nodeId, node.token);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("etag"), `"${firstHash}"`);
      const body = await json(res);
      assert.deepEqual(Object.keys(body).sort(), ["body", "created_at", "hash", "version", "yaml"]);
      assert.equal(body.version, 1);
      assert.equal(body.hash, firstHash);
      // The text the operator wrote, byte for byte, and the hash is its sha256.
      assert.equal(body.yaml, configYaml());
      assert.equal(await configHash(body.yaml as string), firstHash);
    });

    await t.step("X-API-Key works like the original client sent it", async () => {
      const res = await ctx.call("GET", `/api/v1/nodes/${node.nodeId}/config`, {
        headers: { "x-api-key": node.token },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    });

    await t.step("304 with a matching If-None-Match (quoted, weak, bare, list, *) and wait=0", async () => {
      for (
        const header of [
          `"${firstHash}"`,
          `W/"${firstHash}"`,
          firstHash,
          `"0000", W/"${firstHash}"`,
          `"${firstHash.toUpperCase()}"`,
          "*",
        ]
      ) {
        const res = await pull(ctx, node.nodeId, node.token, "?wait=0", { "if-none-match": header });
        assert.equal(res.status, 304, header);
        assert.equal(res.headers.get("etag"), `"${firstHash}"`);
        assert.equal(await res.text(), "");
      }
    });

    await t.step("200 at once when If-None-Match names another hash, even with a wait", async () => {
      const res = await pull(ctx, node.nodeId, node.token, "?wait=30", {
        "if-none-match": `"${"a".repeat(64)}"`,
      });
      assert.equal(res.status, 200);
      assert.equal((await json(res)).hash, firstHash);
    });

    await t.step("304 at the end of a short wait when nothing changed", async () => {
      const res = await pull(ctx, node.nodeId, node.token, "?wait=1", { "if-none-match": `"${firstHash}"` });
      assert.equal(res.status, 304);
      assert.equal(res.headers.get("etag"), `"${firstHash}"`);
      assert.equal(ctx.services.configWatcher.waiting, 0);
    });

    await t.step("a waiting pull is answered when setNodeConfig runs in the same app", async () => {
      const wakeupsBefore = ctx.services.configWatcher.stats().wakeups;
      const waiting = pull(ctx, node.nodeId, node.token, "?wait=60", { "if-none-match": `"${firstHash}"` });
      await untilWaiting(ctx, 1);
      const view = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        config: configYaml({ cpuMax: 80 }),
      });
      const res = await waiting;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("etag"), `"${view.hash}"`);
      const body = await json(res);
      assert.equal(body.version, 2);
      assert.equal(ctx.services.configWatcher.stats().wakeups, wakeupsBefore + 1);
      assert.equal(ctx.services.configWatcher.waiting, 0);
    });

    await t.step("a pull waiting on a second replica sees a change written by the first", async () => {
      const replica = await ctx.replica();
      const [waiting] = await waitingPulls(replica, 1);
      const view = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        config: configYaml({ cpuMax: 85 }),
      });
      const res = await waiting;
      assert.equal(res.status, 200);
      assert.equal((await json(res)).hash, view.hash);
      const stats = replica.services.configWatcher.stats();
      assert.ok(stats.polls >= 1);
      assert.equal(stats.wakeups, 1);
      assert.equal(replica.services.configWatcher.waiting, 0);
    });

    await t.step(
      "many pulls waiting on one replica cost one poll query each interval, not one each",
      async () => {
        const replica = await ctx.replica();
        const pulls = await waitingPulls(replica, 50);
        const view = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
          config: configYaml({ cpuMax: 86 }),
        });
        for (const res of await Promise.all(pulls)) {
          assert.equal(res.status, 200);
          assert.equal((await json(res)).hash, view.hash);
        }
        const stats = replica.services.configWatcher.stats();
        // Every waiter was woken by the same poll(s): far fewer polls than waiters. A pull whose first read
        // of the node ran after the change (waiters register before that read, so a busy machine can
        // delay it) answers from that read instead of a wake-up: at most 50 wake-ups, not exactly 50.
        assert.ok(stats.wakeups >= 1 && stats.wakeups <= 50, JSON.stringify(stats));
        assert.ok(stats.polls < 50, JSON.stringify(stats));
      },
    );

    await t.step("shutdown answers waiting pulls at once with 304", async () => {
      const replica = await ctx.replica();
      const [waiting] = await waitingPulls(replica, 1);
      await replica.services.configWatcher.close();
      const res = await waiting;
      assert.equal(res.status, 304);
      assert.equal(replica.services.configWatcher.waiting, 0);
    });

    await t.step("a client that hangs up stops waiting", async () => {
      const current = (await getDesiredConfig(ctx.deps, node.nodeId))!;
      const hangUp = new AbortController();
      const waiting = ctx.app.request(
        new Request(`http://localhost/api/v1/nodes/${node.nodeId}/config?wait=60`, {
          headers: { authorization: `Bearer ${node.token}`, "if-none-match": `"${current.hash}"` },
          signal: hangUp.signal,
        }),
      );
      await untilWaiting(ctx, 1);
      hangUp.abort();
      const res = await waiting;
      assert.equal(res.status, 304);
      assert.equal(ctx.services.configWatcher.waiting, 0);
    });

    await t.step("waits per node are capped: a new one replaces the oldest, which gets its 304", async () => {
      const cap = ctx.deps.settings.MAX_CONFIG_WAITS_PER_NODE;
      const current = (await getDesiredConfig(ctx.deps, node.nodeId))!;
      const headers = { "if-none-match": `"${current.hash}"` };
      const replacedBefore = ctx.services.configWatcher.stats().replaced;
      const settled: number[] = [];
      const started = () =>
        ctx.services.configWatcher.waiting + ctx.services.configWatcher.stats().replaced - replacedBefore;
      const pulls = Array.from({ length: cap + 3 }, async (_, i) => {
        // One at a time, so "oldest" is well defined.
        while (started() < i) await new Promise((resolve) => setTimeout(resolve, 5));
        const res = await pull(ctx, node.nodeId, node.token, "?wait=60", headers);
        settled.push(i);
        return res;
      });
      // The first three were replaced (answered 304 at once); the newest `cap` still wait.
      await untilWaiting(ctx, cap);
      while (settled.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(settled.slice(0, 3).sort(), [0, 1, 2]);
      assert.equal(ctx.services.configWatcher.waiting, cap);
      assert.equal(ctx.services.configWatcher.stats().replaced, replacedBefore + 3);
      // Another node's waits are its own.
      const otherWait = pull(ctx, other.nodeId, other.token, "?wait=1");
      await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        config: configYaml({ cpuMax: 71 }),
      });
      const responses = await Promise.all(pulls);
      assert.deepEqual(responses.slice(0, 3).map((r) => r.status), [304, 304, 304]);
      assert.deepEqual(responses.slice(3).map((r) => r.status), Array(cap).fill(200));
      for (const res of responses) await res.body?.cancel();
      await (await otherWait).body?.cancel();
      assert.equal(ctx.services.configWatcher.waiting, 0);
      // Back to the config the later steps expect.
      await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        config: configYaml({ cpuMax: 86 }),
      });
    });

    await t.step("wait outside 0..60 or not a number: 422 naming wait", async () => {
      for (const query of ["?wait=61", "?wait=-1", "?wait=abc", "?wait=1.5"]) {
        const res = await pull(ctx, node.nodeId, node.token, query);
        const body = await expectError(res, 422, "validation_failed", "wait");
        assert.equal(body.error.details?.find((d) => d.field === "wait")?.location, "query");
      }
    });

    await t.step(
      "tokens: missing 401, invalid 401, another node's 403, unknown node 404, decommissioned 410",
      async () => {
        const path = `/api/v1/nodes/${node.nodeId}/config`;
        await expectError(await ctx.call("GET", path), 401, "unauthorized");
        await expectError(await ctx.call("GET", path, { token: "acn_notarealtoken" }), 401, "unauthorized");
        await expectError(await ctx.call("GET", path, { token: other.token }), 403, "forbidden");
        await expectError(
          await ctx.call("GET", `/api/v1/nodes/${crypto.randomUUID()}/config`, { token: node.token }),
          404,
          "not_found",
        );
        const ack = { hash: firstHash, status: "applied" };
        await expectError(await ctx.call("POST", `${path}/ack`, { json: ack }), 401, "unauthorized");
        await expectError(
          await ctx.call("POST", `${path}/ack`, { json: ack, token: other.token }),
          403,
          "forbidden",
        );
        // Bad token and bad body: the token is refused first.
        await expectError(await ctx.call("GET", `${path}?wait=99`, { token: other.token }), 403, "forbidden");
        const gone = await createNodeWithToken(ctx, "scaler-gone");
        await decommissionNode(ctx, gone.nodeId);
        await expectError(
          await ctx.call("GET", `/api/v1/nodes/${gone.nodeId}/config`, { token: gone.token }),
          410,
          "node_decommissioned",
        );
        assert.equal(await auditCount(ctx, "config.ack"), 0);
      },
    );

    await t.step("ack applied with the desired hash: in_sync", async () => {
      const desired = (await getDesiredConfig(ctx.deps, node.nodeId))!;
      const res = await ctx.call("POST", `/api/v1/nodes/${node.nodeId}/config/ack`, {
        token: node.token,
        json: { hash: desired.hash, status: "applied" },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), { config_state: "in_sync", desired_config_hash: desired.hash });
      const row = await nodeRow(ctx, node.nodeId);
      assert.equal(row.appliedHash, desired.hash);
      assert.equal(row.configState, "in_sync");
      assert.equal(row.configError, null);
      assert.equal(row.configAckedAt?.toISOString(), ctx.clock.now().toISOString());
      const [audit] = await ctx.deps.db.select().from(auditLog).where(eq(auditLog.action, "config.ack"));
      assert.equal(audit.actorType, "node");
      assert.equal(audit.actorName, "node:scaler-1");
    });

    await t.step("bad ack bodies are refused naming the field and change nothing", async () => {
      const before = await nodeRow(ctx, node.nodeId);
      const auditsBefore = await auditCount(ctx, "config.ack");
      ctx.clock.advance(1000);
      const path = `/api/v1/nodes/${node.nodeId}/config/ack`;
      const cases: [unknown, string][] = [
        [{ hash: before.desiredHash, status: "failed" }, "error"],
        [{ hash: before.desiredHash, status: "failed", error: "   " }, "error"],
        [{ hash: "abc", status: "applied" }, "hash"],
        [{ hash: "g".repeat(64), status: "applied" }, "hash"],
        [{ status: "applied" }, "hash"],
        [{ hash: before.desiredHash, status: "done" }, "status"],
        [{ hash: before.desiredHash, status: "failed", error: "x".repeat(4001) }, "error"],
      ];
      for (const [body, field] of cases) {
        const res = await ctx.call("POST", path, { token: node.token, json: body });
        await expectError(res, 422, "validation_failed", field);
      }
      await expectError(
        await ctx.call("POST", path, {
          token: node.token,
          body: "not json",
          headers: { "content-type": "application/json" },
        }),
        400,
        "bad_request",
      );
      await expectError(await ctx.call("POST", path, { token: node.token }), 422, "validation_failed");
      assert.deepEqual(await nodeRow(ctx, node.nodeId), before);
      assert.equal(await auditCount(ctx, "config.ack"), auditsBefore);
      ctx.clock.advance(-1000);
    });

    await t.step("a failed ack for a config no longer desired (a late retry) changes nothing", async () => {
      const ack = (body: unknown) =>
        ctx.call("POST", `/api/v1/nodes/${node.nodeId}/config/ack`, { token: node.token, json: body });
      const desired = (await nodeRow(ctx, node.nodeId)).desiredHash;
      assert.equal((await ack({ hash: desired, status: "applied" })).status, 200);
      const before = await nodeRow(ctx, node.nodeId);
      assert.equal(before.configState, "in_sync");
      const res = await ack({
        hash: "c".repeat(64),
        status: "failed",
        error: "late retry of an old version",
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), { config_state: "in_sync", desired_config_hash: desired });
      assert.deepEqual(await nodeRow(ctx, node.nodeId), before);
      const entry = (await auditEntries(ctx, "config.ack")).at(-1)!;
      assert.equal((entry.details as { stale?: boolean }).stale, true);
    });

    await t.step("ack failed: failed with the error, applied hash kept", async () => {
      const before = await nodeRow(ctx, node.nodeId);
      const res = await ctx.call("POST", `/api/v1/nodes/${node.nodeId}/config/ack`, {
        token: node.token,
        json: { hash: before.desiredHash, status: "failed", error: "cpu_threshold unsupported" },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), { config_state: "failed", desired_config_hash: before.desiredHash });
      const row = await nodeRow(ctx, node.nodeId);
      assert.equal(row.configState, "failed");
      assert.equal(row.configError, "cpu_threshold unsupported");
      assert.equal(row.appliedHash, before.appliedHash);
      const status = await configStatus(ctx.deps, node.nodeId);
      assert.equal(status.state, "failed");
      assert.equal(status.error, "cpu_threshold unsupported");
    });

    await t.step("ack applied with another hash (uppercase accepted): drifted", async () => {
      const foreign = "AB".repeat(32);
      const res = await ctx.call("POST", `/api/v1/nodes/${node.nodeId}/config/ack`, {
        token: node.token,
        json: { hash: foreign, status: "applied", error: null },
      });
      assert.equal(res.status, 200);
      const body = await json(res);
      assert.equal(body.config_state, "drifted");
      const row = await nodeRow(ctx, node.nodeId);
      assert.equal(row.appliedHash, foreign.toLowerCase());
      assert.equal(row.configState, "drifted");
      assert.equal(row.configError, null);
      await expectAppError(
        ackConfig(ctx.deps, { principal: OPERATOR }, node.nodeId, { hash: "zz", status: "applied" }),
        422,
        "validation_failed",
        "hash",
      );
    });

    await t.step("invalid config is refused naming config.<field>, nothing written", async () => {
      const versionsBefore = await versionCount(ctx, node.nodeId);
      const rowBefore = await nodeRow(ctx, node.nodeId);
      const createsBefore = await auditCount(ctx, "config.create");
      const error = await expectAppError(
        setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
          config: configYaml().replace("{min: 30, max: 75}", "{min: 90, max: 75}"),
        }),
        422,
        "validation_failed",
        "config.pools.0.cpu_threshold.min",
      );
      assert.match(error.message, /config\.pools\.0\.cpu_threshold\.min/);
      await expectAppError(
        setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, { config: "pools: [" }),
        422,
        "validation_failed",
        "config",
      );
      await expectAppError(
        setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
          config: configObject(),
          comment: "c".repeat(1001),
        }),
        422,
        "validation_failed",
        "comment",
      );
      assert.equal(await versionCount(ctx, node.nodeId), versionsBefore);
      assert.deepEqual(await nodeRow(ctx, node.nodeId), rowBefore);
      assert.equal(await auditCount(ctx, "config.create"), createsBefore);
    });

    await t.step("unknown node 404, decommissioned node 409, for set and rollback", async () => {
      await expectAppError(
        setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, crypto.randomUUID(), {
          config: configObject(),
        }),
        404,
        "not_found",
      );
      const retired = await createNodeWithToken(ctx, "scaler-retired");
      await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, retired.nodeId, {
        config: configObject(),
      });
      await decommissionNode(ctx, retired.nodeId);
      await expectAppError(
        setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, retired.nodeId, {
          config: configObject(60),
        }),
        409,
        "node_decommissioned",
      );
      await expectAppError(
        rollbackConfig(ctx.deps, ctx.services, { principal: OPERATOR }, retired.nodeId, { to_version: 1 }),
        409,
        "node_decommissioned",
      );
      assert.equal(await versionCount(ctx, retired.nodeId), 1);
    });

    await t.step("same body again (other key order, JSON or YAML) creates no version", async () => {
      const desired = (await getDesiredConfig(ctx.deps, node.nodeId))!;
      const versionsBefore = await versionCount(ctx, node.nodeId);
      const reordered = Object.fromEntries(Object.entries(desired.body).reverse());
      const again = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        config: reordered,
      });
      assert.equal(again.version, desired.version);
      assert.equal(again.hash, desired.hash);
      const viaYaml = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        config: configYaml({ cpuMax: 86 }),
      });
      assert.equal(viaYaml.version, desired.version);
      assert.equal(await versionCount(ctx, node.nodeId), versionsBefore);
    });

    await t.step(
      "a new version equal to the applied hash is in_sync at once; another is pending",
      async () => {
        const fresh = await createNodeWithToken(ctx, "scaler-sync");
        const first = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, fresh.nodeId, {
          config: configObject(70),
        });
        await ackConfig(
          ctx.deps,
          { principal: { kind: "node", nodeId: fresh.nodeId, nodeName: fresh.name } },
          fresh.nodeId,
          {
            hash: first.hash,
            status: "applied",
          },
        );
        await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, fresh.nodeId, {
          config: configObject(71),
        });
        assert.equal((await nodeRow(ctx, fresh.nodeId)).configState, "pending");
        const back = await rollbackConfig(ctx.deps, ctx.services, { principal: OPERATOR }, fresh.nodeId, {
          to_version: 1,
        });
        assert.equal(back.version, 3);
        assert.equal((await nodeRow(ctx, fresh.nodeId)).configState, "in_sync");
      },
    );

    await t.step("rollback creates a new version with the old body", async () => {
      const versionsBefore = await versionCount(ctx, node.nodeId);
      const v1 = await getConfigVersion(ctx.deps, node.nodeId, 1);
      const rollbacksBefore = await auditCount(ctx, "config.rollback");
      const view = await rollbackConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        to_version: 1,
        comment: "back to the start",
      });
      assert.equal(view.version, versionsBefore + 1);
      assert.equal(view.source, "rollback");
      assert.equal(view.rolled_back_from, 1);
      assert.equal(view.hash, v1.hash);
      assert.deepEqual(view.body, v1.body);
      assert.equal(view.comment, "back to the start");
      assert.equal((await nodeRow(ctx, node.nodeId)).desiredHash, v1.hash);
      assert.equal(await auditCount(ctx, "config.rollback"), rollbacksBefore + 1);
      const pulled = await pull(ctx, node.nodeId, node.token);
      assert.equal((await json(pulled)).version, view.version);
      await expectAppError(
        rollbackConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, { to_version: 999 }),
        404,
        "not_found",
      );
      assert.equal(await versionCount(ctx, node.nodeId), versionsBefore + 1);
    });

    await t.step("diff of two versions is a unified diff of their YAML", async () => {
      const result = await diffConfigVersions(ctx.deps, node.nodeId, 1, 2);
      assert.equal(result.from.version, 1);
      assert.equal(result.to.version, 2);
      assert.match(result.diff, /^--- v1\t/m);
      assert.match(result.diff, /^\+\+\+ v2\t/m);
      assert.match(result.diff, /^-\s+cpu_threshold: \{min: 30, max: 75\}$/m);
      assert.match(result.diff, /^\+\s+cpu_threshold: \{min: 30, max: 80\}$/m);
      const same = await diffConfigVersions(ctx.deps, node.nodeId, 1, 1);
      assert.doesNotMatch(same.diff, /^@@/m);
      await expectAppError(diffConfigVersions(ctx.deps, node.nodeId, 1, 999), 404, "not_found");
    });

    await t.step("list pages newest first; get and status", async () => {
      const total = await versionCount(ctx, node.nodeId);
      const first = await listConfigVersions(ctx.deps, node.nodeId, { limit: 2 });
      assert.deepEqual(first.versions.map((v) => v.version), [total, total - 1]);
      assert.equal(first.next_before_version, total - 1);
      const rest = await listConfigVersions(ctx.deps, node.nodeId, { limit: 100, before_version: total - 1 });
      assert.equal(rest.versions.length, total - 2);
      assert.equal(rest.next_before_version, null);
      await expectAppError(getConfigVersion(ctx.deps, node.nodeId, 999), 404, "not_found");
      await expectAppError(listConfigVersions(ctx.deps, crypto.randomUUID(), { limit: 5 }), 404, "not_found");
      const status = await configStatus(ctx.deps, node.nodeId);
      assert.equal(status.desired?.version, total);
      assert.equal(status.state, "pending");
      assert.equal(await getDesiredConfig(ctx.deps, empty.nodeId), null);
      assert.equal((await configStatus(ctx.deps, empty.nodeId)).desired, null);
    });

    await t.step("unknown keys survive through YAML and JSON to the agent", async () => {
      const keeper = await createNodeWithToken(ctx, "scaler-keys");
      await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, keeper.nodeId, {
        config: configYaml({ extra: "log_level: debug\nfeature_flags: {fast_scale: true}\n" }),
      });
      let body = (await json(await pull(ctx, keeper.nodeId, keeper.token))).body as Record<string, unknown>;
      assert.equal(body.log_level, "debug");
      assert.deepEqual(body.feature_flags, { fast_scale: true });
      const withExtras = configObject(77);
      (withExtras.pools as Record<string, unknown>[])[0].warmup_s = 45;
      withExtras.notes = ["a", "b"];
      await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, keeper.nodeId, {
        config: withExtras,
      });
      body = (await json(await pull(ctx, keeper.nodeId, keeper.token))).body as Record<string, unknown>;
      assert.deepEqual(body, withExtras);
    });

    await t.step(
      "createConfigVersion inside a caller's transaction (as register does) and its version order",
      async () => {
        const agentNode = await createNodeWithToken(ctx, "scaler-agent");
        const agent: Principal = { kind: "node", nodeId: agentNode.nodeId, nodeName: agentNode.name };
        const view = await ctx.deps.db.transaction((tx) =>
          createConfigVersion(ctx.deps, tx, { principal: agent }, agentNode.nodeId, {
            body: configObject(),
            text: toYaml(configObject()),
            source: "agent",
          })
        );
        assert.equal(view.version, 1);
        assert.equal(view.source, "agent");
        assert.equal(view.author, "node:scaler-agent");
        // Concurrent writers get consecutive numbers (the node row is locked).
        const views = await Promise.all(
          [61, 62, 63, 64].map((cpuMax) =>
            setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, agentNode.nodeId, {
              config: configObject(cpuMax),
            })
          ),
        );
        assert.deepEqual(views.map((v) => v.version).sort(), [2, 3, 4, 5]);
        const [latest] = await ctx.deps.db.select().from(configVersions)
          .where(eq(configVersions.nodeId, agentNode.nodeId)).orderBy(desc(configVersions.version)).limit(1);
        assert.equal((await nodeRow(ctx, agentNode.nodeId)).desiredHash, latest.hash);
      },
    );

    await t.step("configOverview names the version the agent runs, from the hash it acked", async () => {
      const watched = await createNodeWithToken(ctx, "scaler-overview");
      const agent: Principal = { kind: "node", nodeId: watched.nodeId, nodeName: watched.name };
      const empty = await configOverview(ctx.deps, watched.nodeId);
      assert.equal(empty.desired, null);
      assert.equal(empty.appliedVersion, null);
      assert.deepEqual(empty.node, { id: watched.nodeId, name: "scaler-overview", decommissioned: false });
      const v1 = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, watched.nodeId, {
        config: configYaml({ cpuMax: 70 }),
      });
      await ackConfig(ctx.deps, { principal: agent }, watched.nodeId, {
        hash: v1.hash,
        status: "applied",
      });
      const v2 = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, watched.nodeId, {
        config: configYaml({ cpuMax: 71 }),
      });
      await ackConfig(ctx.deps, { principal: agent }, watched.nodeId, {
        hash: v2.hash,
        status: "failed",
        error: "pool not found",
      });
      const failed = await configOverview(ctx.deps, watched.nodeId);
      assert.equal(failed.desired?.version, 2);
      assert.equal(failed.appliedVersion, 1); // still runs version 1
      assert.equal(failed.status.state, "failed");
      assert.equal(failed.status.error, "pool not found");
      await ackConfig(ctx.deps, { principal: agent }, watched.nodeId, {
        hash: "f".repeat(64),
        status: "applied",
      });
      const drifted = await configOverview(ctx.deps, watched.nodeId);
      assert.equal(drifted.status.state, "drifted");
      assert.equal(drifted.appliedVersion, null); // a hash this server never sent
    });

    await t.step(
      "requireComment: a save without a comment is refused with the config's problems",
      async () => {
        const before = await versionCount(ctx, node.nodeId);
        const error = await expectAppError(
          setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
            config: configYaml({ cpuMax: 150 }),
            comment: "  ",
            require_comment: true,
          }),
          422,
          "validation_failed",
          "comment",
        );
        assert.ok(error.details?.some((d) => d.field === "config.pools.0.cpu_threshold.max" && d.line === 6));
        assert.equal(await versionCount(ctx, node.nodeId), before);
      },
    );

    await t.step("diffRows: numbered kept, removed and added lines, gaps for what is left out", () => {
      const old = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n") + "\n";
      const changed = old.replace("line 2\n", "line 2 changed\n").replace("line 15\n", "").replace(
        "line 20\n",
        "line 20\nline 21\n",
      );
      const rows = diffRows(old, changed, 1);
      const compact = rows.map((r) =>
        r.kind === "gap" ? `...${r.hidden}` : `${r.oldLine ?? ""}|${r.newLine ?? ""}|${r.kind[0]}|${r.text}`
      );
      assert.deepEqual(compact, [
        "1|1|c|line 1",
        "2||r|line 2",
        "|2|a|line 2 changed",
        "3|3|c|line 3",
        "...10",
        "14|14|c|line 14",
        "15||r|line 15",
        "16|15|c|line 16",
        "...3",
        "20|19|c|line 20",
        "|20|a|line 21",
      ]);
      assert.deepEqual(diffRows(old, old), []);
      // Unchanged lines at both ends are counted too.
      const middle = diffRows(old, old.replace("line 10\n", "line ten\n"), 1);
      assert.deepEqual(middle.filter((r) => r.kind === "gap").map((r) => r.hidden), [8, 9]);
      const noNewline = diffRows("a: 1", "a: 2");
      assert.deepEqual(noNewline.map((r) => r.kind), ["removed", "added"]);
    });

    await t.step("the routes are in /openapi.json with the node token security", async () => {
      type Schema = { properties: Record<string, { description?: string }>; required?: string[] };
      const doc = await json<{
        paths: Record<string, Record<string, { security?: unknown }>>;
        components: { schemas: Record<string, Schema> };
      }>(await ctx.call("GET", "/openapi.json"));
      assert.deepEqual(doc.paths["/api/v1/nodes/{id}/config"].get.security, [{ nodeToken: [] }]);
      assert.deepEqual(doc.paths["/api/v1/nodes/{id}/config/ack"].post.security, [{ nodeToken: [] }]);
      // The text beside the body, and the line of a refused field, are documented.
      const agentConfig = doc.components.schemas.AgentConfig;
      assert.match(agentConfig.properties.yaml.description ?? "", /exactly as the operator/);
      assert.match(agentConfig.properties.hash.description ?? "", /config\.yaml text/);
      assert.ok(doc.components.schemas.ConfigVersion.properties.yaml);
      const errorSchema = JSON.stringify(doc.components.schemas.Error);
      assert.match(errorSchema, /"line"/);
    });
  } finally {
    await ctx.close();
  }
});
