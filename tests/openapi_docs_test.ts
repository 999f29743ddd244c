import assert from "node:assert/strict";
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { createTestApp, json } from "./helpers/app.ts";

const EXTERNAL_URL = /(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i;

Deno.test("OpenAPI document and the offline docs pages", async (t) => {
  const ctx = await createTestApp("openapi");
  try {
    const res = await ctx.call("GET", "/openapi.json");
    assert.equal(res.status, 200);
    const text = await res.text();
    const doc = JSON.parse(text);

    await t.step("is OpenAPI 3.1 with no structural errors", async () => {
      assert.equal(doc.openapi, "3.1.0");
      const config = await createConfig({ extends: ["minimal"] });
      const problems = await lintFromString({ source: text, absoluteRef: "/openapi.json", config });
      const errors = problems.filter((p) => p.severity === "error").map((p) => `${p.ruleId}: ${p.message}`);
      assert.deepEqual(errors, []);
    });

    await t.step("documents the system routes and the shared error schema", () => {
      assert.ok(doc.paths["/healthz"]?.get);
      assert.ok(doc.paths["/readyz"]?.get?.responses?.["503"]);
      assert.ok(doc.components.schemas.Error);
      assert.ok(doc.components.securitySchemes.nodeToken);
    });

    await t.step("every operation documents its responses with schemas", () => {
      for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
        for (const [method, operation] of Object.entries(item)) {
          const responses = (operation as { responses?: Record<string, { content?: unknown }> }).responses;
          assert.ok(responses && Object.keys(responses).length > 0, `${method} ${path} has no responses`);
          for (const [status, response] of Object.entries(responses)) {
            if (status === "204" || status === "304") continue;
            assert.ok(response.content, `${method.toUpperCase()} ${path} ${status} has no content schema`);
          }
        }
      }
    });

    for (const page of ["/docs", "/redoc"]) {
      await t.step(`${page} loads only local assets`, async () => {
        const pageRes = await ctx.call("GET", page);
        assert.equal(pageRes.status, 200);
        assert.match(pageRes.headers.get("content-type") ?? "", /text\/html/);
        const html = await pageRes.text();
        assert.doesNotMatch(html, EXTERNAL_URL);
        const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
        assert.ok(assets.length >= 2, `expected scripts on ${page}`);
        for (const asset of assets) {
          assert.ok(asset.startsWith("/static/"), `${asset} is not served by us`);
          const assetRes = await ctx.call("GET", asset);
          assert.equal(assetRes.status, 200, asset);
          assert.ok((await assetRes.text()).length > 100, `${asset} is empty`);
        }
      });
    }

    // The console's files are held from the start, the docs' bundles loaded on first use: both the same way.
    for (const file of ["/static/htmx.min.js", "/static/swagger-ui-bundle.js"]) {
      await t.step(`${file} answers If-None-Match with 304`, async () => {
        const first = await ctx.call("GET", file);
        assert.equal(first.status, 200);
        await first.body?.cancel();
        const etag = first.headers.get("etag");
        assert.ok(etag);
        const second = await ctx.call("GET", file, { headers: { "if-none-match": etag } });
        assert.equal(second.status, 304);
        assert.equal(second.headers.get("etag"), etag);
      });
    }

    await t.step("ReDoc's bundle is served without its CDN logo", async () => {
      const res = await ctx.call("GET", "/static/redoc.standalone.js");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /javascript/);
      assert.doesNotMatch(await res.text(), /cdn\.redoc\.ly\/redoc\/logo-mini\.svg/);
    });

    await t.step("unknown static file is a JSON 404", async () => {
      const missing = await ctx.call("GET", "/static/nope.js");
      assert.equal(missing.status, 404);
      assert.equal((await json<{ error: { code: string } }>(missing)).error.code, "not_found");
    });
  } finally {
    await ctx.close();
  }
});
