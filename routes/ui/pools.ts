// GET /pools : every instance pool of the fleet, filterable by text, region and node status.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { NODE_STATUSES } from "../../core/nodeStatus.ts";
import { fleetRegions, listFleetPools, POOL_PAGE_SIZE } from "../../core/pools.ts";
import type { AppEnv } from "../env.ts";
import type { Ui } from "./render.ts";
import { requirePageRole } from "./session.ts";

// Unknown or malformed filter values fall back to "any" instead of an error page: they come from URLs.
const PoolQuery = z.object({
  q: z.string().max(200).catch(""),
  region: z.string().max(64).catch(""),
  node_status: z.enum(NODE_STATUSES).or(z.literal("")).catch(""),
  page: z.coerce.number().int().min(1).max(100_000).catch(1),
});

export function registerPoolPages(app: OpenAPIHono<AppEnv>, ui: Ui): void {
  app.get("/pools", async (c) => {
    requirePageRole(c, "viewer");
    const query = PoolQuery.parse({
      q: c.req.query("q") ?? "",
      region: c.req.query("region") ?? "",
      node_status: c.req.query("node_status") ?? "",
      page: c.req.query("page") ?? 1,
    });
    const [result, regions] = await Promise.all([
      listFleetPools(ui.deps, {
        q: query.q,
        region: query.region,
        node_status: query.node_status || undefined,
        page: query.page,
      }),
      fleetRegions(ui.deps),
    ]);
    const urlFor = (page: number) => {
      const params = new URLSearchParams();
      for (const key of ["q", "region", "node_status"] as const) if (query[key]) params.set(key, query[key]);
      if (page > 1) params.set("page", String(page));
      const text = params.toString();
      return text ? `/pools?${text}` : "/pools";
    };
    const filtered = !!(query.q || query.region || query.node_status);
    const shown = result.items.length;
    const first = (result.page - 1) * POOL_PAGE_SIZE + 1;
    return ui.render(c, {
      page: "@pages/pools",
      partial: "@partials/pool-results",
      title: "Instance pools",
      nav: "pools",
      data: {
        query,
        regions,
        pools: result.items,
        filtered,
        summary: shown === 0
          ? "No pools"
          : `Pools ${first}–${first + shown - 1}${result.has_more ? " (more on the next page)" : ""}`,
        prevUrl: result.page > 1 ? urlFor(result.page - 1) : null,
        nextUrl: result.has_more ? urlFor(result.page + 1) : null,
      },
    });
  });
}
