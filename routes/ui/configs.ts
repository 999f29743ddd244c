// GET /nodes/{id}/config : a node's configuration page: desired vs applied vs failed (refreshed live), the
// desired config.yaml in an editor (operators) or read-only (viewers), the history of versions, a diff
// between any two, and a rollback that asks for confirmation first (?rollback=N, works without JavaScript).
// POST /nodes/{id}/config saves a new version with a comment; POST /nodes/{id}/config/rollback rolls back.
// A refused save comes back as the same page, 422, with the text as typed and each error at its line.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  changeNodeConfig,
  configOverview,
  type ConfigVersionView,
  diffRows,
  getConfigVersion,
  listConfigVersions,
  rollbackNodeConfig,
} from "../../core/configs.ts";
import { normalizeConfigText } from "../../core/configDocument.ts";
import {
  DEFAULT_REPLAY_WINDOW,
  REPLAY_WINDOW_KEYS,
  REPLAY_WINDOWS,
  replayConfigInput,
  type ReplayWindow,
} from "../../core/replay.ts";
import { replayView, type ReplayViewModel } from "./replayView.ts";
import { AppError, type ErrorDetail } from "../../core/errors.ts";
import type { Services } from "../../core/services.ts";
import type { AppEnv } from "../env.ts";
import type { Ui } from "./render.ts";
import { field, postedForm, requirePageRole } from "./session.ts";

const HISTORY_PAGE_SIZE = 20;

// From URLs people share and edit: a bad number means "none", not an error page.
const versionParam = z.coerce.number().int().min(1).max(2_147_483_647).optional().catch(undefined);
const PageQuery = z.object({
  from: versionParam,
  to: versionParam,
  rollback: versionParam,
  before: versionParam,
});
type PageQuery = z.infer<typeof PageQuery>;

/** A refused field of the editor, located in the text when the server could tell the line. */
export interface EditorError {
  field: string;
  message: string;
  line: number | null;
  column: number | null;
}

interface PageState {
  query: PageQuery;
  /** What the editor shows: the typed text after a refused save, else the desired text. */
  editor?: { yaml: string; comment: string; baseVersion: number | null };
  editorErrors?: EditorError[];
  commentError?: string;
  rollbackComment?: string;
  rollbackError?: string;
  /** A what-if replay asked for: its result, or why the text could not be replayed. */
  replay?: ReplayPanel;
  status?: 200 | 409 | 422;
}

/** The "What if" panel: the window, the text replayed (viewers type it in the panel), the result. */
interface ReplayPanel {
  window: ReplayWindow;
  yaml?: string;
  view: ReplayViewModel | null;
  errors: EditorError[];
}

const configUrl = (nodeId: string, params: Record<string, number | undefined> = {}) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return `/nodes/${encodeURIComponent(nodeId)}/config${text ? `?${text}` : ""}`;
};

/** Which fragment an htmx request asks for (the element it targets); undefined: the whole page. */
function partialFor(c: Context<AppEnv>): string | undefined {
  // htmx 4 names the target as tag#id ("section#config-status").
  const target = c.req.header("hx-target")?.split("#")[1];
  if (target === "config-status") return "@partials/config-status";
  if (target === "config-diff") return "@partials/config-diff";
  if (target === "replay-results") return "@partials/replay-results";
  return undefined;
}

