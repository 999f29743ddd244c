// The rollout state machine with the test clock: plans, waves, bake, pauses (failed ack, offline node,
// scaling storm), resume, abort with revert, and a second service instance taking a rollout over.
import assert from "node:assert/strict";
import { AppError } from "../core/errors.ts";
import type { Actor } from "../core/principal.ts";
import {
  abortRollout,
  createRollout,
  getRollout,
  pauseRollout,
  planChange,
  resumeRollout,
  type RolloutInput,
  stepRollout,
} from "../core/rollouts.ts";
import { createTestApp, type TestApp } from "./helpers/app.ts";
import { countRows } from "./helpers/assertions.ts";
import { auditEntries } from "./helpers/fixtures.ts";
import { ack, createFleet, type FleetNode, heartbeat, scalingStorm } from "./helpers/rollouts.ts";

const actor: Actor = { principal: { kind: "system", name: "test-operator" }, address: "127.0.0.1" };

function input(suite: string, overrides: Partial<RolloutInput> = {}): RolloutInput {
  return {
    selector: { labels: [`suite:${suite}`] },
    pool_selector: { region: "eu-frankfurt-1" },
    patch: { cpu_threshold: { max: 70 } },
    canary: 2,
    wave_size: 2,
    bake_s: 60,
    max_scaling_events: 3,
    ...overrides,
  };
}

async function refused(work: Promise<unknown>, status: number, field: string): Promise<AppError> {
  try {
    await work;
  } catch (error) {
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.status, status, error.message);
    assert.ok(error.details?.some((d) => d.field === field), JSON.stringify(error.details));
    return error;
  }
  throw new Error(`expected ${status} naming ${field}`);
}

/** `size` nodes named <prefix>-01... and labelled suite:<suite>, and a rollout of input(suite) over them. */
async function startRollout(ctx: TestApp, size: number, prefix: string, suite: string) {
  const fleet = await createFleet(ctx, size, { prefix, labels: { suite } });
  const rollout = await createRollout(ctx.deps, ctx.services, actor, input(suite));
  return { fleet, rollout };
}

const states = async (ctx: TestApp, id: number) =>
  Object.fromEntries((await getRollout(ctx.deps, id)).nodes.map((n) => [n.name, n.state]));

async function desiredVersion(ctx: TestApp, node: FleetNode): Promise<{ version: number; yaml: string }> {
  const [rows] = await ctx.database.pool.query(
    "SELECT v.version, v.yaml_text AS yaml FROM nodes n JOIN config_versions v ON v.id = n.desired_version_id WHERE n.id = ?",
    [node.id],
  );
  return (rows as { version: number; yaml: string }[])[0];
}

/** Every node of the wave acks what it was sent, the fleet heartbeats, the bake passes. */
async function passWave(ctx: TestApp, fleet: FleetNode[], id: number, wave: number) {
  const detail = await getRollout(ctx.deps, id);
  for (const n of detail.nodes.filter((n) => n.wave === wave)) {
    await ack(ctx, fleet.find((f) => f.id === n.node_id)!);
  }
  await stepRollout(ctx.deps, ctx.services, id); // applied: the bake starts
  ctx.clock.advance(61_000);
  await heartbeat(ctx, fleet);
  return await stepRollout(ctx.deps, ctx.services, id);
}

