// Enrollment tokens: the service (create, list, revoke, states, audit) and the `token` CLI.
import assert from "node:assert/strict";
import {
  consumeEnrollmentToken,
  createEnrollmentToken,
  type CreateEnrollmentTokenInput,
  listEnrollmentTokens,
  revokeEnrollmentToken,
} from "../core/enrollment.ts";
import { AppError } from "../core/errors.ts";
import type { Principal } from "../core/principal.ts";
import { keyedHash } from "../core/secrets.ts";
import { createTestApp } from "./helpers/app.ts";
import { databaseEnv, runCli } from "./helpers/cli.ts";
import { countAudit } from "./helpers/assertions.ts";

const ADMIN: Principal = { kind: "user", userId: 1, username: "alice", role: "admin" };

async function rejects(work: Promise<unknown>, status: number, code: string, field?: string) {
  try {
    await work;
  } catch (error) {
    assert.ok(error instanceof AppError, `expected AppError, got ${error}`);
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    if (field) assert.ok(error.details?.some((d) => d.field === field), JSON.stringify(error.details));
    return;
  }
  assert.fail(`expected ${status} ${code}`);
}

Deno.test("enrollment tokens: service", async (t) => {
  const ctx = await createTestApp("enrollment");
  const count = async (sql: string, params: unknown[] = []) => {
    const [rows] = await ctx.database.pool.query(sql, params);
    return Number((rows as { n: number }[])[0].n);
  };
  try {
    await t.step("create: shown once, only the keyed hash stored, audited", async () => {
      const { token, view } = await createEnrollmentToken(
        ctx.deps,
        { principal: ADMIN, address: "10.0.0.1" },
        { name: "rack 1", expires_in_s: 3600, max_uses: 3 },
      );
      assert.match(token, /^ace_[A-Za-z0-9_-]{43}$/);
      assert.equal(view.prefix, token.slice(0, 12));
      assert.equal(view.state, "active");
      assert.equal(view.uses, 0);
      assert.equal(view.max_uses, 3);
      assert.equal(view.created_by, "alice");
      assert.equal(view.expires_at, "2026-06-01T13:00:00.000Z");
      assert.ok(!("token_hash" in view) && !JSON.stringify(view).includes(token));
      const [rows] = await ctx.database.pool.query("SELECT token_hash FROM enrollment_tokens WHERE id = ?", [
        view.id,
      ]);
      const stored = (rows as { token_hash: string }[])[0].token_hash;
      assert.equal(stored, await keyedHash(ctx.deps.settings.SECRET_KEY, token));
      assert.equal(await countAudit(ctx, "enrollment_token.create", { target_id: view.id }), 1);
      const [audit] = await ctx.database.pool.query(
        "SELECT details, address FROM audit_log WHERE action = ?",
        [
          "enrollment_token.create",
        ],
      );
      assert.ok(!String((audit as { details: string }[])[0].details).includes(token), "token not in audit");
      assert.equal((audit as { address: string }[])[0].address, "10.0.0.1");
    });

    await t.step("create: bad inputs are refused naming the field, nothing written", async () => {
      const before = await count("SELECT COUNT(*) AS n FROM enrollment_tokens");
      const refused: [CreateEnrollmentTokenInput, string][] = [
        [{ name: " " }, "name"],
        [{ name: "x", expires_in_s: 0 }, "expires_in_s"],
        [{ name: "x", expires_in_s: 1.5 }, "expires_in_s"],
        [{ name: "x", max_uses: 0 }, "max_uses"],
        [{ name: "x".repeat(129) }, "name"],
      ];
      for (const [input, field] of refused) {
        await rejects(
          createEnrollmentToken(ctx.deps, { principal: ADMIN }, input),
          422,
          "validation_failed",
          field,
        );
      }
      assert.equal(await count("SELECT COUNT(*) AS n FROM enrollment_tokens"), before);
    });

    await t.step(
      "states: active, exhausted, expired, revoked; consume refuses each with its code",
      async () => {
        const once = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
          name: "once",
          max_uses: 1,
        });
        const used = await ctx.deps.db.transaction((tx) => consumeEnrollmentToken(ctx.deps, tx, once.token));
        assert.equal(used.uses, 1);
        await rejects(
          ctx.deps.db.transaction((tx) => consumeEnrollmentToken(ctx.deps, tx, once.token)),
          401,
          "enrollment_token_exhausted",
        );

        const short = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
          name: "short",
          expires_in_s: 60,
        });
        const revoked = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, { name: "gone" });
        await revokeEnrollmentToken(ctx.deps, { principal: ADMIN }, revoked.view.id);
        await rejects(
          ctx.deps.db.transaction((tx) => consumeEnrollmentToken(ctx.deps, tx, revoked.token)),
          401,
          "enrollment_token_revoked",
        );
        await rejects(
          ctx.deps.db.transaction((tx) => consumeEnrollmentToken(ctx.deps, tx, "ace_unknown")),
          401,
          "enrollment_token_invalid",
        );
        await rejects(
          ctx.deps.db.transaction((tx) =>
            consumeEnrollmentToken(ctx.deps, tx, "acn_not_an_enrollment_token")
          ),
          401,
          "enrollment_token_invalid",
        );
        ctx.clock.advance(61_000);
        await rejects(
          ctx.deps.db.transaction((tx) => consumeEnrollmentToken(ctx.deps, tx, short.token)),
          401,
          "enrollment_token_expired",
        );
        const states = Object.fromEntries(
          (await listEnrollmentTokens(ctx.deps, { includeRevoked: true })).map((v) => [v.name, v.state]),
        );
        assert.equal(states.once, "exhausted");
        assert.equal(states.short, "expired");
        assert.equal(states.gone, "revoked");
        assert.equal(states["rack 1"], "active");
        // Refused consumptions counted nothing.
        assert.equal(
          await count("SELECT uses AS n FROM enrollment_tokens WHERE id = ?", [short.view.id]),
          0,
        );
      },
    );

    await t.step("list hides revoked tokens unless asked", async () => {
      const names = (await listEnrollmentTokens(ctx.deps)).map((v) => v.name);
      assert.ok(!names.includes("gone"));
      assert.ok(names.includes("rack 1"));
      const all = (await listEnrollmentTokens(ctx.deps, { includeRevoked: true })).map((v) => v.name);
      assert.ok(all.includes("gone"));
      for (const view of await listEnrollmentTokens(ctx.deps, { includeRevoked: true })) {
        assert.deepEqual(Object.keys(view).sort(), [
          "created_at",
          "created_by",
          "expires_at",
          "id",
          "last_used_at",
          "max_uses",
          "name",
          "node_id",
          "prefix",
          "revoked_at",
          "state",
          "uses",
        ]);
      }
    });

    await t.step("revoke: 404 unknown, 409 already revoked, audited once", async () => {
      const { view } = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, { name: "to revoke" });
      const revoked = await revokeEnrollmentToken(
        ctx.deps,
        { principal: ADMIN, address: "10.0.0.2" },
        view.id,
      );
      assert.equal(revoked.state, "revoked");
      assert.equal(revoked.revoked_at, ctx.clock.now().toISOString());
      await rejects(
        revokeEnrollmentToken(ctx.deps, { principal: ADMIN }, view.id),
        409,
        "already_revoked",
      );
      await rejects(revokeEnrollmentToken(ctx.deps, { principal: ADMIN }, 999_999), 404, "not_found");
      assert.equal(await countAudit(ctx, "enrollment_token.revoke", { target_id: view.id }), 1);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("cli: token create / list / revoke", async (t) => {
  const ctx = await createTestApp("enrollment_cli");
  const env = databaseEnv(ctx.database.name, { SECRET_KEY: ctx.deps.settings.SECRET_KEY });
  const rows = async () => {
    const [result] = await ctx.database.pool.query(
      "SELECT id, name, max_uses, expires_at, revoked_at FROM enrollment_tokens",
    );
    return result as {
      id: number;
      name: string;
      max_uses: number | null;
      expires_at: Date | null;
      revoked_at: Date | null;
    }[];
  };
  try {
    await t.step("bad --expires and --max-uses: usage error, exit 2, nothing written", async () => {
      for (
        const [args, named] of [
          [["token", "create", "--expires", "soon"], /--expires/],
          [["token", "create", "--expires", "0d"], /--expires/],
          [["token", "create", "--max-uses", "0"], /--max-uses/],
          [["token", "create", "--max-uses", "many"], /--max-uses/],
          [["token", "frobnicate"], /unknown token action/],
          [["token", "revoke"], /revoke needs --id N/],
          [["token", "revoke", "--id", "abc"], /--id must be a token id.*got "abc"/],
        ] as const
      ) {
        const run = await runCli([...args], { env });
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, named);
      }
      assert.equal((await rows()).length, 0);
    });

    let id = 0;
    await t.step(
      "create prints the token once with id and expiry; the hash is what the token hashes to",
      async () => {
        const run = await runCli([
          "token",
          "create",
          "--name",
          "first agents",
          "--expires",
          "12h",
          "--max-uses",
          "5",
        ], { env });
        assert.equal(run.code, 0, run.stderr);
        const [token, ...rest] = run.stdout.trim().split("\n");
        assert.match(token, /^ace_[A-Za-z0-9_-]{43}$/);
        assert.match(rest.join("\n"), /id: \d+/);
        assert.match(rest.join("\n"), /expires: \d{4}-\d{2}-\d{2}T/);
        const stored = await rows();
        assert.equal(stored.length, 1);
        assert.equal(stored[0].name, "first agents");
        assert.equal(stored[0].max_uses, 5);
        id = stored[0].id;
        const [hash] = await ctx.database.pool.query(
          "SELECT token_hash FROM enrollment_tokens WHERE id = ?",
          [id],
        );
        assert.equal(
          (hash as { token_hash: string }[])[0].token_hash,
          await keyedHash(env.SECRET_KEY, token),
        );
        const never = await runCli(["token", "create", "--expires", "never"], { env });
        assert.equal(never.code, 0, never.stderr);
        assert.match(never.stdout, /expires: never/);
      },
    );

    await t.step("list shows it; revoke revokes it, a second revoke fails (exit 1)", async () => {
      const list = await runCli(["token", "list"], { env });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /first agents/);
      assert.match(list.stdout, /active/);
      const revoke = await runCli(["token", "revoke", "--id", String(id)], { env });
      assert.equal(revoke.code, 0, revoke.stderr);
      assert.ok((await rows()).find((r) => r.id === id)?.revoked_at);
      const again = await runCli(["token", "revoke", "--id", String(id)], { env });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already revoked/);
      const hidden = await runCli(["token", "list"], { env });
      assert.doesNotMatch(hidden.stdout, /first agents/);
      const all = await runCli(["token", "list", "--all"], { env });
      assert.match(all.stdout, /first agents.*revoked/);
    });
  } finally {
    await ctx.close();
  }
});
