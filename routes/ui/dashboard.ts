// GET / : the fleet dashboard. Its live part (views/partials/dashboard-live.eta) polls the same URL every
// 10 s and is morphed in place, so scroll position and focus survive the refresh.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { DASHBOARD_CHART_HOURS, dashboardOverview, type SeriesCache } from "../../core/dashboard.ts";
import { isSetupNeeded } from "../../core/setup.ts";
import type { AppEnv } from "../env.ts";
import { buildChart } from "./charts.ts";
import type { Ui } from "./render.ts";
import { requirePageRole } from "./session.ts";

export function registerDashboardPages(app: OpenAPIHono<AppEnv>, ui: Ui): void {
  const seriesCache: SeriesCache = {};
  app.get("/", async (c) => {
    // First run: with no account at all, the way in is the setup page.
    if (!c.get("principal") && await isSetupNeeded(ui.deps)) return c.redirect("/setup", 303);
    requirePageRole(c, "viewer");
    const dashboard = await dashboardOverview(ui.deps, seriesCache);
    const series = dashboard.instances_series;
    const chart = buildChart({
      id: "fleet-instances",
      title: `Fleet instances, last ${DASHBOARD_CHART_HOURS} h`,
      unit: "instances",
      from: series.from,
      to: series.to,
      series: [{ name: "Instances", points: series.points.map((p) => ({ t: p.ts, v: p.instances })) }],
      // The latest scaling events, marked where they happened.
      markers: dashboard.events.map((e) => ({
        t: e.ts,
        label: `${e.direction} ${e.node_name} ${e.pool_display_name ?? e.instance_pool_id}` +
          (e.from_count !== null && e.to_count !== null ? ` ${e.from_count} → ${e.to_count}` : ""),
        kind: e.direction === "UP" ? "up" as const : "down" as const,
      })),
      gapMs: series.step_s * 2000,
      decimals: 0,
      width: 1100,
      height: 260,
      hideTitle: true, // the panel's heading names it
    });
    return ui.render(c, {
      page: "@pages/dashboard",
      partial: "@partials/dashboard-live",
      title: "Dashboard",
      nav: "dashboard",
      data: { dashboard, chart },
    });
  });
}
