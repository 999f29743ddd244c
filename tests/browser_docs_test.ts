// /docs and /redoc render in a real browser with every request kept on our own host (air-gapped).
import assert from "node:assert/strict";
import { launchBrowser, serveOnLoopback } from "./helpers/browser.ts";
import { createTestApp } from "./helpers/app.ts";

Deno.test({
  name: "browser: Swagger UI and ReDoc render offline",
  sanitizeResources: false, // playwright keeps pipes to chromium that outlive the test's bookkeeping
  sanitizeOps: false,
  fn: async (t) => {
    const ctx = await createTestApp("browser_docs");
    const server = serveOnLoopback(ctx.app.fetch);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      // The pages are served under a CSP; anything it blocks (inline script, eval, a stray style) is
      // reported here instead of silently breaking the page.
      const violations: string[] = [];
      await page.exposeFunction("reportCspViolation", (text: string) => violations.push(text));
      await page.addInitScript({
        content: `document.addEventListener("securitypolicyviolation", (event) => {
          globalThis.reportCspViolation(event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
            " (" + event.sourceFile + ":" + event.lineNumber + ")");
        });`,
      });
      page.on("console", (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      const foreign: string[] = [];
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith(server.url) || url.startsWith("data:") || url.startsWith("blob:")) {
          return route.continue();
        }
        foreign.push(url);
        return route.abort();
      });

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
        assert.deepEqual(violations, []);
      });

      await t.step("no request left the host", () => {
        assert.deepEqual(foreign, []);
      });
    } finally {
      await browser.close();
      await server.close();
      await ctx.close();
    }
  },
});
