// Operator accounts over the API (admin only) and from the CLI.
import assert from "node:assert/strict";
import { createTestApp, json } from "./helpers/app.ts";
import { countAudit, countRows, expectError } from "./helpers/assertions.ts";
import { databaseEnv, runCli } from "./helpers/cli.ts";
import { createApiKeyWithRole, createUserWithRole, loginAs } from "./helpers/auth.ts";
import { hashPassword, PBKDF2_ITERATIONS, verifyPassword } from "../core/passwords.ts";

type UserBody = { id: number; username: string; role: string; disabled: boolean };

Deno.test("passwords: PBKDF2-SHA256 format, per-user salt, verify", async () => {
  const a = await hashPassword("correct horse battery staple");
  const b = await hashPassword("correct horse battery staple");
  assert.match(
    a,
    new RegExp(`^pbkdf2-sha256\\$${PBKDF2_ITERATIONS}\\$[A-Za-z0-9+/]{22}==\\$[A-Za-z0-9+/]{43}=$`),
  );
  assert.notEqual(a, b); // different salts
  assert.equal(await verifyPassword("correct horse battery staple", a), true);
  assert.equal(await verifyPassword("correct horse battery stapl", a), false);
  assert.equal(await verifyPassword("anything", "plain-text"), false);
  assert.equal(await verifyPassword("anything", "pbkdf2-sha256$x$y$z"), false);
});

