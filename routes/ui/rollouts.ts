// GET /rollouts: the rollouts, and for operators the "New rollout" form. POST /rollouts previews the change
// (per node diff, errors, waves) and, from a shown preview of the same input, starts the rollout. A refused
// input comes back as the form, 422, each message at its field, nothing written.
// GET /rollouts/{id}: waves, per-node state and the pause reason, refreshed live while the rollout is active;
// operators pause, resume or abort it after a confirmation (?confirm=..., works without JavaScript).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { diffRows } from "../../core/configs.ts";
import { canonicalJson } from "../../core/configDocument.ts";
import { AppError, type ErrorDetail } from "../../core/errors.ts";
import type { NodeStatus } from "../../core/nodeStatus.ts";
import {
  abortRollout,
  type ChangePlan,
  createRollout,
  getRollout,
  listRollouts,
  nothingToRollOut,
  pauseRollout,
  planChange,
  resumeRollout,
  type RolloutInput,
} from "../../core/rollouts.ts";
import { sha256Hex } from "../../core/secrets.ts";
import { replayChange } from "../../core/rolloutReplay.ts";
import { replayView } from "./replayView.ts";
import type { Services } from "../../core/services.ts";
import type { AppEnv } from "../env.ts";
import { detailsByField, rowIdParam } from "./forms.ts";
import type { Ui } from "./render.ts";
import { field, type FormFields, postedForm, requirePageRole } from "./session.ts";

/** Nodes of a preview shown with their diff; the rest are counted. */
const PREVIEW_ROWS = 100;

const FORM_FIELDS = [
  "labels",
  "names",
  "region",
  "status",
  "pool_region",
  "pool_compartment",
  "pool_id",
  "edit",
  "patch",
  "document",
  "canary",
  "wave_size",
  "bake_s",
  "max_scaling_events",
  "comment",
] as const;
type RolloutForm = Record<typeof FORM_FIELDS[number], string>;

const DEFAULT_FORM: RolloutForm = {
  labels: "",
  names: "",
  region: "",
  status: "",
  pool_region: "",
  pool_compartment: "",
  pool_id: "",
  edit: "patch",
  patch: '{\n  "cpu_threshold": { "max": 70 }\n}',
  document: "",
  canary: "2",
  wave_size: "10",
  bake_s: "300",
  max_scaling_events: "5",
  comment: "",
};

const ConfirmQuery = z.enum(["pause", "resume", "abort"]).optional().catch(undefined);

const list = (text: string) => text.split(/[\s,]+/).map((item) => item.trim()).filter((item) => item !== "");

/** The form as the core's input, with the problems a form alone can have (JSON, numbers). */
function toInput(form: RolloutForm): { input: RolloutInput; problems: ErrorDetail[] } {
  const problems: ErrorDetail[] = [];
  const whole = (name: "wave_size" | "bake_s" | "max_scaling_events") => {
    const text = form[name].trim();
    if (!/^-?\d+$/.test(text)) problems.push({ field: name, message: "must be a whole number" });
    return Number(text);
  };
  let patch: Record<string, unknown> | undefined;
  if (form.edit !== "document") {
    try {
      patch = JSON.parse(form.patch);
      if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
        problems.push({
          field: "patch",
          message: 'must be a JSON object, e.g. {"cpu_threshold": {"max": 70}}',
        });
      }
    } catch (error) {
      problems.push({ field: "patch", message: `is not valid JSON: ${(error as Error).message}` });
    }
  }
  const pool = {
    ...(form.pool_region.trim() ? { region: form.pool_region.trim() } : {}),
    ...(form.pool_compartment.trim() ? { compartment_id: form.pool_compartment.trim() } : {}),
    ...(form.pool_id.trim() ? { instance_pool_id: form.pool_id.trim() } : {}),
  };
  const input: RolloutInput = {
    selector: {
      labels: list(form.labels),
      names: list(form.names),
      ...(form.region.trim() ? { region: form.region.trim() } : {}),
      ...(form.status ? { status: [form.status as NodeStatus] } : {}),
    },
    pool_selector: pool,
    ...(form.edit === "document" ? { document: form.document } : { patch }),
    canary: form.canary.trim(),
    wave_size: whole("wave_size"),
    bake_s: whole("bake_s"),
    max_scaling_events: whole("max_scaling_events"),
    comment: form.comment,
  };
  return { input, problems };
}

/** Where a detail of the core's answer goes on the form. */
function formField(name: string | undefined): string {
  if (!name) return "_form";
  if (name.startsWith("selector.labels")) return "labels";
  if (name.startsWith("selector.names")) return "names";
  if (name === "selector.region") return "region";
  if (name.startsWith("selector.status")) return "status";
  if (name.startsWith("selector")) return "selector";
  if (name.startsWith("pool_selector")) return "pool_selector";
  if (name.startsWith("document")) return "document";
  return name;
}

const formErrors = (details: ErrorDetail[] | undefined) =>
  detailsByField((details ?? []).map((detail) => ({ ...detail, field: formField(detail.field) })));

/** What the preview was of: starting needs the same input, so nothing starts that was not previewed. */
const fingerprint = (form: RolloutForm) =>
  sha256Hex(
    canonicalJson(Object.fromEntries(FORM_FIELDS.filter((f) => f !== "comment").map((f) => [f, form[f]]))),
  );

