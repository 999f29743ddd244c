// A staged rollout from the console, in headless Chromium, over 20 simulated autoscalers (the simulator's
// in-process agents, real HTTP) labelled env=staging, one of which (sim-007) rejects every new config. The
// operator previews "cpu_threshold.max = 70" for env=staging, starts it with a canary of 2 and waves of 5,
// watches the canary go through, and sees the rollout pause by itself with sim-007's reason. The rollout job
// runs on the service's own job runner (its timers), as in production. Screenshots of the form with its
// preview and of the paused rollout, laptop and phone, light and dark, go to tests/.screenshots/rollouts/.
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { startFleet } from "../tools/simulator.ts";
import { launchBrowser } from "./helpers/browser.ts";
import { createUserWithRole, loginAs } from "./helpers/auth.ts";
import { eventually, startTestServer } from "./helpers/server.ts";

const SHOTS = new URL("./.screenshots/rollouts/", import.meta.url);
const SIZES = [
  { name: "laptop", width: 1366, height: 900 },
  { name: "phone", width: 390, height: 844 },
] as const;

async function shoot(browser: Browser, url: string, cookie: string, name: string, before?: string) {
  for (const scheme of ["light", "dark"] as const) {
    for (const size of SIZES) {
      const context = await browser.newContext({
        viewport: { width: size.width, height: size.height },
        colorScheme: scheme,
      });
      await context.addCookies([{ name: "acs_session", value: cookie, url }]);
      const page = await context.newPage();
      await page.goto(url);
      if (before) await page.locator(before).first().click();
      await page.screenshot({
        path: new URL(`${name}-${size.name}-${scheme}.png`, SHOTS).pathname,
        fullPage: true,
      });
      await context.close();
    }
  }
}

