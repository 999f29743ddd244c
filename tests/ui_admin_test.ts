// The console's activity and administration pages: /events, /audit, /admin/users, /admin/api-keys,
// /admin/enrollment-tokens, /account/password. Secrets shown once and never cached; bad input comes back
// as the form with the message at the field (422) and writes nothing; roles and CSRF hold.
import assert from "node:assert/strict";
import { createTestApp } from "./helpers/app.ts";
import { createUserWithRole, loginAs } from "./helpers/auth.ts";
import { seedFleet } from "./helpers/fleet_seed.ts";
import { expectFieldError, page, PARTIAL, postForm, submitForm } from "./helpers/ui.ts";
import { countRows } from "./helpers/assertions.ts";

Deno.test("console: activity and administration pages", async (t) => {
  const ctx = await createTestApp("ui_admin");
  try {
    const a = await createUserWithRole(ctx, "admin");
    const admin = await loginAs(ctx, a.username, a.password);
    const o = await createUserWithRole(ctx, "operator");
    const operator = await loginAs(ctx, o.username, o.password);
    const v = await createUserWithRole(ctx, "viewer");
    const viewer = await loginAs(ctx, v.username, v.password);
    await seedFleet(ctx);

    await t.step(
      "/events lists the fleet's scaling events with direction filter and node links",
      async () => {
        const all = await page(ctx, "/events?period=", viewer);
        assert.equal(all.status, 200);
        assert.match(all.html, /<h1>Scaling events<\/h1>/);
        assert.match(all.html, /href="\/nodes\/[0-9a-f-]{36}"/);
        const ups = (all.html.match(/dir-up/g) ?? []).length;
        const downs = (all.html.match(/dir-down/g) ?? []).length;
        assert.ok(ups > 0 && downs > 0, "the seed has both directions");
        const onlyUp = await page(ctx, "/events?period=&direction=UP", viewer);
        assert.equal((onlyUp.html.match(/dir-down/g) ?? []).length, 0);
        assert.equal((onlyUp.html.match(/dir-up/g) ?? []).length, ups);
        const fragment = (await page(ctx, "/events?period=", viewer, PARTIAL)).html;
        assert.match(fragment.trim(), /^<div id="event-results"/);
        assert.doesNotMatch(fragment, /<html/);
        const bad = await page(ctx, "/events?cursor=garbage", viewer);
        assert.equal(bad.status, 200);
        assert.match(bad.html, /id="cursor-error"/);
      },
    );

    await t.step("/audit: operators read it with filters, viewers get 403", async () => {
      const res = await page(ctx, "/audit?period=", operator);
      assert.equal(res.status, 200);
      assert.match(res.html, /<h1>Audit log<\/h1>/);
      const filtered = await page(ctx, `/audit?period=&action=auth.*`, operator);
      assert.equal(filtered.status, 200);
      assert.match(filtered.html, /auth\.login/);
      assert.doesNotMatch(filtered.html, /<code>node\./);
      assert.equal((await page(ctx, "/audit", viewer)).status, 403);
      assert.doesNotMatch(
        (await page(ctx, "/", viewer)).html,
        /href="\/audit"/,
        "no link a viewer cannot follow",
      );
    });

    await t.step("admin pages are for admins: operators get 403 and no Admin link", async () => {
      for (const path of ["/admin/users", "/admin/api-keys", "/admin/enrollment-tokens"]) {
        assert.equal((await page(ctx, path, operator)).status, 403, path);
        assert.equal((await page(ctx, path, admin)).status, 200, path);
      }
      assert.doesNotMatch((await page(ctx, "/", operator)).html, /href="\/admin\/users"/);
      assert.match((await page(ctx, "/", admin)).html, /href="\/admin\/users"/);
      const forged = await submitForm(ctx, "/admin/api-keys", operator, { name: "x", role: "admin" });
      assert.equal(forged.status, 403);
    });

    let keyId = 0;
    await t.step("API key: bad input is the form again with the message, nothing written", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) AS n FROM api_keys");
      const res = await submitForm(ctx, "/admin/api-keys", admin, {
        name: "  ",
        role: "admin",
        expires_in_days: "",
      });
      await expectFieldError(res, "name");
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM api_keys"), before);
      const noCsrf = await postForm(ctx, "/admin/api-keys", admin, { name: "k", role: "viewer" });
      assert.equal(noCsrf.status, 403);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM api_keys"), before);
    });

    await t.step(
      "API key: created and shown once (no-store), works, listed with its owner, revoked",
      async () => {
        const res = await submitForm(ctx, "/admin/api-keys", admin, {
          name: `<b>"ci"</b>`,
          role: "viewer",
          expires_in_days: "30",
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("cache-control"), "no-store");
        const html = await res.text();
        const key = html.match(/value="(ack_[A-Za-z0-9_-]+)"/)?.[1];
        assert.ok(key, "the key is on the page");
        assert.match(html, /&lt;b&gt;&quot;ci&quot;&lt;\/b&gt;/, "the name stays text");
        const me = await ctx.call("GET", "/api/v1/nodes", { headers: { authorization: `Bearer ${key}` } });
        assert.equal(me.status, 200);
        const list = await page(ctx, "/admin/api-keys", admin);
        assert.doesNotMatch(list.html, new RegExp(key!), "never shown again");
        assert.match(list.html, new RegExp(a.username));
        keyId = Number(list.html.match(/\/admin\/api-keys\/(\d+)\/revoke/)?.[1]);
        const revoked = await submitForm(ctx, `/admin/api-keys/${keyId}/revoke`, admin, {});
        assert.equal(revoked.status, 303);
        const after = await ctx.call("GET", "/api/v1/nodes", { headers: { authorization: `Bearer ${key}` } });
        assert.equal(after.status, 401);
        assert.match((await page(ctx, "/admin/api-keys", admin)).html, /Revoked/);
      },
    );

    await t.step("enrollment token: bad max uses 422 at the field; created once; revoked", async () => {
      const before = await countRows(ctx, "SELECT COUNT(*) AS n FROM enrollment_tokens");
      const create = (maxUses: string) =>
        submitForm(ctx, "/admin/enrollment-tokens", admin, {
          name: "batch",
          expires_in_s: "86400",
          max_uses: maxUses,
        });
      await expectFieldError(await create("-3"), "max_uses", ["batch"]);
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM enrollment_tokens"), before);
      const res = await create("5");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.match(await res.text(), /value="ace_[A-Za-z0-9_-]+"/);
      const list = await page(ctx, "/admin/enrollment-tokens", admin);
      const id = Number(list.html.match(/\/admin\/enrollment-tokens\/(\d+)\/revoke/)?.[1]);
      assert.equal((await submitForm(ctx, `/admin/enrollment-tokens/${id}/revoke`, admin, {})).status, 303);
      assert.equal(
        await countRows(
          ctx,
          `SELECT COUNT(*) AS n FROM enrollment_tokens WHERE id = ${id} AND revoked_at IS NOT NULL`,
        ),
        1,
      );
    });

    await t.step("users: create (422 on mismatch, nothing written), disable, last admin kept", async () => {
      // The same new user twice: first with a confirmation that does not match.
      const create = (passwordConfirm: string) =>
        submitForm(ctx, "/admin/users", admin, {
          username: "newbie",
          role: "operator",
          password: "a-long-password-1",
          password_confirm: passwordConfirm,
        });
      const before = await countRows(ctx, "SELECT COUNT(*) AS n FROM users");
      const html = await expectFieldError(await create("a-long-password-2"), "password_confirm", ["newbie"]);
      assert.doesNotMatch(html, /a-long-password-1/, "passwords are never echoed");
      assert.equal(await countRows(ctx, "SELECT COUNT(*) AS n FROM users"), before);
      const created = await create("a-long-password-1");
      assert.equal(created.status, 303);
      const list = await page(ctx, "/admin/users", admin);
      assert.match(list.html, /newbie/);
      const newbieId = Number(
        list.html.match(/newbie<\/strong>[\s\S]*?action="\/admin\/users\/(\d+)"/)?.[1],
      );
      assert.ok(newbieId > 0);
      // Disabling revokes the user's keys for good: it asks first, and the button names the user.
      assert.match(list.html, /<summary class="btn btn-danger">Disable…<\/summary>/);
      assert.match(list.html, /<button type="submit" class="btn btn-danger">Disable newbie<\/button>/);
      assert.equal(
        (await submitForm(ctx, `/admin/users/${newbieId}`, admin, { action: "disable" })).status,
        303,
      );
      assert.equal(
        await countRows(ctx, `SELECT COUNT(*) AS n FROM users WHERE id = ${newbieId} AND disabled`),
        1,
      );
      // The only admin demoting themselves is refused with a message; nothing changes.
      const myId = Number(
        list.html.match(new RegExp(`${a.username}</strong>[\\s\\S]*?action="/admin/users/(\\d+)"`))?.[1],
      );
      const refused = await submitForm(ctx, `/admin/users/${myId}`, admin, {
        action: "role",
        role: "viewer",
      });
      assert.equal(refused.status, 303);
      assert.equal(
        await countRows(ctx, `SELECT COUNT(*) AS n FROM users WHERE id = ${myId} AND role = 'admin'`),
        1,
      );
      // The refusal is told on the next page (a flash cookie set by the redirect).
      const flash = (refused.headers.get("set-cookie") ?? "").split(";")[0];
      const next = await page(ctx, "/admin/users", admin, { cookie: `${admin.cookie}; ${flash}` });
      assert.match(next.html, /flash-error/);
    });

    await t.step("own password: wrong current 422 at the field; mismatch 422; then changed", async () => {
      const wrong = await submitForm(ctx, "/account/password", viewer, {
        current_password: "not-my-password",
        new_password: "another-long-password",
        new_password_confirm: "another-long-password",
      });
      await expectFieldError(wrong, "current_password");
      const ok = await submitForm(ctx, "/account/password", viewer, {
        current_password: v.password,
        new_password: "another-long-password",
        new_password_confirm: "another-long-password",
      });
      assert.equal(ok.status, 303);
      await loginAs(ctx, v.username, "another-long-password");
    });

    await t.step(
      "a row id in the path that is not one is 404 with the error page, nothing changed",
      async () => {
        const revokedOrDisabled = () =>
          countRows(
            ctx,
            "SELECT (SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL) + " +
              "(SELECT COUNT(*) FROM enrollment_tokens WHERE revoked_at IS NOT NULL) + " +
              "(SELECT COUNT(*) FROM users WHERE disabled) AS n",
          );
        const before = await revokedOrDisabled();
        for (const id of ["abc", "0", "-1", "1e3", "99999999999", crypto.randomUUID(), "%00"]) {
          for (const path of [`/admin/api-keys/${id}/revoke`, `/admin/enrollment-tokens/${id}/revoke`]) {
            const res = await submitForm(ctx, path, admin, {});
            assert.equal(res.status, 404, path);
            assert.match(await res.text(), /not found/i, path);
          }
          const user = await submitForm(ctx, `/admin/users/${id}`, admin, { action: "disable" });
          assert.equal(user.status, 404, id);
          await user.body?.cancel();
          const rollout = await page(ctx, `/rollouts/${id}`, admin);
          assert.equal(rollout.status, 404, id);
        }
        assert.equal(await revokedOrDisabled(), before);
      },
    );
  } finally {
    await ctx.close();
  }
});