function readRolloutForm(posted: FormFields): RolloutForm {
  const form = { ...DEFAULT_FORM };
  for (const name of FORM_FIELDS) form[name] = field(posted, name);
  form.edit = form.edit === "document" ? "document" : "patch";
  return form;
}

function previewView(plan: ChangePlan) {
  const nodes = plan.nodes.slice(0, PREVIEW_ROWS).map((node) => ({
    ...node,
    rows: node.included && node.baseText !== null && node.targetText !== null
      ? diffRows(node.baseText, node.targetText, 2)
      : [],
  }));
  return { ...plan, nodes, hidden: Math.max(0, plan.nodes.length - PREVIEW_ROWS) };
}

export function registerRolloutPages(app: OpenAPIHono<AppEnv>, ui: Ui, services: Services): void {
  async function renderList(
    c: Context<AppEnv>,
    state: {
      form?: RolloutForm;
      errors?: Record<string, string>;
      preview?: ReturnType<typeof previewView>;
      replay?: unknown;
      previewed?: string;
      note?: string;
      status?: 200 | 422;
    } = {},
  ) {
    requirePageRole(c, "viewer");
    const rollouts = await listRollouts(ui.deps, { limit: 50 });
    return ui.render(c, {
      page: "@pages/rollouts",
      title: "Rollouts",
      nav: "rollouts",
      status: state.status ?? 200,
      data: {
        rollouts: rollouts.items,
        form: state.form ?? DEFAULT_FORM,
        errors: state.errors ?? {},
        preview: state.preview ?? null,
        replay: state.replay ?? null,
        previewed: state.previewed ?? "",
        note: state.note ?? "",
        openForm: Boolean(state.form) || new URL(c.req.url).searchParams.has("new"),
      },
    });
  }

  app.get("/rollouts", (c) => renderList(c));

  app.post("/rollouts", async (c) => {
    const { actor, form: posted } = await postedForm(c, ui.deps, "operator");
    const form = readRolloutForm(posted);
    const { input, problems } = toInput(form);
    const starting = field(posted, "step") === "start";
    const print = await fingerprint(form);
    try {
      if (problems.length > 0) throw new AppError(422, "validation_failed", "invalid rollout", problems);
      if (starting && field(posted, "previewed") === print) {
        const rollout = await createRollout(ui.deps, services, actor, input);
        ui.flash(
          c,
          "ok",
          `Rollout ${rollout.id} started: ${rollout.node_count} nodes in ${rollout.waves} waves; the canary is out.`,
        );
        return c.redirect(`/rollouts/${rollout.id}`, 303);
      }
      const plan = await planChange(ui.deps, input, input);
      const nothing = nothingToRollOut(plan, input);
      // What the change would have done on its first nodes over the last day (the replay's verdict).
      const replay = plan.included > 0
        ? await replayChange(ui.deps, input, { window: "24h", nodes: 3 })
        : null;
      return await renderList(c, {
        replay: replay && {
          ...replay,
          first: replay.results.find((result) => result.pools.length > 0)
            ? replayView(replay.results.find((result) => result.pools.length > 0)!, { idPrefix: "rp-" })
            : null,
        },
        form,
        ...(nothing ? { errors: formErrors([nothing]), status: 422 as const } : {}),
        preview: previewView(plan),
        previewed: plan.included > 0 ? print : "",
        note: starting ? "The change was edited after its preview: check this preview, then start." : "",
      });
    } catch (error) {
      if (error instanceof AppError && (error.status === 422 || error.status === 409)) {
        const errors = formErrors(error.details);
        if (Object.keys(errors).length === 0) errors._form = error.message;
        return await renderList(c, { form, errors, status: 422 });
      }
      throw error;
    }
  });

  app.get("/rollouts/:id", async (c) => {
    const principal = requirePageRole(c, "viewer");
    const rollout = await getRollout(ui.deps, rowIdParam(c.req.param("id"), "rollout"));
    const confirm = principal.role === "viewer" ? undefined : ConfirmQuery.parse(c.req.query("confirm"));
    const active = rollout.status === "running" || rollout.status === "paused";
    return ui.render(c, {
      page: "@pages/rollout",
      partial: "@partials/rollout-live",
      title: `Rollout ${rollout.id}`,
      nav: "rollouts",
      data: {
        rollout,
        active,
        confirm: confirm && active ? confirm : null,
        liveUrl: `/rollouts/${rollout.id}`,
        specText: rollout.spec.patch
          ? JSON.stringify(rollout.spec.patch, null, 2)
          : rollout.spec.document ?? "",
      },
    });
  });

  const actions = { pause: pauseRollout, resume: resumeRollout, abort: abortRollout } as const;
  const done = { pause: "paused", resume: "resumed", abort: "aborted" } as const;
  for (const action of ["pause", "resume", "abort"] as const) {
    app.post(`/rollouts/:id/${action}`, async (c) => {
      const { actor } = await postedForm(c, ui.deps, "operator");
      const id = rowIdParam(c.req.param("id"), "rollout");
      try {
        const rollout = await actions[action](ui.deps, services, actor, id);
        const extra = action === "abort"
          ? `: ${rollout.counts.reverted ?? 0} node(s) back on their previous config`
          : "";
        ui.flash(c, "ok", `Rollout ${id} ${done[action]}${extra}.`);
      } catch (error) {
        if (!(error instanceof AppError) || error.status !== 409) throw error;
        ui.flash(c, "error", error.message);
      }
      return c.redirect(`/rollouts/${id}`, 303);
    });
  }
}