Deno.test("users API", async (t) => {
  const ctx = await createTestApp("users");
  try {
    const admin = await createUserWithRole(ctx, "admin", "root-admin");
    const adminKey = (await createApiKeyWithRole(ctx, "admin")).token;
    const call = (method: string, path: string, jsonBody?: unknown) =>
      ctx.call(method, path, { token: adminKey, ...(jsonBody === undefined ? {} : { json: jsonBody }) });

    await t.step("create: 201, stored as a PBKDF2 hash, audited", async () => {
      const res = await call("POST", "/api/v1/users", {
        username: "carol",
        password: "a sufficiently long pass",
        role: "operator",
      });
      assert.equal(res.status, 201);
      const body = await json<UserBody & Record<string, unknown>>(res);
      assert.equal(body.username, "carol");
      assert.equal(body.role, "operator");
      assert.equal(body.disabled, false);
      assert.equal("password_hash" in body, false);
      const [rows] = await ctx.database.pool.query(
        "SELECT password_hash FROM users WHERE username = 'carol'",
      );
      const stored = (rows as { password_hash: string }[])[0].password_hash;
      assert.match(stored, /^pbkdf2-sha256\$600000\$/);
      assert.equal(await verifyPassword("a sufficiently long pass", stored), true);
      const [audit] = await ctx.database.pool.query(
        "SELECT actor_type, target_id, details FROM audit_log WHERE action = 'user.create' AND target_id = ?",
        [String(body.id)],
      );
      const entry = (audit as { actor_type: string; details: string }[])[0];
      assert.equal(entry.actor_type, "api_key");
      assert.deepEqual(JSON.parse(entry.details), { username: "carol", role: "operator" });
    });

    await t.step("bad input: 422 naming the field, nothing written", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) n FROM users");
      const auditBefore = await countRows(ctx, "SELECT COUNT(*) n FROM audit_log");
      const refused: [Record<string, unknown>, string][] = [
        [{ username: "weak", password: "short", role: "viewer" }, "password"],
        [{ username: "long", password: "x".repeat(257), role: "viewer" }, "password"],
        [{ username: "blank", password: " ".repeat(12), role: "viewer" }, "password"],
        [{ username: "bad name!", password: "long enough password", role: "viewer" }, "username"],
        [{ username: "rooty", password: "long enough password", role: "root" }, "role"],
      ];
      for (const [body, field] of refused) {
        await expectError(await call("POST", "/api/v1/users", body), 422, "validation_failed", field);
      }
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users"), before);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM audit_log"), auditBefore);
    });

    await t.step("duplicate username (any case): 409 username_taken, nothing written", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) n FROM users");
      for (const username of ["carol", "CAROL"]) {
        await expectError(
          await call("POST", "/api/v1/users", { username, password: "another long password", role: "admin" }),
          409,
          "username_taken",
          "username",
        );
      }
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users"), before);
      assert.equal(
        await countRows(ctx, "SELECT COUNT(*) n FROM users WHERE username = 'carol' AND role = 'operator'"),
        1,
      );
    });

    await t.step("list and read never show password hashes", async () => {
      const res = await call("GET", "/api/v1/users");
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.doesNotMatch(text, /pbkdf2|password_hash/);
      const { users } = JSON.parse(text) as { users: UserBody[] };
      assert.deepEqual(users.map((u) => u.username), ["carol", "root-admin"]);
      const one = await call("GET", `/api/v1/users/${users[0].id}`);
      assert.equal((await json<UserBody>(one)).username, "carol");
      await expectError(await call("GET", "/api/v1/users/999999"), 404, "not_found");
      await expectError(await call("GET", "/api/v1/users/abc"), 422, "validation_failed", "id");
    });

    await t.step("update role; empty or bad update is 422", async () => {
      const carol = await createUserWithRole(ctx, "viewer", "carl");
      const res = await call("PATCH", `/api/v1/users/${carol.id}`, { role: "operator" });
      assert.equal(res.status, 200);
      assert.equal((await json<UserBody>(res)).role, "operator");
      await expectError(
        await call("PATCH", `/api/v1/users/${carol.id}`, {}),
        422,
        "validation_failed",
        "role",
      );
      await expectError(
        await call("PATCH", `/api/v1/users/${carol.id}`, { role: "superuser" }),
        422,
        "validation_failed",
        "role",
      );
      await expectError(await call("PATCH", "/api/v1/users/999999", { role: "viewer" }), 404, "not_found");
      assert.equal(
        await countRows(ctx, "SELECT COUNT(*) n FROM users WHERE id = ? AND role = 'operator'", [carol.id]),
        1,
      );
    });

    await t.step("the last enabled admin can be neither demoted nor disabled (409 last_admin)", async () => {
      const demote = await expectError(
        await call("PATCH", `/api/v1/users/${admin.id}`, { role: "operator" }),
        409,
        "last_admin",
        "role",
      );
      assert.match(demote.error.message, /last enabled admin/);
      await expectError(
        await call("PATCH", `/api/v1/users/${admin.id}`, { disabled: true }),
        409,
        "last_admin",
        "disabled",
      );
      assert.equal(
        await countRows(
          ctx,
          "SELECT COUNT(*) n FROM users WHERE id = ? AND role = 'admin' AND disabled = 0",
          [
            admin.id,
          ],
        ),
        1,
      );
      // With a second admin the first may step down.
      const second = await createUserWithRole(ctx, "admin", "second-admin");
      const res = await call("PATCH", `/api/v1/users/${admin.id}`, { role: "operator" });
      assert.equal(res.status, 200);
      await expectError(
        await call("PATCH", `/api/v1/users/${second.id}`, { disabled: true }),
        409,
        "last_admin",
        "disabled",
      );
      assert.equal((await call("PATCH", `/api/v1/users/${admin.id}`, { role: "admin" })).status, 200);
    });

    await t.step("reset password: old one stops working, sessions end, weak one refused", async () => {
      const user = await createUserWithRole(ctx, "viewer", "pat");
      const session = await loginAs(ctx, "pat", user.password);
      await expectError(
        await call("POST", `/api/v1/users/${user.id}/password`, { password: "too short" }),
        422,
        "validation_failed",
        "password",
      );
      assert.equal((await ctx.call("GET", "/api/v1/auth/me", { headers: session.headers })).status, 200);
      const res = await call("POST", `/api/v1/users/${user.id}/password`, {
        password: "a brand new password",
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { headers: session.headers }),
        401,
        "unauthorized",
      );
      await expectError(
        await ctx.call("POST", "/api/v1/auth/login", { json: { username: "pat", password: user.password } }),
        401,
        "invalid_credentials",
      );
      await loginAs(ctx, "pat", "a brand new password");
      assert.equal(await countAudit(ctx, "user.password_reset", { target_id: user.id }), 1);
    });

    await t.step("operators and viewers may not manage users", async () => {
      for (const role of ["viewer", "operator"] as const) {
        const key = (await createApiKeyWithRole(ctx, role)).token;
        await expectError(await ctx.call("GET", "/api/v1/users", { token: key }), 403, "forbidden");
        await expectError(
          await ctx.call("POST", "/api/v1/users", {
            token: key,
            json: { username: `by-${role}`, password: "long enough password", role: "admin" },
          }),
          403,
          "forbidden",
        );
      }
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users WHERE username LIKE 'by-%'"), 0);
    });
  } finally {
    await ctx.close();
  }
});

