// GET /events (scaling events of the fleet, viewer) and GET /audit (who changed what, operator): the API's
// filters as a form whose values stay in the URL, newest first, "older" pages by the API's cursor.
import type { Context } from "hono";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { listAudit } from "../../core/auditQuery.ts";
import { AppError } from "../../core/errors.ts";
import { listScalingEvents } from "../../core/metricsQuery.ts";
import type { AppEnv } from "../env.ts";
import { detailsByField } from "./forms.ts";
import type { Ui } from "./render.ts";
import { requirePageRole } from "./session.ts";

const PAGE_SIZE = 50;

/** The time windows offered by both pages, in hours ("" = all time). */
export const PERIODS = [["24", "Last 24 hours"], ["168", "Last 7 days"], ["720", "Last 30 days"], [
  "",
  "All time",
]] as const;

// Values come from URLs: unknown ones fall back to "any" instead of an error page.
const EventQuery = z.object({
  direction: z.enum(["UP", "DOWN"]).or(z.literal("")).catch(""),
  period: z.enum(["24", "168", "720"]).or(z.literal("")).catch("168"),
  cursor: z.string().max(500).catch(""),
});

const AuditQuery = z.object({
  actor: z.string().trim().max(200).catch(""),
  action: z.string().trim().max(100).catch(""),
  period: z.enum(["24", "168", "720"]).or(z.literal("")).catch("168"),
  cursor: z.string().max(500).catch(""),
});

function queryOf(c: Context<AppEnv>, names: readonly string[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((name) => [name, c.req.query(name)]));
}

/** The same page with these filters and another cursor (null: the newest page). */
function pageUrl(path: string, query: Record<string, string>, cursor: string | null): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (key !== "cursor" && value) params.set(key, value);
  if (cursor) params.set("cursor", cursor);
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** The links to the next older page (the API's cursor) and back to the newest, with the same filters. */
function pageLinks(path: string, query: { cursor: string }, nextCursor: string | null) {
  return {
    olderUrl: nextCursor ? pageUrl(path, query, nextCursor) : null,
    newestUrl: query.cursor ? pageUrl(path, query, null) : null,
  };
}

/** One page of a listing; a 422 (a stale or foreign cursor in a shared link) becomes a message at the field
 * above an empty list instead of an error page. */
async function listingOrErrors<T>(
  list: () => Promise<T>,
  empty: T,
): Promise<{ result: T; errors: Record<string, string> }> {
  try {
    return { result: await list(), errors: {} };
  } catch (error) {
    if (!(error instanceof AppError) || error.status !== 422) throw error;
    return { result: empty, errors: detailsByField(error.details) };
  }
}

function since(ui: Ui, period: string): Date | undefined {
  return period ? new Date(ui.deps.clock.now().getTime() - Number(period) * 3_600_000) : undefined;
}

export function registerActivityPages(app: OpenAPIHono<AppEnv>, ui: Ui): void {
  app.get("/events", async (c) => {
    requirePageRole(c, "viewer");
    const raw = queryOf(c, ["direction", "period", "cursor"]);
    const query = EventQuery.parse({ ...raw, period: raw.period ?? "168" });
    const from = since(ui, query.period);
    const { result, errors } = await listingOrErrors(
      () =>
        listScalingEvents(ui.deps, {}, {
          direction: query.direction || undefined,
          from: from?.toISOString(),
          cursor: query.cursor || undefined,
          limit: PAGE_SIZE,
        }),
      { items: [], next_cursor: null },
    );
    return ui.render(c, {
      page: "@pages/events",
      partial: "@partials/event-results",
      title: "Scaling events",
      nav: "events",
      data: {
        query,
        periods: PERIODS,
        errors,
        events: result.items,
        filtered: !!(query.direction || query.period !== "168"),
        ...pageLinks("/events", query, result.next_cursor),
      },
    });
  });

  app.get("/audit", async (c) => {
    requirePageRole(c, "operator");
    const raw = queryOf(c, ["actor", "action", "period", "cursor"]);
    const query = AuditQuery.parse({ ...raw, period: raw.period ?? "168" });
    const { result, errors } = await listingOrErrors(
      () =>
        listAudit(ui.deps, {
          actor: query.actor || undefined,
          action: query.action || undefined,
          from: since(ui, query.period),
          cursor: query.cursor || undefined,
          limit: PAGE_SIZE,
        }),
      { entries: [], next_cursor: null },
    );
    return ui.render(c, {
      page: "@pages/audit",
      partial: "@partials/audit-results",
      title: "Audit log",
      nav: "audit",
      data: {
        query,
        periods: PERIODS,
        errors,
        entries: result.entries,
        filtered: !!(query.actor || query.action || query.period !== "168"),
        ...pageLinks("/audit", query, result.next_cursor),
      },
    });
  });
}
