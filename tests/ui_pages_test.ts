// The console's pages and fragments on a seeded database: full page vs partial, escaping of hostile
// names, forms (422 with the message at the field, nothing written), roles (a viewer sees no edit
// controls, a forged post is refused), the expired session on an htmx request, HTML errors for browsers.
import assert from "node:assert/strict";
import { createTestApp } from "./helpers/app.ts";
import { createUserWithRole, loginAs, type TestSession } from "./helpers/auth.ts";
import { countRows } from "./helpers/assertions.ts";
import { auditEntries } from "./helpers/fixtures.ts";
import { HOSTILE_NAME, type SeededFleet, seedFleet } from "./helpers/fleet_seed.ts";
import {
  expectFieldError,
  type FormFields,
  HTML,
  page,
  PARTIAL,
  postForm,
  submitForm,
} from "./helpers/ui.ts";

Deno.test("console pages", async (t) => {
  const ctx = await createTestApp("ui_pages");
  try {
    let fleet: SeededFleet;
    let admin: TestSession;
    let viewer: TestSession;
    let operator: TestSession;
    // The first admin's setup form and the login form, as typed into the browser.
    const setup = (code: string) =>
      postForm(ctx, "/setup", null, {
        code,
        username: "first-admin",
        password: "a-long-password-1",
        password_confirm: "a-long-password-1",
      });
    const login = (password: string, next: string) =>
      postForm(ctx, "/login", null, { username: "first-admin", password, next });
    // The nodes list's bulk label form, adding to both seeded nodes unless `form` says otherwise.
    const bulk = (session: TestSession, form: FormFields) =>
      submitForm(ctx, "/nodes/labels", session, { id: [fleet.online, fleet.offline], op: "add", ...form });

    await t.step("first run: / leads to /setup while no user exists", async () => {
      const res = await ctx.call("GET", "/", { headers: HTML });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/setup");
      const setupPage = await page(ctx, "/setup");
      assert.equal(setupPage.status, 200);
      assert.match(setupPage.html, /setup code/i);
    });

    await t.step(
      "setup refuses a wrong code with 422 at the field, typed values kept, nothing written",
      async () => {
        await expectFieldError(await setup("WRONG-CODE-HERE"), "code", ["first-admin"]);
        assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM users"), 0);
      },
    );

    await t.step("setup with the printed code creates the admin and logs in", async () => {
      const { issueSetupCode } = await import("../core/setup.ts");
      const code = await issueSetupCode(ctx.deps);
      assert.ok(code);
      const res = await setup(code!.toLowerCase());
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/");
      assert.match(res.headers.get("set-cookie") ?? "", /acs_session=/);
      assert.equal(await issueSetupCode(ctx.deps), undefined, "no code once a user exists");
      const again = await ctx.call("GET", "/setup", { headers: HTML });
      assert.equal(again.status, 303);
      assert.equal(again.headers.get("location"), "/login");
    });

    await t.step("seed", async () => {
      fleet = await seedFleet(ctx);
      admin = await loginAs(ctx, "first-admin", "a-long-password-1");
      const v = await createUserWithRole(ctx, "viewer");
      viewer = await loginAs(ctx, v.username, v.password);
      const o = await createUserWithRole(ctx, "operator");
      operator = await loginAs(ctx, o.username, o.password);
    });

    await t.step("anonymous GET redirects to /login?next=...", async () => {
      const res = await ctx.call("GET", "/nodes?status=offline", { headers: HTML });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/login?next=%2Fnodes%3Fstatus%3Doffline");
    });

    await t.step(
      "login: missing fields 422 at the field; wrong password 401; success goes to next",
      async () => {
        const missing = await login("", "/nodes");
        await expectFieldError(missing, "password", ["first-admin"]);
        const wrong = await login("nope-nope-nope", "/nodes");
        assert.equal(wrong.status, 401);
        assert.match(await wrong.text(), /Wrong username or password/);
        const ok = await login("a-long-password-1", "/nodes?x=1");
        assert.equal(ok.status, 303);
        assert.equal(ok.headers.get("location"), "/nodes?x=1");
        const evil = await login("a-long-password-1", "//evil.example");
        assert.equal(evil.headers.get("location"), "/");
      },
    );

    await t.step("dashboard: full page with layout, partial without, Vary and CSP set", async () => {
      const full = await page(ctx, "/", admin);
      assert.equal(full.status, 200);
      assert.match(full.html, /<!doctype html>/);
      assert.match(full.html, /id="dashboard-live"/);
      assert.match(full.html, /Needs attention/);
      assert.match(full.html, /batch-us-7/);
      assert.match(full.html, /<svg class="chart-svg"/);
      assert.match(full.html, /<title>Instances: /);
      assert.match(full.res.headers.get("vary") ?? "", /HX-Request-Type/);
      const csp = full.res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.doesNotMatch(full.html, /<script>(?!alert)/, "no inline script");
      const part = await page(ctx, "/", admin, PARTIAL);
      assert.equal(part.status, 200);
      assert.doesNotMatch(part.html, /<!doctype html>/);
      assert.match(part.html, /^\s*<div id="dashboard-live"/);
      assert.match(part.res.headers.get("vary") ?? "", /HX-Request/);
    });

    await t.step("hostile node name and labels stay text everywhere", async () => {
      for (const path of ["/", "/nodes", "/nodes?q=script", "/pools"]) {
        const { html } = await page(ctx, path, admin);
        assert.doesNotMatch(html, /<script>alert\(1\)<\/script>/, path);
        assert.doesNotMatch(html, /<img src=x/, path);
        assert.doesNotMatch(html, /" onmouseover="alert/, path);
        assert.doesNotMatch(html, /<i>quiet<\/i>/, path);
      }
      const { html } = await page(ctx, "/nodes?q=script", admin);
      assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
      assert.match(html, /o&quot;neil&#39;s &lt;b&gt;/);
      assert.ok(html.includes(HOSTILE_NAME.replaceAll("<", "&lt;").replaceAll(">", "&gt;")));
    });

    await t.step("nodes: filters kept in the URL and the form, partial for htmx", async () => {
      const { html } = await page(ctx, "/nodes?status=offline&region=us-ashburn-1", admin);
      assert.match(html, /batch-us-7/);
      assert.doesNotMatch(html, /web-eu-1/);
      assert.match(html, /<option value="offline" selected>/);
      assert.match(html, /hx-get="\/nodes\?status=offline&amp;region=us-ashburn-1"/);
      const cfg = await page(ctx, "/nodes?config_state=failed", admin);
      assert.match(cfg.html, /api-eu-2/);
      assert.doesNotMatch(cfg.html, /batch-us-7/);
      const labelled = await page(ctx, "/nodes?label=env%3Aprod", admin);
      assert.match(labelled.html, /web-eu-1/);
      assert.doesNotMatch(labelled.html, /batch-us-7/);
      const part = await page(ctx, "/nodes?status=offline", admin, PARTIAL);
      assert.match(part.html, /^\s*<div id="node-results"/);
      assert.doesNotMatch(part.html, /<form/);
    });

    await t.step("nodes: a malformed label filter is 422 with the message at the field", async () => {
      const { status, html } = await page(ctx, "/nodes?label=bad%20key", admin);
      assert.equal(status, 422);
      assert.match(html, /id="label-error"/);
      assert.match(html, /value="bad key"/);
    });

    await t.step("pools: every pool with node, limits and last scaled; filterable", async () => {
      const { html } = await page(ctx, "/pools", admin);
      assert.match(html, /web frontends/);
      assert.match(html, /2–10/);
      assert.match(html, /batch-us-7/);
      const filtered = await page(ctx, "/pools?q=web", admin);
      assert.match(filtered.html, /web frontends/);
      assert.doesNotMatch(filtered.html, /batchpool/);
    });

    await t.step("viewer sees no edit controls; operator does", async () => {
      const asViewer = await page(ctx, "/nodes", viewer);
      assert.equal(asViewer.status, 200);
      assert.doesNotMatch(asViewer.html, /id="bulk"/);
      assert.doesNotMatch(asViewer.html, /name="id"/);
      const asOperator = await page(ctx, "/nodes", operator);
      assert.match(asOperator.html, /id="bulk"/);
      assert.match(asOperator.html, /name="id" value="/);
    });

    await t.step("a viewer's forged bulk post is refused (403 page) and nothing is written", async () => {
      const res = await bulk(viewer, { id: fleet.online, key: "forged", value: "yes", return_to: "/nodes" });
      assert.equal(res.status, 403);
      assert.match(await res.text(), /Not allowed/);
      assert.deepEqual(await auditEntries(ctx, "node.update"), []);
    });

    await t.step("a post without the CSRF token is refused", async () => {
      const res = await postForm(ctx, "/nodes/labels", operator, {
        id: fleet.online,
        op: "add",
        key: "nocsrf",
        value: "x",
      });
      assert.equal(res.status, 403);
      assert.deepEqual(await auditEntries(ctx, "node.update"), []);
    });

    await t.step("bulk label: bad key is 422 at the field with values and selection kept", async () => {
      const res = await bulk(operator, { key: "bad key!", value: "v1", return_to: "/nodes?status=online" });
      const html = await expectFieldError(res, "key", ["bad key!"]);
      assert.match(html, new RegExp(`value="${fleet.online}"[^>]*checked`));
      assert.deepEqual(await auditEntries(ctx, "node.update"), []);
    });

    await t.step("bulk label: add then remove, redirect back with a message", async () => {
      const res = await bulk(operator, { key: "tier", value: "gold", return_to: "/nodes?status=offline" });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/nodes?status=offline");
      const flash = /acs_flash=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
      assert.ok(flash);
      const after = await page(ctx, "/nodes?label=tier%3Agold", operator, {
        cookie: `${operator.cookie}; acs_flash=${flash}`,
      });
      assert.match(after.html, /added to 2 nodes/);
      assert.match(after.html, /web-eu-1/);
      assert.equal((await auditEntries(ctx, "node.update")).length, 2);
      const removed = await bulk(operator, {
        id: fleet.online,
        op: "remove",
        key: "tier",
        return_to: "/nodes",
      });
      assert.equal(removed.status, 303);
      const left = await page(ctx, "/nodes?label=tier%3Agold", operator);
      assert.doesNotMatch(left.html, /web-eu-1/);
      assert.match(left.html, /batch-us-7/);
    });

    await t.step("expired session on an htmx request: HX-Redirect to login and back, no JSON", async () => {
      const v = await createUserWithRole(ctx, "viewer");
      const session = await loginAs(ctx, v.username, v.password);
      ctx.clock.advance((ctx.deps.settings.SESSION_TTL_HOURS + 1) * 3600_000);
      try {
        const res = await ctx.call("GET", "/", {
          headers: {
            cookie: session.cookie,
            ...PARTIAL,
            "hx-current-url": "http://localhost/nodes?status=offline",
          },
        });
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("hx-redirect"), "/login?next=%2Fnodes%3Fstatus%3Doffline");
        assert.equal(await res.text(), "");
        const plain = await ctx.call("GET", "/pools", { headers: { ...HTML, cookie: session.cookie } });
        assert.equal(plain.status, 303);
        assert.equal(plain.headers.get("location"), "/login?next=%2Fpools");
      } finally {
        ctx.clock.advance(-(ctx.deps.settings.SESSION_TTL_HOURS + 1) * 3600_000);
      }
    });

    await t.step("errors: HTML 404 for browsers, JSON for the API", async () => {
      const html = await page(ctx, "/no-such-page", admin);
      assert.equal(html.status, 404);
      assert.match(html.res.headers.get("content-type") ?? "", /text\/html/);
      assert.match(html.html, /Page not found/);
      const api = await ctx.call("GET", "/api/v1/no-such", { headers: HTML });
      assert.equal(api.status, 404);
      assert.match(api.headers.get("content-type") ?? "", /json/);
      const fragment = await page(ctx, "/no-such-page", admin, PARTIAL);
      assert.equal(fragment.res.headers.get("hx-retarget"), "#page-alert");
      assert.doesNotMatch(fragment.html, /<!doctype/);
    });

    await t.step("logout ends the session", async () => {
      const session = await loginAs(ctx, "first-admin", "a-long-password-1");
      const res = await submitForm(ctx, "/logout", session, {});
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/login");
      const after = await ctx.call("GET", "/", { headers: { ...HTML, cookie: session.cookie } });
      assert.equal(after.status, 303);
    });

    await t.step("static: cache-busted URLs are immutable, assets small", async () => {
      const { html } = await page(ctx, "/", admin);
      const urls = [...html.matchAll(/(?:src|href)="(\/static\/[^"]+)"/g)].map((m) =>
        m[1].replaceAll("&amp;", "&")
      );
      assert.equal(urls.length, 3, urls.join(","));
      let total = 0;
      for (const url of urls) {
        const res = await ctx.call("GET", url);
        assert.equal(res.status, 200, url);
        assert.match(res.headers.get("cache-control") ?? "", /immutable/);
        total += (await res.arrayBuffer()).byteLength;
      }
      assert.ok(total < 150 * 1024, `script+style ${total} bytes`);
    });
  } finally {
    await ctx.close();
  }
});
