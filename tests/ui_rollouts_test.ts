// The rollout pages: the list and its "New rollout" form (preview first, then start; a refused input is the
// form again, 422, each message at its field, nothing written), the live rollout page with its controls
// behind a confirmation, and what a viewer sees (no form, no controls).
import assert from "node:assert/strict";
import { page, submitForm } from "./helpers/ui.ts";
import { createTestApp } from "./helpers/app.ts";
import { countRows } from "./helpers/assertions.ts";
import { loginAs, sessionWithRole, type TestSession } from "./helpers/auth.ts";
import { createUserWithRole } from "./helpers/auth.ts";
import { ack, createFleet } from "./helpers/rollouts.ts";

Deno.test("console: rollout pages", async (t) => {
  const ctx = await createTestApp("ui_rollouts");
  try {
    const user = await createUserWithRole(ctx, "operator", "olga");
    const operator = await loginAs(ctx, user.username, user.password);
    const viewer = await sessionWithRole(ctx, "viewer");
    const fleet = await createFleet(ctx, 5, { prefix: "ui", labels: { env: "staging" } });
    const post = async (path: string, form: Record<string, string>, session: TestSession = operator) => {
      const res = await submitForm(ctx, path, session, form);
      const flash = /acs_flash=[^;]+/.exec(res.headers.get("set-cookie") ?? "")?.[0];
      return { status: res.status, html: await res.text(), location: res.headers.get("location"), flash };
    };
    const form = {
      labels: "env:staging",
      edit: "patch",
      patch: '{"cpu_threshold": {"max": 70}}',
      canary: "2",
      wave_size: "2",
      bake_s: "60",
      max_scaling_events: "5",
      comment: "cpu max 70",
    };
    const written = async () => [
      await countRows(ctx, "SELECT COUNT(*) AS n FROM rollouts"),
      await countRows(ctx, "SELECT COUNT(*) AS n FROM config_versions"),
    ];

    await t.step("the list, with the form for operators and in the nav", async () => {
      const { status, html } = await page(ctx, "/rollouts?new", operator);
      assert.equal(status, 200);
      assert.match(html, /<a href="\/rollouts" aria-current="page">Rollouts<\/a>/);
      assert.match(html, /id="new-rollout"/);
      assert.match(html, /No rollouts yet/);
    });

    await t.step("bad input: the form again, 422, at each field, nothing written", async () => {
      const before = await written();
      const cases: [Record<string, string>, string, RegExp][] = [
        [{ labels: "env:nowhere" }, "selector", /matches no node/],
        [{ labels: "" }, "selector", /name at least one of/],
        [{ patch: "{not json" }, "patch", /is not valid JSON/],
        [{ patch: '{"cpu_threshold": {"max": 10}}' }, "patch", /leaves no selected node with a valid config/],
        [{ wave_size: "0" }, "wave_size", /must be at least 1/],
        [{ bake_s: "soon" }, "bake_s", /must be a whole number/],
        [{ bake_s: "5" }, "bake_s", /must be at least 10 seconds/],
        [{ canary: "200%" }, "canary", /percentage of 1\.\.100/],
      ];
      for (const [change, name, message] of cases) {
        const res = await post("/rollouts", { ...form, ...change, step: "start", previewed: "x" });
        assert.equal(res.status, 422, `${name}: ${res.html.slice(0, 200)}`);
        const error = new RegExp(
          `<p class="field-error" id="${name}-error">[^<]*<span aria-hidden="true">✕</span> [^<]*`,
        );
        assert.match(res.html, error, name);
        assert.match(res.html.match(error)![0], message);
      }
      assert.deepEqual(await written(), before);
    });

    let id = 0;
    let startFlash = "";
    await t.step("preview first: per node diffs and waves; start only from that preview", async () => {
      const preview = await post("/rollouts", { ...form, step: "preview" });
      assert.equal(preview.status, 200);
      assert.match(preview.html, /5 will change/);
      assert.match(preview.html, /What-if replay/);
      assert.match(preview.html, /None of the 3 replayed nodes has metrics in the last 24 h/);
      assert.match(preview.html, /Canary<\/strong> <span class="muted">\(2\)<\/span> ui-01, ui-02/);
      assert.match(preview.html, /max: 70/);
      const previewed = /name="previewed" value="([0-9a-f]{64})"/.exec(preview.html)![1];
      assert.match(preview.html, /Start rollout of 5 nodes/);
      // Edited after the preview: shown again, not started.
      const edited = await post("/rollouts", { ...form, wave_size: "3", step: "start", previewed });
      assert.equal(edited.status, 200);
      assert.match(edited.html, /edited after its preview/);
      assert.equal((await written())[0], 0);
      const started = await post("/rollouts", { ...form, step: "start", previewed });
      assert.equal(started.status, 303, started.html.slice(0, 300));
      id = Number(/\/rollouts\/(\d+)/.exec(started.location!)![1]);
      startFlash = started.flash!;
      assert.ok(id > 0);
    });

    await t.step(
      "the rollout page: waves, nodes, live fragment, controls behind a confirmation",
      async () => {
        const { status, html } = await page(ctx, `/rollouts/${id}`, {
          ...operator,
          cookie: `${operator.cookie}; ${startFlash}`,
        });
        assert.equal(status, 200);
        assert.match(html, /Rollout \d+ started: 5 nodes in 3 waves; the canary is out/);
        assert.match(html, /hx-get="\/rollouts\/\d+" hx-trigger="every 5s"/);
        assert.match(html, /Canary<\/span>/);
        assert.match(html, /href="\/rollouts\/\d+\?confirm=abort#confirm"/);
        const fragment = await page(ctx, `/rollouts/${id}`, operator, {
          "hx-request": "true",
          "hx-request-type": "partial",
        });
        assert.match(fragment.html, /^\s*<div id="rollout-live"/);
        assert.doesNotMatch(fragment.html, /<html/);

        await ack(ctx, fleet[0], undefined, "refused by local policy");
        await ctx.services.jobs.tick("rollouts");
        const paused = await page(ctx, `/rollouts/${id}`, operator);
        assert.match(paused.html, /Paused:<\/strong> ui-01 rejected the new config: refused by local policy/);
        // The status line counts waves as the boxes do (the canary is not "wave 1").
        assert.match(paused.html, /Canary \(stage 1 of \d+\) · updated/);
        assert.match(paused.html, /confirm=resume/);

        const confirm = await page(ctx, `/rollouts/${id}?confirm=abort`, operator);
        assert.match(confirm.html, /Abort rollout \d+\?/);
        assert.match(confirm.html, /action="\/rollouts\/\d+\/abort"/);

        const viewerPage = await page(ctx, `/rollouts/${id}?confirm=abort`, viewer);
        assert.equal(viewerPage.status, 200);
        assert.doesNotMatch(viewerPage.html, /confirm=abort|Abort and revert|confirm=resume/);
        const viewerList = await page(ctx, "/rollouts?new", viewer);
        assert.doesNotMatch(viewerList.html, /id="new-rollout"|New rollout<\/a>/);
        const refused = await post(`/rollouts/${id}/abort`, {}, viewer);
        assert.equal(refused.status, 403);

        const aborted = await post(`/rollouts/${id}/abort`, {});
        assert.equal(aborted.status, 303);
        const after = await page(ctx, `/rollouts/${id}`, {
          ...operator,
          cookie: `${operator.cookie}; ${aborted.flash}`,
        });
        assert.match(after.html, /Rollout \d+ aborted: 2 node\(s\) back on their previous config/);
        assert.doesNotMatch(after.html, /hx-trigger="every 5s"/);
        // A second abort: said so, nothing else.
        const second = await post(`/rollouts/${id}/abort`, {});
        const again = await page(ctx, `/rollouts/${id}`, {
          ...operator,
          cookie: `${operator.cookie}; ${second.flash}`,
        });
        assert.match(again.html, /only a running or paused rollout can be aborted/);
      },
    );
  } finally {
    await ctx.close();
  }
});
