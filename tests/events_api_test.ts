import assert from "node:assert/strict";
import type { ScalingEventView } from "../core/metricsQuery.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import { insertEvents, insertNode, insertPool, poolOcid } from "./helpers/fixtures.ts";
import { expectGetRefused } from "./helpers/assertions.ts";

type Page = { items: ScalingEventView[]; next_cursor: string | null };

Deno.test("scaling events API", async (t) => {
  const ctx = await createTestApp("events_api");
  try {
    const now = ctx.clock.now();
    const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000);
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;

    const web = await insertNode(ctx, { name: "web-1" });
    const batch = await insertNode(ctx, { name: "batch-1" });
    const webA = await insertPool(ctx, web, poolOcid("weba"), { displayName: "front" });
    const webB = await insertPool(ctx, web, poolOcid("webb"));
    const batchA = await insertPool(ctx, batch, poolOcid("batcha"));
    await insertEvents(ctx, web, webA, [
      { ts: ago(60), direction: "UP", from: 2, to: 3, reason: "cpu 81% > 75%" },
      { ts: ago(600), direction: "DOWN", from: 3, to: 2 },
      { ts: ago(3600), direction: "UP", from: 1, to: 2 },
    ]);
    await insertEvents(ctx, web, webB, [{ ts: ago(60), direction: "DOWN" }]); // same ts as webA's newest
    await insertEvents(ctx, batch, batchA, [
      { ts: ago(120), direction: "UP" },
      { ts: ago(7200), direction: "DOWN" },
    ]);

    const get = async (path: string) => {
      const res = await ctx.call("GET", path, { token: viewer });
      const body = await json(res);
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(body)}`);
      return body as unknown as Page;
    };
    const refused = (path: string, status: number, field?: string) =>
      expectGetRefused(ctx, path, viewer, status, field);
    const summary = (page: Page) =>
      page.items.map((e) => `${e.node_name}/${e.instance_pool_id.split(".").at(-1)}@${e.ts}`);

    await t.step("fleet-wide, newest first, with node and pool named", async () => {
      const page = await get("/api/v1/events");
      assert.equal(page.items.length, 6);
      assert.equal(page.next_cursor, null);
      const times = page.items.map((e) => Date.parse(e.ts));
      assert.deepEqual(times, [...times].sort((a, b) => b - a));
      const newestUp = page.items.find((e) =>
        e.instance_pool_id === poolOcid("weba") && e.ts === ago(60).toISOString()
      );
      assert.deepEqual({ ...newestUp, id: 0 }, {
        id: 0,
        node_id: web,
        node_name: "web-1",
        instance_pool_id: poolOcid("weba"),
        pool_display_name: "front",
        ts: ago(60).toISOString(),
        direction: "UP",
        from_count: 2,
        to_count: 3,
        reason: "cpu 81% > 75%",
      });
    });

    await t.step("per node and per pool; direction and time filters", async () => {
      assert.equal((await get(`/api/v1/nodes/${web}/events`)).items.length, 4);
      assert.ok((await get(`/api/v1/nodes/${web}/events`)).items.every((e) => e.node_id === web));
      const pool = await get(`/api/v1/nodes/${web}/pools/${poolOcid("weba")}/events`);
      assert.deepEqual(
        pool.items.map((e) => e.ts),
        [ago(60), ago(600), ago(3600)].map((d) => d.toISOString()),
      );
      assert.deepEqual((await get("/api/v1/events?direction=DOWN")).items.map((e) => e.direction), [
        "DOWN",
        "DOWN",
        "DOWN",
      ]);
      const window = await get(
        `/api/v1/events?from=${ago(700).toISOString()}&to=${ago(100).toISOString()}`,
      );
      assert.deepEqual(summary(window), [
        `batch-1/batcha@${ago(120).toISOString()}`,
        `web-1/weba@${ago(600).toISOString()}`,
      ]);
      const upOnBatch = await get(`/api/v1/nodes/${batch}/events?direction=UP`);
      assert.equal(upOnBatch.items.length, 1);
    });

    await t.step("cursor pages of 1 and 4 give the same order as one page, ties included", async () => {
      const whole = summary(await get("/api/v1/events?limit=500"));
      for (const limit of [1, 4]) {
        const walked: string[] = [];
        let cursor: string | null = null;
        for (let i = 0; i < 10; i++) {
          const page: Page = await get(`/api/v1/events?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
          walked.push(...summary(page));
          cursor = page.next_cursor;
          if (!cursor) break;
        }
        assert.deepEqual(walked, whole, `limit ${limit}`);
      }
      // A cursor keeps its filters' meaning when they are repeated.
      const first = await get(`/api/v1/nodes/${web}/events?limit=2`);
      const second = await get(`/api/v1/nodes/${web}/events?limit=2&cursor=${first.next_cursor}`);
      assert.equal(second.next_cursor, null);
      assert.equal(first.items.length + second.items.length, 4);
    });

    await t.step(
      "bad inputs: 422 naming the parameter; unknown node or pool 404; anonymous 401",
      async () => {
        await refused(
          `/api/v1/events?from=${ago(10).toISOString()}&to=${ago(100).toISOString()}`,
          422,
          "from",
        );
        await refused("/api/v1/events?direction=SIDEWAYS", 422, "direction");
        await refused("/api/v1/events?limit=0", 422, "limit");
        await refused("/api/v1/events?limit=501", 422, "limit");
        await refused("/api/v1/events?cursor=zzz", 422, "cursor");
        await refused("/api/v1/events?cursor=WyJub3QgYSB0aW1lIiwxXQ", 422, "cursor"); // ["not a time",1]
        await refused("/api/v1/events?to=soon", 422, "to");
        await refused(`/api/v1/nodes/${crypto.randomUUID()}/events`, 404);
        await refused(`/api/v1/nodes/${web}/pools/${poolOcid("batcha")}/events`, 404);
        await refused(`/api/v1/nodes/${web}/pools/${poolOcid("none")}/events`, 404);
        const res = await ctx.call("GET", "/api/v1/events");
        assert.equal(res.status, 401);
        await res.body?.cancel();
      },
    );
  } finally {
    await ctx.close();
  }
});
