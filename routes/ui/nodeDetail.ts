// GET /nodes/{id} : one node, at a URL operators share (?range= picks the charts' span, ?events= a page of
// its scaling events). The same URL answers the fragments htmx asks for, chosen by the HX-Target the
// request names: #node-status (polled every 10 s), #node-charts (the range switcher), #node-events
// (paging); each loads only what it shows.
// Operators also post here: labels (add/remove), a single-use re-enrollment token (shown once), and
// decommission after a confirmation that works without JavaScript.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { changeNodeLabels, type LabelChange, labelChangeProblems } from "../../core/bulkLabels.ts";
import { createReenrollmentToken, REENROLLMENT_DEFAULT_EXPIRES_S } from "../../core/enrollment.ts";
import { AppError, type ErrorDetail, notFound } from "../../core/errors.ts";
import {
  DEFAULT_HISTORY_RANGE,
  HISTORY_RANGE_KEYS,
  HISTORY_RANGES,
  type HistoryRange,
  type NodeHistory,
  nodeHistory,
  summarizeHistory,
} from "../../core/nodeHistory.ts";
import { listScalingEvents } from "../../core/metricsQuery.ts";
import { decommissionNode, getNode, type NodeDetail, updateNode } from "../../core/nodes.ts";
import { DISPLAY_NAME_MAX } from "../../core/fields.ts";
import type { AppEnv } from "../env.ts";
import { buildChart, type ChartInput, type ChartMarkerInput, type ChartModel } from "./charts.ts";
import { detailsByField } from "./forms.ts";
import { isPartialRequest, type Ui } from "./render.ts";
import { field, postedForm, requirePageRole } from "./session.ts";

const EVENTS_PAGE_SIZE = 15;
/** Lifetimes offered for a re-enrollment token (seconds). */
const TOKEN_LIFETIMES = [[3_600, "1 hour"], [REENROLLMENT_DEFAULT_EXPIRES_S, "1 day"], [
  7 * 86_400,
  "7 days",
]];

type Part = "status" | "charts" | "events";
const PARTS: Record<Part, string> = {
  status: "@partials/node-status",
  charts: "@partials/node-charts",
  events: "@partials/node-events",
};

/** The fragment an htmx request asks for (HX-Target "div#node-charts"), or null for the whole page. */
function requestedPart(c: Context<AppEnv>): Part | null {
  if (!isPartialRequest(c)) return null;
  const id = (c.req.header("hx-target") ?? "").split("#")[1] ?? "";
  const part = id.replace(/^node-/, "");
  return part in PARTS ? part as Part : null;
}

function parseRange(value: string | undefined | null): HistoryRange {
  return HISTORY_RANGE_KEYS.includes(value as HistoryRange) ? value as HistoryRange : DEFAULT_HISTORY_RANGE;
}

function nodeUrl(id: string, range: HistoryRange, eventsCursor?: string | null): string {
  const params = new URLSearchParams();
  if (range !== DEFAULT_HISTORY_RANGE) params.set("range", range);
  if (eventsCursor) params.set("events", eventsCursor);
  const query = params.toString();
  return `/nodes/${encodeURIComponent(id)}${query ? `?${query}` : ""}`;
}

function poolName(pool: { display_name: string | null; instance_pool_id: string }): string {
  return pool.display_name ?? pool.instance_pool_id.split(".").at(-1) ?? pool.instance_pool_id;
}

const CHART_IDS = ["cpu", "memory", "instances"] as const;
type ChartId = typeof CHART_IDS[number];

/** Where a chart's data table is loaded from (on demand: a page of its own without JavaScript). */
function chartTableUrl(nodeId: string, chart: ChartId, range: HistoryRange): string {
  return `/nodes/${encodeURIComponent(nodeId)}/charts/${chart}${
    range === DEFAULT_HISTORY_RANGE ? "" : `?range=${range}`
  }`;
}

/** Three charts (cpu %, memory %, instances), one line per pool, the range's scaling events marked; their
 * data tables are loaded when asked for. */
