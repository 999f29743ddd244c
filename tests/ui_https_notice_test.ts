// In production the session cookie is Secure, so a browser that reached the console over plain HTTP at a
// non-loopback host drops it and every login lands back on /login. The login and setup pages say so.
import assert from "node:assert/strict";
import { createUserWithRole } from "./helpers/auth.ts";
import { createTestApp, type TestApp } from "./helpers/app.ts";
import { page, postForm } from "./helpers/ui.ts";

const PRODUCTION = { ENVIRONMENT: "production", SECRET_KEY: "k".repeat(48) };
const NOTICE = /id="https-notice"/;

/** Posts the login form (or `path`) as a browser at `headers.host` would. */
const postLogin = (
  app: TestApp,
  who: { username: string; password: string },
  headers: Record<string, string>,
  path = "/login",
) => postForm(app, path, null, { username: who.username, password: who.password, next: "/" }, headers);

Deno.test("login and setup pages warn when a production session cookie would be dropped", async (t) => {
  const prod = await createTestApp("https_notice_prod", { env: PRODUCTION });
  const dev = await createTestApp("https_notice_dev", { env: { ENVIRONMENT: "development" } });
  try {
    await t.step("first run: /setup over plain HTTP at a named host shows the notice", async () => {
      const setup = await page(prod, "/setup", null, { host: "central.example.com:8000" });
      assert.equal(setup.status, 200);
      assert.match(setup.html, NOTICE);
      assert.match(setup.html, /ENVIRONMENT=production/);
      const local = await page(prod, "/setup", null, { host: "localhost:8000" });
      assert.doesNotMatch(local.html, NOTICE);
    });

    const user = await createUserWithRole(prod, "viewer");

    await t.step("/login over plain HTTP at a named host or address shows it", async () => {
      for (const host of ["central.example.com:8000", "10.0.0.5:8000", "central"]) {
        const login = await page(prod, "/login", null, { host });
        assert.equal(login.status, 200, host);
        assert.match(login.html, NOTICE, host);
      }
    });

    await t.step("loopback hosts and HTTPS (direct or through a proxy) show no notice", async () => {
      for (const host of ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "central.localhost"]) {
        assert.doesNotMatch((await page(prod, "/login", null, { host })).html, NOTICE, host);
      }
      const proxied = await page(prod, "/login", null, {
        host: "central.example.com",
        "x-forwarded-proto": "https",
      });
      assert.doesNotMatch(proxied.html, NOTICE);
      const plainProxy = await page(prod, "/login", null, {
        host: "central.example.com",
        "x-forwarded-proto": "http",
      });
      assert.match(plainProxy.html, NOTICE);
    });

    await t.step("a refused login shows the form again with the notice, and sets no cookie", async () => {
      const res = await postLogin(prod, { username: user.username, password: "wrong-password-1" }, {
        host: "central.example.com:8000",
      });
      assert.equal(res.status, 401);
      const html = await res.text();
      assert.match(html, /Wrong username or password/);
      assert.match(html, NOTICE);
      assert.equal(res.headers.get("set-cookie"), null);
    });

    await t.step("a login over plain HTTP still sets a Secure cookie (the notice says why)", async () => {
      const res = await postLogin(prod, user, { host: "central.example.com:8000" });
      assert.equal(res.status, 303);
      assert.match(res.headers.get("set-cookie") ?? "", /;\s*Secure/i);
    });

    await t.step(
      "a login or setup posted from another site is refused (403) and sets no cookie",
      async () => {
        for (const path of ["/login", "/setup"]) {
          const res = await postLogin(
            prod,
            user,
            { host: "localhost:8000", origin: "https://evil.example" },
            path,
          );
          assert.equal(res.status, 403, path);
          assert.equal(res.headers.get("set-cookie"), null, path);
          await res.body?.cancel();
        }
        const ours = await postLogin(prod, user, { host: "localhost:8000", origin: "http://localhost:8000" });
        assert.equal(ours.status, 303);
      },
    );

    await t.step("outside production the cookie is not Secure and no notice is shown", async () => {
      const devUser = await createUserWithRole(dev, "viewer");
      const login = await page(dev, "/login", null, { host: "central.example.com:8000" });
      assert.equal(login.status, 200);
      assert.doesNotMatch(login.html, NOTICE);
      const res = await postLogin(dev, devUser, { host: "central.example.com:8000" });
      assert.equal(res.status, 303);
      const cookie = res.headers.get("set-cookie") ?? "";
      assert.match(cookie, /HttpOnly/i);
      assert.doesNotMatch(cookie, /;\s*Secure/i);
    });
  } finally {
    await prod.close();
    await dev.close();
  }
});