async function renderConfigPage(ui: Ui, c: Context<AppEnv>, nodeId: string, state: PageState) {
  const principal = requirePageRole(c, "viewer");
  const overview = await configOverview(ui.deps, nodeId);
  const { desired } = overview;
  const history = await listConfigVersions(ui.deps, nodeId, {
    limit: HISTORY_PAGE_SIZE,
    before_version: state.query.before,
  });
  const latest = desired ? Math.max(desired.version, history.versions[0]?.version ?? 0) : 0;

  // The diff: the two versions asked for, else what the last change did (previous -> desired).
  const toVersion = state.query.to ?? desired?.version;
  const fromVersion = state.query.from ??
    (toVersion !== undefined && toVersion > 1 ? toVersion - 1 : undefined);
  const diff = await versionDiff(ui, nodeId, fromVersion, toVersion);

  const canEdit = principal.role !== "viewer" && !overview.node.decommissioned;
  let rollback: { target: ConfigVersionView; rows: ReturnType<typeof diffRows> } | null = null;
  if (canEdit && state.query.rollback !== undefined) {
    const target = await findVersion(ui, nodeId, state.query.rollback);
    if (target) rollback = { target, rows: diffRows(desired?.yaml ?? "", target.yaml) };
  }

  const editor = state.editor ??
    { yaml: desired?.yaml ?? "", comment: "", baseVersion: desired?.version ?? null };
  const editorErrors = state.editorErrors ?? [];
  const replay = state.replay ?? { window: DEFAULT_REPLAY_WINDOW, view: null, errors: [] };
  return ui.render(c, {
    page: "@pages/node-config",
    partial: partialFor(c),
    title: `Configuration · ${overview.node.name}`,
    nav: "nodes",
    status: state.status ?? 200,
    data: {
      node: overview.node,
      overview,
      desired,
      appliedVersion: overview.appliedVersion,
      canEdit,
      editor,
      editorErrors,
      errorLines: [...new Set(editorErrors.flatMap((e) => (e.line ? [e.line] : [])))],
      commentError: state.commentError ?? "",
      lineCount: Math.max(1, editor.yaml.split("\n").length - (editor.yaml.endsWith("\n") ? 1 : 0)),
      history: history.versions,
      olderUrl: history.next_before_version
        ? configUrl(nodeId, { before: history.next_before_version })
        : null,
      newerUrl: state.query.before ? configUrl(nodeId) : null,
      latest,
      diff,
      rollback,
      rollbackComment: state.rollbackComment ??
        (rollback ? `Roll back to version ${rollback.target.version}` : ""),
      rollbackError: state.rollbackError ?? "",
      replayPanel: {
        ...replay,
        yaml: replay.yaml ?? desired?.yaml ?? "",
        editorId: canEdit ? "yaml" : "replay-yaml",
      },
      replayWindows: REPLAY_WINDOW_KEYS.map((key) => ({ key, label: REPLAY_WINDOWS[key].label })),
      urls: {
        page: configUrl(nodeId),
        node: `/nodes/${encodeURIComponent(nodeId)}`,
        save: configUrl(nodeId),
        rollback: `/nodes/${encodeURIComponent(nodeId)}/config/rollback`,
        replay: `/nodes/${encodeURIComponent(nodeId)}/config/replay`,
        confirmRollback: (version: number) => configUrl(nodeId, { rollback: version }),
        diff: (from: number, to: number) => configUrl(nodeId, { from, to }),
      },
    },
  });
}

async function findVersion(ui: Ui, nodeId: string, version: number): Promise<ConfigVersionView | null> {
  try {
    return await getConfigVersion(ui.deps, nodeId, version);
  } catch (error) {
    if (error instanceof AppError && error.status === 404) return null;
    throw error;
  }
}

async function versionDiff(ui: Ui, nodeId: string, from?: number, to?: number) {
  if (from === undefined || to === undefined) return { from, to, rows: null, missing: null };
  const [a, b] = await Promise.all([findVersion(ui, nodeId, from), findVersion(ui, nodeId, to)]);
  if (!a || !b) return { from, to, rows: null, missing: !a ? from : to };
  return { from, to, fromView: a, toView: b, rows: diffRows(a.yaml, b.yaml), missing: null };
}

/** The config errors of a refused save, for the editor: the document path without "config.", the line. */
function editorErrorsOf(details: ErrorDetail[]): { editor: EditorError[]; comment?: string } {
  const editor: EditorError[] = [];
  let comment: string | undefined;
  for (const detail of details) {
    if (detail.field === "comment") {
      comment = comment ? `${comment}; ${detail.message}` : detail.message;
      continue;
    }
    editor.push({
      field: (detail.field ?? "").replace(/^config\.?/, ""),
      message: detail.message,
      line: typeof detail.line === "number" ? detail.line : null,
      column: typeof detail.column === "number" ? detail.column : null,
    });
  }
  editor.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  return { editor, comment };
}

