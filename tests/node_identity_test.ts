// Issue 13.1: a node's identity needs proof. Re-registering a known name with only the enrollment token
// (which every agent holds) must not rotate the owner's token; the node's own token or an operator's
// single-use re-enrollment token bound to that node must.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import type { Principal } from "../core/principal.ts";
import { keyedHash } from "../core/secrets.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import { databaseEnv, runCli } from "./helpers/cli.ts";
import { decommissionNode } from "./helpers/nodes.ts";
import type { ErrorBody } from "./helpers/assertions.ts";

const ADMIN: Principal = { kind: "system", name: "test" };

interface Registered {
  node_id: string;
  node_token: string;
}

async function tableCounts(ctx: TestApp) {
  const [rows] = await ctx.database.pool.query(
    `SELECT (SELECT COUNT(*) FROM nodes) AS nodes, (SELECT COUNT(*) FROM audit_log) AS audit,
            (SELECT COALESCE(SUM(uses), 0) FROM enrollment_tokens) AS uses`,
  );
  const row = (rows as Record<string, unknown>[])[0];
  return { nodes: Number(row.nodes), audit: Number(row.audit), uses: Number(row.uses) };
}

async function tokenHashOf(ctx: TestApp, nodeId: string): Promise<string | null> {
  const [rows] = await ctx.database.pool.query("SELECT token_hash FROM nodes WHERE id = ?", [nodeId]);
  return (rows as { token_hash: string | null }[])[0]?.token_hash ?? null;
}