// ---- CLI --------------------------------------------------------------------------------------------

Deno.test("cli: user create, passwd, disable, list", async (t) => {
  const ctx = await createTestApp("users_cli");
  const env = databaseEnv(ctx.database.name);
  try {
    await t.step("create reads the password from stdin; the user can log in", async () => {
      const run = await runCli(
        ["user", "create", "--username", "first-admin", "--role", "admin"],
        { env, stdin: "the first password\n" },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /created user first-admin/);
      await loginAs(ctx, "first-admin", "the first password");
      const [rows] = await ctx.database.pool.query(
        "SELECT actor_type, actor_name FROM audit_log WHERE action = 'user.create'",
      );
      assert.deepEqual(rows, [{ actor_type: "system", actor_name: "cli" }]);
    });

    await t.step("bad arguments: exit 2, nothing written", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) n FROM users");
      for (
        const [args, input, message] of [
          [
            ["user", "create", "--username", "x", "--role", "root"],
            "long enough password\n",
            /--role must be one of/,
          ],
          [["user", "create", "--username", "x"], "long enough password\n", /needs --role/],
          [["user", "create", "--role", "admin"], "long enough password\n", /needs --username/],
          [
            ["user", "create", "--username", "bad name", "--role", "admin"],
            "long enough password\n",
            /--username/,
          ],
          [
            ["user", "create", "--username", "weak", "--role", "admin"],
            "short\n",
            /password must be at least 12/,
          ],
          [["user", "frobnicate"], undefined, /unknown user action/],
          [["user", "list", "--nope"], undefined, /Unknown option/],
        ] as [string[], string | undefined, RegExp][]
      ) {
        const run = await runCli(args, { env, stdin: input });
        assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, message);
      }
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users"), before);
    });

    await t.step("duplicate username: exit 1 with a message", async () => {
      const run = await runCli(
        ["user", "create", "--username", "first-admin", "--role", "viewer"],
        { env, stdin: "another long password\n" },
      );
      assert.equal(run.code, 1);
      assert.match(run.stderr, /already taken/);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) n FROM users"), 1);
    });

    await t.step("passwd and disable end sessions; the last admin cannot be disabled", async () => {
      const session = await loginAs(ctx, "first-admin", "the first password");
      const passwd = await runCli(
        ["user", "passwd", "--username", "first-admin", "--password-stdin"],
        { env, stdin: "second password!!\n" },
      );
      assert.equal(passwd.code, 0, passwd.stderr);
      assert.equal((await ctx.call("GET", "/api/v1/auth/me", { headers: session.headers })).status, 401);
      await loginAs(ctx, "first-admin", "second password!!");
      const lastAdmin = await runCli(["user", "disable", "--username", "first-admin"], { env });
      assert.equal(lastAdmin.code, 1);
      assert.match(lastAdmin.stderr, /last enabled admin/);
      const op = await createUserWithRole(ctx, "operator", "op-one");
      const opSession = await loginAs(ctx, "op-one", op.password);
      const disable = await runCli(["user", "disable", "--username", "op-one"], { env });
      assert.equal(disable.code, 0, disable.stderr);
      assert.equal((await ctx.call("GET", "/api/v1/auth/me", { headers: opSession.headers })).status, 401);
      const unknown = await runCli(["user", "disable", "--username", "ghost"], { env });
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /not found/);
      const list = await runCli(["user", "list"], { env });
      assert.equal(list.code, 0);
      assert.match(list.stdout, /first-admin\s+admin\s+enabled/);
      assert.match(list.stdout, /op-one\s+operator\s+disabled/);
    });
  } finally {
    await ctx.close();
  }
});
