// One error shape for every failure the HTTP layer itself produces: malformed JSON, wrong content type,
// bodies over the limit, validation failures naming the field, 404 and 405.
import assert from "node:assert/strict";
import { createTestApp, json } from "./helpers/app.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";
import { createEnrollmentToken } from "../core/enrollment.ts";
import type { ErrorBody } from "./helpers/assertions.ts";

Deno.test("error shape", async (t) => {
  const ctx = await createTestApp("error_shape", { env: { MAX_BODY_BYTES: "2048" } });
  const countNodes = async () => {
    const [rows] = await ctx.deps.pool.query("SELECT COUNT(*) AS n FROM nodes");
    return Number((rows as { n: number }[])[0].n);
  };
  const { token: enrollment } = await createEnrollmentToken(ctx.deps, {
    principal: { kind: "system", name: "test" },
  }, { name: "shape" });
  try {
    await t.step("malformed JSON: 400 bad_request", async () => {
      const res = await ctx.call("POST", "/api/v1/register", {
        body: "{not json",
        headers: { "content-type": "application/json" },
      });
      assert.equal(res.status, 400);
      const body = await json<ErrorBody>(res);
      assert.equal(body.error.code, "bad_request");
      assert.ok(body.error.request_id);
      assert.equal(res.headers.get("x-request-id"), body.error.request_id);
    });

    await t.step("missing body or wrong content type is refused, not read as {}", async () => {
      for (const headers of [{}, { "content-type": "text/plain" }] as Record<string, string>[]) {
        const res = await ctx.call("POST", "/api/v1/register", { body: "name=x", headers });
        assert.equal(res.status, 415);
        const body = await json<ErrorBody>(res);
        assert.equal(body.error.code, "unsupported_media_type");
        assert.match(body.error.message, /application\/json/);
      }
    });

    await t.step("validation failure: 422 naming each field and where it was", async () => {
      const res = await ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: enrollment, name: 42 },
      });
      assert.equal(res.status, 422);
      const body = await json<ErrorBody>(res);
      assert.equal(body.error.code, "validation_failed");
      const fields = (body.error.details ?? []).map((d) => d.field);
      assert.ok(fields.includes("name"), fields.join(","));
      assert.ok(fields.includes("hostname"), fields.join(","));
      assert.ok(body.error.details?.every((d) => d.location === "body"));
      assert.match(body.error.message, /name/);
    });

    await t.step("body over MAX_BODY_BYTES: 413", async () => {
      const res = await ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: "ace_x", name: "big", hostname: "h", labels: { pad: "x".repeat(4096) } },
      });
      assert.equal(res.status, 413);
      assert.equal((await json<ErrorBody>(res)).error.code, "payload_too_large");
    });

    await t.step("query parameters are named with location query", async () => {
      const node = await createNodeWithToken(ctx, "shape-node");
      const res = await ctx.call("GET", `/api/v1/nodes/${node.nodeId}/config?wait=abc`, {
        token: node.token,
      });
      assert.equal(res.status, 422);
      const body = await json<ErrorBody>(res);
      assert.deepEqual(body.error.details?.map((d) => [d.field, d.location]), [["wait", "query"]]);
    });

    await t.step("404 and 405 in the same shape", async () => {
      const missing = await ctx.call("GET", "/api/v1/does-not-exist");
      assert.equal(missing.status, 404);
      assert.equal((await json<ErrorBody>(missing)).error.code, "not_found");
      const wrongMethod = await ctx.call("PUT", "/api/v1/register", { json: {} });
      assert.equal(wrongMethod.status, 405);
      assert.match(wrongMethod.headers.get("allow") ?? "", /POST/);
      assert.equal((await json<ErrorBody>(wrongMethod)).error.code, "method_not_allowed");
    });

    await t.step("none of the refused requests wrote anything", async () => {
      assert.equal(await countNodes(), 1); // only the node the test itself created
    });
  } finally {
    await ctx.close();
  }
});