Deno.test({
  name: "browser: a rollout of 20 simulated nodes pauses when one rejects its config",
  sanitizeResources: false, // playwright keeps pipes to chromium that outlive the test's bookkeeping
  sanitizeOps: false,
  fn: async (t) => {
    const server = await startTestServer("browser_rollout");
    const dir = await Deno.makeTempDir({ prefix: "central-rollout-sim-" });
    const fleet = await startFleet({
      url: server.apiUrl,
      token: await server.enrollmentToken(),
      nodes: 20,
      pools: 1,
      tickMs: 1000,
      dir,
      prefix: "sim",
      labels: { env: "staging" },
      rejectConfig: ["sim-007"],
      clientOptions: { heartbeatIntervalMs: 1000, flushIntervalMs: 500, configWaitS: 20, retryBaseMs: 100 },
    });
    const browser = await launchBrowser();
    await Deno.mkdir(SHOTS, { recursive: true });
    server.ctx.services.jobs.start(); // the rollout job, on its timers, as main.ts starts it
    try {
      await eventually(
        "20 nodes registered",
        () => fleet.agents.every((agent) => agent.client.nodeId),
        60_000,
      );
      const user = await createUserWithRole(server.ctx, "operator", "olga");
      const viewer = await createUserWithRole(server.ctx, "viewer", "victor");
      const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error" || /Content Security Policy/i.test(message.text())) {
          problems.push(message.text());
        }
      });

      await t.step("log in, open Rollouts from the nav, preview the change for env=staging", async () => {
        await page.goto(`${server.baseUrl}/rollouts`);
        await page.getByLabel("Username").fill(user.username);
        await page.getByLabel("Password").fill(user.password);
        await page.getByRole("button", { name: "Log in" }).click();
        await page.waitForURL(/\/rollouts$/);
        await page.getByRole("link", { name: "New rollout" }).first().click();
        await page.getByLabel("Labels").fill("env:staging");
        await page.getByLabel("Merge patch (JSON) applied to each matching pool").fill(
          '{"cpu_threshold": {"max": 70}}',
        );
        await page.getByLabel("Canary").fill("2");
        await page.getByLabel("Wave size").fill("5");
        await page.getByLabel("Bake time (s)").fill("10");
        await page.getByLabel("Comment").fill("cpu max 70 on staging");
        await page.getByRole("button", { name: "Preview" }).click();
        await page.locator("#preview").waitFor();
        const preview = await page.locator("#preview").innerText();
        assert.match(preview, /20 nodes match/);
        assert.match(preview, /20 will change/);
        assert.match(preview, /What-if replay the first 3 of 20 nodes, last 24 hours/);
        assert.match(preview, /Canary \(2\) sim-001, sim-002/);
        assert.match(preview, /Wave 1 \(5\) sim-003, sim-004, sim-005, sim-006, sim-007/);
      });

      const cookie = (await context.cookies()).find((c) => c.name === "acs_session")!.value;
      await t.step("screenshots of the form with its preview", async () => {
        // The preview is a POST answer: shoot it from the browser that made it.
        for (const scheme of ["light", "dark"] as const) {
          for (const size of SIZES) {
            await page.emulateMedia({ colorScheme: scheme });
            await page.setViewportSize({ width: size.width, height: size.height });
            await page.locator("#preview details").first().evaluate((el) => el.setAttribute("open", ""));
            await page.screenshot({
              path: new URL(`new-${size.name}-${scheme}.png`, SHOTS).pathname,
              fullPage: true,
            });
          }
        }
        await page.setViewportSize({ width: 1366, height: 900 });
        await page.emulateMedia({ colorScheme: "light" });
      });

      let rolloutUrl = "";
      await t.step("start: the canary goes out and goes through", async () => {
        await page.getByRole("button", { name: "Start rollout of 20 nodes" }).last().click();
        await page.waitForURL(/\/rollouts\/\d+(#.*)?$/);
        rolloutUrl = page.url().replace(/#.*$/, "");
        assert.match(
          await page.locator(".flash").innerText(),
          /started: 20 nodes in 5 waves; the canary is out/,
        );
        // The page refreshes itself every 5 s: the canary is done once it baked 10 s.
        await page.locator(".wave-list .wave:first-child.wave-done").waitFor({ timeout: 60_000 });
      });

      await t.step("it pauses by itself when sim-007 rejects its config, and says why", async () => {
        const reason = page.locator(".pause-reason");
        await reason.waitFor({ timeout: 60_000 });
        assert.match(
          await reason.innerText(),
          /Paused: sim-007 rejected the new config: simulated rejection: sim-007 refuses config version 2/,
        );
        assert.match(await page.locator("#rollout-live").innerText(), /Paused/);
        const row = page.locator("tr.is-failed");
        assert.match(await row.innerText(), /sim-007/);
        assert.ok(await page.getByRole("link", { name: "Resume" }).isVisible());
        assert.ok(await page.getByRole("link", { name: "Abort" }).isVisible());
        assert.deepEqual(problems, []);
      });

      await t.step(
        "screenshots: paused rollout, the abort confirmation, a viewer's view, the list",
        async () => {
          await shoot(browser, rolloutUrl, cookie, "paused");
          await shoot(browser, `${rolloutUrl}?confirm=abort`, cookie, "confirm-abort");
          const viewerSession = await loginAs(server.ctx, viewer.username, viewer.password);
          const viewerCookie = viewerSession.cookie.replace("acs_session=", "");
          await shoot(browser, rolloutUrl, viewerCookie, "viewer");
          await shoot(browser, `${server.baseUrl}/rollouts`, cookie, "list");
          const viewerPage = await (await browser.newContext()).newPage();
          await viewerPage.context().addCookies([{
            name: "acs_session",
            value: viewerCookie,
            url: rolloutUrl,
          }]);
          await viewerPage.goto(rolloutUrl);
          assert.equal(await viewerPage.getByRole("link", { name: "Abort" }).count(), 0);
          assert.match(await viewerPage.locator(".pause-reason").innerText(), /sim-007/);
          await viewerPage.context().close();
        },
      );
      await context.close();
    } finally {
      await browser.close();
      await fleet.stop(1_000);
      await server.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
