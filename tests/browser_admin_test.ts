/// <reference lib="dom" />
// Administration and activity pages in headless Chromium: an admin creates an API key (shown once) and
// revokes it, a viewer sees no admin or audit links; screenshots of /events, /audit and the admin pages at
// laptop and phone width, light and dark. No request may leave the host and the CSP must block nothing.
import assert from "node:assert/strict";
import { createUserWithRole } from "./helpers/auth.ts";
import { browserTest, logIn, screenshot, VIEWPORTS, watchContext } from "./helpers/browser.ts";
import { seedFleet } from "./helpers/fleet_seed.ts";

browserTest("browser: activity and administration pages", "browser_admin", {
  start: new Date().toISOString(),
}, async (t, { ctx, server, browser }) => {
  await seedFleet(ctx);
  const admin = await createUserWithRole(ctx, "admin");
  const viewer = await createUserWithRole(ctx, "viewer");
  const context = await browser.newContext({ viewport: VIEWPORTS.laptop, colorScheme: "light" });
  const watch = await watchContext(context, server.url);
  const page = await context.newPage();
  await logIn(page, server.url, admin.username, admin.password);

  await t.step("admin creates an API key, sees it once, and revokes it", async () => {
    await page.getByRole("link", { name: "Admin" }).click();
    await page.getByRole("link", { name: "API keys" }).click();
    await page.waitForURL(/\/admin\/api-keys$/);
    await page.getByLabel("Name").fill("terraform-prod");
    await page.getByLabel("Role").selectOption("operator");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.locator("#secret").inputValue();
    assert.match(secret, /^ack_/);
    await screenshot(page, "admin/api-key-created-laptop-light");
    const works = await fetch(`${server.url}/api/v1/nodes`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(works.status, 200);
    await works.body?.cancel();
    await page.getByRole("link", { name: "Back to API keys" }).click();
    assert.equal(await page.locator(`text=${secret}`).count(), 0, "never shown again");
    await page.locator("summary", { hasText: "Revoke" }).first().click();
    await page.getByRole("button", { name: "Revoke terraform-prod" }).click();
    await page.waitForSelector(".flash");
    assert.match(await page.locator(".flash").textContent() ?? "", /revoked/);
    await screenshot(page, "admin/api-keys-laptop-light");
    const refused = await fetch(`${server.url}/api/v1/nodes`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
  });

  await t.step("screenshots of every page, laptop and phone, light and dark", async () => {
    const pages = [
      ["events", "/events?period="],
      ["audit", "/audit?period="],
      ["users", "/admin/users"],
      ["api-keys", "/admin/api-keys"],
      ["enrollment-tokens", "/admin/enrollment-tokens"],
      ["password", "/account/password"],
    ];
    for (const scheme of ["light", "dark"] as const) {
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        await page.emulateMedia({ colorScheme: scheme });
        await page.setViewportSize(viewport);
        for (const [name, path] of pages) {
          await page.goto(`${server.url}${path}`);
          assert.equal(await page.locator("h1").count(), 1, path);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
          assert.ok(overflow <= 1, `${path} fits ${size} width (overflow ${overflow}px)`);
          await screenshot(page, `admin/${name}-${size}-${scheme}`);
        }
      }
    }
  });

  await t.step("a viewer sees no admin or audit links, and /admin is refused", async () => {
    const viewerContext = await browser.newContext({ viewport: VIEWPORTS.laptop });
    const viewerPage = await viewerContext.newPage();
    await logIn(viewerPage, server.url, viewer.username, viewer.password);
    assert.equal(await viewerPage.getByRole("link", { name: "Admin" }).count(), 0);
    assert.equal(await viewerPage.getByRole("link", { name: "Audit" }).count(), 0);
    assert.equal(await viewerPage.getByRole("link", { name: "Events" }).count(), 1);
    const res = await viewerPage.goto(`${server.url}/admin/api-keys`);
    assert.equal(res?.status(), 403);
    await viewerContext.close();
  });

  assert.deepEqual(watch.foreign, []);
  assert.deepEqual(watch.cspViolations, []);
});
