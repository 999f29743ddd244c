// What an operator does with a node's config, in headless Chromium: log in, open the node's config page,
// save a config with a mistake, see the message at its line (and the cursor put there), fix it and save,
// compare the two versions, roll back behind the confirmation. Screenshots of each state at laptop and
// phone sizes, light and dark, go to tests/.screenshots/config/ (created here, not committed).
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { ackConfig, setNodeConfig } from "../core/configs.ts";
import { browserTest } from "./helpers/browser.ts";
import { createUserWithRole } from "./helpers/auth.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";

const SHOTS = new URL("./.screenshots/config/", import.meta.url);
const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaabrowserpool01";

const AGENT_YAML = `# Written by the agent's installer; edit it in Autoscaler Central.
pools:
  - instance_pool_id: ${POOL}
    compartment_id: ocid1.compartment.oc1..aaaaaaaabrowser
    region: us-ashburn-1
    monitoring_method: oci
    cpu_threshold: {min: 30, max: 75}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
    scheduler_max_instances: 3
    schedules: [{start_time: "05:30", end_time: "05:50"}]
`;

const SIZES = [
  { name: "laptop", width: 1366, height: 900 },
  { name: "phone", width: 390, height: 844 },
] as const;

async function shoot(browser: Browser, url: string, cookie: { name: string; value: string }, name: string) {
  for (const scheme of ["light", "dark"] as const) {
    for (const size of SIZES) {
      const context = await browser.newContext({
        viewport: { width: size.width, height: size.height },
        colorScheme: scheme,
      });
      await context.addCookies([{ name: cookie.name, value: cookie.value, url }]);
      const page = await context.newPage();
      await page.goto(url);
      await page.screenshot({
        path: new URL(`${name}-${size.name}-${scheme}.png`, SHOTS).pathname,
        fullPage: true,
      });
      await context.close();
    }
  }
}

