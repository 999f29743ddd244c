// The node page's display name form (operators; audited; the field rule of core/fields.ts, which the API
// shares), with bad input coming back at the field, and the charts' data tables loaded on demand (htmx) or
// as a page of their own without JavaScript.
import assert from "node:assert/strict";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { createApiKeyWithRole, type TestSession } from "./helpers/auth.ts";
import { auditEntries } from "./helpers/fixtures.ts";
import { seedFleetWithSessions } from "./helpers/fleet_seed.ts";
import { page, submitForm } from "./helpers/ui.ts";

function postName(ctx: TestApp, session: TestSession, nodeId: string, form: Record<string, string>) {
  return submitForm(ctx, `/nodes/${nodeId}/display-name`, session, form);
}

async function displayName(ctx: TestApp, id: string): Promise<string | null> {
  const [rows] = await ctx.deps.pool.query("SELECT display_name FROM nodes WHERE id = ?", [id]);
  return (rows as { display_name: string | null }[])[0].display_name;
}

Deno.test("node display name and chart tables", async (t) => {
  const ctx = await createTestApp("ui_display_name");
  try {
    const { fleet, operator, viewer } = await seedFleetWithSessions(ctx);
    const audited = async () =>
      (await auditEntries(ctx, "node.update")).filter((e) => e.target_id === fleet.online);

    await t.step("an operator sets a display name: audited, shown as the page's title", async () => {
      const { html } = await page(ctx, `/nodes/${fleet.online}`, operator);
      assert.match(html, /<label for="display-name">Display name<\/label>/);
      assert.match(html, /action="\/nodes\/[^"]+\/display-name"/);
      const res = await postName(ctx, operator, fleet.online, {
        display_name: "  Web <front> 'EU' ",
        range: "7d",
      });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), `/nodes/${fleet.online}?range=7d#identity`);
      assert.equal(await displayName(ctx, fleet.online), "Web <front> 'EU'");
      const entries = await audited();
      assert.equal(entries.length, 1);
      assert.deepEqual(entries[0].details, {
        name: "web-eu-1",
        before: { display_name: null },
        after: { display_name: "Web <front> 'EU'" },
      });
      const after = await page(ctx, `/nodes/${fleet.online}`, operator);
      assert.match(after.html, /<h1>Web &lt;front&gt; &#39;EU&#39;<\/h1>/);
      assert.match(after.html, /value="Web &lt;front&gt; &#39;EU&#39;"/);
      // The same name through the API.
      const key = (await createApiKeyWithRole(ctx, "viewer")).token;
      const api = await json<{ display_name: string }>(
        await ctx.call("GET", `/api/v1/nodes/${fleet.online}`, { token: key }),
      );
      assert.equal(api.display_name, "Web <front> 'EU'");
    });

    await t.step(
      "bad input: 422 with the message at the field, what was typed kept, nothing written",
      async () => {
        for (const typed of ["x".repeat(256), "line one\nline two", "bell\u0007"]) {
          const res = await postName(ctx, operator, fleet.online, { display_name: typed });
          const html = await res.text();
          assert.equal(res.status, 422, JSON.stringify(typed));
          assert.match(html, /id="display_name-error"/);
          assert.match(html, /on one line, no control characters/);
          assert.match(html, /id="display-name"[^>]*aria-invalid="true"/);
          const shown = /id="display-name" name="display_name" value="([^"]*)"/.exec(html)?.[1];
          assert.equal(shown?.replaceAll("&#10;", "\n"), typed.replace("\u0007", "\u0007"));
          // The page still names the node as stored.
          assert.match(html, /<h1>Web &lt;front&gt; &#39;EU&#39;<\/h1>/);
        }
        assert.equal(await displayName(ctx, fleet.online), "Web <front> 'EU'");
        assert.equal((await audited()).length, 1);
      },
    );

    await t.step("the API refuses the same input with the field named", async () => {
      const key = (await createApiKeyWithRole(ctx, "operator")).token;
      const res = await ctx.call("PATCH", `/api/v1/nodes/${fleet.online}`, {
        token: key,
        json: { display_name: "tab\there" },
      });
      const body = await json<{ error: { details: { field: string }[] } }>(res);
      assert.equal(res.status, 422);
      assert.deepEqual(body.error.details.map((d) => d.field), ["display_name"]);
      assert.equal(await displayName(ctx, fleet.online), "Web <front> 'EU'");
    });

    await t.step("an empty name clears it: the agent's name shows again", async () => {
      const res = await postName(ctx, operator, fleet.online, { display_name: "   " });
      assert.equal(res.status, 303);
      assert.equal(await displayName(ctx, fleet.online), null);
      assert.equal((await audited()).length, 2);
      const { html } = await page(ctx, `/nodes/${fleet.online}`, operator);
      assert.match(html, /<h1>web-eu-1<\/h1>/);
    });

    await t.step("a viewer sees the name but no form; a viewer's post is refused", async () => {
      const { html } = await page(ctx, `/nodes/${fleet.online}`, viewer);
      assert.doesNotMatch(html, /display-name-form/);
      assert.match(html, /<dt>Display name<\/dt>/);
      const res = await postName(ctx, viewer, fleet.online, { display_name: "taken over" });
      assert.equal(res.status, 403);
      await res.body?.cancel();
      assert.equal(await displayName(ctx, fleet.online), null);
    });

    await t.step("chart tables are loaded on demand, and readable without JavaScript", async () => {
      const { html } = await page(ctx, `/nodes/${fleet.online}?range=7d`, viewer);
      // No table in the page: each chart's <details> names where its table comes from.
      assert.doesNotMatch(html, /<table class="table compact">/);
      const url = `/nodes/${fleet.online}/charts/cpu?range=7d`;
      assert.ok(html.includes(`hx-get="${url}" hx-trigger="toggle once"`));
      assert.ok(html.includes(`<a href="${url}">Open the data as a table</a>`));
      const part = await page(ctx, url, viewer, {
        "hx-request": "true",
        "hx-request-type": "partial",
        "hx-target": "div#chart-cpu-table",
      });
      assert.equal(part.status, 200);
      assert.match(part.html, /^<div class="table-scroll"><table class="table compact">/);
      assert.match(part.html, /<th scope="col">web frontends \(%\)<\/th>/);
      assert.ok((part.html.match(/<tr>/g)?.length ?? 0) > 20, "a row per point");
      const whole = await page(ctx, url, viewer);
      assert.equal(whole.status, 200);
      assert.match(whole.html, /<!doctype html>/);
      assert.match(whole.html, /CPU utilisation/);
      assert.match(whole.html, /last 7 d/);
      assert.ok(whole.html.includes(`href="/nodes/${fleet.online}?range=7d"`));
      assert.equal((await page(ctx, `/nodes/${fleet.online}/charts/disk`, viewer)).status, 404);
      assert.equal((await page(ctx, `/nodes/${crypto.randomUUID()}/charts/cpu`, viewer)).status, 404);
    });
  } finally {
    await ctx.close();
  }
});
