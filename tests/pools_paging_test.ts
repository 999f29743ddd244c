// The fleet's pools in pages (the console's /pools): the page of ids is picked before the join, so the
// order, the filters and the "more" flag must hold across pages exactly as one big sorted list would.
import assert from "node:assert/strict";
import { fleetRegions, listFleetPools, POOL_PAGE_SIZE } from "../core/pools.ts";
import { createTestApp } from "./helpers/app.ts";
import { createUserWithRole, loginAs } from "./helpers/auth.ts";
import { insertEvents, insertNode, insertPool, poolOcid } from "./helpers/fixtures.ts";

Deno.test("pools in pages", async (t) => {
  const ctx = await createTestApp("pools_paging");
  try {
    const now = ctx.clock.now().getTime();
    // 40 nodes named out of insertion order, 3 pools each (inserted in reverse OCID order), every fifth in
    // another region; one decommissioned node and one offline node.
    const expected: { node: string; ocid: string; region: string; status: string }[] = [];
    for (let i = 0; i < 40; i++) {
      const n = (i * 17) % 40;
      const name = `node-${String(n).padStart(2, "0")}`;
      const region = n % 5 === 0 ? "eu-frankfurt-1" : "us-ashburn-1";
      const status = n === 7 ? "decommissioned" : n === 9 ? "offline" : "online";
      const id = await insertNode(ctx, {
        name,
        region,
        lastHeartbeatAt: new Date(now - (status === "offline" ? 3_600_000 : 5_000)),
        decommissionedAt: status === "decommissioned" ? new Date(now - 60_000) : null,
      });
      for (const p of [3, 2, 1]) {
        const ocid = poolOcid(`${name}-p${p}`);
        const pool = await insertPool(ctx, id, ocid, { currentSize: p, minSize: 1, maxSize: 5 });
        if (p === 2) await insertEvents(ctx, id, pool, [{ ts: new Date(now - n * 60_000), direction: "UP" }]);
        expected.push({ node: name, ocid, region, status });
      }
    }
    expected.sort((a, b) => a.node.localeCompare(b.node) || a.ocid.localeCompare(b.ocid));
    const walk = async (params: Parameters<typeof listFleetPools>[1]) => {
      const seen: { node: string; ocid: string }[] = [];
      for (let page = 1;; page++) {
        const result = await listFleetPools(ctx.deps, { ...params, page });
        assert.equal(result.page, page);
        assert.ok(result.items.length <= POOL_PAGE_SIZE);
        seen.push(...result.items.map((item) => ({ node: item.node.name, ocid: item.instance_pool_id })));
        if (!result.has_more) break;
        assert.equal(result.items.length, POOL_PAGE_SIZE, "a page before the last is full");
      }
      return seen;
    };
    const pick = (rows: typeof expected) => rows.map(({ node, ocid }) => ({ node, ocid }));

    await t.step("pages follow node name then pool OCID, with no row twice or missing", async () => {
      const all = await walk({});
      assert.deepEqual(all, pick(expected.filter((e) => e.status !== "decommissioned")));
      assert.equal(all.length, 117); // 39 active nodes x 3 pools: three pages
    });

    await t.step("each row carries its own node, sizes and last scaling event after the join", async () => {
      const { items } = await listFleetPools(ctx.deps, { page: 2 });
      for (const item of items) {
        assert.ok(
          item.instance_pool_id.includes(item.node.name),
          `${item.instance_pool_id} on ${item.node.name}`,
        );
        const p = Number(item.instance_pool_id.at(-1));
        assert.equal(item.current_size, p);
        const n = Number(item.node.name.slice(5));
        assert.equal(item.last_scaled_at, p === 2 ? new Date(now - n * 60_000).toISOString() : null);
        assert.equal(item.node.status, n === 9 ? "offline" : "online");
      }
    });

    await t.step("filters hold across pages: region, text, node status", async () => {
      assert.deepEqual(
        await walk({ region: "eu-frankfurt-1" }),
        pick(expected.filter((e) => e.region === "eu-frankfurt-1" && e.status !== "decommissioned")),
      );
      assert.deepEqual(
        await walk({ q: "p2" }),
        pick(expected.filter((e) => e.ocid.endsWith("p2") && e.status !== "decommissioned")),
      );
      assert.deepEqual(
        await walk({ node_status: "decommissioned" }),
        pick(expected.filter((e) => e.status === "decommissioned")),
      );
      assert.deepEqual(
        await walk({ node_status: "offline" }),
        pick(expected.filter((e) => e.status === "offline")),
      );
    });

    await t.step("filter menus list the regions of active nodes only", async () => {
      await insertNode(ctx, { name: "gone-node", region: "ap-gone-1", decommissionedAt: new Date(now) });
      await insertNode(ctx, { name: "nowhere-node", region: null });
      assert.deepEqual(await fleetRegions(ctx.deps), ["eu-frankfurt-1", "us-ashburn-1"]);
    });

    await t.step("past the last page: an empty page; a bad page number is refused", async () => {
      const beyond = await listFleetPools(ctx.deps, { page: 9 });
      assert.deepEqual(beyond, { items: [], page: 9, has_more: false });
      await assert.rejects(() => listFleetPools(ctx.deps, { page: 0 }), /page/);
    });

    await t.step("the page links to its neighbours, keeping the filters", async () => {
      const admin = await createUserWithRole(ctx, "admin");
      const session = await loginAs(ctx, admin.username, admin.password);
      const get = async (path: string) => {
        const res = await ctx.call("GET", path, { headers: { accept: "text/html", cookie: session.cookie } });
        assert.equal(res.status, 200);
        return await res.text();
      };
      const first = await get("/pools?region=us-ashburn-1");
      assert.match(first, /href="\/pools\?region=us-ashburn-1&amp;page=2"/);
      const second = await get("/pools?region=us-ashburn-1&page=2");
      assert.match(second, /Pools 51–/);
      assert.match(second, /href="\/pools\?region=us-ashburn-1"/);
      // A page number that is not one falls back to the first page.
      assert.match(await get("/pools?page=abc"), /Pools 1–50/);
    });
  } finally {
    await ctx.close();
  }
});
