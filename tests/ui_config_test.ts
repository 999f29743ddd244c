// The node configuration page (/nodes/{id}/config) on a real database: desired vs applied vs failed, the
// editor (422 with each error at its line, the typed text kept, nothing written), saving with a comment,
// history, diff, rollback behind a confirmation, fragments for htmx, CSRF, a viewer's read-only view, and
// escaping of hostile text.
import assert from "node:assert/strict";
import { HTML, page, postForm } from "./helpers/ui.ts";
import { ackConfig, setNodeConfig } from "../core/configs.ts";
import type { Principal } from "../core/principal.ts";
import { createTestApp } from "./helpers/app.ts";
import { createUserWithRole, loginAs, type TestSession } from "./helpers/auth.ts";
import { auditEntries } from "./helpers/fixtures.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";

const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaauiconfigpool";

const YAML_V1 = `# web tier autoscaler
pools:
  - instance_pool_id: ${POOL}
    compartment_id: ocid1.compartment.oc1..aaaauiconfig
    region: us-ashburn-1
    cpu_threshold: {min: 30, max: 75}   # raised in March
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
`;

const OPERATOR: Principal = { kind: "system", name: "seed" };

Deno.test("console: node configuration page", async (t) => {
  const ctx = await createTestApp("ui_config");
  try {
    const operatorUser = await createUserWithRole(ctx, "operator", "olga");
    const viewerUser = await createUserWithRole(ctx, "viewer", "victor");
    const operator = await loginAs(ctx, operatorUser.username, operatorUser.password);
    const viewer = await loginAs(ctx, viewerUser.username, viewerUser.password);
    const node = await createNodeWithToken(ctx, "web-<script>alert(1)</script>");
    const agent: Principal = { kind: "node", nodeId: node.nodeId, nodeName: node.name };
    const url = `/nodes/${node.nodeId}/config`;

    const post = async (
      path: string,
      form: Record<string, string>,
      session: TestSession | null = operator,
    ) => {
      const res = await postForm(ctx, path, session, form);
      return { status: res.status, html: await res.text(), location: res.headers.get("location") };
    };
    const versions = async () => {
      const [rows] = await ctx.deps.pool.query(
        "SELECT COUNT(*) AS n FROM config_versions WHERE node_id = ?",
        [
          node.nodeId,
        ],
      );
      return Number((rows as { n: number }[])[0].n);
    };

    await t.step("anonymous: sent to log in and back", async () => {
      const res = await ctx.call("GET", url, { headers: HTML });
      assert.equal(res.status, 303);
      assert.match(res.headers.get("location") ?? "", /^\/login\?next=/);
      await res.body?.cancel();
    });

    await t.step("no config yet: says so, the editor is empty for an operator", async () => {
      const { status, html } = await page(ctx, url, operator);
      assert.equal(status, 200);
      assert.match(html, /No configuration yet/);
      assert.match(html, /<textarea id="yaml" name="yaml"/);
      assert.match(html, /Save as version 1/);
    });

    await t.step(
      "a save with a schema error: 422, the error at its line, the text kept, nothing written",
      async () => {
        const broken = YAML_V1.replace("max: 75}   # raised", "max: 175}   # raised");
        const res = await post(url, {
          _csrf: operator.csrfToken,
          yaml: broken.replaceAll("\n", "\r\n"),
          comment: "",
        });
        assert.equal(res.status, 422);
        // Line 6 holds cpu_threshold; max sits at column 30.
        assert.match(
          res.html,
          /data-goto-line="6" data-goto-column="30">Line 6, column 30<\/a> <code>pools\.0\.cpu_threshold\.max<\/code> must be at most 100/,
        );
        assert.match(res.html, /<span class="err">6<\/span>/);
        assert.match(res.html, /id="comment-error"[^>]*>.*say what changes and why/);
        // The typed text comes back in the textarea, escaped, comments and all.
        assert.ok(res.html.includes("max: 175}   # raised in March"));
        assert.ok(res.html.includes("# web tier autoscaler"));
        assert.equal(await versions(), 0);
      },
    );

    await t.step("a YAML syntax error: 422 at the line where the { opened", async () => {
      const broken = YAML_V1.replace("{min: 20, max: 75}", "{min: 20, max: 75");
      const res = await post(url, { _csrf: operator.csrfToken, yaml: broken, comment: "typo" });
      assert.equal(res.status, 422);
      assert.match(res.html, /data-goto-line="7"[^>]*>Line 7, column 20<\/a> YAML syntax/);
      assert.equal(await versions(), 0);
    });

    let v1Hash = "";
    await t.step(
      "a valid save with a comment: version 1, redirect, flash, audited with the user",
      async () => {
        const res = await post(url, { _csrf: operator.csrfToken, yaml: YAML_V1, comment: "first config" });
        assert.equal(res.status, 303);
        assert.equal(res.location, url);
        assert.equal(await versions(), 1);
        const [audit] = await auditEntries(ctx, "config.create");
        assert.equal(audit.actor_name, "olga");
        const { html } = await page(ctx, url, operator, {
          cookie: `${operator.cookie}; acs_flash=${encodeURIComponent("ok:Saved as version 1.")}`,
        });
        assert.match(html, /Saved as version 1/);
        assert.match(html, /Version 1<\/strong>/);
        assert.match(html, /Pending/);
        assert.match(html, /first config/);
        v1Hash = /<code title="([0-9a-f]{64})">/.exec(html)![1];
      },
    );

    await t.step("the agent applies it: in sync, and the history marks desired and applied", async () => {
      await ackConfig(ctx.deps, { principal: agent }, node.nodeId, { hash: v1Hash, status: "applied" });
      const { html } = await page(ctx, url, operator);
      assert.match(html, /In sync/);
      assert.match(html, /The agent runs the desired version/);
      assert.match(html, /chip-desired/);
      assert.match(html, /chip-applied/);
    });

    await t.step("a comment-only edit is a new version, and the diff shows the comment line", async () => {
      const edited = YAML_V1.replace("raised in March", "raised in April");
      const res = await post(url, { _csrf: operator.csrfToken, yaml: edited, comment: "note the month" });
      assert.equal(res.status, 303);
      assert.equal(await versions(), 2);
      const { html } = await page(ctx, `${url}?from=1&to=2`, operator);
      assert.match(
        html,
        /<tr class="diff-removed"><td class="ln">6<\/td><td class="ln"><\/td>.*raised in March/,
      );
      assert.match(
        html,
        /<tr class="diff-added"><td class="ln"><\/td><td class="ln">6<\/td>.*raised in April/,
      );
      assert.match(html, /1 removed.*\n?.*1 added/);
    });

    await t.step("the agent fails the next version: its error is shown, and what it still runs", async () => {
      const v3 = await setNodeConfig(ctx.deps, ctx.services, { principal: OPERATOR }, node.nodeId, {
        config: YAML_V1.replace("max: 10}", "max: 12}"),
        comment: "more room",
      });
      await ackConfig(ctx.deps, { principal: agent }, node.nodeId, {
        hash: v3.hash,
        status: "failed",
        error: "pool <ocid1...> not found",
      });
      const { html } = await page(ctx, url, operator);
      assert.match(html, /Failed/);
      assert.match(html, /The agent's error for version 3/);
      assert.ok(html.includes("pool &lt;ocid1...&gt; not found"));
      assert.match(html, /Version 1<\/strong> <code/); // on the agent: still version 1 (its hash)
    });

    await t.step("rollback asks first (a page, no script), then rolls back with a comment", async () => {
      const confirm = await page(ctx, `${url}?rollback=1`, operator);
      assert.match(confirm.html, /Roll back to version 1\?/);
      assert.match(confirm.html, /name="version" value="1"/);
      assert.match(confirm.html, /diff-removed/);
      assert.equal(await versions(), 3);
      const res = await post(`${url}/rollback`, {
        _csrf: operator.csrfToken,
        version: "1",
        comment: "back to v1",
      });
      assert.equal(res.status, 303);
      assert.equal(await versions(), 4);
      const { html } = await page(ctx, url, operator);
      assert.match(html, /↩ from v1<\/span> back to v1/);
      // The old text is back, comments and all, as the desired version 4.
      assert.ok(html.includes("raised in March"));
      assert.match(html, /Version 4<\/strong>/);
    });

    await t.step(
      "posts without the CSRF token, or from a viewer, are refused and write nothing",
      async () => {
        const before = await versions();
        const forged = await post(url, { yaml: YAML_V1, comment: "x" });
        assert.equal(forged.status, 403);
        const anonymous = await post(url, { _csrf: operator.csrfToken, yaml: YAML_V1, comment: "x" }, null);
        assert.equal(anonymous.status, 303); // to the login page, not a save
        assert.match(anonymous.location ?? "", /^\/login/);
        const byViewer = await post(`${url}/rollback`, {
          _csrf: viewer.csrfToken,
          version: "2",
          comment: "x",
        }, viewer);
        assert.equal(byViewer.status, 403);
        assert.equal(await versions(), before);
      },
    );

    await t.step("a viewer reads the config but sees no edit controls", async () => {
      const { status, html } = await page(ctx, url, viewer);
      assert.equal(status, 200);
      // No editor to save from (the only text box is the what-if panel's, which saves nothing).
      assert.doesNotMatch(html, /<textarea id="yaml"/);
      assert.doesNotMatch(html, /Save as version/);
      assert.equal(html.match(/<textarea/g)?.length, 1);
      assert.match(html, /<textarea id="replay-yaml"/);
      assert.doesNotMatch(html, /Roll back to this/);
      assert.doesNotMatch(html, /action="[^"]*\/rollback"/);
      assert.match(html, /changing it needs the operator role/);
      assert.ok(html.includes("# web tier autoscaler"));
      const confirm = await page(ctx, `${url}?rollback=1`, viewer);
      assert.doesNotMatch(confirm.html, /Roll back to version 1\?/);
    });

    await t.step("htmx fragments: the status panel and the diff alone, with Vary", async () => {
      const partial = { "hx-request": "true", "hx-request-type": "partial" };
      const status = await page(ctx, url, viewer, { ...partial, "hx-target": "section#config-status" });
      assert.equal(status.status, 200);
      assert.match(status.html, /^\s*<section id="config-status"/);
      assert.doesNotMatch(status.html, /<html/);
      assert.match(status.res.headers.get("vary") ?? "", /HX-Request/);
      const diff = await page(ctx, `${url}?from=2&to=4`, viewer, {
        ...partial,
        "hx-target": "section#config-diff",
      });
      assert.match(diff.html, /^\s*<section id="config-diff"/);
      assert.match(diff.html, /raised in April/);
    });

    await t.step("user text is escaped everywhere: node name, YAML, comments", async () => {
      await post(url, {
        _csrf: operator.csrfToken,
        yaml: `# </textarea><script>alert(2)</script>\n${YAML_V1}`,
        comment: `"><img src=x onerror=alert(3)>`,
      });
      const { html } = await page(ctx, url, operator);
      assert.doesNotMatch(html, /<script>alert/);
      assert.doesNotMatch(html, /<img src=x/);
      assert.ok(html.includes("&lt;/textarea&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
      assert.ok(html.includes("web-&lt;script&gt;alert(1)&lt;/script&gt;"));
    });

    await t.step("bad version numbers in the URL are ignored; an unknown node is a 404 page", async () => {
      const odd = await page(ctx, `${url}?from=x&to=-1&rollback=abc`, operator);
      assert.equal(odd.status, 200);
      const missing = await page(ctx, `${url}?from=1&to=99`, operator);
      assert.match(missing.html, /There is no version 99/);
      const unknown = await page(ctx, `/nodes/${crypto.randomUUID()}/config`, operator);
      assert.equal(unknown.status, 404);
      assert.match(unknown.html, /<html/);
    });
  } finally {
    await ctx.close();
  }
});