function historyCharts(history: NodeHistory, nodeId: string): ChartModel[] {
  const when = (iso: string) => iso.slice(0, 16).replace("T", " ");
  const markers: ChartMarkerInput[] = [
    ...history.events.map((e): ChartMarkerInput => ({
      t: e.ts,
      kind: e.direction === "UP" ? "up" : "down",
      label:
        `${e.direction === "UP" ? "Scaled up" : "Scaled down"} ${
          poolName({ ...e, display_name: e.pool_display_name })
        }` +
        (e.from_count !== null && e.to_count !== null ? ` ${e.from_count} → ${e.to_count}` : "") +
        (e.reason ? ` (${e.reason})` : ""),
    })),
    // Many events: one marker per group and direction, ups in the group's first half, downs in its second.
    ...history.event_groups.map((g): ChartMarkerInput => {
      const up = g.direction === "UP";
      const from = Date.parse(g.from);
      return {
        t: new Date(from + (up ? 0.3 : 0.7) * history.group_s * 1000),
        kind: up ? "up" : "down",
        label: "",
        title: `${g.count} ${up ? "scale-up" : "scale-down"}${g.count === 1 ? "" : "s"} between ${
          when(g.from)
        } and ${when(g.to)} UTC`,
      };
    }),
  ];
  const common = {
    from: history.from,
    to: history.to,
    markers,
    gapMs: history.gap_s * 1000,
    // Two charts side by side on a laptop, one under the other on a phone: drawn near either size (the
    // phone's larger SVG type, app.css, keeps the axes readable when it is scaled down).
    width: 480,
    height: 240,
    hideTitle: true,
  };
  /** One chart: a line per pool of the value `pick` takes from each point. */
  const chart = (
    id: ChartId,
    title: string,
    unit: string,
    pick: (p: NodeHistory["pools"][number]["points"][number]) => number,
    scale: Pick<ChartInput, "yDomain" | "decimals">,
  ) =>
    buildChart({
      ...common,
      id,
      tableUrl: chartTableUrl(nodeId, id, history.range),
      title,
      unit,
      ...scale,
      series: history.pools.map((pool) => ({
        name: poolName(pool),
        points: pool.points.map((p) => ({ t: p.ts, v: pick(p) })),
      })),
    });
  return [
    chart("cpu", "CPU utilisation", "%", (p) => p.cpu.avg, { yDomain: [0, 100] }),
    chart("memory", "Memory utilisation", "%", (p) => p.memory.avg, { yDomain: [0, 100] }),
    chart("instances", "Instances", "instances", (p) => p.instance_count, { decimals: 0 }),
  ];
}

interface NodePageState {
  range: HistoryRange;
  eventsCursor?: string;
  errors?: Record<string, string>;
  label?: { key: string; value: string };
  /** The display name as typed, when the form comes back with an error. */
  displayName?: string;
  status?: 200 | 422;
}

async function renderNodePage(
  ui: Ui,
  c: Context<AppEnv>,
  nodeId: string,
  state: NodePageState,
): Promise<Response> {
  const part = state.status === 422 ? null : requestedPart(c);
  const node = await getNode(ui.deps, nodeId);
  const { range } = state;
  const wants = (p: Part) => part === null || part === p;
  const [history, events] = await Promise.all([
    wants("charts") ? nodeHistory(ui.deps, node.id, range) : null,
    wants("events")
      ? listScalingEvents(ui.deps, { nodeId: node.id }, {
        cursor: state.eventsCursor || undefined,
        limit: EVENTS_PAGE_SIZE,
      }).catch((error) => {
        // A stale or hand-edited cursor shows the first page rather than an error page.
        if (error instanceof AppError && error.status === 422 && state.eventsCursor) {
          return listScalingEvents(ui.deps, { nodeId: node.id }, { limit: EVENTS_PAGE_SIZE });
        }
        throw error;
      })
      : null,
  ]);
  const title = node.display_name || node.name;
  return ui.render(c, {
    page: "@pages/node",
    partial: part ? PARTS[part] : undefined,
    title,
    nav: "nodes",
    status: state.status ?? 200,
    data: {
      node,
      title,
      range,
      ranges: HISTORY_RANGE_KEYS.map((key) => ({
        key,
        label: HISTORY_RANGES[key].label,
        url: nodeUrl(node.id, key),
      })),
      history,
      charts: history ? historyCharts(history, node.id) : [],
      summary: history ? summarizeHistory(history) : [],
      events: events?.items ?? [],
      eventsFirstUrl: state.eventsCursor ? nodeUrl(node.id, range) : null,
      eventsNextUrl: events?.next_cursor ? nodeUrl(node.id, range, events.next_cursor) : null,
      selfUrl: nodeUrl(node.id, range, state.eventsCursor),
      errors: state.errors ?? {},
      label: state.label ?? { key: "", value: "" },
      displayName: state.displayName ?? node.display_name ?? "",
      displayNameMax: DISPLAY_NAME_MAX,
      tokenLifetimes: TOKEN_LIFETIMES,
      configUrl: `/nodes/${encodeURIComponent(node.id)}/config`,
    },
  });
}

