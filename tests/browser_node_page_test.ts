/// <reference lib="dom" />
// The node page in headless Chromium, as an operator uses it: from the dashboard to an offline node, its
// charts read (points, scaling markers, axes), the range switched in place with the URL following, a
// label added after a refused one, the status refreshing live, decommission behind its confirmation.
// Screenshots at 1366x900 and 390x844, light and dark, go to tests/.screenshots/node-*.png.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { createUserWithRole } from "./helpers/auth.ts";
import { browserTest, screenshot, VIEWPORTS, watchContext } from "./helpers/browser.ts";
import { insertNode, insertPool, poolOcid } from "./helpers/fixtures.ts";
import { seedFleet } from "./helpers/fleet_seed.ts";
import { seedNodeHistory } from "./helpers/node_history_seed.ts";

const POLL_WAIT_MS = 25_000; // the status fragment refreshes every 10 s

/** What the charts on the page show: per chart, its points, markers and axis labels. */
function readCharts(page: Page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("#node-charts figure.chart")].map((figure) => ({
      id: figure.id,
      points: figure.querySelectorAll("svg circle").length,
      lines: figure.querySelectorAll("svg path.line").length,
      up: figure.querySelectorAll("svg .marker-up").length,
      down: figure.querySelectorAll("svg .marker-down").length,
      markerTitle: figure.querySelector("svg .marker title")?.textContent ?? "",
      xLabels: [...figure.querySelectorAll(".axis-x text")].map((t) => t.textContent),
      unit: figure.querySelector(".axis-unit")?.textContent ?? "",
      width: figure.querySelector("svg")!.getBoundingClientRect().width,
    }))
  );
}

async function noOverflow(page: Page, what: string) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 0, `${what} is ${overflow} px wider than the viewport`);
}