Deno.test("rollouts: the state machine", async (t) => {
  const ctx = await createTestApp("rollouts");
  try {
    await t.step("the plan: a merge patch keeps comments; bad pools and results are left out", async () => {
      const fleet = await createFleet(ctx, 3, { prefix: "plan", labels: { suite: "plan" } });
      const other = await createFleet(ctx, 1, {
        prefix: "planus",
        labels: { suite: "plan" },
        region: "us-ashburn-1",
      });
      const plan = await planChange(ctx.deps, input("plan"), input("plan"));
      assert.equal(plan.matched, 4);
      assert.equal(plan.included, 3);
      const first = plan.nodes.find((n) => n.node_id === fleet[0].id)!;
      assert.ok(first.included);
      assert.match(first.diff!, /-\s+max: 75 # scale up above this/);
      assert.match(first.diff!, /\+\s+max: 70 # scale up above this/);
      assert.equal(first.diff!.split("\n").filter((line) => /^[-+] /.test(line)).length, 2, first.diff!);
      assert.match(first.targetText!, /^# plan-01: managed by the platform team/);
      const us = plan.nodes.find((n) => n.node_id === other[0].id)!;
      assert.equal(us.excluded_reason, "no_matching_pool");
      assert.deepEqual(plan.waves, [["plan-01", "plan-02"], ["plan-03"]]);

      const invalid = await planChange(ctx.deps, { ...input("plan"), patch: { cpu_threshold: { max: 20 } } });
      assert.equal(invalid.included, 0);
      const bad = invalid.nodes.find((n) => n.node_id === fleet[0].id)!;
      assert.equal(bad.excluded_reason, "invalid");
      assert.ok(bad.errors.some((e) => e.field === "config.pools.0.cpu_threshold.min"), JSON.stringify(bad));
    });

    await t.step("bad input is refused with the field named, and nothing is written", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts");
      const versions = await countRows(ctx, "SELECT COUNT(*) AS n FROM config_versions");
      // Each input, and the field its refusal names.
      const bad: [RolloutInput, string][] = [
        [input("nothing"), "selector"],
        [input("plan", { wave_size: 0 }), "wave_size"],
        [input("plan", { bake_s: 5 }), "bake_s"],
        [input("plan", { bake_s: 90_000 }), "bake_s"],
        [input("plan", { canary: "0%" }), "canary"],
        [input("plan", { max_scaling_events: -1 }), "max_scaling_events"],
        [input("plan", { patch: { cpu_threshold: { max: 20 } } }), "patch"],
        [input("plan", { pool_selector: { region: "ap-tokyo-1" } }), "pool_selector"],
        [input("plan", { document: "pools: []\n" }), "patch"],
        [{ ...input("plan"), patch: undefined, document: "pools: []\n" }, "document.pools"],
      ];
      for (const [rollout, field] of bad) {
        await refused(createRollout(ctx.deps, ctx.services, actor, rollout), 422, field);
      }
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts"), before);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM config_versions"), versions);
    });

    await t.step("waves: canary, bake, next waves, completed; nodes released", async () => {
      const { fleet, rollout } = await startRollout(ctx, 5, "wave", "waves");
      assert.equal(rollout.status, "running");
      assert.equal(rollout.waves, 3);
      assert.deepEqual(await states(ctx, rollout.id), {
        "wave-01": "pending",
        "wave-02": "pending",
        "wave-03": "waiting",
        "wave-04": "waiting",
        "wave-05": "waiting",
      });
      assert.match((await desiredVersion(ctx, fleet[0])).yaml, /max: 70 # scale up above this/);
      assert.equal((await desiredVersion(ctx, fleet[2])).version, 1);

      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "checked"); // nobody acked yet
      await ack(ctx, fleet[0]);
      await ack(ctx, fleet[1]);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "checked");
      assert.equal((await states(ctx, rollout.id))["wave-01"], "applied");
      ctx.clock.advance(30_000); // half the bake
      await heartbeat(ctx, fleet);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "checked");
      ctx.clock.advance(31_000);
      await heartbeat(ctx, fleet);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "sent");
      const waveOne = await states(ctx, rollout.id);
      assert.equal(waveOne["wave-01"], "baked");
      assert.equal(waveOne["wave-03"], "pending");
      assert.equal(waveOne["wave-05"], "waiting");

      await passWave(ctx, fleet, rollout.id, 1);
      assert.equal(await passWave(ctx, fleet, rollout.id, 2), "completed");
      const done = await getRollout(ctx.deps, rollout.id);
      assert.equal(done.status, "completed");
      assert.deepEqual(done.wave_list.map((w) => w.status), ["done", "done", "done"]);
      assert.equal(
        await countRows(
          ctx,
          "SELECT COUNT(*) AS n FROM rollout_nodes WHERE rollout_id = ? AND active_node_id IS NOT NULL",
          [
            rollout.id,
          ],
        ),
        0,
      );
      for (const action of ["rollout.create", "rollout.wave_sent", "rollout.complete"]) {
        assert.ok((await auditEntries(ctx, action)).some((e) => e.target_id === String(rollout.id)), action);
      }
      // Resuming a finished rollout is refused, naming the status.
      await refused(resumeRollout(ctx.deps, ctx.services, actor, rollout.id), 409, "status");
      await refused(abortRollout(ctx.deps, ctx.services, actor, rollout.id), 409, "status");
    });

    await t.step("a failed ack pauses with the reason; resume skips and reverts that node", async () => {
      const { fleet, rollout } = await startRollout(ctx, 4, "fail", "fail");
      await ack(ctx, fleet[0]);
      await ack(ctx, fleet[1], undefined, "threshold rejected by local policy");
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "paused");
      const paused = await getRollout(ctx.deps, rollout.id);
      assert.equal(paused.status, "paused");
      assert.match(
        paused.pause_reason!,
        /fail-02 rejected the new config: threshold rejected by local policy/,
      );
      assert.equal(paused.nodes.find((n) => n.name === "fail-02")!.state, "failed");
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "idle"); // paused: the job leaves it

      // Two rollouts on one node: refused, naming the selector, nothing written.
      const before = await countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts");
      await refused(createRollout(ctx.deps, ctx.services, actor, input("fail")), 409, "selector");
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts"), before);

      const resumed = await resumeRollout(ctx.deps, ctx.services, actor, rollout.id);
      assert.equal(resumed.status, "running");
      assert.equal(resumed.pause_reason, null);
      const skipped = resumed.nodes.find((n) => n.name === "fail-02")!;
      assert.equal(skipped.state, "skipped");
      const back = await desiredVersion(ctx, fleet[1]);
      assert.equal(back.version, 3); // v1 original, v2 the rollout's, v3 the revert
      assert.match(back.yaml, /max: 75 # scale up above this/);
      const rollbacks = await auditEntries(ctx, "config.rollback");
      assert.ok(rollbacks.some((e) => e.target_id === fleet[1].id));
      // The canary's other node bakes; the rest goes on.
      ctx.clock.advance(61_000);
      await heartbeat(ctx, fleet);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "sent");
      await abortRollout(ctx.deps, ctx.services, actor, rollout.id);
    });

    await t.step("an offline node pauses the rollout", async () => {
      const { fleet, rollout } = await startRollout(ctx, 3, "off", "offline");
      await ack(ctx, fleet[0]);
      await ack(ctx, fleet[1]);
      ctx.clock.advance((ctx.deps.settings.OFFLINE_AFTER_S + 1) * 1000);
      await heartbeat(ctx, [fleet[0], fleet[2]]);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "paused");
      assert.match((await getRollout(ctx.deps, rollout.id)).pause_reason!, /^off-02 went offline/);
      await abortRollout(ctx.deps, ctx.services, actor, rollout.id);
    });

    await t.step("a scaling storm during the bake pauses the rollout", async () => {
      const { fleet, rollout } = await startRollout(ctx, 3, "storm", "storm");
      await ack(ctx, fleet[0]);
      await ack(ctx, fleet[1]);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "checked");
      await scalingStorm(ctx, fleet[0], 3); // at the limit: fine
      ctx.clock.advance(10_000);
      await heartbeat(ctx, fleet);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "checked");
      await scalingStorm(ctx, fleet[0], 1);
      assert.equal(await stepRollout(ctx.deps, ctx.services, rollout.id), "paused");
      assert.match(
        (await getRollout(ctx.deps, rollout.id)).pause_reason!,
        /storm-01 scaling storm: 4 scaling events since applying the config \(at most 3\)/,
      );
      await abortRollout(ctx.deps, ctx.services, actor, rollout.id);
    });

    await t.step("operator pause and abort: every changed node back on its previous config", async () => {
      const { fleet, rollout } = await startRollout(ctx, 4, "abort", "abort");
      await passWave(ctx, fleet, rollout.id, 0); // canary baked, wave 1 sent
      const paused = await pauseRollout(ctx.deps, ctx.services, actor, rollout.id);
      assert.equal(paused.status, "paused");
      assert.equal(paused.pause_reason, "paused by test-operator");
      await refused(pauseRollout(ctx.deps, ctx.services, actor, rollout.id), 409, "status");
      const aborted = await abortRollout(ctx.deps, ctx.services, actor, rollout.id);
      assert.equal(aborted.status, "aborted");
      assert.deepEqual(aborted.nodes.map((n) => n.state), ["reverted", "reverted", "reverted", "reverted"]);
      for (const node of fleet) {
        const current = await desiredVersion(ctx, node);
        assert.equal(current.version, 3);
        assert.match(current.yaml, /max: 75 # scale up above this/);
      }
      const abortAudit = (await auditEntries(ctx, "rollout.abort")).find((e) =>
        e.target_id === String(rollout.id)
      );
      assert.ok(abortAudit);
      // The nodes are free again.
      const again = await createRollout(ctx.deps, ctx.services, actor, input("abort"));
      await abortRollout(ctx.deps, ctx.services, actor, again.id);
    });

    await t.step("restart in the middle: another service instance's job picks the rollout up", async () => {
      const { fleet, rollout } = await startRollout(ctx, 3, "restart", "restart");
      await ack(ctx, fleet[0]);
      await ack(ctx, fleet[1]);
      const second = await ctx.replica();
      ctx.clock.advance(61_000);
      await heartbeat(ctx, fleet);
      // The second instance applies, bakes... one step of its job does all that is due.
      assert.equal(await second.services.jobs.tick("rollouts"), "ran");
      assert.equal((await states(ctx, rollout.id))["restart-03"], "pending");
      await ack(ctx, fleet[2]);
      ctx.clock.advance(61_000);
      await heartbeat(ctx, fleet);
      assert.equal(await second.services.jobs.tick("rollouts"), "ran"); // applied
      ctx.clock.advance(61_000);
      await heartbeat(ctx, fleet);
      assert.equal(await second.services.jobs.tick("rollouts"), "ran");
      assert.equal((await getRollout(ctx.deps, rollout.id)).status, "completed");
    });

    await t.step(
      "a comment at the 1,000-character limit still goes out with each wave (cut to fit)",
      async () => {
        const fleet = await createFleet(ctx, 3, { prefix: "longnote", labels: { suite: "longnote" } });
        const comment = "Raise the CPU ceiling for the sale. " + "x".repeat(1000 - 36);
        assert.equal(comment.length, 1000);
        const rollout = await createRollout(ctx.deps, ctx.services, actor, input("longnote", { comment }));
        // The canary's versions are written with "rollout N (canary): " before the comment: 1,020 characters
        // went into a 1,000-character column, so the rollout was created but its job failed on every run.
        assert.deepEqual(await states(ctx, rollout.id), {
          "longnote-01": "pending",
          "longnote-02": "pending",
          "longnote-03": "waiting",
        });
        const [rows] = await ctx.database.pool.query(
          "SELECT v.comment FROM nodes n JOIN config_versions v ON v.id = n.desired_version_id WHERE n.id = ?",
          [fleet[0].id],
        );
        const written = String((rows as { comment: string }[])[0].comment);
        assert.equal(Array.from(written).length, 1000);
        assert.ok(
          written.startsWith(`rollout ${rollout.id} (canary): Raise the CPU ceiling`),
          written.slice(0, 60),
        );
        assert.ok(written.endsWith("…"));
        await passWave(ctx, fleet, rollout.id, 0);
        assert.equal((await states(ctx, rollout.id))["longnote-03"], "pending");
      },
    );
  } finally {
    await ctx.close();
  }
});
