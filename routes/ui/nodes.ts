// GET /nodes : the node list (search, filters, sort, cursor pages; the URL keeps them all), refreshed
// live by polling its results fragment. POST /nodes/labels : add or remove a label on the selected nodes
// (operators), then back to the same list.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { changeNodeLabels, type LabelChange, labelChangeProblems } from "../../core/bulkLabels.ts";
import { AppError } from "../../core/errors.ts";
import { listNodes, type NodeSummary } from "../../core/nodes.ts";
import { CONFIG_STATES, NODE_STATUSES } from "../../core/nodeStatus.ts";
import { fleetRegions } from "../../core/pools.ts";
import type { AppEnv } from "../env.ts";
import { detailsByField } from "./forms.ts";
import type { Ui } from "./render.ts";
import { field, fields, postedForm, requirePageRole } from "./session.ts";

const NODE_PAGE_SIZE = 50;

// Filters come from URLs people share and edit: an unknown value means "any", not an error page. The
// label filter is checked by the service (422 shown next to the field).
const NodeQuery = z.object({
  q: z.string().max(200).catch(""),
  status: z.enum(NODE_STATUSES).or(z.literal("")).catch(""),
  config_state: z.enum(CONFIG_STATES).or(z.literal("")).catch(""),
  region: z.string().max(64).catch(""),
  label: z.string().max(320).catch(""),
  sort: z.enum(["name", "last_heartbeat", "registered"]).catch("name"),
  order: z.enum(["asc", "desc"]).or(z.literal("")).catch(""),
  cursor: z.string().max(500).catch(""),
});
type NodeQuery = z.infer<typeof NodeQuery>;

const FILTER_KEYS = ["q", "status", "config_state", "region", "label", "sort", "order"] as const;

function parseNodeQuery(params: URLSearchParams): NodeQuery {
  const raw: Record<string, string> = {};
  for (const key of [...FILTER_KEYS, "cursor"]) raw[key] = params.get(key) ?? "";
  if (!raw.sort) raw.sort = "name";
  return NodeQuery.parse(raw);
}

function listUrl(query: NodeQuery, cursor?: string): string {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    if (query[key] && !(key === "sort" && query.sort === "name")) params.set(key, query[key]);
  }
  if (cursor) params.set("cursor", cursor);
  const text = params.toString();
  return text ? `/nodes?${text}` : "/nodes";
}

interface ListPageState {
  query: NodeQuery;
  errors?: Record<string, string>;
  bulk?: { key: string; value: string };
  selected?: string[];
  status?: 200 | 422;
}

async function renderNodeList(ui: Ui, c: Context<AppEnv>, state: ListPageState): Promise<Response> {
  const { query } = state;
  const errors = { ...state.errors };
  let nodes: NodeSummary[] = [];
  let nextCursor: string | null = null;
  let status = state.status ?? 200;
  const regions = fleetRegions(ui.deps); // read while the page of nodes is
  try {
    const page = await listNodes(ui.deps, {
      q: query.q.trim() || undefined,
      status: query.status ? [query.status] : undefined,
      config_state: query.config_state ? [query.config_state] : undefined,
      region: query.region || undefined,
      label: query.label.trim() ? [query.label.trim()] : undefined,
      sort: query.sort,
      order: query.order || undefined,
      cursor: query.cursor || undefined,
      limit: NODE_PAGE_SIZE,
    });
    nodes = page.items;
    nextCursor = page.next_cursor;
  } catch (error) {
    if (!(error instanceof AppError) || error.status !== 422) {
      await regions.catch(() => {});
      throw error;
    }
    Object.assign(errors, detailsByField(error.details));
    // A stale cursor (the sort changed) is dropped rather than shown as an error.
    if (errors.cursor) {
      await regions.catch(() => {});
      return c.redirect(listUrl({ ...query, cursor: "" }), 303);
    }
    status = 422;
  }
  const filtered = !!(query.q || query.status || query.config_state || query.region || query.label);
  const count = nodes.length;
  return ui.render(c, {
    page: "@pages/nodes",
    partial: "@partials/node-results",
    title: "Nodes",
    nav: "nodes",
    status,
    data: {
      query,
      regions: await regions,
      errors,
      nodes,
      filtered,
      selected: state.selected ?? [],
      bulk: state.bulk ?? { key: "", value: "" },
      summary: count === 0
        ? "No nodes"
        : `${count === 1 ? "1 node" : `${count} nodes`}${nextCursor ? " on this page, more follow" : ""}${
          query.cursor ? " (not the first page)" : ""
        }`,
      listUrl: listUrl(query, query.cursor || undefined),
      firstUrl: query.cursor ? listUrl(query) : null,
      nextUrl: nextCursor ? listUrl(query, nextCursor) : null,
    },
  });
}

export function registerNodePages(app: OpenAPIHono<AppEnv>, ui: Ui): void {
  app.get("/nodes", (c) => {
    requirePageRole(c, "viewer");
    const params = new URL(c.req.url).searchParams;
    // `id` comes back from the live refresh: the boxes the user ticked stay ticked.
    return renderNodeList(ui, c, { query: parseNodeQuery(params), selected: params.getAll("id") });
  });

  app.post("/nodes/labels", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "operator");
    const returnTo = field(form, "return_to");
    const back = returnTo.startsWith("/nodes") && !returnTo.startsWith("//") ? returnTo : "/nodes";
    const ids = fields(form, "id");
    const op = field(form, "op") === "remove" ? "remove" : "add";
    const key = field(form, "key").trim();
    const value = field(form, "value").trim();
    const change: LabelChange = op === "add" ? { op, key, value } : { op, key };
    const again = (details: { field?: string; message: string }[]) =>
      renderNodeList(ui, c, {
        query: parseNodeQuery(new URL(back, "http://x").searchParams),
        errors: detailsByField(details),
        bulk: { key, value },
        selected: ids,
        status: 422,
      });
    const problems = labelChangeProblems(ids, change);
    if (problems.length) return again(problems);
    try {
      const { changed } = await changeNodeLabels(
        ui.deps,
        actor,
        ids,
        change,
      );
      const what = op === "add" ? `Label ${key}=${value} added to` : `Label ${key} removed from`;
      ui.flash(c, "ok", `${what} ${changed === 1 ? "1 node" : `${changed} nodes`}.`);
    } catch (error) {
      if (error instanceof AppError && error.status === 422) return again(error.details ?? []);
      throw error;
    }
    return c.redirect(back, 303);
  });
}