export function registerConfigPages(app: OpenAPIHono<AppEnv>, ui: Ui, services: Services): void {
  app.get("/nodes/:id/config", (c) => {
    const params = new URL(c.req.url).searchParams;
    const query = PageQuery.parse(Object.fromEntries(params));
    return renderConfigPage(ui, c, c.req.param("id"), { query });
  });

  app.post("/nodes/:id/config", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "operator");
    const nodeId = c.req.param("id");
    const yaml = field(form, "yaml");
    const comment = field(form, "comment");
    const baseVersion = Number(field(form, "base_version")) || null;
    const again = (state: Partial<PageState>) =>
      renderConfigPage(ui, c, nodeId, {
        query: {},
        editor: { yaml, comment, baseVersion },
        status: 422,
        ...state,
      });
    // Someone saved since this editor was opened: keep the typed text and show what changed meanwhile.
    const current = (await configOverview(ui.deps, nodeId)).desired;
    if (
      current && baseVersion !== null && current.version !== baseVersion &&
      current.yaml !== normalizeConfigText(yaml)
    ) {
      return again({
        query: { from: baseVersion, to: current.version },
        editor: { yaml, comment, baseVersion: current.version },
        editorErrors: [{
          field: "",
          message: `version ${current.version} was saved by ${current.author} while you edited; ` +
            "your text is kept below and the diff shows their change. Save again to replace it.",
          line: null,
          column: null,
        }],
        status: 409,
      });
    }
    try {
      const { view, created } = await changeNodeConfig(ui.deps, services, actor, nodeId, {
        config: yaml.trim() === "" ? "" : yaml,
        comment,
        require_comment: true,
      });
      ui.flash(
        c,
        "ok",
        created
          ? `Saved as version ${view.version}. The agent receives it now; the status below follows its answer.`
          : `No change: that text is already version ${view.version}.`,
      );
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 422) throw error;
      const { editor, comment: commentError } = editorErrorsOf(error.details ?? []);
      return again({ editorErrors: editor, commentError });
    }
    return c.redirect(configUrl(nodeId), 303);
  });

  // What if: replays the posted text (the editor's, or the viewer's panel) and shows the page again with the
  // result in the panel; htmx asks for the panel's results only. Nothing is written, so viewers may.
  app.post("/nodes/:id/config/replay", async (c) => {
    const { form } = await postedForm(c, ui.deps, "viewer");
    const nodeId = c.req.param("id");
    const yaml = field(form, "yaml");
    const requested = field(form, "window");
    const window = (REPLAY_WINDOW_KEYS as string[]).includes(requested)
      ? requested as ReplayWindow
      : DEFAULT_REPLAY_WINDOW;
    const editor = {
      yaml,
      comment: field(form, "comment"),
      baseVersion: Number(field(form, "base_version")) || null,
    };
    try {
      const result = await replayConfigInput(ui.deps, {
        nodeId,
        config: yaml.trim() === "" ? "" : yaml,
        window: requested,
      });
      return await renderConfigPage(ui, c, nodeId, {
        query: {},
        editor,
        replay: { window, yaml, view: replayView(result), errors: [] },
      });
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 422) throw error;
      const errors = editorErrorsOf(error.details ?? []).editor.map((e) =>
        e.field === "" && yaml.trim() === "" ? { ...e, message: "the text is empty: nothing to replay" } : e
      );
      return await renderConfigPage(ui, c, nodeId, {
        query: {},
        editor,
        replay: { window, yaml, view: null, errors },
        status: 422,
      });
    }
  });

  app.post("/nodes/:id/config/rollback", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "operator");
    const nodeId = c.req.param("id");
    const version = Number(field(form, "version"));
    const comment = field(form, "comment");
    if (!Number.isInteger(version) || version < 1) {
      ui.flash(c, "error", "Pick the version to roll back to in the history.");
      return c.redirect(configUrl(nodeId), 303);
    }
    try {
      const { view, created } = await rollbackNodeConfig(ui.deps, services, actor, nodeId, {
        to_version: version,
        comment: comment || `Roll back to version ${version}`,
      });
      ui.flash(
        c,
        "ok",
        created
          ? `Rolled back: version ${view.version} carries the text of version ${version}; the agent receives it now.`
          : `No change: version ${version}'s text is already the desired one (version ${view.version}).`,
      );
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 422) throw error;
      return renderConfigPage(ui, c, nodeId, {
        query: { rollback: version },
        rollbackComment: comment,
        rollbackError: (error.details ?? []).map((d) => d.message).join("; ") || error.message,
        status: 422,
      });
    }
    return c.redirect(configUrl(nodeId), 303);
  });
}
