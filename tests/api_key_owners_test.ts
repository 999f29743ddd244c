// Whose keys are they: every API key made by a person (or by a key that person owns) has that person
// as its owner, shown in the list; disabling the owner revokes their keys in the same change, since
// the secrets were shown to them and to nobody else.
import assert from "node:assert/strict";
import { createTestApp, json, rowsAfterMigration } from "./helpers/app.ts";
import { expectError } from "./helpers/assertions.ts";
import { createApiKeyWithRole, createUserWithRole, loginAs } from "./helpers/auth.ts";
import { auditEntries } from "./helpers/fixtures.ts";

type KeyView = {
  id: number;
  name: string;
  created_by: string;
  owner: { user_id: number; username: string; disabled: boolean } | null;
  revoked_at: string | null;
};

Deno.test("API keys: owners, and what disabling an owner does", async (t) => {
  const ctx = await createTestApp("api_key_owners");
  try {
    const ada = await createUserWithRole(ctx, "admin", "ada");
    const bert = await createUserWithRole(ctx, "admin", "bert");
    const adaSession = await loginAs(ctx, "ada", ada.password);
    const bertSession = await loginAs(ctx, "bert", bert.password);
    const create = async (
      name: string,
      role: string,
      auth: { headers?: Record<string, string>; token?: string },
    ) => {
      const res = await ctx.call("POST", "/api/v1/api-keys", { json: { name, role }, ...auth });
      assert.equal(res.status, 201);
      return await json<{ key: string; api_key: KeyView }>(res);
    };
    const list = async () => {
      const res = await ctx.call("GET", "/api/v1/api-keys", { headers: bertSession.headers });
      assert.equal(res.status, 200);
      return new Map((await json<{ api_keys: KeyView[] }>(res)).api_keys.map((k) => [k.name, k]));
    };
    const setAdaDisabled = async (disabled: boolean) => {
      const res = await ctx.call("PATCH", `/api/v1/users/${ada.id}`, {
        json: { disabled },
        headers: bertSession.headers,
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    };
    const works = async (key: string) => {
      const res = await ctx.call("GET", "/api/v1/auth/me", { token: key });
      await res.body?.cancel();
      return res.status === 200;
    };

    const adaCi = await create("ada-ci", "operator", { headers: adaSession.headers });
    const adaAdmin = await create("ada-automation", "admin", { headers: adaSession.headers });
    const adaChild = await create("made-by-ada-key", "viewer", { token: adaAdmin.key });
    const bertCi = await create("bert-ci", "operator", { headers: bertSession.headers });
    const setupKey = await createApiKeyWithRole(ctx, "viewer", { name: "from-setup" });

    await t.step("each key shows its owner: the creator, or the owner of the key that made it", async () => {
      assert.deepEqual(adaCi.api_key.owner, { user_id: ada.id, username: "ada", disabled: false });
      assert.equal(adaCi.api_key.created_by, "ada");
      assert.deepEqual(adaChild.api_key.owner, { user_id: ada.id, username: "ada", disabled: false });
      assert.equal(adaChild.api_key.created_by, "key:ada-automation");
      const keys = await list();
      assert.equal(keys.get("bert-ci")?.owner?.username, "bert");
      assert.equal(keys.get("ada-ci")?.owner?.user_id, ada.id);
      assert.equal(keys.get("from-setup")?.owner, null); // made by the system (CLI, tests): no person
    });

    await t.step("disabling the owner revokes their keys at once, and only theirs", async () => {
      await setAdaDisabled(true);
      for (const key of [adaCi, adaAdmin, adaChild]) {
        await expectError(
          await ctx.call("GET", "/api/v1/auth/me", { token: key.key }),
          401,
          "api_key_revoked",
        );
      }
      assert.ok(await works(bertCi.key));
      assert.ok(await works(setupKey.token));
      const keys = await list();
      for (const name of ["ada-ci", "ada-automation", "made-by-ada-key"]) {
        assert.equal(keys.get(name)?.revoked_at, ctx.clock.now().toISOString(), name);
        assert.deepEqual(keys.get(name)?.owner, { user_id: ada.id, username: "ada", disabled: true });
      }
      assert.equal(keys.get("bert-ci")?.revoked_at, null);
      const [entry] = await auditEntries(ctx, "user.disable");
      assert.equal((entry.details as { api_keys_revoked?: number }).api_keys_revoked, 3);
    });

    await t.step("enabling the owner again does not bring the keys back", async () => {
      await setAdaDisabled(false);
      assert.equal(await works(adaCi.key), false);
    });

    await t.step("moving an owner down revokes their keys above the new role, and only those", async () => {
      const bertAdmin = await create("bert-admin", "admin", { headers: bertSession.headers });
      const bertViewer = await create("bert-viewer", "viewer", { headers: bertSession.headers });
      const demote = await ctx.call("PATCH", `/api/v1/users/${bert.id}`, {
        json: { role: "viewer" },
        // Ada's earlier session ended when she was disabled.
        headers: (await loginAs(ctx, "ada", ada.password)).headers,
      });
      assert.equal(demote.status, 200);
      // An admin key kept by a viewer would still create users, or put its owner back to admin.
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { token: bertAdmin.key }),
        401,
        "api_key_revoked",
      );
      await expectError(
        await ctx.call("GET", "/api/v1/auth/me", { token: bertCi.key }),
        401,
        "api_key_revoked",
      );
      assert.ok(await works(bertViewer.key));
      const entries = await auditEntries(ctx, "user.update");
      const demotion = entries.find((e) => (e.details as { role?: unknown }).role);
      assert.equal((demotion?.details as { api_keys_revoked?: number }).api_keys_revoked, 2);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("API keys: the migration gives existing keys their creator as owner", async () => {
  const rows = await rowsAfterMigration("api_key_owners_migration", "api_key_owners", [
    `INSERT INTO users (id, username, password_hash, role, disabled, password_changed_at, created_at, updated_at)
     VALUES (7, 'carla', 'x', 'admin', 0, NOW(3), NOW(3), NOW(3))`,
    `INSERT INTO api_keys (name, prefix, key_hash, role, created_by, created_at) VALUES
     ('by-carla', 'ack_aaaaaaaa', REPEAT('a', 64), 'viewer', 'carla', NOW(3)),
     ('by-cli', 'ack_bbbbbbbb', REPEAT('b', 64), 'viewer', 'cli', NOW(3))`,
  ], "SELECT name, owner_user_id FROM api_keys ORDER BY name");
  assert.deepEqual(rows, [{ name: "by-carla", owner_user_id: 7 }, { name: "by-cli", owner_user_id: null }]);
});
