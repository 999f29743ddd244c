// The what-if panel in headless Chromium: an operator lowers a threshold in the editor, replays it over a
// week of simulated history (htmx: only the results are swapped, nothing saved), and the same with
// JavaScript off (a plain form post). Screenshots at laptop and phone sizes, light and dark, go to
// tests/.screenshots/replay/ (not committed).
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { setNodeConfig } from "../core/configs.ts";
import { initialConfig, PoolLoad, ruleFromConfig, SimulatedPool } from "../tools/simulator.ts";
import { toYaml } from "../core/configDocument.ts";
import type { TestApp } from "./helpers/app.ts";
import { browserTest } from "./helpers/browser.ts";
import { createUserWithRole, loginAs } from "./helpers/auth.ts";
import { countNodeRows, insertEvents, insertNode, insertPool, insertSamples } from "./helpers/fixtures.ts";

const NOW = "2026-06-08T12:00:00Z";
const SHOTS = new URL("./.screenshots/replay/", import.meta.url);
const SIZES = [
  { name: "laptop", width: 1366, height: 900 },
  { name: "phone", width: 390, height: 844 },
] as const;

/** A node of two simulated pools with a week of 5-minute samples and the scaling events the rule took. */
async function seedWeek(ctx: TestApp): Promise<{ nodeId: string; yaml: string }> {
  const nodeId = await insertNode(ctx, { name: "web-eu-1" });
  const config = initialConfig("web", 1, 2, "eu-frankfurt-1");
  const pools = config.pools as Record<string, unknown>[];
  pools[1].scheduler_max_instances = 2;
  pools[1].schedules = [{ start_time: "06:00", end_time: "07:00" }];
  const yaml = toYaml(config);
  await setNodeConfig(ctx.deps, ctx.services, { principal: { kind: "system", name: "seed" } }, nodeId, {
    config: yaml,
  });
  const end = Date.parse(NOW);
  for (const [index, entry] of pools.entries()) {
    const ocid = String(entry.instance_pool_id);
    const poolId = await insertPool(ctx, nodeId, ocid, { displayName: index === 0 ? "web-frontend" : "api" });
    const pool = new SimulatedPool(ocid, ruleFromConfig(entry), new PoolLoad(3, ocid));
    const samples = [];
    const events = [];
    for (let ms = end - 7 * 86_400_000 + 300_000; ms <= end - 300_000; ms += 60_000) {
      const o = pool.step(ms);
      samples.push({
        ts: new Date(ms),
        cpu: o.cpu,
        memory: o.ram,
        instances: o.decision ? o.decision.to : o.count,
      });
      if (o.decision) {
        events.push({ ts: new Date(ms), direction: o.decision.direction, from: o.count, to: o.decision.to });
      }
    }
    await insertSamples(ctx, nodeId, poolId, samples);
    await insertEvents(ctx, nodeId, poolId, events);
  }
  return { nodeId, yaml };
}

async function shoot(browser: Browser, origin: string, cookie: string, path: string, proposal: string) {
  for (const scheme of ["light", "dark"] as const) {
    for (const size of SIZES) {
      const context = await browser.newContext({
        viewport: { width: size.width, height: size.height },
        colorScheme: scheme,
      });
      const [name, value] = cookie.split("=");
      await context.addCookies([{ name, value, url: origin }]);
      const page = await context.newPage();
      await page.goto(`${origin}${path}`);
      await page.fill("#yaml", proposal);
      await page.selectOption("#replay-window", "7d");
      await page.click("button.replay-button");
      await page.waitForSelector("#replay-results .replay-verdict");
      await page.locator("#replay").screenshot({
        path: new URL(`panel-${size.name}-${scheme}.png`, SHOTS).pathname,
      });
      await context.close();
    }
  }
}

browserTest(
  "browser: what if, over a week of history, with and without JavaScript",
  "browser_replay",
  { start: NOW },
  async (t, { ctx, server, browser }) => {
    await Deno.mkdir(SHOTS, { recursive: true });
    const user = await createUserWithRole(ctx, "operator", "olga");
    const session = await loginAs(ctx, user.username, user.password);
    const { nodeId, yaml } = await seedWeek(ctx);
    const proposal = yaml.replaceAll("max: 75", "max: 60").replace("min: 30", "min: 20");
    const path = `/nodes/${nodeId}/config`;
    const before = await countNodeRows(ctx, nodeId);

    await t.step("htmx: the results replace the invitation; the editor keeps the text", async () => {
      const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
      const [name, value] = session.cookie.split("=");
      await context.addCookies([{ name, value, url: server.url }]);
      const page = await context.newPage();
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console: ${message.text()}`);
      });
      await page.goto(`${server.url}${path}`);
      await page.fill("#yaml", proposal);
      await page.selectOption("#replay-window", "7d");
      await page.click("button.replay-button");
      await page.waitForSelector("#replay-results .replay-verdict");
      assert.equal(page.url(), `${server.url}${path}`); // swapped in place, no navigation
      const verdict = await page.textContent(".replay-verdict");
      assert.match(
        verdict ?? "",
        /^Over the last 7 d, the proposed config would have scaled these 2 pools \d+ times/,
      );
      assert.equal(await page.locator(".replay-pool").count(), 2);
      assert.equal(await page.locator(".replay-pool svg.chart-svg").count(), 2);
      assert.equal(await page.inputValue("#yaml"), proposal);
      assert.deepEqual(problems, []);
      await page.screenshot({ path: new URL("page-laptop-light.png", SHOTS).pathname, fullPage: true });
      await context.close();
    });

    await t.step("without JavaScript: a form post, the page comes back with the results", async () => {
      const context = await browser.newContext({
        viewport: { width: 1366, height: 900 },
        javaScriptEnabled: false,
      });
      const [name, value] = session.cookie.split("=");
      await context.addCookies([{ name, value, url: server.url }]);
      const page = await context.newPage();
      await page.goto(`${server.url}${path}`);
      await page.fill("#yaml", proposal);
      await page.selectOption("#replay-window", "24h");
      await Promise.all([page.waitForNavigation(), page.click("button.replay-button")]);
      assert.match(page.url(), /\/config\/replay#replay$/);
      assert.match((await page.textContent(".replay-verdict")) ?? "", /^Over the last 24 h/);
      assert.equal(await page.inputValue("#yaml"), proposal);
      await context.close();
    });

    await t.step("screenshots: laptop and phone, light and dark", async () => {
      await shoot(browser, server.url, session.cookie, path, proposal);
    });

    await t.step("nothing was saved", async () => {
      assert.deepEqual(await countNodeRows(ctx, nodeId), before);
    });
  },
);
