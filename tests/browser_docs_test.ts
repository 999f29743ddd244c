// /docs and /redoc render in a real browser with every request kept on our own host (air-gapped).
import assert from "node:assert/strict";
import { browserTest, watchContext } from "./helpers/browser.ts";

browserTest(
  "browser: Swagger UI and ReDoc render offline",
  "browser_docs",
  {},
  async (t, { server, browser }) => {
    // The pages are served under a CSP; anything it blocks (inline script, eval, a stray style) is
    // reported instead of silently breaking the page, and every request must stay on our host.
    const context = await browser.newContext();
    const watch = await watchContext(context, server.url);
    const page = await context.newPage();

    await t.step("Swagger UI lists the operations", async () => {
      const res = await page.goto(`${server.url}/docs`);
      assert.match(res?.headers()["content-security-policy"] ?? "", /frame-ancestors 'none'/);
      await page.waitForSelector(".opblock-summary-path", { timeout: 15_000 });
      const paths = await page.locator(".opblock-summary-path").allTextContents();
      assert.ok(paths.some((p) => p.includes("/healthz")), paths.join(", "));
      const title = await page.locator(".info .title").first().textContent();
      assert.match(title ?? "", /Autoscaler Central/);
    });

    await t.step("ReDoc shows the API title", async () => {
      await page.goto(`${server.url}/redoc`);
      await page.waitForSelector("h1", { timeout: 15_000 });
      assert.match((await page.locator("h1").first().textContent()) ?? "", /Autoscaler Central/);
      // ReDoc builds its search index in a worker; let it start before looking for violations.
      await page.waitForTimeout(500);
    });

    await t.step("the CSP blocked nothing on either page", () => {
      assert.deepEqual(watch.cspViolations, []);
      assert.deepEqual(watch.errors.filter((e) => /Content Security Policy/i.test(e)), []);
    });

    await t.step("no request left the host", () => {
      assert.deepEqual(watch.foreign, []);
    });
  },
);