browserTest(
  "browser: edit a node's config with an error, fix it, see the diff, roll back",
  "browser_config",
  {},
  async (t, { ctx, server, browser }) => {
    await Deno.mkdir(SHOTS, { recursive: true });
    const user = await createUserWithRole(ctx, "operator", "olga");
    const node = await createNodeWithToken(ctx, "web-eu-1");
    const agent = { kind: "node" as const, nodeId: node.nodeId, nodeName: node.name };
    // The agent brought its own file at registration (version 1) and runs it.
    const v1 = await setNodeConfig(ctx.deps, ctx.services, { principal: agent }, node.nodeId, {
      config: AGENT_YAML,
      comment: "brought by the agent at registration",
    });
    await ackConfig(ctx.deps, { principal: agent }, node.nodeId, { hash: v1.hash, status: "applied" });
    const configUrl = `${server.url}/nodes/${node.nodeId}/config`;

    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page: Page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // The refused save answers 422 on purpose; the browser logs that status as an error.
      if (/status of 422/.test(message.text())) return;
      if (message.type() === "error" || /Content Security Policy/i.test(message.text())) {
        problems.push(message.text());
      }
    });

    await t.step("log in and open the node's config page", async () => {
      await page.goto(configUrl);
      assert.match(page.url(), /\/login/);
      await page.getByLabel("Username").fill(user.username);
      await page.getByLabel("Password").fill(user.password);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForURL(/\/config$/);
      assert.equal(
        await page.getByRole("heading", { level: 1 }).textContent().then((s) => s?.trim()),
        "Configuration · web-eu-1",
      );
      assert.match(await page.locator("#config-status").innerText(), /In sync/);
      assert.equal(await page.locator("#yaml").inputValue(), AGENT_YAML);
    });

    const cookie = (await context.cookies()).find((c) => c.name === "acs_session")!;

    await t.step("save with a mistake: the message at the field and line, the text kept", async () => {
      const editor = page.locator("#yaml");
      const wrong = AGENT_YAML.replace(
        "cpu_threshold: {min: 30, max: 75}",
        "cpu_threshold: {min: 30, max: 150}",
      );
      await editor.fill(wrong);
      await page.getByLabel(/^Comment/).fill("raise cpu max for the sale");
      await page.getByRole("button", { name: /Save as version 2/ }).click();
      await page.waitForLoadState();
      const errors = page.locator("#yaml-errors");
      assert.match(
        await errors.innerText(),
        /Line 7, column 30\s+pools\.0\.cpu_threshold\.max must be at most 100/,
      );
      assert.equal(await editor.inputValue(), wrong);
      assert.equal(await page.getByLabel(/^Comment/).inputValue(), "raise cpu max for the sale");
      assert.equal(await page.locator(".gutter .err").innerText(), "7");
      // "Line 7" puts the cursor on the faulty line.
      await page.getByRole("link", { name: /Line 7, column 30/ }).click();
      const caret = await page.evaluate(
        `(() => { const el = document.getElementById("yaml"); return el.value.slice(0, el.selectionStart).split("\\n").length; })()`,
      );
      assert.equal(caret, 7);
    });
    await shoot(browser, configUrl, cookie, "1-overview");
    await page.screenshot({ path: new URL("2-error-laptop-light.png", SHOTS).pathname, fullPage: true });

    await t.step("Tab indents inside the editor; Esc then Tab moves on", async () => {
      const editor = page.locator("#yaml");
      await editor.focus();
      await page.evaluate(`document.getElementById("yaml").setSelectionRange(0, 0)`);
      await page.keyboard.press("Tab");
      assert.match(await editor.inputValue(), /^ {2}# Written/);
      await page.keyboard.press("Shift+Tab");
      assert.match(await editor.inputValue(), /^# Written/);
      await page.keyboard.press("Escape");
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate("document.activeElement?.id"), "comment");
    });

    await t.step("fix it and save: version 2, pending until the agent answers", async () => {
      const fixed = AGENT_YAML.replace(
        "cpu_threshold: {min: 30, max: 75}",
        "cpu_threshold: {min: 30, max: 80}   # sale week",
      );
      await page.locator("#yaml").fill(fixed);
      await page.getByRole("button", { name: /Save as version 2/ }).click();
      await page.waitForURL(/\/config$/);
      assert.match(await page.locator(".flash").innerText(), /Saved as version 2/);
      assert.match(await page.locator("#config-status").innerText(), /Pending/);
      assert.equal(await page.locator("#yaml").inputValue(), fixed);
    });

    await t.step("the diff shows the change, removed and added lines marked", async () => {
      const diff = page.locator("#config-diff");
      assert.match(await diff.locator(".diff-removed .text").innerText(), /max: 75\}/);
      assert.match(await diff.locator(".diff-added .text").innerText(), /max: 80\}\s+# sale week/);
      // Compare other versions through the form (htmx swaps the diff in place).
      await page.getByLabel("From version").selectOption("2");
      await page.getByLabel("To version").selectOption("1");
      await page.getByRole("button", { name: "Show changes" }).click();
      await page.locator(".diff-added .text", { hasText: "max: 75" }).waitFor();
      assert.match(page.url(), /from=2&to=1/);
    });
    await page.goto(`${configUrl}?from=1&to=2`);
    await shoot(browser, `${configUrl}?from=1&to=2#config-diff`, cookie, "3-diff");

    await t.step("the agent fails version 2: its error is shown", async () => {
      const v2 =
        (await ctx.deps.pool.query("SELECT hash FROM config_versions WHERE node_id = ? AND version = 2", [
          node.nodeId,
        ]))[0] as { hash: string }[];
      await ackConfig(ctx.deps, { principal: agent }, node.nodeId, {
        hash: v2[0].hash,
        status: "failed",
        error: "instance pool ocid1.instancepool.oc1.iad.aaaaaaaabrowserpool01: 404 NotAuthorizedOrNotFound",
      });
      // The status panel refreshes itself (every 5 s) without a reload.
      await page.locator("#config-status", { hasText: "Failed" }).waitFor({ timeout: 15_000 });
      assert.match(await page.locator(".agent-error").innerText(), /NotAuthorizedOrNotFound/);
      assert.match(await page.locator(".agent-error").innerText(), /keeps running version 1/);
    });
    await shoot(browser, configUrl, cookie, "4-failed");

    await t.step("roll back to version 1: a confirmation first, then version 3", async () => {
      await page.goto(configUrl);
      await page.locator("tr", { hasText: "brought by the agent" }).getByRole("link", {
        name: "Roll back to this",
      })
        .click();
      await page.waitForURL(/rollback=1/);
      assert.match(await page.locator("#rollback-confirm").innerText(), /Roll back to version 1\?/);
      await shoot(browser, `${configUrl}?rollback=1#rollback-confirm`, cookie, "5-rollback-confirm");
      await page.getByRole("button", { name: "Roll back to version 1" }).click();
      await page.waitForURL(/\/config$/);
      assert.match(await page.locator(".flash").innerText(), /version 3 carries the text of version 1/);
      assert.equal(await page.locator("#yaml").inputValue(), AGENT_YAML);
      assert.match(await page.locator("#config-status").innerText(), /Version 3/);
    });

    assert.deepEqual(problems, []);
    await context.close();
  },
);
