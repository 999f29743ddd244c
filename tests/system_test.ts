import assert from "node:assert/strict";
import { createTestApp, json } from "./helpers/app.ts";

Deno.test("system routes", async (t) => {
  const ctx = await createTestApp("system");
  try {
    await t.step("healthz answers with the version", async () => {
      const res = await ctx.call("GET", "/healthz");
      assert.equal(res.status, 200);
      const body = await json(res);
      assert.equal(body.status, "ok");
      assert.match(String(body.version), /^\d+\.\d+\.\d+/);
      assert.ok(res.headers.get("x-request-id"));
    });
    await t.step("readyz is ready on a migrated database", async () => {
      const res = await ctx.call("GET", "/readyz");
      assert.equal(res.status, 200);
      assert.deepEqual((await json(res)).checks, { database: "ok", migrations: "ok" });
    });
    await t.step("unknown route: 404 in the error shape", async () => {
      const res = await ctx.call("GET", "/api/v1/nothing-here");
      assert.equal(res.status, 404);
      const body = await json<{ error: { code: string; message: string } }>(res);
      assert.equal(body.error.code, "not_found");
    });
    await t.step("wrong method: 405 with Allow", async () => {
      const res = await ctx.call("DELETE", "/healthz");
      assert.equal(res.status, 405);
      assert.equal(res.headers.get("allow"), "GET, HEAD");
      assert.equal((await json<{ error: { code: string } }>(res)).error.code, "method_not_allowed");
    });
  } finally {
    await ctx.close();
  }
});