Deno.test("node identity: a known name needs proof", async (t) => {
  const ctx = await createTestApp("node_identity");
  const { token: enrollment } = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
    name: "fleet",
  });
  const register = (body: Record<string, unknown>, headers?: Record<string, string>) =>
    ctx.call("POST", "/api/v1/register", { json: body, headers });
  const heartbeat = (nodeId: string, token: string) =>
    ctx.call("POST", `/api/v1/nodes/${nodeId}/heartbeat`, { token, json: {} });
  const operator = await createApiKeyWithRole(ctx, "operator");
  const viewer = await createApiKeyWithRole(ctx, "viewer");

  try {
    const first = await register({ enrollment_token: enrollment, name: "owner-1", hostname: "h1" });
    assert.equal(first.status, 201);
    const owner = await json<Registered>(first);

    await t.step("the enrollment token alone: 409 node_name_taken, owner's token untouched", async () => {
      const before = await tableCounts(ctx);
      const hashBefore = await tokenHashOf(ctx, owner.node_id);
      const res = await register({ enrollment_token: enrollment, name: "owner-1", hostname: "intruder" });
      assert.equal(res.status, 409);
      const body = await json<ErrorBody>(res);
      assert.equal(body.error.code, "node_name_taken");
      assert.match(body.error.message, /token create --node owner-1/);
      assert.match(body.error.message, /reenrollment-token/);
      assert.ok(!JSON.stringify(body).includes("node_token"));
      assert.equal(await tokenHashOf(ctx, owner.node_id), hashBefore);
      assert.deepEqual(await tableCounts(ctx), before, "nothing written, no enrollment use taken");
      assert.equal((await heartbeat(owner.node_id, owner.node_token)).status, 200);
      const [rows] = await ctx.database.pool.query("SELECT hostname FROM nodes WHERE id = ?", [
        owner.node_id,
      ]);
      assert.equal((rows as { hostname: string }[])[0].hostname, "h1");
    });

    await t.step("another node's token is no proof for this name: 409", async () => {
      const other = await json<Registered>(
        await register({ enrollment_token: enrollment, name: "other-1", hostname: "h" }),
      );
      const res = await register(
        { enrollment_token: enrollment, name: "owner-1", hostname: "h" },
        { authorization: `Bearer ${other.node_token}` },
      );
      assert.equal(res.status, 409);
      assert.equal((await heartbeat(owner.node_id, owner.node_token)).status, 200);
    });

    let ownerToken = owner.node_token;
    await t.step("the node's current token: 200, rotated, no enrollment token needed", async () => {
      const before = await tableCounts(ctx);
      const res = await register({ name: "owner-1", hostname: "h1b" }, {
        authorization: `Bearer ${ownerToken}`,
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const body = await json<Registered>(res);
      assert.equal(body.node_id, owner.node_id);
      assert.notEqual(body.node_token, ownerToken);
      assert.equal((await heartbeat(owner.node_id, ownerToken)).status, 401);
      assert.equal((await heartbeat(owner.node_id, body.node_token)).status, 200);
      assert.equal((await tableCounts(ctx)).uses, before.uses, "a rotation takes no enrollment use");
      const [audit] = await ctx.database.pool.query(
        "SELECT details FROM audit_log WHERE action = 'node.reregister' AND target_id = ? ORDER BY id DESC",
        [owner.node_id],
      );
      assert.equal(JSON.parse((audit as { details: string }[])[0].details).proof, "node_token");
      ownerToken = body.node_token;
    });

    await t.step("no enrollment token and no node token: 401 before the body is validated", async () => {
      const res = await register({ name: "x", hostname: "h", pools: "not a list", surprise: 1 });
      assert.equal(res.status, 401);
      assert.equal((await json<ErrorBody>(res)).error.code, "enrollment_token_invalid");
    });

    let reenrollment = "";
    await t.step("re-enrollment token: operator only, shown once with no-store, audited", async () => {
      const anonymous = await ctx.call("POST", `/api/v1/nodes/${owner.node_id}/reenrollment-token`, {
        json: {},
      });
      assert.equal(anonymous.status, 401);
      const asViewer = await ctx.call("POST", `/api/v1/nodes/${owner.node_id}/reenrollment-token`, {
        json: {},
        token: viewer.token,
      });
      assert.equal(asViewer.status, 403);
      const unknown = await ctx.call("POST", "/api/v1/nodes/no-such-node/reenrollment-token", {
        json: {},
        token: operator.token,
      });
      assert.equal(unknown.status, 404);
      const tooLong = await ctx.call("POST", `/api/v1/nodes/${owner.node_id}/reenrollment-token`, {
        json: { expires_in_s: 10 },
        token: operator.token,
      });
      assert.equal(tooLong.status, 422);
      assert.ok((await json<ErrorBody>(tooLong)).error.details?.some((d) => d.field === "expires_in_s"));

      // by name, with no body at all
      const res = await ctx.call("POST", "/api/v1/nodes/owner-1/reenrollment-token", {
        token: operator.token,
      });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const body = await json<
        { token: string; node_id: string; node_name: string; expires_at: string; enrollment_token_id: number }
      >(res);
      assert.match(body.token, /^ace_[A-Za-z0-9_-]{43}$/);
      assert.equal(body.node_id, owner.node_id);
      assert.equal(body.node_name, "owner-1");
      assert.equal(body.expires_at, new Date(ctx.clock.now().getTime() + 86_400_000).toISOString());
      const [rows] = await ctx.database.pool.query(
        "SELECT token_hash, node_id, max_uses FROM enrollment_tokens WHERE id = ?",
        [body.enrollment_token_id],
      );
      const row = (rows as Record<string, unknown>[])[0];
      assert.equal(row.token_hash, await keyedHash(ctx.deps.settings.SECRET_KEY, body.token));
      assert.equal(row.node_id, owner.node_id);
      assert.equal(row.max_uses, 1);
      const [audit] = await ctx.database.pool.query(
        "SELECT actor_name, details FROM audit_log WHERE action = 'node.reenrollment_token.create' AND target_id = ?",
        [owner.node_id],
      );
      const entries = audit as { actor_name: string; details: string }[];
      assert.equal(entries.length, 1);
      assert.match(entries[0].actor_name, /^key:/);
      assert.ok(!entries[0].details.includes(body.token), "the token is never logged");
      reenrollment = body.token;
    });

    await t.step("a re-enrollment token registers only its node: another name gets 403, no use", async () => {
      const before = await tableCounts(ctx);
      for (const name of ["owner-x-new", "other-1"]) {
        const res = await register({ enrollment_token: reenrollment, name, hostname: "h" });
        assert.equal(res.status, 403, name);
        assert.equal((await json<ErrorBody>(res)).error.code, "enrollment_token_wrong_node");
      }
      assert.deepEqual(await tableCounts(ctx), before);
    });

    await t.step("the agent registers with it: 200, same node, new token; once only", async () => {
      const res = await register({ enrollment_token: reenrollment, name: "owner-1", hostname: "h1c" });
      assert.equal(res.status, 200);
      const body = await json<Registered>(res);
      assert.equal(body.node_id, owner.node_id);
      assert.equal((await heartbeat(owner.node_id, ownerToken)).status, 401);
      assert.equal((await heartbeat(owner.node_id, body.node_token)).status, 200);
      const again = await register({ enrollment_token: reenrollment, name: "owner-1", hostname: "h" });
      assert.equal(again.status, 401);
      assert.equal((await json<ErrorBody>(again)).error.code, "enrollment_token_exhausted");
      const [audit] = await ctx.database.pool.query(
        "SELECT details FROM audit_log WHERE action = 'node.reregister' AND target_id = ? ORDER BY id DESC",
        [owner.node_id],
      );
      assert.equal(JSON.parse((audit as { details: string }[])[0].details).proof, "reenrollment_token");
    });

    await t.step("a re-enrollment token expires (default: a day)", async () => {
      const res = await ctx.call("POST", `/api/v1/nodes/${owner.node_id}/reenrollment-token`, {
        json: { expires_in_s: 60 },
        token: operator.token,
      });
      const { token } = await json<{ token: string }>(res);
      ctx.clock.advance(61_000);
      const late = await register({ enrollment_token: token, name: "owner-1", hostname: "h" });
      assert.equal(late.status, 401);
      assert.equal((await json<ErrorBody>(late)).error.code, "enrollment_token_expired");
    });

    await t.step("a decommissioned node gets no re-enrollment token: 409", async () => {
      const gone = await json<Registered>(
        await register({ enrollment_token: enrollment, name: "gone-1", hostname: "h" }),
      );
      await decommissionNode(ctx, gone.node_id);
      const res = await ctx.call("POST", `/api/v1/nodes/${gone.node_id}/reenrollment-token`, {
        json: {},
        token: operator.token,
      });
      assert.equal(res.status, 409);
      assert.equal((await json<ErrorBody>(res)).error.code, "node_decommissioned");
    });

    await t.step("cli: token create --node NAME prints a bound single-use token once", async () => {
      const env = databaseEnv(ctx.database.name);
      const run = await runCli(["token", "create", "--node", "owner-1", "--expires", "2h"], { env });
      assert.equal(run.code, 0, run.stderr);
      const token = run.stdout.split("\n")[0];
      assert.match(token, /^ace_/);
      assert.match(run.stdout, /node: owner-1/);
      const res = await register({ enrollment_token: token, name: "owner-1", hostname: "h" });
      assert.equal(res.status, 200);
      const list = await runCli(["token", "list"], { env });
      assert.match(list.stdout, new RegExp(owner.node_id));
      const unknown = await runCli(["token", "create", "--node", "nobody"], { env });
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /node nobody not found/);
      const misuse = await runCli(["token", "create", "--node", "owner-1", "--max-uses", "5"], { env });
      assert.equal(misuse.code, 2);
    });
  } finally {
    await ctx.close();
  }
});
