// Headless Chromium (Debian's package) driven by playwright-core, for the few real-browser tests.
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { createTestApp, type TestApp } from "./app.ts";

export const CHROMIUM_PATH = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** Serves a fetch handler on a free loopback port until `close()`. */
export function serveOnLoopback(handler: (request: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const url = `http://127.0.0.1:${server.addr.port}`;
  return { url, close: () => server.shutdown() };
}

/** Where browser tests save screenshots (created on demand, not committed: see .gitignore). */
export const SCREENSHOT_DIR = new URL("../.screenshots/", import.meta.url).pathname;

export const VIEWPORTS = {
  laptop: { width: 1366, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

/** Saves a full-page screenshot as tests/.screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = `${SCREENSHOT_DIR}${name}.png`;
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface PageWatch {
  /** URLs the page tried to load from anywhere but our server (aborted). */
  foreign: string[];
  /** What the Content-Security-Policy blocked. */
  cspViolations: string[];
  /** Uncaught errors and console errors (a 4xx the test provokes on purpose shows up here too). */
  errors: string[];
}

/** Keeps every request of the context on `origin` (others are aborted and recorded) and records CSP
 * violations and script errors, so a test can assert the page stayed air-gapped and clean. */
export async function watchContext(context: BrowserContext, origin: string): Promise<PageWatch> {
  const watch: PageWatch = { foreign: [], cspViolations: [], errors: [] };
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
    watch.foreign.push(url);
    return route.abort();
  });
  await context.exposeFunction("reportCspViolation", (text: string) => watch.cspViolations.push(text));
  await context.addInitScript({
    content: `document.addEventListener("securitypolicyviolation", (event) => {
      globalThis.reportCspViolation(event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
        " (" + event.sourceFile + ":" + event.lineNumber + ")");
    });`,
  });
  context.on("page", (page) => {
    page.on("pageerror", (error) => watch.errors.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") watch.errors.push(`console: ${message.text()}`);
    });
  });
  return watch;
}

export interface BrowserTestEnv {
  ctx: TestApp;
  /** The app served on a loopback port. */
  server: { url: string; close(): Promise<void> };
  browser: Browser;
}

/** A Deno.test with a fresh app (createTestApp(label, options)) served on loopback and a headless
 * Chromium, all three closed at the end whatever happens. */
export function browserTest(
  name: string,
  label: string,
  options: Parameters<typeof createTestApp>[1],
  fn: (t: Deno.TestContext, env: BrowserTestEnv) => Promise<void>,
): void {
  Deno.test({
    name,
    sanitizeResources: false, // playwright keeps pipes to chromium that outlive the test's bookkeeping
    sanitizeOps: false,
    fn: async (t) => {
      const ctx = await createTestApp(label, options);
      const server = serveOnLoopback(ctx.app.fetch);
      const browser = await launchBrowser();
      try {
        await fn(t, { ctx, server, browser });
      } finally {
        await browser.close();
        await server.close();
        await ctx.close();
      }
    },
  });
}

/** Logs in through the login form and waits for the dashboard. */
export async function logIn(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(`${url}/login`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/$/);
}
