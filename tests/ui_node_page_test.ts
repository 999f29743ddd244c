// The node page (/nodes/{id}) on a seeded database: the full page and each fragment htmx asks for, user
// text escaped, the label form (422 at the field, typed values kept, nothing written), viewers without
// edit controls and their forged posts refused, decommission only after its confirmation, the
// re-enrollment token shown once, and an unknown id as an HTML 404.
import assert from "node:assert/strict";
import { createTestApp, type TestApp } from "./helpers/app.ts";
import { auditEntries } from "./helpers/fixtures.ts";
import { HOSTILE_NAME, seedFleetWithSessions } from "./helpers/fleet_seed.ts";
import { expectFieldError, page, postForm, submitForm } from "./helpers/ui.ts";

const fragment = (target: string) => ({
  "hx-request": "true",
  "hx-request-type": "partial",
  "hx-target": target,
  accept: "text/html",
});

async function nodeLabels(ctx: TestApp, id: string): Promise<Record<string, string>> {
  const [rows] = await ctx.deps.pool.query("SELECT labels FROM nodes WHERE id = ?", [id]);
  const raw = (rows as { labels: unknown }[])[0].labels;
  return typeof raw === "string" ? JSON.parse(raw) : raw as Record<string, string>;
}

Deno.test("node page", async (t) => {
  const ctx = await createTestApp("ui_node_page");
  try {
    const { fleet, operator, viewer } = await seedFleetWithSessions(ctx);

    await t.step("full page: identity, pools, charts with markers, events, edit controls", async () => {
      const { status, html, res } = await page(ctx, `/nodes/${fleet.online}`, operator);
      assert.equal(status, 200);
      assert.match(html, /<!doctype html>/);
      assert.match(html, /<h1>web-eu-1<\/h1>/);
      assert.match(html, /id="node-status"[^>]*hx-trigger="every 10s"/);
      assert.match(html, /Online/);
      assert.match(html, /eu-frankfurt-1/);
      assert.match(html, /web frontends/);
      assert.match(html, /2 – 10/, "pool limits");
      assert.match(html, /61\.?5? %|62 %/, "latest cpu");
      assert.match(html, new RegExp(`href="/nodes/${fleet.online}/config"`));
      // Three charts, with points and the two scaling events marked (24 h by default).
      assert.equal(html.match(/<svg class="chart-svg[^"]*"/g)?.length, 3);
      assert.match(html, /id="chart-cpu"/);
      assert.match(html, /class="marker marker-up"><title>Scaled up web frontends 3 → 4/);
      assert.match(html, /class="marker marker-down"/);
      assert.match(html, /<circle class="s0"/);
      assert.match(html, /Show the data as a table/);
      // The range in figures beside the charts.
      assert.match(html, /In this range/);
      assert.match(html, /▲<\/span> 1 scale-up<\/span>/);
      assert.match(html, /avg <strong>4\d %<\/strong> · peak <strong>49 %<\/strong>/);
      assert.match(html, /<a [^>]*aria-current="true">24 h<\/a>/);
      assert.match(html, /cpu 81% &gt; 75%/, "event reason");
      assert.match(html, /action="\/nodes\/[^"]+\/labels"/);
      assert.match(html, /Decommission…/);
      assert.match(html, /Create token/);
      assert.match(res.headers.get("vary") ?? "", /HX-Request-Type/);
    });

    await t.step("fragments: status, charts and events each alone, for htmx", async () => {
      const status = await page(ctx, `/nodes/${fleet.online}`, operator, fragment("div#node-status"));
      assert.equal(status.status, 200);
      assert.match(status.html, /^\s*<div id="node-status"/);
      assert.doesNotMatch(status.html, /<svg|<!doctype/);
      const charts = await page(
        ctx,
        `/nodes/${fleet.online}?range=7d`,
        operator,
        fragment("section#node-charts"),
      );
      assert.match(charts.html, /^\s*<section id="node-charts"/);
      assert.equal(charts.html.match(/<svg class="chart-svg[^"]*"/g)?.length, 3);
      assert.match(charts.html, /aria-current="true">7 d</);
      assert.doesNotMatch(charts.html, /node-status|<!doctype/);
      const events = await page(ctx, `/nodes/${fleet.online}`, operator, fragment("section#node-events"));
      assert.match(events.html, /^\s*<section id="node-events"/);
      assert.match(events.html, /▲<\/span> Up<\/span> <span class="nowrap">3 → 4<\/span>/);
      assert.doesNotMatch(events.html, /<svg/);
    });

    await t.step("every range renders; an unknown range falls back to 24 h", async () => {
      for (const range of ["1h", "24h", "7d", "30d"]) {
        const { status, html } = await page(ctx, `/nodes/${fleet.online}?range=${range}`, operator);
        assert.equal(status, 200, range);
        assert.equal(html.match(/<svg class="chart-svg[^"]*"/g)?.length, 3, range);
      }
      const odd = await page(ctx, `/nodes/${fleet.online}?range=%3Cx%3E`, operator);
      assert.equal(odd.status, 200);
      assert.match(odd.html, /aria-current="true">24 h</);
    });

    await t.step("a hostile name, hostname and labels stay text", async () => {
      const { html } = await page(ctx, `/nodes/${fleet.hostile}`, operator);
      assert.doesNotMatch(html, /<script>alert\(1\)<\/script>/);
      assert.doesNotMatch(html, /<img src=x/);
      assert.doesNotMatch(html, /" onmouseover="alert/);
      assert.ok(html.includes(`<h1>${HOSTILE_NAME.replaceAll("<", "&lt;").replaceAll(">", "&gt;")}</h1>`));
      assert.match(html, /o&quot;neil&#39;s &lt;b&gt;/);
      assert.match(html, /name="key" value="quote\.key"/);
      assert.match(html, /<title>.*&lt;script&gt;/, "the page title escaped too");
    });

    await t.step("an offline node and a failed config say so, with the agent's error", async () => {
      const offline = await page(ctx, `/nodes/${fleet.offline}`, operator);
      assert.match(offline.html, /Offline/);
      assert.match(offline.html, /No heartbeat for 1 h 0 min/);
      const failed = await page(ctx, `/nodes/${fleet.failed}`, operator);
      assert.match(failed.html, /could not apply its config/);
      assert.match(failed.html, /cpu_threshold\.max must exceed min/);
    });

    await t.step("labels: add and remove, audited, back on the page with a message", async () => {
      const added = await submitForm(ctx, `/nodes/${fleet.online}/labels`, operator, {
        op: "add",
        key: "team",
        value: `o'brien "ops"`,
        range: "7d",
      });
      assert.equal(added.status, 303);
      assert.equal(added.headers.get("location"), `/nodes/${fleet.online}?range=7d#labels`);
      assert.deepEqual(await nodeLabels(ctx, fleet.online), { env: "prod", team: `o'brien "ops"` });
      const removed = await submitForm(ctx, `/nodes/${fleet.online}/labels`, operator, {
        op: "remove",
        key: "env",
      });
      assert.equal(removed.status, 303);
      assert.deepEqual(await nodeLabels(ctx, fleet.online), { team: `o'brien "ops"` });
      const audit = (await auditEntries(ctx, "node.update")).filter((e) => e.target_id === fleet.online);
      assert.ok(audit.length >= 2);
    });

    await t.step("labels: a bad key is 422 at the field, typed values kept, nothing written", async () => {
      const before = await nodeLabels(ctx, fleet.online);
      const res = await submitForm(ctx, `/nodes/${fleet.online}/labels`, operator, {
        op: "add",
        key: "bad key!",
        value: `keep "me"`,
      });
      const html = await expectFieldError(res, "key", ["keep &quot;me&quot;"]);
      assert.match(html, /<!doctype html>/);
      assert.match(html, /id="label-key" name="key" value="bad key!"/);
      assert.match(html, /aria-invalid="true" aria-describedby="key-error"/);
      const long = await submitForm(ctx, `/nodes/${fleet.online}/labels`, operator, {
        op: "add",
        key: "ok",
        value: "x".repeat(300),
      });
      await expectFieldError(long, "value");
      assert.deepEqual(await nodeLabels(ctx, fleet.online), before);
    });

    await t.step("viewer: no edit controls; forged posts refused, nothing written", async () => {
      const { status, html } = await page(ctx, `/nodes/${fleet.online}`, viewer);
      assert.equal(status, 200);
      assert.doesNotMatch(html, /action="\/nodes\/[^"]+\/labels"/);
      assert.doesNotMatch(html, /Decommission|Create token|Remove label/);
      const before = await nodeLabels(ctx, fleet.online);
      for (
        const [path, form] of [
          [`/nodes/${fleet.online}/labels`, { op: "add", key: "x", value: "y" }],
          [`/nodes/${fleet.online}/decommission`, { confirm: "yes" }],
          [`/nodes/${fleet.online}/reenrollment-token`, {}],
        ] as const
      ) {
        const res = await submitForm(ctx, path, viewer, form);
        assert.equal(res.status, 403, path);
        assert.match(await res.text(), /<!doctype html>/);
      }
      // An operator's post without the CSRF token (a forged cross-site form) is refused too.
      const forged = await postForm(ctx, `/nodes/${fleet.online}/labels`, operator, {
        op: "add",
        key: "x",
        value: "y",
      });
      assert.equal(forged.status, 403);
      const anonymous = await postForm(ctx, `/nodes/${fleet.online}/decommission`, null, { confirm: "yes" });
      assert.equal(anonymous.status, 303);
      assert.match(anonymous.headers.get("location") ?? "", /^\/login/);
      assert.deepEqual(await nodeLabels(ctx, fleet.online), before);
      const viewerConfirm = await page(ctx, `/nodes/${fleet.online}/decommission`, viewer);
      assert.equal(viewerConfirm.status, 403);
    });

    await t.step("decommission: only after the confirmation, audited", async () => {
      const confirmPage = await page(ctx, `/nodes/${fleet.offline}/decommission`, operator);
      assert.equal(confirmPage.status, 200);
      assert.match(confirmPage.html, /Decommission batch-us-7\?/);
      assert.match(confirmPage.html, /name="confirm" value="yes" required/);
      const unconfirmed = await submitForm(ctx, `/nodes/${fleet.offline}/decommission`, operator, {});
      await expectFieldError(unconfirmed, "confirm");
      const stillActive = await page(ctx, `/nodes/${fleet.offline}`, operator);
      assert.doesNotMatch(stillActive.html, /Decommissioned/);
      const done = await submitForm(ctx, `/nodes/${fleet.offline}/decommission`, operator, {
        confirm: "yes",
      });
      assert.equal(done.status, 303);
      assert.equal(done.headers.get("location"), `/nodes/${fleet.offline}`);
      const after = await page(ctx, `/nodes/${fleet.offline}`, operator);
      assert.match(after.html, /Decommissioned/);
      assert.doesNotMatch(after.html, /Decommission…|Create token/, "no actions on a decommissioned node");
      const audit = (await auditEntries(ctx, "node.decommission")).filter((e) =>
        e.target_id === fleet.offline
      );
      assert.equal(audit.length, 1);
    });

    await t.step("re-enrollment token: shown once, not cached, audited", async () => {
      const res = await submitForm(ctx, `/nodes/${fleet.online}/reenrollment-token`, operator, {
        expires_in_s: "3600",
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const html = await res.text();
      assert.match(html, /value="ace_[A-Za-z0-9_-]+"/);
      assert.match(html, /shown only this once/);
      const audit = (await auditEntries(ctx, "node.reenrollment_token.create")).filter((e) =>
        e.target_id === fleet.online
      );
      assert.equal(audit.length, 1);
    });

    await t.step("unknown node: an HTML 404 page", async () => {
      const { status, html } = await page(ctx, "/nodes/no-such-node", operator);
      assert.equal(status, 404);
      assert.match(html, /<!doctype html>/);
      assert.match(html, /Page not found/);
      const post404 = await submitForm(ctx, "/nodes/no-such-node/labels", operator, {
        op: "add",
        key: "a",
        value: "b",
      });
      assert.equal(post404.status, 404);
    });
  } finally {
    await ctx.close();
  }
});
