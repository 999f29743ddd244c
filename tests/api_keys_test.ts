// API keys over the API: created once-shown, listed without secrets, revoked; roles respected.
import assert from "node:assert/strict";
import { createApiKey } from "../core/apiKeys.ts";
import { AppError } from "../core/errors.ts";
import { keyedHash } from "../core/secrets.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { countAudit, countRows, expectError, expectIdsRefused } from "./helpers/assertions.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";

type KeyView = {
  id: number;
  name: string;
  prefix: string;
  role: string;
  expires_at: string | null;
  revoked_at: string | null;
};

Deno.test("API keys", async (t) => {
  const ctx = await createTestApp("api_keys");
  try {
    const admin = (await createApiKeyWithRole(ctx, "admin", { name: "bootstrap" })).token;
    let created: { key: string; api_key: KeyView };

    await t.step("create: the secret is in the response once; only its keyed hash is stored", async () => {
      const res = await ctx.call("POST", "/api/v1/api-keys", {
        token: admin,
        json: { name: "terraform", role: "operator", expires_in_days: 30 },
      });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get("cache-control"), "no-store");
      created = await json(res);
      assert.match(created.key, /^ack_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.api_key.name, "terraform");
      assert.equal(created.api_key.role, "operator");
      assert.equal(created.api_key.prefix, created.key.slice(0, 12));
      assert.equal(created.api_key.expires_at, "2026-07-01T12:00:00.000Z");
      const hash = await keyedHash(ctx.deps.settings.SECRET_KEY, created.key);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM api_keys WHERE key_hash = ?", [hash]), 1);
      assert.equal(await countAudit(ctx, "api_key.create", { target_id: created.api_key.id }), 1);
      // The new key works with its role.
      const me = await ctx.call("GET", "/api/v1/auth/me", { token: created.key });
      assert.equal((await json<{ role: string }>(me)).role, "operator");
    });

    await t.step("list shows no secret and no hash", async () => {
      const res = await ctx.call("GET", "/api/v1/api-keys", { token: admin });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.ok(!text.includes(created.key));
      assert.ok(!text.includes(await keyedHash(ctx.deps.settings.SECRET_KEY, created.key)));
      const { api_keys } = JSON.parse(text) as { api_keys: KeyView[] };
      assert.deepEqual(api_keys.map((k) => k.name).sort(), ["bootstrap", "terraform"]);
    });

    await t.step("bad input: 422 naming the field, nothing written", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) n FROM api_keys");
      const post = (body: unknown) => ctx.call("POST", "/api/v1/api-keys", { token: admin, json: body });
      await expectError(await post({ name: "", role: "viewer" }), 422, "validation_failed", "name");
      await expectError(
        await post({ name: "x".repeat(129), role: "viewer" }),
        422,
        "validation_failed",
        "name",
      );
      await expectError(await post({ name: "k", role: "root" }), 422, "validation_failed", "role");
      await expectError(
        await post({ name: "k", role: "viewer", expires_in_days: 0 }),
        422,
        "validation_failed",
        "expires_in_days",
      );
      await expectError(
        await post({ name: "k", role: "viewer", expires_in_days: 1.5 }),
        422,
        "validation_failed",
        "expires_in_days",
      );
      await expectError(
        await post({ name: "k", role: "viewer", expires_in_days: 3651 }),
        422,
        "validation_failed",
        "expires_in_days",
      );
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM api_keys"), before);
    });

    await t.step("revoke: the key stops working at once; revoking again changes nothing", async () => {
      const res = await ctx.call("DELETE", `/api/v1/api-keys/${created.api_key.id}`, { token: admin });
      assert.equal(res.status, 200);
      assert.equal((await json<KeyView>(res)).revoked_at, ctx.clock.now().toISOString());
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { token: created.key }),
        401,
        "api_key_revoked",
      );
      ctx.clock.advance(1000);
      const again = await ctx.call("DELETE", `/api/v1/api-keys/${created.api_key.id}`, { token: admin });
      assert.equal(again.status, 200);
      assert.equal(
        (await json<KeyView>(again)).revoked_at,
        new Date(ctx.clock.now().getTime() - 1000).toISOString(),
      );
      assert.equal(await countAudit(ctx, "api_key.revoke", { target_id: created.api_key.id }), 1);
      await expectIdsRefused(ctx, "DELETE", "/api/v1/api-keys", admin);
    });

    await t.step("operators and viewers cannot list, create or revoke keys", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) n FROM api_keys");
      for (const role of ["viewer", "operator"] as const) {
        const key = await createApiKeyWithRole(ctx, role);
        const attempts: [string, string, unknown?][] = [
          ["GET", "/api/v1/api-keys"],
          ["POST", "/api/v1/api-keys", { name: "up", role: "admin" }],
          ["DELETE", `/api/v1/api-keys/${key.id}`],
        ];
        for (const [method, path, body] of attempts) {
          await expectError(await ctx.call(method, path, { token: key.token, json: body }), 403, "forbidden");
        }
      }
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM api_keys"), before + 2);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM api_keys WHERE revoked_at IS NOT NULL"), 1);
    });

    await t.step("no one hands out a role above their own (role_too_high)", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) n FROM api_keys");
      await assert.rejects(
        createApiKey(ctx.deps, { principal: { kind: "api_key", keyId: 1, name: "op", role: "operator" } }, {
          name: "up",
          role: "admin",
        }),
        (error: unknown) =>
          error instanceof AppError && error.status === 403 && error.code === "role_too_high",
      );
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM api_keys"), before);
    });
  } finally {
    await ctx.close();
  }
});