browserTest(
  "browser: the node page",
  "browser_node_page",
  { start: new Date().toISOString() },
  async (t, { ctx, server, browser }) => {
    await seedFleet(ctx);
    // An offline node with 30 days of history in two pools; it stopped reporting 40 minutes ago.
    const now = ctx.clock.now().getTime();
    const etl = await insertNode(ctx, {
      name: "etl-eu-3",
      displayName: "ETL workers (Frankfurt)",
      hostname: "etl-3.fra.example.internal",
      region: "eu-frankfurt-1",
      agentVersion: "2.4.1",
      labels: { env: "prod", team: "data" },
      lastHeartbeatAt: new Date(now - 40 * 60_000),
      lastAddress: "10.0.4.17",
      configState: "in_sync",
    });
    const workers = await insertPool(ctx, etl, poolOcid("etlworkers"), {
      displayName: "etl workers",
      region: "eu-frankfurt-1",
      currentSize: 6,
      minSize: 2,
      maxSize: 12,
      lastCpuUtil: 58.2,
      lastMemoryUtil: 51.7,
      lastMetricsAt: new Date(now - 40 * 60_000),
    });
    const spark = await insertPool(ctx, etl, poolOcid("sparkexec"), {
      displayName: "spark executors",
      region: "eu-frankfurt-1",
      currentSize: 3,
      minSize: 1,
      maxSize: 8,
      lastCpuUtil: 33.1,
      lastMemoryUtil: 62.4,
      lastMetricsAt: new Date(now - 40 * 60_000),
    });
    await seedNodeHistory(ctx, {
      nodeId: etl,
      pools: [{ poolId: workers, min: 2, max: 12 }, {
        poolId: spark,
        min: 2,
        max: 8,
        phaseH: 5,
        load: -5,
      }],
      until: new Date(now - 40 * 60_000),
      days: 30,
      everyS: 600,
    });
    const operator = await createUserWithRole(ctx, "operator");
    const context = await browser.newContext({ viewport: VIEWPORTS.laptop, colorScheme: "light" });
    const watch = await watchContext(context, server.url);
    const page = await context.newPage();

    await t.step("log in, find the offline node on the dashboard, open it", async () => {
      await page.goto(`${server.url}/`);
      await page.getByLabel("Username").fill(operator.username);
      await page.getByLabel("Password").fill(operator.password);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForSelector("#dashboard-live");
      const attention = page.locator("#attention-title + .table-scroll");
      const row = attention.locator("tr", { hasText: "ETL workers (Frankfurt)" });
      assert.match(await row.textContent() ?? "", /Offline/);
      await row.getByRole("link").click();
      await page.waitForURL(new RegExp(`/nodes/${etl}$`));
      assert.equal(await page.locator("h1").textContent(), "ETL workers (Frankfurt)");
      assert.match(await page.locator("#node-status").textContent() ?? "", /Offline[\s\S]*40 min ago/);
    });

    await t.step("read the charts: points, scaling markers with titles, axes with units", async () => {
      const charts = await readCharts(page);
      assert.deepEqual(charts.map((c) => c.id), ["chart-cpu", "chart-memory", "chart-instances"]);
      for (const chart of charts) {
        assert.equal(chart.lines, 2, `${chart.id}: a line per pool`);
        // 24 h at 10-minute samples, in 5-minute buckets: 138 points per pool (the last 40 min are empty).
        assert.ok(chart.points > 200 && chart.points <= 2 * 288, `${chart.id}: ${chart.points} points`);
        assert.ok(chart.up + chart.down > 0, `${chart.id}: scaling events marked`);
        assert.match(chart.markerTitle, /^Scaled (up|down) (etl workers|spark executors) \d+ → \d+/);
        assert.ok(chart.xLabels.every((l) => /^\d\d:\d\d$/.test(l ?? "")), chart.xLabels.join(","));
      }
      assert.deepEqual(charts.map((c) => c.unit), ["%", "%", "instances"]);
      const legend = await page.locator("#chart-cpu .legend").textContent();
      assert.match(legend ?? "", /etl workers[\s\S]*spark executors/);
      // The text fallback: the data as a table, loaded when the details open.
      await page.locator("#chart-instances summary").click();
      await page.waitForSelector("#chart-instances table tbody tr");
      assert.ok(await page.locator("#chart-instances table tbody tr").count() > 100);
      await page.locator("#chart-instances summary").click();
      await screenshot(page, "node-laptop-light");
    });

    await t.step("switch the range in place: the URL follows, the page is not reloaded", async () => {
      await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1));
      await page.getByRole("link", { name: "30 d" }).click();
      await page.waitForURL(/\?range=30d$/);
      await page.waitForSelector('#node-charts a[aria-current="true"]:text("30 d")');
      const charts = await readCharts(page);
      for (const chart of charts) {
        // 30 days in 3-hour buckets: 240 per pool.
        assert.ok(
          chart.points >= 2 * 235 && chart.points <= 2 * 241,
          `${chart.id}: ${chart.points} points`,
        );
        assert.ok(
          chart.xLabels.every((l) => /^[A-Z][a-z]{2} \d{1,2}$/.test(l ?? "")),
          chart.xLabels.join(","),
        );
      }
      // A month of events: counted per day and direction, each marker saying how many.
      assert.ok(charts[2].up >= 28 && charts[2].up <= 31, `${charts[2].up} up markers`);
      assert.match(charts[2].markerTitle, /^\d+ scale-(up|down)s? between \d{4}-\d\d-\d\d 00:00 and/);
      assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 1);
      await screenshot(page, "node-30d-laptop-light");
      await page.getByRole("link", { name: "1 h" }).click();
      await page.waitForURL(/\?range=1h$/);
      await page.waitForSelector('#node-charts a[aria-current="true"]:text("1 h")');
      assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 1);
      // Back in history: the 30-day charts again.
      await page.goBack();
      await page.waitForURL(/\?range=30d$/);
      await page.waitForSelector('#node-charts a[aria-current="true"]:text("30 d")');
      await page.reload();
      await page.waitForSelector('#node-charts a[aria-current="true"]:text("30 d")');
    });

    await t.step("labels: a refused key keeps what was typed, then a good one is added", async () => {
      await page.getByLabel("Key", { exact: true }).fill("bad key");
      await page.getByLabel("Value", { exact: true }).fill(`o'brien "x"`);
      await page.getByRole("button", { name: "Add label" }).click();
      await page.waitForSelector("#key-error");
      assert.equal(await page.getByLabel("Value", { exact: true }).inputValue(), `o'brien "x"`);
      await screenshot(page, "node-label-error-laptop-light");
      await page.getByLabel("Key", { exact: true }).fill("owner");
      await page.getByRole("button", { name: "Add label" }).click();
      await page.waitForSelector(".flash-ok");
      assert.match(await page.locator("#labels").textContent() ?? "", /owner=o'brien "x"/);
      assert.match(page.url(), /\?range=30d#labels$/);
    });

    await t.step("the status refreshes live when the node reports again", async () => {
      await ctx.deps.pool.query("UPDATE nodes SET last_heartbeat_at = ? WHERE id = ?", [
        ctx.clock.now(),
        etl,
      ]);
      await page.waitForFunction(
        () => /Online/.test(document.querySelector("#node-status")?.textContent ?? ""),
        undefined,
        { timeout: POLL_WAIT_MS },
      );
    });

    await t.step("dark theme and phone, every screen without horizontal overflow", async () => {
      await page.emulateMedia({ colorScheme: "dark" });
      await page.goto(`${server.url}/nodes/${etl}`);
      await noOverflow(page, "laptop");
      await screenshot(page, "node-laptop-dark");
      const phone = await browser.newContext({ viewport: VIEWPORTS.phone, colorScheme: "light" });
      const phoneWatch = await watchContext(phone, server.url);
      await phone.addCookies(await context.cookies());
      const phonePage = await phone.newPage();
      for (const scheme of ["light", "dark"] as const) {
        await phonePage.emulateMedia({ colorScheme: scheme });
        await phonePage.goto(`${server.url}/nodes/${etl}?range=7d`);
        await noOverflow(phonePage, `phone ${scheme}`);
        const charts = await readCharts(phonePage);
        for (const chart of charts) assert.ok(chart.width <= 390 && chart.width > 300, `${chart.width}`);
        await screenshot(phonePage, `node-phone-${scheme}`);
      }
      await phone.close();
      assert.deepEqual(phoneWatch.foreign, []);
      await page.emulateMedia({ colorScheme: "light" });
    });

    await t.step("decommission asks first, then the node says it is decommissioned", async () => {
      await page.goto(`${server.url}/nodes/${etl}`);
      const decommission = page.getByRole("button", { name: "Decommission etl-eu-3" });
      assert.equal(await decommission.isVisible(), false, "hidden until asked for");
      await page.locator("summary", { hasText: "Decommission…" }).click();
      await decommission.click(); // the box is not ticked: the browser refuses the form
      assert.match(page.url(), new RegExp(`/nodes/${etl}$`));
      await page.getByLabel(/I understand/).check();
      await screenshot(page, "node-decommission-laptop-light");
      await decommission.click();
      await page.waitForSelector(".flash-ok");
      assert.match(await page.locator("#node-status").textContent() ?? "", /Decommissioned/);
    });

    await t.step("no request left the host, the CSP blocked nothing, no script error", () => {
      assert.deepEqual(watch.foreign, []);
      assert.deepEqual(watch.cspViolations, []);
      // The refused label (422) is provoked on purpose; nothing else may fail.
      assert.deepEqual(watch.errors.filter((e) => !/status of 422/.test(e)), []);
    });
    await context.close();
  },
);
