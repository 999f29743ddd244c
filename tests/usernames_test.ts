// Usernames have one spelling: NFKC, trimmed, lower-cased, at creation and at login. Look-alikes that
// normalise to a taken name are refused at creation; names that only the database collation would
// call equal (accents, ignorable characters) never log in as someone else. A repeat login from the
// same browser replaces its session instead of adding one.
import assert from "node:assert/strict";
import { keyedHash } from "../core/secrets.ts";
import { normalizeUsername } from "../core/fields.ts";
import { createTestApp, json, rowsAfterMigration } from "./helpers/app.ts";
import { countRows, expectError } from "./helpers/assertions.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";

Deno.test("usernames: normalised once, at creation and at login", async (t) => {
  const ctx = await createTestApp("usernames", { env: { TRUST_PROXY: "true" } });
  try {
    const admin = await createApiKeyWithRole(ctx, "admin");
    const password = "a long enough password";
    const createUser = (username: string) =>
      ctx.call("POST", "/api/v1/users", { token: admin.token, json: { username, password, role: "admin" } });
    let address = 0;
    const login = (username: string, secret = password, cookie?: string) =>
      ctx.call("POST", "/api/v1/auth/login", {
        json: { username, password: secret },
        // Each attempt from its own address, so throttling plays no part here.
        headers: { "x-forwarded-for": `10.7.0.${address++}`, ...(cookie ? { cookie } : {}) },
      });

    await t.step("the rule: NFKC, trim, case-fold", () => {
      assert.equal(normalizeUsername("ADMIN"), "admin");
      assert.equal(normalizeUsername("admin "), "admin");
      assert.equal(normalizeUsername("\u3000Admin\t"), "admin");
      assert.equal(normalizeUsername("ａｄｍｉｎ"), "admin");
      assert.equal(normalizeUsername("\u212Aelvin"), "kelvin"); // KELVIN SIGN
      assert.equal(normalizeUsername("alíce"), "alíce"); // not ASCII-folded: refused by the rule
    });

    await t.step("a new account is stored in its normalised spelling", async () => {
      const res = await createUser("  Admin ");
      assert.equal(res.status, 201);
      assert.equal((await json<{ username: string }>(res)).username, "admin");
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users WHERE BINARY username = 'admin'"), 1);
    });

    await t.step(
      "a name that collides after normalisation: 409 naming username, nothing written",
      async () => {
        for (const lookalike of ["ADMIN", "admin ", "ａｄｍｉｎ", "Ａdmin"]) {
          await expectError(await createUser(lookalike), 409, "username_taken", "username");
        }
        assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users"), 1);
      },
    );

    await t.step("names the rule refuses even after normalisation: 422 naming username", async () => {
      for (const bad of ["alíce", "ad min", "admin\u200b", "", "x".repeat(65)]) {
        await expectError(await createUser(bad), 422, "validation_failed", "username");
      }
    });

    await t.step("ADMIN, 'admin ' and full-width admin log in as admin, on purpose", async () => {
      for (const spelling of ["ADMIN", "admin ", "ａｄｍｉｎ"]) {
        const res = await login(spelling);
        assert.equal(res.status, 200, spelling);
        assert.equal((await json<{ user: { username: string } }>(res)).user.username, "admin");
      }
    });

    await t.step("names only the database collation calls equal do not log in", async () => {
      for (const lookalike of ["ádmin", "admín", "admin\u200b", "admi\u00f1"]) {
        await expectError(await login(lookalike), 401, "invalid_credentials");
      }
    });

    await t.step("a repeat login presenting the session cookie rotates the session", async () => {
      const sessionsOfAdmin = () =>
        countRows(
          ctx,
          "SELECT COUNT(*) n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'admin'",
        );
      await ctx.database.pool.query("DELETE FROM sessions");
      const first = await login("admin");
      const firstCookie = /acs_session=[^;]+/.exec(first.headers.get("set-cookie") ?? "")![0];
      await first.body?.cancel();
      const again = await login("admin", password, firstCookie);
      assert.equal(again.status, 200);
      const secondCookie = /acs_session=[^;]+/.exec(again.headers.get("set-cookie") ?? "")![0];
      await again.body?.cancel();
      assert.notEqual(secondCookie, firstCookie);
      assert.equal(await sessionsOfAdmin(), 1);
      const oldHash = await keyedHash(ctx.deps.settings.SECRET_KEY, firstCookie.slice("acs_session=".length));
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions WHERE id_hash = ?", [oldHash]), 0);
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { headers: { cookie: firstCookie } }),
        401,
        "unauthorized",
      );
      assert.equal(
        (await ctx.call("GET", "/api/v1/auth/me", { headers: { cookie: secondCookie } })).status,
        200,
      );
      // A failed login keeps the session it presented; another browser (no cookie) adds its own.
      await expectError(await login("admin", "wrong password!", secondCookie), 401, "invalid_credentials");
      assert.equal(
        (await ctx.call("GET", "/api/v1/auth/me", { headers: { cookie: secondCookie } })).status,
        200,
      );
      await (await login("admin")).body?.cancel();
      assert.equal(await sessionsOfAdmin(), 2);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("usernames: the migration lower-cases existing accounts", async () => {
  const rows = await rowsAfterMigration("usernames_migration", "normalise_usernames", [
    `INSERT INTO users (username, password_hash, role, disabled, password_changed_at, created_at, updated_at)
     VALUES ('Mixed.Case', 'x', 'viewer', 0, NOW(3), NOW(3), NOW(3)), ('lower', 'x', 'viewer', 0, NOW(3), NOW(3), NOW(3))`,
  ], "SELECT username FROM users ORDER BY id");
  assert.deepEqual((rows as { username: string }[]).map((r) => r.username), ["mixed.case", "lower"]);
});
