// Login, sessions, logout, CSRF, API key authentication and login throttling, against a real database.
import assert from "node:assert/strict";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { countAudit, countRows, expectError } from "./helpers/assertions.ts";
import { createApiKeyWithRole, createUserWithRole, loginAs } from "./helpers/auth.ts";
import { keyedHash } from "../core/secrets.ts";
import { updateUser } from "../core/users.ts";
import { TEST_SETUP } from "./helpers/auth.ts";

function login(ctx: TestApp, username: string, password: string, address = "10.0.0.1") {
  return ctx.call("POST", "/api/v1/auth/login", {
    json: { username, password },
    headers: { "x-forwarded-for": address },
  });
}

/** `times` logins with a wrong password, each refused as such (401 invalid_credentials, not throttled). */
async function wrongPassword(ctx: TestApp, username: string, address: string, times = 1) {
  for (let i = 0; i < times; i++) {
    await expectError(await login(ctx, username, "wrong-password-x", address), 401, "invalid_credentials");
  }
}

/** A login that must succeed (200); its body is not needed. */
async function loginOk(ctx: TestApp, username: string, password: string, address: string) {
  const res = await login(ctx, username, password, address);
  assert.equal(res.status, 200);
  await res.body?.cancel();
}

Deno.test("auth: login, sessions, logout and CSRF", async (t) => {
  // TRUST_PROXY lets each step log in from its own address (X-Forwarded-For), so the per-address
  // throttle of one step does not spill into another.
  const ctx = await createTestApp("auth", { env: { TRUST_PROXY: "true" } });
  try {
    const admin = await createUserWithRole(ctx, "admin", "alice");
    const viewer = await createUserWithRole(ctx, "viewer", "victor");

    await t.step("login sets an HttpOnly SameSite=Lax cookie and returns the CSRF token", async () => {
      const res = await login(ctx, "alice", admin.password);
      assert.equal(res.status, 200);
      const body = await json<
        { user: { username: string; role: string }; csrf_token: string; expires_at: string }
      >(
        res,
      );
      assert.deepEqual(body.user, { username: "alice", role: "admin" });
      assert.equal(body.csrf_token.length, 43);
      assert.equal(body.expires_at, "2026-06-02T00:00:00.000Z"); // 12 h after the test clock's noon
      const cookie = res.headers.get("set-cookie") ?? "";
      assert.match(cookie, /^acs_session=acs_[A-Za-z0-9_-]{43};/);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Lax/);
      assert.match(cookie, /Path=\//);
      assert.doesNotMatch(cookie, /Secure/); // only in production
      // The table holds the keyed hash, never the cookie value.
      const value = /acs_session=([^;]+)/.exec(cookie)![1];
      const hash = await keyedHash(ctx.deps.settings.SECRET_KEY, value);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions WHERE id_hash = ?", [hash]), 1);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions WHERE id_hash = ?", [value]), 0);
      assert.equal(await countAudit(ctx, "auth.login", { actor_name: "alice" }), 1);
      assert.equal(
        await countRows(
          ctx,
          "SELECT COUNT(*) n FROM users WHERE username='alice' AND last_login_at IS NOT NULL",
        ),
        1,
      );
    });

    await t.step("the cookie authenticates GET /me; no cookie is 401", async () => {
      const session = await loginAs(ctx, "alice", admin.password);
      const res = await ctx.call("GET", "/api/v1/auth/me", { headers: { cookie: session.cookie } });
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), { kind: "user", username: "alice", role: "admin" });
      await expectError(await ctx.call("GET", "/api/v1/auth/me"), 401, "unauthorized");
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { headers: { cookie: "acs_session=acs_forged" } }),
        401,
        "unauthorized",
      );
    });

    await t.step("wrong password and unknown user: the same 401 invalid_credentials, recorded", async () => {
      const sessionsBefore = await countRows(ctx, "SELECT COUNT(*) n FROM sessions");
      const wrong = await expectError(
        await login(ctx, "alice", "not-the-password", "10.0.1.1"),
        401,
        "invalid_credentials",
      );
      const unknown = await expectError(
        await login(ctx, "nobody", "not-the-password", "10.0.1.1"),
        401,
        "invalid_credentials",
      );
      assert.equal(wrong.error.message, unknown.error.message);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions"), sessionsBefore);
      assert.equal(
        await countRows(ctx, "SELECT COUNT(*) n FROM login_failures WHERE address = '10.0.1.1'"),
        2,
      );
      const [rows] = await ctx.database.pool.query(
        "SELECT actor_type, actor_name, details, address FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id",
      );
      const entries = rows as { actor_type: string; actor_name: string; details: string; address: string }[];
      assert.deepEqual(entries.map((e) => [e.actor_type, e.actor_name, e.address]), [
        ["system", "alice", "10.0.1.1"],
        ["system", "nobody", "10.0.1.1"],
      ]);
      assert.equal(JSON.parse(entries[0].details).reason, "invalid_credentials");
    });

    await t.step("missing or oversized fields: 422 naming the field", async () => {
      const res = await ctx.call("POST", "/api/v1/auth/login", { json: { username: "alice" } });
      const body = await expectError(res, 422, "validation_failed");
      assert.equal(body.error.details?.[0].field, "password");
      const huge = await expectError(await login(ctx, "alice", "x".repeat(1025)), 422, "validation_failed");
      assert.equal(huge.error.details?.[0].field, "password");
    });

    await t.step("disabled user: account_disabled only with the right password", async () => {
      const user = await createUserWithRole(ctx, "operator", "dora");
      await updateUser(ctx.deps, { principal: TEST_SETUP }, user.id, { disabled: true });
      await expectError(await login(ctx, "dora", user.password, "10.0.2.1"), 401, "account_disabled");
      await wrongPassword(ctx, "dora", "10.0.2.1");
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions WHERE user_id = ?", [user.id]), 0);
    });

    await t.step("disabling a user ends their sessions at once", async () => {
      const user = await createUserWithRole(ctx, "operator", "olga");
      const session = await loginAs(ctx, "olga", user.password);
      assert.equal((await ctx.call("GET", "/api/v1/auth/me", { headers: session.headers })).status, 200);
      const adminSession = await loginAs(ctx, "alice", admin.password);
      const res = await ctx.call("PATCH", `/api/v1/users/${user.id}`, {
        json: { disabled: true },
        headers: adminSession.headers,
      });
      assert.equal(res.status, 200);
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { headers: session.headers }),
        401,
        "unauthorized",
      );
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions WHERE user_id = ?", [user.id]), 0);
    });

    await t.step("sliding expiry: each request pushes it forward; idle past the TTL ends it", async () => {
      const session = await loginAs(ctx, "victor", viewer.password);
      const me = () => ctx.call("GET", "/api/v1/auth/me", { headers: { cookie: session.cookie } });
      ctx.clock.advance(11 * 3600_000);
      assert.equal((await me()).status, 200); // pushes expiry to now + 12 h
      ctx.clock.advance(11 * 3600_000); // 22 h after login: alive only because it slid
      assert.equal((await me()).status, 200);
      ctx.clock.advance(12 * 3600_000 + 1000);
      await expectError(await me(), 401, "unauthorized");
      const hash = await keyedHash(ctx.deps.settings.SECRET_KEY, session.cookie.slice("acs_session=".length));
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions WHERE id_hash = ?", [hash]), 0);
    });

    await t.step("logout deletes the session and clears the cookie", async () => {
      const session = await loginAs(ctx, "victor", viewer.password);
      const res = await ctx.call("POST", "/api/v1/auth/logout", { headers: session.headers });
      assert.equal(res.status, 204);
      assert.match(res.headers.get("set-cookie") ?? "", /acs_session=;.*Max-Age=0/);
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { headers: session.headers }),
        401,
        "unauthorized",
      );
      assert.equal(await countAudit(ctx, "auth.logout", { actor_name: "victor" }), 1);
    });

    await t.step("CSRF: a cookie POST needs the session's X-CSRF-Token and our own Origin", async () => {
      const session = await loginAs(ctx, "alice", admin.password);
      const keysBefore = await countRows(ctx, "SELECT COUNT(*) n FROM api_keys");
      const create = (headers: Record<string, string>) =>
        ctx.call("POST", "/api/v1/api-keys", { json: { name: "csrf", role: "viewer" }, headers });
      await expectError(await create({ cookie: session.cookie }), 403, "csrf_failed");
      await expectError(
        await create({ cookie: session.cookie, "x-csrf-token": "x".repeat(43) }),
        403,
        "csrf_failed",
      );
      const other = await loginAs(ctx, "alice", admin.password); // another session's token does not fit
      await expectError(
        await create({ cookie: session.cookie, "x-csrf-token": other.csrfToken }),
        403,
        "csrf_failed",
      );
      await expectError(
        await create({ ...session.headers, origin: "https://evil.example" }),
        403,
        "csrf_failed",
      );
      await expectError(await create({ ...session.headers, origin: "null" }), 403, "csrf_failed");
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM api_keys"), keysBefore);
      // Same origin with the token: allowed. GET needs no token.
      const ok = await create({ ...session.headers, origin: "http://localhost" });
      assert.equal(ok.status, 201);
      assert.equal(
        (await ctx.call("GET", "/api/v1/api-keys", { headers: { cookie: session.cookie } })).status,
        200,
      );
      // Logout is a POST too: without the token it is refused and the session lives on.
      await expectError(
        await ctx.call("POST", "/api/v1/auth/logout", { headers: { cookie: session.cookie } }),
        403,
        "csrf_failed",
      );
      assert.equal(
        (await ctx.call("GET", "/api/v1/auth/me", { headers: { cookie: session.cookie } })).status,
        200,
      );
    });

    await t.step("change own password: current one checked, other sessions end, this one stays", async () => {
      const user = await createUserWithRole(ctx, "viewer", "paula");
      const here = await loginAs(ctx, "paula", user.password);
      const elsewhere = await loginAs(ctx, "paula", user.password);
      const change = (body: unknown, headers = here.headers) =>
        ctx.call("POST", "/api/v1/auth/password", { json: body, headers });
      const [before] = await ctx.database.pool.query("SELECT password_hash FROM users WHERE id = ?", [
        user.id,
      ]);
      const wrong = await expectError(
        await change({ current_password: "not it at all", new_password: "a new long password" }),
        422,
        "validation_failed",
      );
      assert.equal(wrong.error.details?.[0].field, "current_password");
      const weak = await expectError(
        await change({ current_password: user.password, new_password: "short" }),
        422,
        "validation_failed",
      );
      assert.equal(weak.error.details?.[0].field, "new_password");
      await expectError(
        await change({ current_password: user.password, new_password: "a new long password" }, {
          cookie: here.cookie,
        }),
        403,
        "csrf_failed",
      );
      const [unchanged] = await ctx.database.pool.query("SELECT password_hash FROM users WHERE id = ?", [
        user.id,
      ]);
      assert.deepEqual(unchanged, before);
      const ok = await change({ current_password: user.password, new_password: "a new long password" });
      assert.equal(ok.status, 204);
      assert.equal((await ctx.call("GET", "/api/v1/auth/me", { headers: here.headers })).status, 200);
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { headers: elsewhere.headers }),
        401,
        "unauthorized",
      );
      await loginAs(ctx, "paula", "a new long password");
      const key = await createApiKeyWithRole(ctx, "admin");
      await expectError(
        await ctx.call("POST", "/api/v1/auth/password", {
          token: key.token,
          json: { current_password: "whatever you say", new_password: "a new long password" },
        }),
        400,
        "bad_request",
      );
    });

    await t.step("a stale cookie does not block a new login", async () => {
      const res = await ctx.call("POST", "/api/v1/auth/login", {
        json: { username: "victor", password: viewer.password },
        headers: { cookie: "acs_session=acs_stale", "x-forwarded-for": "10.0.3.1" },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("auth: API keys in requests", async (t) => {
  const ctx = await createTestApp("auth_keys");
  try {
    await t.step(
      "a valid key authenticates; node tokens and X-API-Key are left to the node routes",
      async () => {
        const key = await createApiKeyWithRole(ctx, "operator", { name: "ci" });
        const res = await ctx.call("GET", "/api/v1/auth/me", { token: key.token });
        assert.equal(res.status, 200);
        assert.deepEqual(await json(res), {
          kind: "api_key",
          api_key: { id: key.id, name: "ci" },
          role: "operator",
        });
        await expectError(
          await ctx.call("GET", "/api/v1/auth/me", { token: "acn_node-token" }),
          401,
          "unauthorized",
        );
        await expectError(
          await ctx.call("GET", "/api/v1/auth/me", { headers: { "x-api-key": key.token } }),
          401,
          "unauthorized",
        );
        // Explicit credentials win: a cookie is not consulted next to them (so no CSRF for node posts).
        const user = await createUserWithRole(ctx, "admin");
        const session = await loginAs(ctx, user.username, user.password);
        await expectError(
          await ctx.call("GET", "/api/v1/auth/me", { token: "acn_x", headers: { cookie: session.cookie } }),
          401,
          "unauthorized",
        );
        // An API key request needs no CSRF token even with a cookie next to it.
        const admin = await createApiKeyWithRole(ctx, "admin");
        const created = await ctx.call("POST", "/api/v1/api-keys", {
          token: admin.token,
          json: { name: "no-csrf", role: "viewer" },
          headers: { cookie: session.cookie },
        });
        assert.equal(created.status, 201);
        await created.body?.cancel();
      },
    );

    await t.step("unknown, revoked and expired keys: 401 with a code saying which", async () => {
      await expectError(
        await ctx.call("GET", "/api/v1/nodes", { token: "ack_unknown" }),
        401,
        "invalid_api_key",
      );
      const revoked = await createApiKeyWithRole(ctx, "admin");
      const admin = await createApiKeyWithRole(ctx, "admin");
      assert.equal(
        (await ctx.call("DELETE", `/api/v1/api-keys/${revoked.id}`, { token: admin.token })).status,
        200,
      );
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { token: revoked.token }),
        401,
        "api_key_revoked",
      );
      // Refused before the route runs, and nothing is written.
      const usersBefore = await countRows(ctx, "SELECT COUNT(*) n FROM users");
      await expectError(
        await ctx.call("POST", "/api/v1/users", {
          token: revoked.token,
          json: { username: "sneaky", password: "long enough password", role: "admin" },
        }),
        401,
        "api_key_revoked",
      );
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users"), usersBefore);
      const expiring = await createApiKeyWithRole(ctx, "viewer", { expiresInDays: 1 });
      assert.equal((await ctx.call("GET", "/api/v1/auth/me", { token: expiring.token })).status, 200);
      ctx.clock.advance(86_400_000);
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { token: expiring.token }),
        401,
        "api_key_expired",
      );
    });

    await t.step("last_used_at is written at most once a minute", async () => {
      const key = await createApiKeyWithRole(ctx, "viewer");
      const lastUsed = async () => {
        const [rows] = await ctx.database.pool.query("SELECT last_used_at FROM api_keys WHERE id = ?", [
          key.id,
        ]);
        return (rows as { last_used_at: Date | null }[])[0].last_used_at?.toISOString() ?? null;
      };
      assert.equal(await lastUsed(), null);
      const first = ctx.clock.now().toISOString();
      await (await ctx.call("GET", "/api/v1/auth/me", { token: key.token })).body?.cancel();
      assert.equal(await lastUsed(), first);
      ctx.clock.advance(30_000);
      await (await ctx.call("GET", "/api/v1/auth/me", { token: key.token })).body?.cancel();
      assert.equal(await lastUsed(), first);
      ctx.clock.advance(31_000);
      await (await ctx.call("GET", "/api/v1/auth/me", { token: key.token })).body?.cancel();
      assert.equal(await lastUsed(), ctx.clock.now().toISOString());
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("auth: login throttling", async (t) => {
  const ctx = await createTestApp("auth_throttle", { env: { TRUST_PROXY: "true" } });
  try {
    const user = await createUserWithRole(ctx, "operator", "tom");
    const failuresFor = (username: string) =>
      countRows(ctx, "SELECT COUNT(*) n FROM login_failures WHERE username = ?", [username]);

    await t.step("40 concurrent guesses for one user from one address: at most 5 are checked", async () => {
      const target = await createUserWithRole(ctx, "operator", "concurrent");
      const started = ctx.clock.now();
      const answers = await Promise.all(
        Array.from({ length: 40 }, () => login(ctx, "concurrent", "wrong-password-x", "10.0.9.1")),
      );
      const statuses = answers.map((res) => res.status);
      const checked = statuses.filter((status) => status === 401).length;
      assert.ok(checked <= 5, `checked ${checked} of 40: ${statuses.join(",")}`);
      assert.equal(statuses.filter((status) => status === 429).length, 40 - checked);
      for (const res of answers) {
        if (res.status === 429) {
          assert.ok(Number(res.headers.get("retry-after")) > 0);
          await expectError(res, 429, "too_many_attempts");
        } else await res.body?.cancel();
      }
      // Only the checked guesses are recorded as failures.
      assert.equal(await failuresFor("concurrent"), checked);
      // The right password from there is refused too until the window has passed.
      while ((await failuresFor("concurrent")) < 5) {
        await (await login(ctx, "concurrent", "wrong-password-x", "10.0.9.1")).body?.cancel();
      }
      await expectError(
        await login(ctx, "concurrent", target.password, "10.0.9.1"),
        429,
        "too_many_attempts",
      );
      ctx.clock.set(new Date(started.getTime() + 15 * 60_000 + 1000));
      await loginOk(ctx, "concurrent", target.password, "10.0.9.1");
    });

    await t.step(
      "after 5 failures for a username from one address: 429 with Retry-After there, even with the right password",
      async () => {
        await wrongPassword(ctx, "tom", "10.1.0.1", 5);
        ctx.clock.advance(60_000);
        const res = await login(ctx, "tom", user.password, "10.1.0.1");
        await expectError(res, 429, "too_many_attempts");
        assert.equal(res.headers.get("retry-after"), String(14 * 60)); // the oldest failure ages out then
        assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM sessions"), 1); // the step above
        // Refused before the password is checked, so not recorded as another failure.
        assert.equal(await failuresFor("tom"), 5);
        ctx.clock.advance(14 * 60_000);
        await loginOk(ctx, "tom", user.password, "10.1.0.1");
      },
    );

    await t.step("a stranger's failures do not lock the operator out of their own address", async () => {
      ctx.clock.advance(3600_000);
      await wrongPassword(ctx, "tom", "10.66.0.1", 5);
      await expectError(await login(ctx, "tom", "wrong-password-x", "10.66.0.1"), 429, "too_many_attempts");
      await loginOk(ctx, "tom", user.password, "10.1.0.1");
    });

    await t.step("a right password starts that (user, address) afresh", async () => {
      ctx.clock.advance(3600_000);
      await wrongPassword(ctx, "tom", "10.2.0.1", 4);
      ctx.clock.advance(1000);
      assert.equal((await login(ctx, "tom", user.password, "10.2.0.1")).status, 200);
      ctx.clock.advance(1000);
      await wrongPassword(ctx, "tom", "10.2.0.1", 4);
      ctx.clock.advance(1000);
      await loginOk(ctx, "tom", user.password, "10.2.0.1");
    });

    await t.step("after 20 failures from one address: 429; a success there does not reset it", async () => {
      ctx.clock.advance(3600_000);
      const address = "10.3.0.1";
      for (let i = 0; i < 19; i++) {
        await wrongPassword(ctx, `guess${i}`, address);
      }
      assert.equal((await login(ctx, "tom", user.password, address)).status, 200);
      await wrongPassword(ctx, "guess19", address);
      const res = await login(ctx, "tom", user.password, address);
      await expectError(res, 429, "too_many_attempts");
      assert.ok(Number(res.headers.get("retry-after")) > 0);
      // Another address is not affected.
      assert.equal((await login(ctx, "tom", user.password, "10.3.0.2")).status, 200);
    });

    await t.step(
      "guesses from many addresses: past 20, strangers share one attempt per 30 s; familiar addresses log in",
      async () => {
        ctx.clock.advance(3600_000);
        for (let i = 0; i < 20; i++) {
          await wrongPassword(ctx, "tom", `10.4.${i}.1`);
        }
        const slowed = await login(ctx, "tom", "wrong-password-x", "10.4.100.1");
        await expectError(slowed, 429, "too_many_attempts");
        assert.equal(slowed.headers.get("retry-after"), "30");
        // The operator's usual address (logged in from there before) is not slowed.
        await loginOk(ctx, "tom", user.password, "10.1.0.1");
        // A stranger gets one checked attempt per interval, not a lockout.
        ctx.clock.advance(30_000);
        await wrongPassword(ctx, "tom", "10.4.101.1");
        await expectError(
          await login(ctx, "tom", "wrong-password-x", "10.4.102.1"),
          429,
          "too_many_attempts",
        );
        ctx.clock.advance(30_000);
        await loginOk(ctx, "tom", user.password, "10.4.103.1");
      },
    );

    await t.step("POST /auth/password: wrong current passwords are throttled the same way", async () => {
      ctx.clock.advance(3600_000);
      const paul = await createUserWithRole(ctx, "viewer", "paul");
      const session = await loginAs(ctx, "paul", paul.password);
      const change = (current: string) =>
        ctx.call("POST", "/api/v1/auth/password", {
          json: { current_password: current, new_password: "a brand new password" },
          headers: session.headers,
        });
      for (let i = 0; i < 5; i++) {
        await expectError(await change(`not it ${i}`), 422, "validation_failed", "current_password");
      }
      const refused = await change("not it again");
      await expectError(refused, 429, "too_many_attempts");
      assert.ok(Number(refused.headers.get("retry-after")) > 0);
      await expectError(await change(paul.password), 429, "too_many_attempts");
      const [rows] = await ctx.database.pool.query("SELECT password_changed_at FROM users WHERE id = ?", [
        paul.id,
      ]);
      assert.equal(
        (rows as { password_changed_at: Date }[])[0].password_changed_at.getTime(),
        ctx.clock.now().getTime(),
      );
      ctx.clock.advance(15 * 60_000 + 1000);
      assert.equal((await change(paul.password)).status, 204);
    });
  } finally {
    await ctx.close();
  }
});
