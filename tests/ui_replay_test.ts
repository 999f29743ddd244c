// The "What if" panel of the config page: the window and the button (an htmx post that works as a plain
// form post too), the result fragment (verdict, figures, chart with its text fallback), a refused text
// with its line, a viewer's own text box, CSRF; nothing is ever written.
import assert from "node:assert/strict";
import { HTML, postForm } from "./helpers/ui.ts";
import { setNodeConfig } from "../core/configs.ts";
import type { Principal } from "../core/principal.ts";
import { createTestApp } from "./helpers/app.ts";
import { createUserWithRole, loginAs, type TestSession } from "./helpers/auth.ts";
import { countNodeRows, insertNode, insertPool, insertSamples } from "./helpers/fixtures.ts";

const NOW = "2026-06-04T12:00:00Z";
const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaauireplaypool";
const SEED: Principal = { kind: "system", name: "seed" };

const yaml = (cpuMax: number, cpuMin = 30) =>
  `# web tier
pools:
  - instance_pool_id: ${POOL}
    compartment_id: ocid1.compartment.oc1..aaaauireplay
    region: us-ashburn-1
    cpu_threshold: {min: ${cpuMin}, max: ${cpuMax}}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
`;

Deno.test("console: the config page's what-if replay", async (t) => {
  const ctx = await createTestApp("ui_replay", { start: NOW });
  try {
    const operatorUser = await createUserWithRole(ctx, "operator", "olga");
    const viewerUser = await createUserWithRole(ctx, "viewer", "victor");
    const operator = await loginAs(ctx, operatorUser.username, operatorUser.password);
    const viewer = await loginAs(ctx, viewerUser.username, viewerUser.password);
    const nodeId = await insertNode(ctx, { name: "web-replay" });
    const poolId = await insertPool(ctx, nodeId, POOL, { displayName: "web-pool" });
    await setNodeConfig(ctx.deps, ctx.services, { principal: SEED }, nodeId, { config: yaml(75) });
    // Two hours, three hours ago: cpu 60%, memory 40%, 2 instances.
    const start = Date.parse(NOW) - 3 * 3_600_000;
    await insertSamples(
      ctx,
      nodeId,
      poolId,
      Array.from({ length: 120 }, (_, i) => ({
        ts: new Date(start + i * 60_000),
        cpu: 60,
        memory: 40,
        instances: 2,
      })),
    );
    const url = `/nodes/${nodeId}/config`;
    const before = await countNodeRows(ctx, nodeId);

    const post = async (
      form: Record<string, string>,
      session: TestSession = operator,
      headers: Record<string, string> = {},
      path = `${url}/replay`,
    ) => {
      const res = await postForm(ctx, path, session, form, headers);
      return { status: res.status, html: await res.text() };
    };
    const htmx = { "hx-request": "true", "hx-request-type": "partial", "hx-target": "div#replay-results" };

    await t.step("the panel: window, a button that posts the editor's text, an invitation", async () => {
      const res = await ctx.call("GET", url, { headers: { ...HTML, cookie: operator.cookie } });
      const html = await res.text();
      assert.equal(res.status, 200);
      assert.match(html, /<h2 id="replay-title">What if/);
      assert.match(html, /<form method="post" action="[^"]+" class="config-form stack" id="config-form"/);
      assert.match(html, /<select id="replay-window" name="window" form="config-form">/);
      assert.match(html, /<option value="7d" selected>last 7 d<\/option>/);
      assert.match(
        html,
        new RegExp(
          `form="config-form" formaction="${url}/replay#replay" hx-post="${url}/replay" ` +
            `hx-target="#replay-results" hx-swap="outerHTML">Replay</button>`,
        ),
      );
      assert.match(html, /<div id="replay-results" class="replay-results" aria-live="polite">/);
      assert.match(html, /Pick a window and press <strong>Replay<\/strong>/);
    });

    await t.step("htmx: the results fragment only, with figures and a chart", async () => {
      const { status, html } = await post(
        { _csrf: operator.csrfToken, yaml: yaml(50), window: "24h", comment: "", base_version: "1" },
        operator,
        htmx,
      );
      assert.equal(status, 200);
      assert.match(html, /^\s*<div id="replay-results"/);
      assert.doesNotMatch(html, /<html|<nav/);
      assert.match(html, /Over the last 24 h, the proposed config would have scaled this pool 1 times/);
      assert.match(html, /1 up, 0 down \(current config: 0 up, 0 down\); 5 min above its maximum/);
      // Figures: proposed, current, recorded.
      assert.match(
        html,
        /Proposed<\/th><th scope="col"><span class="swatch s2 dashed"[^>]*><\/span> Current/,
      );
      assert.match(
        html,
        /Above max.*<td class="num">5 min<\/td><td class="num">0 min<\/td><td class="num">0 min<\/td>/s,
      );
      assert.match(
        html,
        /Instance-hours.*<td class="num">5.9 h<\/td><td class="num">4 h<\/td><td class="num">4 h<\/td>/s,
      );
      // The chart: three step lines, the scale-up marked with its reason, a text fallback.
      assert.match(html, /<svg class="chart-svg"/);
      assert.equal((html.match(/<path class="line s\d/g) ?? []).length, 3);
      assert.match(html, /class="line s2 dashed"/);
      assert.match(
        html,
        /<g class="marker marker-up"><title>Proposed, autoscaler: UP 2 → 3 at 2026-06-04 09:05 UTC \(cpu 60.0 &gt; max 50\)<\/title>/,
      );
      assert.match(html, /<desc id="chart-replay-0-d">recorded: from 2 instances to 2 instances/);
      assert.match(html, /Show the data as a table/);
      assert.match(html, /<text class="axis-unit"[^>]*>instances<\/text>/);
      assert.match(html, /no boot delay, no queueing/);
    });

    await t.step("without JavaScript: the whole page, the text kept, the results in the panel", async () => {
      const { status, html } = await post({ _csrf: operator.csrfToken, yaml: yaml(50), window: "24h" });
      assert.equal(status, 200);
      assert.match(html, /<html/);
      assert.match(html, /cpu_threshold: \{min: 30, max: 50\}/); // the editor keeps the text
      assert.match(html, /<option value="24h" selected>last 24 h<\/option>/);
      assert.match(html, /1 up, 0 down \(current config: 0 up, 0 down\); 5 min above its maximum/);
    });

    await t.step("a refused text: 422, each problem at its line, nothing saved", async () => {
      const { status, html } = await post(
        { _csrf: operator.csrfToken, yaml: yaml(50, 80), window: "7d" },
        operator,
        htmx,
      );
      assert.equal(status, 422);
      assert.match(html, /Not replayed: 1 problem/);
      assert.match(
        html,
        /data-goto-line="6"[^>]*>Line 6, column 21<\/a> <code>pools.0.cpu_threshold.min<\/code> must be below max \(50\)/,
      );
      const empty = await post({ _csrf: operator.csrfToken, yaml: "  ", window: "7d" }, operator, htmx);
      assert.equal(empty.status, 422);
      assert.match(empty.html, /<li> the text is empty: nothing to replay<\/li>/);
      const badWindow = await post(
        { _csrf: operator.csrfToken, yaml: yaml(50), window: "1y" },
        operator,
        htmx,
      );
      assert.equal(badWindow.status, 422);
      assert.match(badWindow.html, /<code>window<\/code> must be one of 24h, 7d, 30d/);
    });

    await t.step("a viewer replays text of their own; the panel has its own form", async () => {
      const res = await ctx.call("GET", url, { headers: { ...HTML, cookie: viewer.cookie } });
      const page = await res.text();
      assert.match(page, /<form id="replay-form" method="post" action="[^"]+\/config\/replay#replay"/);
      assert.match(page, /<textarea id="replay-yaml" name="yaml"[^>]*>[^<]*max: 75/);
      assert.match(page, /form="replay-form" formaction=/);
      assert.doesNotMatch(page, /id="config-form"/);
      const { status, html } = await post(
        { _csrf: viewer.csrfToken, yaml: yaml(50), window: "24h" },
        viewer,
        htmx,
      );
      assert.equal(status, 200);
      assert.match(html, /1 up, 0 down/);
    });

    await t.step("without the CSRF token: refused", async () => {
      const { status } = await post({ yaml: yaml(50), window: "24h" });
      assert.equal(status, 403);
    });

    await t.step("unknown node: 404", async () => {
      const { status } = await post(
        { _csrf: operator.csrfToken, yaml: yaml(50), window: "24h" },
        operator,
        {},
        `/nodes/${crypto.randomUUID()}/config/replay`,
      );
      assert.equal(status, 404);
    });

    await t.step("nothing was written", async () => {
      assert.deepEqual(await countNodeRows(ctx, nodeId), before);
    });
  } finally {
    await ctx.close();
  }
});
