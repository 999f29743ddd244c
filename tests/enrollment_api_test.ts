import assert from "node:assert/strict";
import { keyedHash } from "../core/secrets.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import { auditEntries } from "./helpers/fixtures.ts";
import { expectError, expectIdsRefused } from "./helpers/assertions.ts";

type Token = {
  id: number;
  name: string;
  prefix: string;
  expires_at: string | null;
  max_uses: number | null;
  uses: number;
  revoked_at: string | null;
  state: string;
  token?: string;
};

Deno.test("enrollment tokens API", async (t) => {
  const ctx = await createTestApp("enrollment_api");
  try {
    const now = ctx.clock.now();
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
    const operator = (await createApiKeyWithRole(ctx, "operator")).token;
    const admin = (await createApiKeyWithRole(ctx, "admin")).token;
    const tokenRows = async () => {
      const [rows] = await ctx.deps.pool.query(
        "SELECT id, token_hash, revoked_at FROM enrollment_tokens ORDER BY id",
      );
      return rows as { id: number; token_hash: string; revoked_at: Date | null }[];
    };
    const register = (enrollmentToken: string, name: string) =>
      ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: enrollmentToken, name, hostname: `${name}.example.internal` },
      });

    let created: Token & { token: string };

    await t.step("admin creates a token, shown once; only its keyed hash is stored", async () => {
      const res = await ctx.call("POST", "/api/v1/enrollment-tokens", {
        token: admin,
        json: { name: "rollout", expires_in_s: 3600, max_uses: 2 },
      });
      assert.equal(res.status, 201);
      created = await json<Token & { token: string }>(res);
      assert.match(created.token, /^ace_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.prefix, created.token.slice(0, created.prefix.length));
      assert.equal(created.state, "active");
      assert.equal(created.max_uses, 2);
      assert.equal(created.uses, 0);
      assert.equal(created.expires_at, new Date(now.getTime() + 3_600_000).toISOString());
      const rows = await tokenRows();
      assert.equal(rows.length, 1);
      assert.equal(rows[0].token_hash, await keyedHash(ctx.deps.settings.SECRET_KEY, created.token));
      const audit = await auditEntries(ctx, "enrollment_token.create");
      assert.equal(audit.length, 1);
      assert.match(audit[0].actor_name, /^key:admin-key/);
      assert.ok(!JSON.stringify(audit[0].details).includes(created.token));
    });

    await t.step("the list shows it without the secret; the token registers a node", async () => {
      const res = await ctx.call("GET", "/api/v1/enrollment-tokens", { token: admin });
      assert.equal(res.status, 200);
      const body = await json<{ items: Token[] }>(res);
      assert.equal(body.items.length, 1);
      assert.equal(body.items[0].id, created.id);
      assert.equal(body.items[0].token, undefined);
      assert.ok(!JSON.stringify(body).includes(created.token));

      const registered = await register(created.token, "enrolled-1");
      assert.equal(registered.status, 201, await registered.clone().text());
      await registered.body?.cancel();
      const after = await json<{ items: Token[] }>(
        await ctx.call("GET", "/api/v1/enrollment-tokens", { token: admin }),
      );
      assert.equal(after.items[0].uses, 1);
    });

    await t.step("viewer and operator may not list, create or revoke; nothing is written", async () => {
      for (const token of [viewer, operator]) {
        await expectError(await ctx.call("GET", "/api/v1/enrollment-tokens", { token }), 403, "forbidden");
        await expectError(
          await ctx.call("POST", "/api/v1/enrollment-tokens", { token, json: { name: "sneaky" } }),
          403,
          "forbidden",
        );
        await expectError(
          await ctx.call("DELETE", `/api/v1/enrollment-tokens/${created.id}`, { token }),
          403,
          "forbidden",
        );
      }
      await expectError(await ctx.call("GET", "/api/v1/enrollment-tokens"), 401, "unauthorized");
      const rows = await tokenRows();
      assert.equal(rows.length, 1);
      assert.equal(rows[0].revoked_at, null);
    });

    await t.step("bad bodies are 422 naming the field and create nothing", async () => {
      const cases: [unknown, string][] = [
        [{}, "name"],
        [{ name: "" }, "name"],
        [{ name: "   " }, "name"],
        [{ name: "x".repeat(129) }, "name"],
        [{ name: "t", expires_in_s: 0 }, "expires_in_s"],
        [{ name: "t", expires_in_s: 1e12 }, "expires_in_s"],
        [{ name: "t", max_uses: 0 }, "max_uses"],
        [{ name: "t", max_uses: 1.5 }, "max_uses"],
        [{ name: "t", max_uses: "3" }, "max_uses"],
        // Misspelt: dropped, they made an unlimited token that never expires.
        [{ name: "typo", max_use: 1 }, "max_use"],
        [{ name: "typo", expires_in: 3600 }, "expires_in"],
      ];
      for (const [body, field] of cases) {
        await expectError(
          await ctx.call("POST", "/api/v1/enrollment-tokens", { token: admin, json: body }),
          422,
          "validation_failed",
          field,
        );
      }
      assert.equal((await tokenRows()).length, 1);
      assert.equal((await auditEntries(ctx, "enrollment_token.create")).length, 1);
    });

    await t.step("revoke: registration stops at once; twice 409; unknown 404; bad id 422", async () => {
      const res = await ctx.call("DELETE", `/api/v1/enrollment-tokens/${created.id}`, { token: admin });
      assert.equal(res.status, 200);
      const revoked = await json<Token>(res);
      assert.equal(revoked.state, "revoked");
      assert.equal(revoked.revoked_at, now.toISOString());
      await expectError(await register(created.token, "enrolled-2"), 401, "enrollment_token_revoked");

      await expectError(
        await ctx.call("DELETE", `/api/v1/enrollment-tokens/${created.id}`, { token: admin }),
        409,
        "already_revoked",
      );
      await expectIdsRefused(ctx, "DELETE", "/api/v1/enrollment-tokens", admin);
      assert.equal((await auditEntries(ctx, "enrollment_token.revoke")).length, 1);

      const active = await json<{ items: Token[] }>(
        await ctx.call("GET", "/api/v1/enrollment-tokens", { token: admin }),
      );
      assert.equal(active.items.length, 0);
      const all = await json<{ items: Token[] }>(
        await ctx.call("GET", "/api/v1/enrollment-tokens?include_revoked=true", { token: admin }),
      );
      assert.deepEqual(all.items.map((i) => i.state), ["revoked"]);
      await expectError(
        await ctx.call("GET", "/api/v1/enrollment-tokens?include_revoked=yes", { token: admin }),
        422,
        "validation_failed",
        "include_revoked",
      );
    });

    await t.step("expiry shows in the state; a token without limits stays active", async () => {
      const short = await json<Token>(
        await ctx.call("POST", "/api/v1/enrollment-tokens", {
          token: admin,
          json: { name: "short", expires_in_s: 60 },
        }),
      );
      const open = await json<Token>(
        await ctx.call("POST", "/api/v1/enrollment-tokens", { token: admin, json: { name: "open" } }),
      );
      assert.equal(open.expires_at, null);
      assert.equal(open.max_uses, null);
      ctx.clock.advance(61_000);
      const list = await json<{ items: Token[] }>(
        await ctx.call("GET", "/api/v1/enrollment-tokens", { token: admin }),
      );
      const states = Object.fromEntries(list.items.map((i) => [i.name, i.state]));
      assert.deepEqual(states, { short: "expired", open: "active" });
      assert.ok(short.id > 0);
    });
  } finally {
    await ctx.close();
  }
});
