// GET /api/v1/audit: filters, newest first, cursor pagination, bad filters, who may read it.
import assert from "node:assert/strict";
import { recordAudit } from "../core/audit.ts";
import type { AuditPage } from "../core/auditQuery.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole, createUserWithRole, loginAs } from "./helpers/auth.ts";
import type { ErrorBody } from "./helpers/assertions.ts";

type Page = AuditPage;
Deno.test("audit log API", async (t) => {
  const ctx = await createTestApp("audit");
  try {
    const operatorKey = (await createApiKeyWithRole(ctx, "operator")).token;
    const get = async (query: string) => {
      const res = await ctx.call("GET", `/api/v1/audit${query}`, { token: operatorKey });
      assert.equal(res.status, 200, await res.clone().text());
      return json<Page>(res);
    };
    // A known history: 12 entries an hour apart, by two actors, on two kinds of target.
    const start = new Date("2026-05-01T00:00:00Z").getTime();
    for (let i = 0; i < 12; i++) {
      ctx.clock.set(new Date(start + i * 3600_000));
      await recordAudit(ctx.deps, ctx.deps.db, {
        principal: i % 2 === 0
          ? { kind: "user", userId: 7, username: "erin", role: "operator" }
          : { kind: "system", name: "cli" },
        action: i % 3 === 0 ? "config.create" : "node.update",
        targetType: i % 3 === 0 ? "config" : "node",
        targetId: `n${i % 4}`,
        details: { i },
        address: "192.0.2.1",
      });
    }
    ctx.clock.set("2026-06-01T12:00:00Z");

    await t.step("newest first, with the entry's fields", async () => {
      const page = await get("?actor=erin&limit=3");
      assert.deepEqual(page.entries.map((e) => e.details?.i), [10, 8, 6]);
      assert.deepEqual(page.entries[0], {
        id: page.entries[0].id,
        at: "2026-05-01T10:00:00.000Z",
        actor: { type: "user", id: "7", name: "erin" },
        action: "node.update",
        target_type: "node",
        target_id: "n2",
        details: { i: 10 },
        address: "192.0.2.1",
      });
      assert.ok(page.next_cursor);
    });

    await t.step("cursor pagination walks every match once", async () => {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Page = await get(
          `?from=2026-05-01T00:00:00Z&to=2026-05-01T11:00:00Z&limit=5${cursor ? `&cursor=${cursor}` : ""}`,
        );
        seen.push(...page.entries.map((e) => e.details?.i as number));
        cursor = page.next_cursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual(seen, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    });

    await t.step("filters: action (exact and prefix), target, time range", async () => {
      assert.deepEqual((await get("?action=config.create")).entries.map((e) => e.details?.i), [9, 6, 3, 0]);
      assert.equal((await get("?action=config.*")).entries.length, 4);
      assert.deepEqual(
        (await get("?target_type=node&target_id=n1")).entries.map((e) => e.details?.i),
        [5, 1],
      );
      assert.deepEqual(
        (await get("?from=2026-05-01T02:00:00Z&to=2026-05-01T04:00:00Z")).entries.map((e) => e.details?.i),
        [4, 3, 2],
      );
      assert.deepEqual((await get("?actor=nobody")).entries, []);
      // "_" and "%" in a prefix are literal, not LIKE wildcards.
      assert.deepEqual((await get("?action=config_*")).entries, []);
    });

    await t.step("changes made through the API show up with their actor", async () => {
      const admin = await createUserWithRole(ctx, "admin", "adele");
      const session = await loginAs(ctx, "adele", admin.password);
      const res = await ctx.call("POST", "/api/v1/api-keys", {
        json: { name: "from-ui", role: "viewer" },
        headers: session.headers,
      });
      assert.equal(res.status, 201);
      await res.body?.cancel();
      const page = await get("?actor=adele");
      assert.deepEqual(page.entries.map((e) => e.action), ["api_key.create", "auth.login"]);
      assert.equal((await get("?action=auth.*&actor=adele")).entries.length, 1);
    });

    await t.step("bad filters: 422 naming the field, in the query", async () => {
      for (
        const [query, field] of [
          ["?from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z", "from"],
          ["?from=yesterday", "from"],
          ["?to=2026-13-01T00:00:00Z", "to"],
          ["?from=2026-05-01T00:00:00", "from"], // no zone
          ["?limit=0", "limit"],
          ["?limit=501", "limit"],
          ["?limit=ten", "limit"],
          ["?cursor=not-a-cursor!", "cursor"],
          ["?cursor=WyJ4Il0", "cursor"], // ["x"]: decodes, but not ours
        ]
      ) {
        const res = await ctx.call("GET", `/api/v1/audit${query}`, { token: operatorKey });
        const body = await json<ErrorBody>(res);
        assert.equal(res.status, 422, `${query}: ${JSON.stringify(body)}`);
        assert.equal(body.error.code, "validation_failed");
        assert.equal(body.error.details?.[0].field, field, query);
        assert.equal(body.error.details?.[0].location, "query", query);
      }
    });

    await t.step("viewers may not read the audit log; admins may", async () => {
      const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
      const res = await ctx.call("GET", "/api/v1/audit", { token: viewer });
      assert.equal(res.status, 403);
      assert.equal((await json<ErrorBody>(res)).error.code, "forbidden");
      const admin = (await createApiKeyWithRole(ctx, "admin")).token;
      const ok = await ctx.call("GET", "/api/v1/audit", { token: admin });
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
      const anonymous = await ctx.call("GET", "/api/v1/audit");
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
    });
  } finally {
    await ctx.close();
  }
});
