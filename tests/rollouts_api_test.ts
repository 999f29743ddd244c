// /api/v1/rollouts: preview, create, list, read, pause, resume, abort; roles; bad input refused with the
// field named and nothing written; audit.
import assert from "node:assert/strict";
import { createTestApp, json } from "./helpers/app.ts";
import { countRows, type ErrorBody, expectError } from "./helpers/assertions.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import { auditEntries, insertSamples } from "./helpers/fixtures.ts";
import { ack, createFleet } from "./helpers/rollouts.ts";

type Plan = {
  matched: number;
  included: number;
  waves: string[][];
  nodes: { name: string; included: boolean; excluded_reason: string | null; diff: string | null }[];
};
type Rollout = {
  id: number;
  status: string;
  pause_reason: string | null;
  waves: number;
  nodes: { name: string; state: string; wave: number }[];
  wave_list: { status: string }[];
};

Deno.test("rollouts API", async (t) => {
  const ctx = await createTestApp("rollouts_api");
  try {
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
    const operator = (await createApiKeyWithRole(ctx, "operator")).token;
    const fleet = await createFleet(ctx, 4, { prefix: "api", labels: { env: "staging" } });
    await createFleet(ctx, 2, { prefix: "prod", labels: { env: "prod" } });
    const change = {
      selector: { labels: ["env:staging"] },
      pool_selector: { region: "eu-frankfurt-1" },
      patch: { cpu_threshold: { max: 70 } },
    };
    const settings = { canary: "50%", wave_size: 1, bake_s: 60, max_scaling_events: 3 };
    const rollouts = () => countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts");
    const versions = () => countRows(ctx, "SELECT COUNT(*) AS n FROM config_versions");

    await t.step("preview: per node diff, waves; viewers may not", async () => {
      const res = await ctx.call("POST", "/api/v1/rollouts/preview", {
        token: operator,
        json: { ...change, ...settings },
      });
      const plan = await json<Plan>(res);
      assert.equal(res.status, 200, JSON.stringify(plan));
      assert.equal(plan.matched, 4);
      assert.equal(plan.included, 4);
      assert.deepEqual(plan.waves, [["api-01", "api-02"], ["api-03"], ["api-04"]]);
      assert.match(plan.nodes[0].diff!, /\+\s+max: 70/);
      assert.equal("targetText" in plan.nodes[0], false);
      const refused = await ctx.call("POST", "/api/v1/rollouts/preview", { token: viewer, json: change });
      await expectError(refused, 403, "forbidden");
    });

    await t.step("replay: the change on its first nodes over their recorded metrics", async () => {
      const start = ctx.clock.now().getTime() - 6 * 3600_000;
      await insertSamples(
        ctx,
        fleet[0].id,
        fleet[0].poolRowId,
        Array.from({ length: 72 }, (_, i) => ({
          ts: new Date(start + i * 300_000),
          cpu: i % 12 < 6 ? 85 : 20,
          memory: 40,
          instances: 3,
        })),
      );
      const res = await ctx.call("POST", "/api/v1/rollouts/replay", {
        token: operator,
        json: { ...change, window: "24h", nodes: 2 },
      });
      const replay = await json<{
        included: number;
        replayed: number;
        verdict: string;
        nodes: { name: string; reason: string | null; proposed: { scale_ups: number } }[];
      }>(res);
      assert.equal(res.status, 200, JSON.stringify(replay));
      assert.equal(replay.included, 4);
      assert.equal(replay.replayed, 2);
      assert.equal(replay.nodes[0].name, "api-01");
      assert.equal(replay.nodes[0].reason, null);
      assert.ok(replay.nodes[0].proposed.scale_ups > 0, JSON.stringify(replay.nodes[0]));
      assert.match(replay.nodes[1].reason!, /has metrics in the last 24 h/);
      assert.match(
        replay.verdict,
        /than today over the last 24 h, on 1 of the 4 nodes \(1 without metrics\): \d+ scaling actions/,
      );
      await expectError(
        await ctx.call("POST", "/api/v1/rollouts/replay", {
          token: operator,
          json: { ...change, window: "1y" },
        }),
        422,
        "validation_failed",
        "window",
      );
      await expectError(
        await ctx.call("POST", "/api/v1/rollouts/replay", {
          token: operator,
          json: { ...change, nodes: 50 },
        }),
        422,
        "validation_failed",
        "nodes",
      );
      await expectError(
        await ctx.call("POST", "/api/v1/rollouts/replay", { token: viewer, json: change }),
        403,
        "forbidden",
      );
    });

    await t.step("a misspelt field is refused by name, not dropped (it would widen the change)", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts");
      const res = await ctx.call("POST", "/api/v1/rollouts", {
        token: operator,
        json: {
          selector: { labels: ["env:staging"], name: ["api-01"] },
          pool_selector: { pool_id: "ocid1.instancepool.oc1.iad.nothing" },
          patch: { cpu_threshold: { max: 70 } },
          wavesize: 1,
        },
      });
      assert.equal(res.status, 422);
      const fields = ((await res.json()) as ErrorBody).error.details?.map((d) => d.field) ?? [];
      for (const field of ["selector.name", "pool_selector.pool_id", "wavesize"]) {
        assert.ok(fields.includes(field), `${field} in ${fields.join(", ")}`);
      }
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts"), before);
    });

    await t.step("a listed node name that matches nothing is refused by name, not dropped", async () => {
      const res = await ctx.call("POST", "/api/v1/rollouts/preview", {
        token: operator,
        json: { selector: { names: ["api-01", "nosuch-1"] }, patch: { cpu_threshold: { max: 70 } } },
      });
      const body = await expectError(res, 422, "validation_failed", "selector.names");
      assert.match(JSON.stringify(body), /nosuch-1: no such node matches the selector/);
      const ok = await ctx.call("POST", "/api/v1/rollouts/preview", {
        token: operator,
        json: { selector: { names: ["api-01"] }, patch: { cpu_threshold: { max: 70 } } },
      });
      assert.equal(ok.status, 200);
    });

    await t.step("bad input: 4xx naming the field, nothing written", async () => {
      const before = [await rollouts(), await versions()];
      const cases: [unknown, number, string, string][] = [
        [
          { ...change, ...settings, selector: { labels: ["env:nowhere"] } },
          422,
          "validation_failed",
          "selector",
        ],
        [{ ...change, ...settings, selector: {} }, 422, "validation_failed", "selector"],
        [
          { ...change, ...settings, patch: { cpu_threshold: { max: 10 } } },
          422,
          "validation_failed",
          "patch",
        ],
        [{ ...change, ...settings, bake_s: 1 }, 422, "validation_failed", "bake_s"],
        [{ ...change, ...settings, wave_size: 501 }, 422, "validation_failed", "wave_size"],
        [{ ...change, ...settings, canary: "150%" }, 422, "validation_failed", "canary"],
        [{ ...change, ...settings, patch: undefined }, 422, "validation_failed", "patch"],
        [{ ...change, ...settings, wave_size: "many" }, 422, "validation_failed", "wave_size"],
      ];
      for (const [body, status, code, field] of cases) {
        await expectError(
          await ctx.call("POST", "/api/v1/rollouts", { token: operator, json: body }),
          status,
          code,
          field,
        );
      }
      assert.deepEqual([await rollouts(), await versions()], before);
    });

    let id = 0;
    await t.step("create (operator), read and list (viewer), audited", async () => {
      const refused = await ctx.call("POST", "/api/v1/rollouts", {
        token: viewer,
        json: { ...change, ...settings },
      });
      await expectError(refused, 403, "forbidden");
      const res = await ctx.call("POST", "/api/v1/rollouts", {
        token: operator,
        json: { ...change, ...settings, comment: "cpu max 70 on staging" },
      });
      const rollout = await json<Rollout>(res);
      assert.equal(res.status, 201, JSON.stringify(rollout));
      id = rollout.id;
      assert.equal(rollout.waves, 3);
      assert.deepEqual(rollout.nodes.map((n) => n.state), ["pending", "pending", "waiting", "waiting"]);
      const read = await json<Rollout>(await ctx.call("GET", `/api/v1/rollouts/${id}`, { token: viewer }));
      assert.equal(read.status, "running");
      const list = await json<{ items: Rollout[] }>(
        await ctx.call("GET", "/api/v1/rollouts", { token: viewer }),
      );
      assert.equal(list.items[0].id, id);
      const audit = await auditEntries(ctx, "rollout.create");
      assert.equal(audit.at(-1)!.target_id, String(id));
      assert.match(audit.at(-1)!.actor_name, /^key:/);
      await expectError(await ctx.call("GET", "/api/v1/rollouts/99999", { token: viewer }), 404, "not_found");
    });

    await t.step("a second rollout on the same nodes: 409 naming the selector", async () => {
      const before = await rollouts();
      const res = await ctx.call("POST", "/api/v1/rollouts", {
        token: operator,
        json: { ...change, ...settings },
      });
      await expectError(res, 409, "node_in_rollout", "selector");
      assert.equal(await rollouts(), before);
    });

    await t.step("a rejected config pauses it; pause/resume/abort by role and status", async () => {
      await ack(ctx, fleet[0]);
      await ack(ctx, fleet[1], undefined, "cpu max 70 is below the local floor");
      assert.equal(await ctx.services.jobs.tick("rollouts"), "ran");
      const paused = await json<Rollout>(await ctx.call("GET", `/api/v1/rollouts/${id}`, { token: viewer }));
      assert.equal(paused.status, "paused");
      assert.match(
        paused.pause_reason!,
        /api-02 rejected the new config: cpu max 70 is below the local floor/,
      );

      await expectError(
        await ctx.call("POST", `/api/v1/rollouts/${id}/resume`, { token: viewer }),
        403,
        "forbidden",
      );
      await expectError(
        await ctx.call("POST", `/api/v1/rollouts/${id}/pause`, { token: operator }),
        409,
        "rollout_not_running",
        "status",
      );
      const resumed = await json<Rollout>(
        await ctx.call("POST", `/api/v1/rollouts/${id}/resume`, { token: operator }),
      );
      assert.equal(resumed.status, "running");
      const again = await json<Rollout>(
        await ctx.call("POST", `/api/v1/rollouts/${id}/pause`, { token: operator }),
      );
      assert.equal(again.status, "paused");
      const aborted = await json<Rollout>(
        await ctx.call("POST", `/api/v1/rollouts/${id}/abort`, { token: operator }),
      );
      assert.equal(aborted.status, "aborted");
      await expectError(
        await ctx.call("POST", `/api/v1/rollouts/${id}/resume`, { token: operator }),
        409,
        "rollout_not_paused",
        "status",
      );
      for (const action of ["rollout.pause", "rollout.resume", "rollout.abort"]) {
        assert.ok((await auditEntries(ctx, action)).some((e) => e.target_id === String(id)), action);
      }
    });

    await t.step("the OpenAPI document lists the operations with their roles", async () => {
      const doc = await json<{ paths: Record<string, Record<string, { "x-min-role"?: string }>> }>(
        await ctx.call("GET", "/openapi.json"),
      );
      assert.equal(doc.paths["/api/v1/rollouts"].get["x-min-role"], "viewer");
      assert.equal(doc.paths["/api/v1/rollouts"].post["x-min-role"], "operator");
      assert.equal(doc.paths["/api/v1/rollouts/preview"].post["x-min-role"], "operator");
      assert.equal(doc.paths["/api/v1/rollouts/{id}/abort"].post["x-min-role"], "operator");
    });
  } finally {
    await ctx.close();
  }
});