export function registerNodeDetailPages(app: OpenAPIHono<AppEnv>, ui: Ui): void {
  app.get("/nodes/:id", (c) => {
    requirePageRole(c, "viewer");
    return renderNodePage(ui, c, c.req.param("id"), {
      range: parseRange(c.req.query("range")),
      eventsCursor: c.req.query("events")?.slice(0, 500),
    });
  });

  // A chart's data as a table: what the chart's <details> loads (htmx), and a page of its own without
  // JavaScript.
  app.get("/nodes/:id/charts/:chart", async (c) => {
    requirePageRole(c, "viewer");
    const chartId = c.req.param("chart") as ChartId;
    if (!CHART_IDS.includes(chartId)) throw notFound(`chart ${c.req.param("chart")}`);
    const node = await getNode(ui.deps, c.req.param("id"));
    const range = parseRange(c.req.query("range"));
    const history = await nodeHistory(ui.deps, node.id, range);
    const chart = historyCharts(history, node.id)[CHART_IDS.indexOf(chartId)];
    return ui.render(c, {
      page: "@pages/node-chart-table",
      partial: "@partials/chart-table",
      title: `${chart.title}: ${node.display_name || node.name}`,
      nav: "nodes",
      data: {
        chart,
        table: chart.table,
        nodeTitle: node.display_name || node.name,
        nodeUrl: nodeUrl(node.id, range),
        rangeLabel: HISTORY_RANGES[range].label,
      },
    });
  });

  // Add or remove one label (the same rules and audit as the node list's bulk change).
  app.post("/nodes/:id/labels", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "operator");
    const node: NodeDetail = await getNode(ui.deps, c.req.param("id"));
    const range = parseRange(field(form, "range"));
    const op = field(form, "op") === "remove" ? "remove" : "add";
    const key = field(form, "key").trim();
    const value = field(form, "value").trim();
    const change: LabelChange = op === "add" ? { op, key, value } : { op, key };
    const again = (details: ErrorDetail[]) =>
      renderNodePage(ui, c, node.id, {
        range,
        errors: detailsByField(details),
        label: op === "add" ? { key, value } : undefined,
        status: 422,
      });
    const problems = labelChangeProblems([node.id], change);
    if (problems.length) return again(problems);
    try {
      const { changed } = await changeNodeLabels(
        ui.deps,
        actor,
        [node.id],
        change,
      );
      const text = changed === 0
        ? (op === "add" ? `The label ${key}=${value} was already set.` : `There was no label ${key}.`)
        : (op === "add" ? `Label ${key}=${value} added.` : `Label ${key} removed.`);
      ui.flash(c, "ok", text);
    } catch (error) {
      if (error instanceof AppError && error.status === 422) return again(error.details ?? []);
      throw error;
    }
    return c.redirect(`${nodeUrl(node.id, range)}#labels`, 303);
  });

  // The operator's name for the node (empty clears it: the agent's name shows). Same rule and audit as the
  // API's PATCH /api/v1/nodes/{id}.
  app.post("/nodes/:id/display-name", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "operator");
    const node = await getNode(ui.deps, c.req.param("id"));
    const range = parseRange(field(form, "range"));
    const typed = field(form, "display_name");
    try {
      const updated = await updateNode(ui.deps, actor, node.id, {
        display_name: typed.trim() === "" ? null : typed,
      });
      ui.flash(
        c,
        "ok",
        updated.display_name === null
          ? `Display name cleared: the node shows as ${node.name}.`
          : `Display name set to ${updated.display_name}.`,
      );
    } catch (error) {
      if (error instanceof AppError && error.status === 422) {
        return renderNodePage(ui, c, node.id, {
          range,
          errors: detailsByField(error.details ?? []),
          displayName: typed,
          status: 422,
        });
      }
      throw error;
    }
    return c.redirect(`${nodeUrl(node.id, range)}#identity`, 303);
  });

  // The token is shown in this answer only (no redirect: it must not sit in a URL or a cookie).
  app.post("/nodes/:id/reenrollment-token", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "operator");
    const lifetime = Number(field(form, "expires_in_s") || REENROLLMENT_DEFAULT_EXPIRES_S);
    const created = await createReenrollmentToken(ui.deps, actor, {
      node: c.req.param("id"),
      expires_in_s: TOKEN_LIFETIMES.some(([s]) => s === lifetime) ? lifetime : REENROLLMENT_DEFAULT_EXPIRES_S,
    });
    return ui.render(c, {
      page: "@pages/node-token",
      title: `Re-enrollment token for ${created.node.name}`,
      nav: "nodes",
      data: { created, nodeUrl: nodeUrl(created.node.id, DEFAULT_HISTORY_RANGE) },
    });
  });

  // The confirmation step without the <details> of the node page (a bookmark, a link from elsewhere).
  app.get("/nodes/:id/decommission", async (c) => {
    requirePageRole(c, "operator");
    const node = await getNode(ui.deps, c.req.param("id"));
    return ui.render(c, {
      page: "@pages/node-decommission",
      title: `Decommission ${node.name}`,
      nav: "nodes",
      data: { node, errors: {} },
    });
  });

  app.post("/nodes/:id/decommission", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "operator");
    const node = await getNode(ui.deps, c.req.param("id"));
    if (field(form, "confirm") !== "yes") {
      return ui.render(c, {
        page: "@pages/node-decommission",
        title: `Decommission ${node.name}`,
        nav: "nodes",
        status: 422,
        data: { node, errors: { confirm: "tick the box to confirm; nothing was changed" } },
      });
    }
    await decommissionNode(ui.deps, actor, node.id);
    ui.flash(c, "ok", `Node ${node.name} decommissioned: its token no longer works.`);
    return c.redirect(nodeUrl(node.id, DEFAULT_HISTORY_RANGE), 303);
  });
}
