/// <reference lib="dom" />
// The console in headless Chromium, as a new operator uses it: first-run setup with the code from the
// log, the dashboard, finding an offline node, the node list (search kept in the URL, live status), the
// pools, logging out and in, a viewer without edit controls, a session that expires while a page polls.
// Screenshots of every page at 1366x900 and 390x844, light and dark, go to tests/.screenshots/.
// No request may leave the host, and the CSP must block nothing.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { issueSetupCode } from "../core/setup.ts";
import { createUserWithRole } from "./helpers/auth.ts";
import { browserTest, screenshot, VIEWPORTS, watchContext } from "./helpers/browser.ts";
import { insertNode, newNodeToken } from "./helpers/fixtures.ts";
import { seedFleet } from "./helpers/fleet_seed.ts";

const POLL_WAIT_MS = 25_000; // the pages refresh every 10 s

async function waitForText(page: Page, selector: string, text: RegExp, timeout = POLL_WAIT_MS) {
  await page.waitForFunction(
    ({ selector, source }) => new RegExp(source).test(document.querySelector(selector)?.textContent ?? ""),
    { selector, source: text.source },
    { timeout },
  );
}

browserTest(
  "browser: the operator console",
  "browser_console",
  { start: new Date().toISOString() },
  async (t, { ctx, server, browser }) => {
    const password = "first-admin-password";
    const context = await browser.newContext({ viewport: VIEWPORTS.laptop, colorScheme: "light" });
    const watch = await watchContext(context, server.url);
    const page = await context.newPage();

    await t.step("first run: setup with the code from the log, then the dashboard", async () => {
      const code = await issueSetupCode(ctx.deps);
      assert.ok(code);
      await page.goto(`${server.url}/`);
      assert.equal(new URL(page.url()).pathname, "/setup");
      await screenshot(page, "setup-laptop-light");
      await page.getByLabel("Setup code").fill("AAAA-BBBB-CCCC");
      await page.getByLabel("Admin username").fill("admin");
      await page.getByLabel("Password", { exact: true }).fill(password);
      await page.getByLabel("Password again").fill(password);
      await page.getByRole("button", { name: /create admin/i }).click();
      await page.waitForSelector("#code-error");
      assert.equal(await page.getByLabel("Admin username").inputValue(), "admin");
      await screenshot(page, "setup-error-laptop-light");
      await page.getByLabel("Setup code").fill(code!);
      await page.getByLabel("Password", { exact: true }).fill(password);
      await page.getByLabel("Password again").fill(password);
      await page.getByRole("button", { name: /create admin/i }).click();
      await page.waitForSelector("#dashboard-live");
      assert.equal(new URL(page.url()).pathname, "/");
      assert.match(await page.locator(".flash").textContent() ?? "", /Welcome, admin/);
    });

    let fleet: Awaited<ReturnType<typeof seedFleet>>;
    await t.step("the dashboard shows the fleet and what needs attention", async () => {
      fleet = await seedFleet(ctx);
      await page.goto(`${server.url}/`);
      await page.waitForSelector("#dashboard-live svg.chart-svg");
      const attention = await page.locator("#attention-title + .table-scroll").textContent() ?? "";
      assert.match(attention, /batch-us-7/);
      assert.match(attention, /Offline/);
      assert.match(attention, /api-eu-2/);
      assert.match(attention, /Failed/);
      // A hostile node name is shown as text.
      assert.match(attention, /<script>alert\(1\)<\/script>/);
      await screenshot(page, "dashboard-laptop-light");
    });

    await t.step("from the dashboard to an offline node", async () => {
      await page.getByRole("link", { name: /Offline/ }).first().click();
      await page.waitForURL(/\/nodes\?status=offline/);
      const rows = await page.locator("#node-results tbody tr").allTextContents();
      assert.equal(rows.length, 1, rows.join(" | "));
      assert.match(rows[0], /batch-us-7/);
      await screenshot(page, "nodes-offline-laptop-light");
      await page.getByRole("link", { name: "batch-us-7" }).click();
      await page.waitForURL(new RegExp(`/nodes/${fleet.offline}$`));
    });

    await t.step("nodes: the search updates the results in place and the URL keeps it", async () => {
      await page.goto(`${server.url}/nodes`);
      await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1));
      await page.getByLabel("Search").fill("web");
      await page.waitForURL(/q=web/);
      await waitForText(page, "#node-results", /web-eu-1/, 5_000);
      assert.equal(await page.locator("#node-results tbody tr").count(), 1);
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
        1,
        "no reload",
      );
      await page.reload();
      assert.equal(await page.getByLabel("Search").inputValue(), "web");
      assert.equal(await page.locator("#node-results tbody tr").count(), 1);
    });

    await t.step("nodes: a node's status turns offline live when its heartbeats stop", async () => {
      const { token, tokenHash } = await newNodeToken(ctx);
      const nodeId = await insertNode(ctx, { name: "live-node", tokenHash, region: "eu-frankfurt-1" });
      const beat = await ctx.call("POST", `/api/v1/nodes/${nodeId}/heartbeat`, {
        token,
        json: { status: "ok" },
      });
      assert.equal(beat.status, 200);
      await page.goto(`${server.url}/nodes?q=live-node`);
      await waitForText(page, `#node-row-${nodeId}`, /Online/, 5_000);
      await screenshot(page, "nodes-live-online-laptop-light");
      await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 2));
      await page.getByLabel("Search").focus();
      // No heartbeat for longer than OFFLINE_AFTER_S.
      ctx.clock.advance((ctx.deps.settings.OFFLINE_AFTER_S + 5) * 1000);
      await waitForText(page, `#node-row-${nodeId}`, /Offline/);
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
        2,
        "no reload",
      );
      assert.equal(await page.evaluate(() => document.activeElement?.id), "q", "focus kept");
    });

    await t.step("nodes page and pools page, full list", async () => {
      await page.goto(`${server.url}/nodes`);
      await screenshot(page, "nodes-laptop-light");
      await page.goto(`${server.url}/pools`);
      await page.waitForSelector("#pool-results table");
      assert.match(await page.locator("#pool-results").textContent() ?? "", /web frontends/);
      await screenshot(page, "pools-laptop-light");
    });

    await t.step("dark theme", async () => {
      await page.emulateMedia({ colorScheme: "dark" });
      for (const [path, name] of [["/", "dashboard"], ["/nodes", "nodes"], ["/pools", "pools"]]) {
        await page.goto(`${server.url}${path}`);
        await screenshot(page, `${name}-laptop-dark`);
      }
      const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.notEqual(background, "rgb(246, 247, 249)", "dark background");
      await page.emulateMedia({ colorScheme: "light" });
    });

    await t.step("log out, then a wrong password, then back in", async () => {
      await page.getByRole("button", { name: "Log out" }).click();
      await page.waitForURL(/\/login$/);
      await page.getByLabel("Username").fill("admin");
      await page.getByLabel("Password").fill("not-the-password");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForSelector(".alert-bad");
      await screenshot(page, "login-error-laptop-light");
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForSelector("#dashboard-live");
    });

    await t.step("a session that expires while the dashboard polls goes to login and back", async () => {
      await page.goto(`${server.url}/pools?q=web`);
      await page.goto(`${server.url}/`);
      ctx.clock.advance((ctx.deps.settings.SESSION_TTL_HOURS + 1) * 3600_000);
      await page.waitForURL(/\/login\?next=%2F$|\/login$/, { timeout: POLL_WAIT_MS });
      assert.equal(await page.locator("#dashboard-live").count(), 0, "no fragment swapped in");
      await page.goto(`${server.url}/pools?q=web`);
      await page.waitForURL(/\/login\?next=%2Fpools%3Fq%3Dweb/);
      await page.getByLabel("Username").fill("admin");
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForURL(/\/pools\?q=web$/);
    });

    await t.step("a viewer sees no edit controls", async () => {
      const viewer = await createUserWithRole(ctx, "viewer");
      const viewerContext = await browser.newContext({ viewport: VIEWPORTS.laptop });
      const viewerWatch = await watchContext(viewerContext, server.url);
      const viewerPage = await viewerContext.newPage();
      await viewerPage.goto(`${server.url}/nodes`);
      await viewerPage.getByLabel("Username").fill(viewer.username);
      await viewerPage.getByLabel("Password").fill(viewer.password);
      await viewerPage.getByRole("button", { name: "Log in" }).click();
      await viewerPage.waitForSelector("#node-results");
      assert.equal(await viewerPage.locator("#bulk").count(), 0);
      assert.equal(await viewerPage.locator("input[type=checkbox]").count(), 0);
      await screenshot(viewerPage, "nodes-viewer-laptop-light");
      await viewerContext.close();
      assert.deepEqual(viewerWatch.foreign, []);
    });

    await t.step("phone: every page fits 390 px", async () => {
      const phone = await browser.newContext({ viewport: VIEWPORTS.phone, colorScheme: "light" });
      const phoneWatch = await watchContext(phone, server.url);
      const phonePage = await phone.newPage();
      await phonePage.goto(`${server.url}/login`);
      await screenshot(phonePage, "login-phone-light");
      await phonePage.getByLabel("Username").fill("admin");
      await phonePage.getByLabel("Password").fill(password);
      await phonePage.getByRole("button", { name: "Log in" }).click();
      await phonePage.waitForSelector("#dashboard-live");
      for (const scheme of ["light", "dark"] as const) {
        await phonePage.emulateMedia({ colorScheme: scheme });
        for (const [path, name] of [["/", "dashboard"], ["/nodes", "nodes"], ["/pools", "pools"]]) {
          await phonePage.goto(`${server.url}${path}`);
          const overflow = await phonePage.evaluate(() => document.documentElement.scrollWidth - innerWidth);
          assert.ok(overflow <= 0, `${path} is ${overflow} px wider than the phone`);
          await screenshot(phonePage, `${name}-phone-${scheme}`);
        }
      }
      await phone.close();
      assert.deepEqual(phoneWatch.foreign, []);
      assert.deepEqual(phoneWatch.cspViolations, []);
    });

    await t.step("no request left the host, the CSP blocked nothing, no script error", () => {
      assert.deepEqual(watch.foreign, []);
      assert.deepEqual(watch.cspViolations, []);
      // The wrong setup code (422), wrong password (401), the missing node page (404) and the expired
      // session (401) are provoked on purpose; nothing else may fail.
      const unexpected = watch.errors.filter((e) => !/status of (401|404|422)/.test(e));
      assert.deepEqual(unexpected, []);
    });
    await context.close();
  },
);
