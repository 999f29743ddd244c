// Response headers that protect browsers and caches: nosniff on everything, a CSP that forbids framing
// on the docs (and, through the same middleware, on the console pages), and no-store wherever a
// secret is in the body.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { contentSecurityPolicy, STRICT_CSP } from "../routes/securityHeaders.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole, createUserWithRole } from "./helpers/auth.ts";

/** The directives of a Content-Security-Policy header value, by name. */
function cspDirectives(header: string | null): Map<string, string[]> {
  assert.ok(header, "a Content-Security-Policy header");
  return new Map(
    header.split(";").map((part) => part.trim()).filter(Boolean).map((part) => {
      const [name, ...values] = part.split(/\s+/);
      return [name, values] as [string, string[]];
    }),
  );
}

function assertNoInlineScriptOrEval(directives: Map<string, string[]>): void {
  const scripts = directives.get("script-src") ?? directives.get("default-src") ?? [];
  assert.ok(scripts.length > 0, "script-src (or default-src) is set");
  for (const loose of ["'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"]) {
    assert.ok(!scripts.includes(loose), `script-src must not allow ${loose}: ${scripts.join(" ")}`);
  }
  assert.deepEqual(directives.get("frame-ancestors"), ["'none'"]);
  assert.deepEqual(directives.get("object-src"), ["'none'"]);
}

Deno.test("security headers", async (t) => {
  const ctx = await createTestApp("security_headers");
  try {
    const admin = await createApiKeyWithRole(ctx, "admin");

    await t.step("X-Content-Type-Options: nosniff on every kind of response", async () => {
      const responses = [
        await ctx.call("GET", "/healthz"),
        await ctx.call("GET", "/readyz"),
        await ctx.call("GET", "/openapi.json"),
        await ctx.call("GET", "/docs"),
        await ctx.call("GET", "/static/docs-init.js"),
        await ctx.call("GET", "/no/such/page"),
        await ctx.call("DELETE", "/healthz"),
        await ctx.call("GET", "/api/v1/nodes"),
        await ctx.call("GET", "/api/v1/nodes", { token: "ack_not-a-key" }),
        await ctx.call("GET", "/api/v1/nodes", { token: admin.token }),
        await ctx.call("POST", "/api/v1/auth/login", { json: {} }),
      ];
      for (const res of responses) {
        assert.equal(res.headers.get("x-content-type-options"), "nosniff", `${res.url} ${res.status}`);
        await res.body?.cancel();
      }
    });

    for (const path of ["/docs", "/redoc"]) {
      await t.step(`${path}: a CSP with frame-ancestors 'none' and no inline script or eval`, async () => {
        const res = await ctx.call("GET", path);
        assert.equal(res.status, 200);
        await res.body?.cancel();
        assertNoInlineScriptOrEval(cspDirectives(res.headers.get("content-security-policy")));
        assert.equal(res.headers.get("x-frame-options"), "DENY");
      });
    }

    await t.step("the reusable middleware gives any page the strict policy", async () => {
      const pages = new Hono();
      pages.use("*", contentSecurityPolicy());
      pages.get("/page", (c) => c.html("<p>hello</p>"));
      const res = await pages.request("/page");
      const directives = cspDirectives(res.headers.get("content-security-policy"));
      assertNoInlineScriptOrEval(directives);
      assert.deepEqual(directives.get("style-src"), ["'self'"]);
      assert.deepEqual(directives.get("base-uri"), ["'none'"]);
      assert.deepEqual(directives.get("form-action"), ["'self'"]);
      assert.equal(res.headers.get("x-frame-options"), "DENY");
      // Extending one directive keeps the rest strict.
      const extended = new Hono();
      extended.use("*", contentSecurityPolicy({ "img-src": [...STRICT_CSP["img-src"], "blob:"] }));
      extended.get("/page", (c) => c.html("<p>hello</p>"));
      const more = cspDirectives((await extended.request("/page")).headers.get("content-security-policy"));
      assert.deepEqual(more.get("img-src"), ["'self'", "data:", "blob:"]);
      assertNoInlineScriptOrEval(more);
    });

    await t.step("Cache-Control: no-store on every response that carries a secret", async () => {
      const user = await createUserWithRole(ctx, "admin", "hedda");
      const login = await ctx.call("POST", "/api/v1/auth/login", {
        json: { username: "hedda", password: user.password },
      });
      assert.equal(login.status, 200);
      assert.equal(login.headers.get("cache-control"), "no-store");
      await login.body?.cancel();

      const key = await ctx.call("POST", "/api/v1/api-keys", {
        token: admin.token,
        json: { name: "ci", role: "viewer" },
      });
      assert.equal(key.status, 201);
      assert.equal(key.headers.get("cache-control"), "no-store");
      await key.body?.cancel();

      const enrollment = await ctx.call("POST", "/api/v1/enrollment-tokens", {
        token: admin.token,
        json: { name: "rollout" },
      });
      assert.equal(enrollment.status, 201);
      assert.equal(enrollment.headers.get("cache-control"), "no-store");
      const { token } = await json<{ token: string }>(enrollment);

      const register = await ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: token, name: "cache-node", hostname: "cache-node.example.internal" },
      });
      assert.equal(register.status, 201);
      assert.equal(register.headers.get("cache-control"), "no-store");
      await register.body?.cancel();
    });

    await t.step(
      "API answers are not cacheable unless a route says otherwise; static files are",
      async () => {
        const list = await ctx.call("GET", "/api/v1/nodes", { token: admin.token });
        assert.equal(list.headers.get("cache-control"), "no-store");
        await list.body?.cancel();
        const refused = await ctx.call("GET", "/api/v1/nodes");
        assert.equal(refused.headers.get("cache-control"), "no-store");
        await refused.body?.cancel();
        const asset = await ctx.call("GET", "/static/docs-init.js");
        assert.equal(asset.headers.get("cache-control"), "public, max-age=3600");
        await asset.body?.cancel();
      },
    );
  } finally {
    await ctx.close();
  }
});
