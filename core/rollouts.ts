// Fleet-wide config changes and staged rollouts (issue 12, parts 1 and 2).
//
// A change is a node selector (ids, labels, region, status) and an edit: a JSON merge patch for every pool
// that matches a pool selector (core/configPatch.ts keeps the YAML as written), or a whole document. The plan
// (`planChange`) computes, per node, the new config text, its diff and its schema errors; a node whose result
// is invalid, unchanged or without a config is listed and excluded, never half-applied.
//
// A rollout sends the included nodes their new config in waves: a canary (N nodes or a percentage), then
// waves of `wave_size`. A wave is done when each of its nodes acked the new config as applied and stayed
// healthy for `bake_s` (online, no failed ack, at most `max_scaling_events` scaling events since applying).
// A failed check pauses the rollout with the reason. Resume takes the failing nodes out (each goes back to
// the version it had) and goes on; abort puts every node that got the change back on its previous config.
//
// State lives in the rollouts and rollout_nodes tables. `stepRollout` advances one rollout under its row lock
// (FOR UPDATE), as do pause/resume/abort, so replicas take turns on it; the rollout job (rolloutJob, on the
// job runner: one replica at a time) steps every running rollout. A node is held by one active rollout at a
// time: rollout_nodes.active_node_id is unique, so a second rollout with the node fails in its transaction.
import { createTwoFilesPatch } from "diff";
import { findConfigVersion, findConfigVersionById, findNodeConfig } from "../db/configs.ts";
import type { DbOrTx } from "../db/client.ts";
import { isDuplicateKey } from "../db/errors.ts";
import { listNodeRows, type NodeListRow } from "../db/nodes.ts";
import {
  countRolloutNodeStates,
  countScalingEventsSince,
  findActiveRolloutNodes,
  findNodeHealth,
  findRollout,
  insertRollout,
  insertRolloutNodes,
  listRolloutNodeRows,
  listRolloutRows,
  listRunningRolloutIds,
  type NodeHealthRow,
  releaseRolloutNodes,
  type RolloutNodeRow,
  type RolloutRow,
  updateRollout,
  updateRolloutNode,
} from "../db/rollouts.ts";
import { recordAudit } from "./audit.ts";
import { configHash, parseConfigInput, prefixDetails, toYaml } from "./configDocument.ts";
import { patchConfigText, type PoolSelector } from "./configPatch.ts";
import type { ConfigWatcher } from "./configWatcher.ts";
import { writeConfigVersion } from "./configs.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, describeDetails, type ErrorDetail, notFound, validationFailed } from "./errors.ts";
import * as fields from "./fields.ts";
import type { Job } from "./jobs.ts";
import { NODE_STATUSES, type NodeStatus, nodeStatus, onlineSince } from "./nodeStatus.ts";
import { type Actor, actorOf, type Principal } from "./principal.ts";

export const ROLLOUT_STATUSES = ["running", "paused", "completed", "aborted"] as const;
export type RolloutStatus = typeof ROLLOUT_STATUSES[number];
export const ROLLOUT_NODE_STATES = [
  "waiting",
  "pending",
  "applied",
  "baked",
  "failed",
  "skipped",
  "reverted",
  "cancelled",
] as const;
export type RolloutNodeState = typeof ROLLOUT_NODE_STATES[number];
export const ROLLOUT_JOB = "rollouts";
export const ROLLOUT_JOB_INTERVAL_MS = 5_000;
const MAX_SELECTOR_IDS = 500;
const MAX_PATCH_BYTES = 64_000;

type WatcherHolder = { configWatcher: Pick<ConfigWatcher, "notify"> };

export interface NodeSelector {
  ids?: string[];
  /** Node names (the console's explicit list). */
  names?: string[];
  /** `key:value` (exact) or `key` (has it); all must match. */
  labels?: string[];
  region?: string;
  status?: NodeStatus[];
}

/** What to change: nodes, pools, and a merge patch or a whole document (exactly one). */
export interface ChangeSpec {
  selector: NodeSelector;
  pool_selector?: PoolSelector;
  patch?: Record<string, unknown>;
  /** A whole config.yaml for every selected node. */
  document?: string;
}

export interface RolloutSettings {
  canary: number | string;
  wave_size: number;
  bake_s: number;
  max_scaling_events: number;
}

export interface RolloutInput extends ChangeSpec, RolloutSettings {
  comment?: string | null;
}

export type ExclusionReason = "invalid" | "unchanged" | "no_config" | "no_matching_pool" | "decommissioned";

/** One node of a plan. The target text and hash are what the node gets (when included). */
export interface PlannedNode {
  node_id: string;
  name: string;
  status: NodeStatus;
  included: boolean;
  /** Why it is left out (null when included). */
  excluded_reason: ExclusionReason | null;
  message: string | null;
  /** Schema errors of the result, fields under "config." (invalid only). */
  errors: ErrorDetail[];
  /** The active rollout that holds the node: a new rollout with it is refused. */
  in_rollout: number | null;
  base_version: number | null;
  base_hash: string | null;
  target_hash: string | null;
  pools_changed: number;
  /** Unified diff of the current and the new config.yaml (null when nothing changes). */
  diff: string | null;
  /** For the console's diff view (not part of the API answer). */
  baseText: string | null;
  targetText: string | null;
}

export interface ChangePlan {
  nodes: PlannedNode[];
  matched: number;
  included: number;
  excluded: number;
  /** The waves a rollout with the given settings would make (node names, canary first); [] without them. */
  waves: string[][];
}

// ------------------------------------------------------------------------------------------ validation

function specProblems(spec: ChangeSpec): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const selector = spec.selector ?? {};
  const ids = selector.ids?.filter((id) => id.trim() !== "") ?? [];
  const labels = selector.labels?.filter((label) => label.trim() !== "") ?? [];
  const names = selector.names?.filter((name) => name.trim() !== "") ?? [];
  const status = selector.status ?? [];
  if (
    ids.length === 0 && names.length === 0 && labels.length === 0 && !selector.region && status.length === 0
  ) {
    problems.push({
      field: "selector",
      message: "name at least one of ids, names, labels, region or status",
    });
  }
  if (ids.length > MAX_SELECTOR_IDS) {
    problems.push({ field: "selector.ids", message: `at most ${MAX_SELECTOR_IDS} ids` });
  }
  if (names.length > MAX_SELECTOR_IDS) {
    problems.push({ field: "selector.names", message: `at most ${MAX_SELECTOR_IDS} names` });
  }
  names.forEach((name, index) => {
    const problem = fields.problemWith(fields.nodeName, name.trim());
    if (problem) problems.push({ field: `selector.names.${index}`, message: `${name}: ${problem}` });
  });
  ids.forEach((id, index) => {
    const problem = fields.problemWith(fields.nodeId, id);
    if (problem) problems.push({ field: `selector.ids.${index}`, message: problem });
  });
  labels.forEach((label, index) => {
    const colon = label.indexOf(":");
    const key = colon < 0 ? label : label.slice(0, colon);
    if (!fields.LABEL_KEY.test(key)) {
      problems.push({ field: `selector.labels.${index}`, message: "expected key:value (or key)" });
    }
  });
  status.forEach((value, index) => {
    if (!NODE_STATUSES.includes(value)) {
      problems.push({
        field: `selector.status.${index}`,
        message: `must be one of ${NODE_STATUSES.join(", ")}`,
      });
    }
  });
  if (selector.region !== undefined && selector.region.length > 64) {
    problems.push({ field: "selector.region", message: "at most 64 characters" });
  }
  for (const [key, value] of Object.entries(spec.pool_selector ?? {})) {
    if (value !== undefined && (typeof value !== "string" || value.length > 255)) {
      problems.push({ field: `pool_selector.${key}`, message: "must be text of at most 255 characters" });
    }
  }
  const hasPatch = spec.patch !== undefined && spec.patch !== null;
  const hasDocument = typeof spec.document === "string" && spec.document.trim() !== "";
  if (hasPatch === hasDocument) {
    problems.push({ field: "patch", message: "give either a merge patch or a whole document, not both" });
  } else if (hasPatch) {
    const patch = spec.patch;
    if (typeof patch !== "object" || Array.isArray(patch) || Object.keys(patch).length === 0) {
      problems.push({ field: "patch", message: "must be a JSON object with at least one key" });
    } else if (JSON.stringify(patch).length > MAX_PATCH_BYTES) {
      problems.push({ field: "patch", message: `at most ${MAX_PATCH_BYTES} bytes of JSON` });
    }
  }
  return problems;
}

function settingsProblems(settings: RolloutSettings): ErrorDetail[] {
  const checks: [keyof RolloutSettings, import("zod").ZodType][] = [
    ["canary", fields.rolloutCanary],
    ["wave_size", fields.rolloutWaveSize],
    ["bake_s", fields.rolloutBakeS],
    ["max_scaling_events", fields.rolloutMaxScalingEvents],
  ];
  const problems: ErrorDetail[] = [];
  for (const [field, schema] of checks) {
    const problem = fields.problemWith(schema, settings[field]);
    if (problem) problems.push({ field, message: problem });
  }
  return problems;
}

function refuse(problems: ErrorDetail[], what = "change"): never {
  throw validationFailed(`invalid ${what}: ${describeDetails(problems)}`, problems);
}

/** How many nodes the canary is, for `included` nodes. */
export function canarySize(canary: number | string, included: number): number {
  const parsed = fields.rolloutCanary.parse(canary) as fields.RolloutCanary;
  const wanted = "count" in parsed ? parsed.count : Math.ceil((parsed.percent * included) / 100);
  return Math.max(1, Math.min(wanted, included));
}

/** Waves of node indexes: the canary, then chunks of waveSize. */
export function planWaves(count: number, canary: number, waveSize: number): number[][] {
  const waves: number[][] = [];
  const indexes = Array.from({ length: count }, (_, i) => i);
  waves.push(indexes.slice(0, canary));
  for (let at = canary; at < count; at += waveSize) waves.push(indexes.slice(at, at + waveSize));
  return waves.filter((wave) => wave.length > 0);
}

// --------------------------------------------------------------------------------------------- the plan

async function selectNodes(deps: Pick<CoreDeps, "db" | "clock" | "settings">, selector: NodeSelector) {
  const now = deps.clock.now();
  const since = onlineSince(now, deps.settings.OFFLINE_AFTER_S);
  const labels = (selector.labels ?? []).filter((l) => l.trim() !== "").map((label) => {
    const colon = label.indexOf(":");
    return colon < 0 ? { key: label } : { key: label.slice(0, colon), value: label.slice(colon + 1) };
  });
  const ids = new Set((selector.ids ?? []).filter((id) => id.trim() !== ""));
  const names = new Set((selector.names ?? []).map((name) => name.trim()).filter((name) => name !== ""));
  const found: NodeListRow[] = [];
  let after: { key: string; id: string } | undefined;
  for (;;) {
    const rows = await listNodeRows(deps.db, {
      statuses: selector.status?.length ? selector.status : undefined,
      onlineSince: since,
      region: selector.region || undefined,
      labels: labels.length ? labels : undefined,
      sort: "name",
      order: "asc",
      after,
      limit: 500,
    });
    const page = rows.slice(0, 500);
    for (const row of page) {
      if ((ids.size === 0 || ids.has(row.id)) && (names.size === 0 || names.has(row.name))) found.push(row);
    }
    if (found.length > fields.ROLLOUT_MAX_NODES) {
      refuse([{ field: "selector", message: `matches more than ${fields.ROLLOUT_MAX_NODES} nodes` }]);
    }
    if (rows.length <= 500 || page.length === 0) break;
    after = { key: page.at(-1)!.name, id: page.at(-1)!.id };
  }
  // A listed name or id that matches nothing is a typo or a node left out by the other criteria: either way
  // the change would quietly reach fewer nodes than the list says, so it is refused by name.
  const unmatched = (listed: Set<string>, of: (row: NodeListRow) => string) => {
    const seen = new Set(found.map(of));
    return [...listed].filter((value) => !seen.has(value));
  };
  const problems = [
    { field: "selector.names", missing: unmatched(names, (row) => row.name) },
    { field: "selector.ids", missing: unmatched(ids, (row) => row.id) },
  ].filter((problem) => problem.missing.length > 0).map(({ field, missing }) => ({
    field,
    message:
      `${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ` and ${missing.length - 5} more` : ""}: ` +
      "no such node matches the selector",
  }));
  if (problems.length > 0) refuse(problems);
  return found.map((row) => ({ row, status: nodeStatus(row, now, deps.settings.OFFLINE_AFTER_S) }));
}

/** The plan of a change: every selected node with its new config, diff and errors. 422 naming the field
 * when the spec (or the rollout settings, when given) is bad or the selector matches no node. Writes
 * nothing. */
export async function planChange(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  spec: ChangeSpec,
  settings?: RolloutSettings,
): Promise<ChangePlan> {
  const problems = [...specProblems(spec), ...(settings ? settingsProblems(settings) : [])];
  if (problems.length > 0) refuse(problems);
  let documentText: string | undefined;
  if (spec.document !== undefined && spec.document.trim() !== "") {
    const parsed = parseConfigInput(spec.document);
    if (!parsed.ok) refuse(prefixDetails(parsed.details, "document"));
    documentText = parsed.text;
  }
  const selected = await selectNodes(deps, spec.selector);
  if (selected.length === 0) refuse([{ field: "selector", message: "matches no node" }]);
  const active = new Map(
    (await findActiveRolloutNodes(deps.db, selected.map((s) => s.row.id))).map((
      a,
    ) => [a.nodeId, a.rolloutId]),
  );
  const planned: PlannedNode[] = [];
  for (const { row, status } of selected) {
    planned.push(await planNode(deps, row, status, spec, documentText, active.get(row.id) ?? null));
  }
  const included = planned.filter((node) => node.included);
  const waves = settings && included.length > 0
    ? planWaves(included.length, canarySize(settings.canary, included.length), settings.wave_size)
      .map((wave) => wave.map((index) => included[index].name))
    : [];
  return {
    nodes: planned,
    matched: planned.length,
    included: included.length,
    excluded: planned.length - included.length,
    waves,
  };
}

async function planNode(
  deps: Pick<CoreDeps, "db">,
  row: NodeListRow,
  status: NodeStatus,
  spec: ChangeSpec,
  documentText: string | undefined,
  inRollout: number | null,
): Promise<PlannedNode> {
  const node: PlannedNode = {
    node_id: row.id,
    name: row.name,
    status,
    included: false,
    excluded_reason: null,
    message: null,
    errors: [],
    in_rollout: inRollout,
    base_version: null,
    base_hash: null,
    target_hash: null,
    pools_changed: 0,
    diff: null,
    baseText: null,
    targetText: null,
  };
  const exclude = (reason: ExclusionReason, message: string) => ({
    ...node,
    excluded_reason: reason,
    message,
  });
  if (row.decommissionedAt) {
    return exclude("decommissioned", "decommissioned: its config can no longer change");
  }
  const config = await findNodeConfig(deps.db, row.id);
  const version = config?.desiredVersionId
    ? await findConfigVersionById(deps.db, config.desiredVersionId)
    : null;
  if (!version) return exclude("no_config", "has no config yet");
  const baseText = version.yamlText ?? toYaml(version.body);
  node.base_version = version.version;
  node.base_hash = version.hash;
  node.baseText = baseText;
  let targetText: string;
  if (documentText !== undefined) {
    targetText = documentText;
    node.pools_changed = Array.isArray(version.body.pools) ? version.body.pools.length : 0;
  } else {
    const outcome = patchConfigText(baseText, spec.patch!, spec.pool_selector);
    if (!outcome.ok) return exclude("invalid", outcome.message);
    if (outcome.pools === 0) return exclude("no_matching_pool", "no pool matches the pool selector");
    targetText = outcome.text;
    node.pools_changed = outcome.pools;
  }
  const parsed = parseConfigInput(targetText);
  if (!parsed.ok) {
    return {
      ...exclude("invalid", `the result is not a valid config: ${describeDetails(parsed.details)}`),
      errors: prefixDetails(parsed.details, "config"),
    };
  }
  if (parsed.text === baseText) return exclude("unchanged", "already has this config");
  node.targetText = parsed.text;
  node.target_hash = await configHash(parsed.text);
  node.diff = createTwoFilesPatch(
    `${row.name} v${version.version}`,
    `${row.name} (new)`,
    baseText,
    parsed.text,
    "",
    "",
    { context: 3 },
  );
  node.included = true;
  return node;
}

// ------------------------------------------------------------------------------------------------ views

export interface RolloutNodeView {
  node_id: string;
  name: string;
  wave: number;
  state: RolloutNodeState;
  base_version: number;
  target_version: number | null;
  target_hash: string;
  sent_at: string | null;
  applied_at: string | null;
  error: string | null;
}

export interface RolloutWaveView {
  wave: number;
  /** canary, or "wave N" */
  label: string;
  /** waiting (not sent), in_progress, done, or halted (a node failed, was skipped or reverted) */
  status: "waiting" | "in_progress" | "done" | "halted";
  nodes: number;
  counts: Partial<Record<RolloutNodeState, number>>;
}

export interface RolloutView {
  id: number;
  status: RolloutStatus;
  comment: string | null;
  spec: ChangeSpec;
  canary_count: number;
  wave_size: number;
  bake_s: number;
  max_scaling_events: number;
  waves: number;
  current_wave: number;
  pause_reason: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  counts: Partial<Record<RolloutNodeState, number>>;
  node_count: number;
}

export interface RolloutDetail extends RolloutView {
  wave_list: RolloutWaveView[];
  nodes: RolloutNodeView[];
}

function toView(row: RolloutRow, counts: Record<string, number>): RolloutView {
  return {
    id: row.id,
    status: row.status as RolloutStatus,
    comment: row.comment,
    spec: row.spec as unknown as ChangeSpec,
    canary_count: row.canaryCount,
    wave_size: row.waveSize,
    bake_s: row.bakeS,
    max_scaling_events: row.maxScalingEvents,
    waves: row.waves,
    current_wave: row.currentWave,
    pause_reason: row.pauseReason,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    finished_at: row.finishedAt?.toISOString() ?? null,
    counts,
    node_count: Object.values(counts).reduce((sum, n) => sum + n, 0),
  };
}

function toNodeView(row: RolloutNodeRow): RolloutNodeView {
  return {
    node_id: row.nodeId,
    name: row.nodeName,
    wave: row.wave,
    state: row.state as RolloutNodeState,
    base_version: row.baseVersion,
    target_version: row.targetVersion,
    target_hash: row.targetHash,
    sent_at: row.sentAt?.toISOString() ?? null,
    applied_at: row.appliedAt?.toISOString() ?? null,
    error: row.error,
  };
}

function waveViews(row: RolloutRow, nodes: RolloutNodeRow[]): RolloutWaveView[] {
  const waves: RolloutWaveView[] = [];
  for (let wave = 0; wave < row.waves; wave++) {
    const members = nodes.filter((node) => node.wave === wave);
    const counts: Partial<Record<RolloutNodeState, number>> = {};
    for (const node of members) {
      counts[node.state as RolloutNodeState] = (counts[node.state as RolloutNodeState] ?? 0) + 1;
    }
    const settled = members.every((node) => ["baked", "skipped"].includes(node.state));
    const halted = members.some((node) => ["failed", "reverted"].includes(node.state));
    const sent = members.some((node) => node.state !== "waiting" && node.state !== "cancelled");
    waves.push({
      wave,
      label: wave === 0 ? "canary" : `wave ${wave}`,
      status: halted ? "halted" : settled && members.length > 0 ? "done" : sent ? "in_progress" : "waiting",
      nodes: members.length,
      counts,
    });
  }
  return waves;
}

export async function listRollouts(
  deps: Pick<CoreDeps, "db">,
  options: { limit?: number; before_id?: number } = {},
): Promise<{ items: RolloutView[]; next_before_id: number | null }> {
  const limit = Math.min(Math.max(Math.trunc(options.limit ?? 50), 1), 100);
  const rows = await listRolloutRows(deps.db, { limit: limit + 1, beforeId: options.before_id });
  const page = rows.slice(0, limit);
  const counts = await countRolloutNodeStates(deps.db, page.map((row) => row.id));
  return {
    items: page.map((row) => toView(row, counts.get(row.id) ?? {})),
    next_before_id: rows.length > limit ? page.at(-1)!.id : null,
  };
}

export async function getRollout(deps: Pick<CoreDeps, "db">, id: number): Promise<RolloutDetail> {
  const row = await findRollout(deps.db, id);
  if (!row) throw notFound(`rollout ${id}`);
  const nodes = await listRolloutNodeRows(deps.db, id);
  const counts: Record<string, number> = {};
  for (const node of nodes) counts[node.state] = (counts[node.state] ?? 0) + 1;
  return { ...toView(row, counts), wave_list: waveViews(row, nodes), nodes: nodes.map(toNodeView) };
}

// ------------------------------------------------------------------------------------------------ create

/** Why a plan cannot start (no node would get a valid, changed config), naming the field; null when it can. */
export function nothingToRollOut(plan: ChangePlan, spec: ChangeSpec): ErrorDetail | null {
  if (plan.included > 0) return null;
  if (plan.nodes.every((node) => node.excluded_reason === "no_matching_pool")) {
    return { field: "pool_selector", message: "matches no pool of the selected nodes" };
  }
  const invalid = plan.nodes.find((node) => node.excluded_reason === "invalid");
  return {
    field: spec.document?.trim() ? "document" : "patch",
    message: invalid
      ? `leaves no selected node with a valid config (e.g. ${invalid.name}: ${invalid.message})`
      : "changes no selected node's config (each is left out; see the preview)",
  };
}

function conflictWith(active: { nodeId: string; rolloutId: number }[], names: Map<string, string>): AppError {
  const first = active[0];
  return new AppError(
    409,
    "node_in_rollout",
    `${active.length} selected node(s) are already in an active rollout, e.g. ${
      names.get(first.nodeId) ?? first.nodeId
    } in rollout ${first.rolloutId}`,
    active.slice(0, 20).map((a) => ({
      field: "selector",
      message: `node ${names.get(a.nodeId) ?? a.nodeId} is in active rollout ${a.rolloutId}`,
      node_id: a.nodeId,
      rollout_id: a.rolloutId,
    })),
  );
}

/** Starts a rollout of the change: 422 naming the field for bad settings, a selector matching nothing, or an
 * edit that leaves no node with a valid new config; 409 when a selected node is in another active rollout
 * (checked here and enforced by the unique key in the transaction). Sends the canary at once. */
export async function createRollout(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  input: RolloutInput,
): Promise<RolloutDetail> {
  const comment = input.comment?.trim() || null;
  if (comment && comment.length > 1000) refuse([{ field: "comment", message: "at most 1000 characters" }]);
  const plan = await planChange(deps, input, input);
  const included = plan.nodes.filter((node) => node.included);
  const names = new Map(plan.nodes.map((node) => [node.node_id, node.name]));
  const nothing = nothingToRollOut(plan, input);
  if (nothing) refuse([nothing]);
  const held = plan.nodes.filter((node) => node.in_rollout !== null && node.included);
  if (held.length > 0) {
    throw conflictWith(held.map((node) => ({ nodeId: node.node_id, rolloutId: node.in_rollout! })), names);
  }
  const canary = canarySize(input.canary, included.length);
  const waves = planWaves(included.length, canary, input.wave_size);
  const now = deps.clock.now();
  const spec: ChangeSpec = {
    selector: input.selector,
    ...(input.pool_selector ? { pool_selector: input.pool_selector } : {}),
    ...(input.patch ? { patch: input.patch } : { document: input.document }),
  };
  let id: number;
  try {
    id = await deps.db.transaction(async (tx) => {
      const rolloutId = await insertRollout(tx, {
        status: "running",
        comment,
        spec: spec as unknown as Record<string, unknown>,
        canaryCount: canary,
        waveSize: input.wave_size,
        bakeS: input.bake_s,
        maxScalingEvents: input.max_scaling_events,
        waves: waves.length,
        currentWave: 0,
        createdBy: actorOf(actor.principal).actorName,
        createdAt: now,
        updatedAt: now,
      });
      await insertRolloutNodes(
        tx,
        waves.flatMap((wave, waveIndex) =>
          wave.map((index) => {
            const node = included[index];
            return {
              rolloutId,
              nodeId: node.node_id,
              nodeName: node.name,
              wave: waveIndex,
              state: "waiting",
              baseVersion: node.base_version!,
              baseHash: node.base_hash!,
              targetText: node.targetText!,
              targetHash: node.target_hash!,
              activeNodeId: node.node_id,
            };
          })
        ),
      );
      await recordAudit(deps, tx, {
        principal: actor.principal,
        action: "rollout.create",
        targetType: "rollout",
        targetId: rolloutId,
        details: {
          ...spec,
          nodes: included.length,
          excluded: plan.excluded,
          canary,
          wave_size: input.wave_size,
          bake_s: input.bake_s,
          max_scaling_events: input.max_scaling_events,
          waves: waves.length,
          ...(comment ? { comment } : {}),
        },
        address: actor.address,
      });
      return rolloutId;
    });
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    // Another rollout took one of the nodes between the plan and this transaction.
    const active = await findActiveRolloutNodes(deps.db, included.map((node) => node.node_id));
    throw conflictWith(active.length ? active : [{ nodeId: included[0].node_id, rolloutId: 0 }], names);
  }
  await stepRollout(deps, services, id);
  return await getRollout(deps, id);
}

// --------------------------------------------------------------------------------------- the state machine

const systemPrincipal = (id: number): Principal => ({ kind: "system", name: `rollout:${id}` });

interface Failure {
  node: RolloutNodeRow;
  reason: string;
}

/** The checks of one node of the wave going out; a failure reason, or the node's new state. */
async function checkNode(
  deps: Pick<CoreDeps, "settings">,
  tx: DbOrTx,
  rollout: RolloutRow,
  node: RolloutNodeRow,
  health: NodeHealthRow | undefined,
  now: Date,
): Promise<{ fail: string } | { state: RolloutNodeState; appliedAt?: Date }> {
  if (!health) return { fail: "was deleted" };
  if (health.decommissionedAt) return { fail: "was decommissioned" };
  if (health.desiredHash !== node.targetHash) return { fail: "its config was changed outside the rollout" };
  if (health.configState === "failed") {
    return { fail: `rejected the new config: ${health.configError ?? "no error given"}` };
  }
  const status = nodeStatus(health, now, deps.settings.OFFLINE_AFTER_S);
  if (status !== "online") {
    return {
      fail: health.lastHeartbeatAt
        ? `went offline (last heartbeat ${health.lastHeartbeatAt.toISOString()})`
        : "has never sent a heartbeat",
    };
  }
  const appliedAt = node.appliedAt ??
    (health.appliedHash === node.targetHash ? (health.configAckedAt ?? now) : null);
  if (!appliedAt) return { state: "pending" };
  const events = await countScalingEventsSince(tx, node.nodeId, appliedAt);
  if (events > rollout.maxScalingEvents) {
    return {
      fail:
        `scaling storm: ${events} scaling events since applying the config (at most ${rollout.maxScalingEvents})`,
    };
  }
  const baked = now.getTime() - appliedAt.getTime() >= rollout.bakeS * 1000;
  return { state: baked ? "baked" : "applied", appliedAt };
}

async function revertNode(
  deps: CoreDeps,
  tx: DbOrTx,
  rollout: RolloutRow,
  node: RolloutNodeRow,
  principal: Principal,
  address: string | null | undefined,
  why: string,
): Promise<string | null> {
  const current = await findNodeConfig(tx, node.nodeId, { forUpdate: true });
  // Only a node still on the rollout's config goes back; one changed since keeps what it was given.
  if (!current || current.decommissionedAt || current.desiredHash !== node.targetHash) return null;
  const base = await findConfigVersion(tx, node.nodeId, node.baseVersion);
  if (!base) return null;
  const change = await writeConfigVersion(deps, tx, { principal, address }, node.nodeId, {
    body: base.body,
    text: base.yamlText ?? toYaml(base.body),
    source: "rollback",
    comment: `rollout ${rollout.id}: ${why}`,
    rolled_back_from: base.version,
  });
  return change.view.hash;
}

/** Advances one rollout as far as it can go now: sends the wave going out, checks its nodes, pauses on a
 * failure, moves to the next wave when each node baked, completes after the last. Does nothing unless the
 * rollout is running. Returns what it did (for the job's log). */
export async function stepRollout(
  deps: CoreDeps,
  services: WatcherHolder,
  id: number,
): Promise<"idle" | "sent" | "checked" | "advanced" | "paused" | "completed"> {
  const notify: [string, string][] = [];
  const outcome = await deps.db.transaction(async (tx) => {
    const rollout = await findRollout(tx, id, { forUpdate: true });
    if (!rollout || rollout.status !== "running") return "idle" as const;
    const now = deps.clock.now();
    let advanced = false;
    for (;;) {
      if (rollout.currentWave >= rollout.waves) {
        await updateRollout(tx, id, {
          status: "completed",
          finishedAt: now,
          updatedAt: now,
          pauseReason: null,
        });
        await releaseRolloutNodes(tx, id);
        await recordAudit(deps, tx, {
          principal: systemPrincipal(id),
          action: "rollout.complete",
          targetType: "rollout",
          targetId: id,
          details: { waves: rollout.waves },
        });
        return "completed" as const;
      }
      const wave = await listRolloutNodeRows(tx, id, rollout.currentWave);
      const waiting = wave.filter((node) => node.state === "waiting");
      if (waiting.length > 0) {
        const failures: Failure[] = [];
        for (const node of waiting) {
          const current = await findNodeConfig(tx, node.nodeId, { forUpdate: true });
          if (!current || current.decommissionedAt || current.desiredHash !== node.baseHash) {
            const reason = !current
              ? "was deleted"
              : current.decommissionedAt
              ? "was decommissioned"
              : `its config changed since the rollout was planned (it was version ${node.baseVersion})`;
            failures.push({ node, reason });
            continue;
          }
          const parsed = parseConfigInput(node.targetText);
          if (!parsed.ok) {
            failures.push({ node, reason: "its planned config no longer passes validation" });
            continue;
          }
          const change = await writeConfigVersion(deps, tx, { principal: systemPrincipal(id) }, node.nodeId, {
            body: parsed.body,
            text: parsed.text,
            source: "operator",
            comment:
              `rollout ${id} (${rollout.currentWave === 0 ? "canary" : `wave ${rollout.currentWave}`})` +
              (rollout.comment ? `: ${rollout.comment}` : ""),
          });
          await updateRolloutNode(tx, id, node.nodeId, {
            state: "pending",
            sentAt: now,
            targetVersion: change.view.version,
          });
          notify.push([node.nodeId, change.view.hash]);
        }
        if (failures.length > 0) return await pause(deps, tx, rollout, failures, now);
        await updateRollout(tx, id, { updatedAt: now });
        await recordAudit(deps, tx, {
          principal: systemPrincipal(id),
          action: "rollout.wave_sent",
          targetType: "rollout",
          targetId: id,
          details: { wave: rollout.currentWave, nodes: waiting.map((node) => node.nodeName) },
        });
        return "sent" as const;
      }
      const health = await findNodeHealth(tx, wave.map((node) => node.nodeId));
      const failures: Failure[] = [];
      let allBaked = true;
      for (const node of wave) {
        if (node.state === "skipped" || node.state === "baked") continue;
        const result = await checkNode(deps, tx, rollout, node, health.get(node.nodeId), now);
        if ("fail" in result) {
          failures.push({ node, reason: result.fail });
          allBaked = false;
          continue;
        }
        if (result.state !== "baked") allBaked = false;
        if (result.state !== node.state || (result.appliedAt && !node.appliedAt)) {
          await updateRolloutNode(tx, id, node.nodeId, {
            state: result.state,
            appliedAt: result.appliedAt ?? null,
          });
        }
      }
      if (failures.length > 0) return await pause(deps, tx, rollout, failures, now);
      if (!allBaked) return advanced ? "advanced" as const : "checked" as const;
      rollout.currentWave++;
      await updateRollout(tx, id, { currentWave: rollout.currentWave, updatedAt: now });
      advanced = true;
    }
  });
  for (const [nodeId, hash] of notify) services.configWatcher.notify(nodeId, hash);
  return outcome;
}

async function pause(
  deps: CoreDeps,
  tx: DbOrTx,
  rollout: RolloutRow,
  failures: Failure[],
  now: Date,
): Promise<"paused"> {
  for (const { node, reason } of failures) {
    await updateRolloutNode(tx, rollout.id, node.nodeId, { state: "failed", error: reason.slice(0, 1000) });
  }
  const first = failures[0];
  const more = failures.length > 1 ? ` (and ${failures.length - 1} more node(s))` : "";
  const reason = `${first.node.nodeName} ${first.reason}${more}`.slice(0, 1000);
  await updateRollout(tx, rollout.id, { status: "paused", pauseReason: reason, updatedAt: now });
  await recordAudit(deps, tx, {
    principal: systemPrincipal(rollout.id),
    action: "rollout.pause",
    targetType: "rollout",
    targetId: rollout.id,
    details: {
      reason,
      wave: rollout.currentWave,
      nodes: failures.map(({ node, reason }) => ({ name: node.nodeName, reason })),
    },
  });
  return "paused";
}

// ------------------------------------------------------------------------------------ operator's controls

async function steer(
  deps: CoreDeps,
  actor: Actor,
  id: number,
  allowed: RolloutStatus[],
  verb: string,
  work: (
    tx: DbOrTx,
    rollout: RolloutRow,
    now: Date,
    notify: [string, string][],
  ) => Promise<Record<string, unknown>>,
  services: WatcherHolder,
): Promise<void> {
  const notify: [string, string][] = [];
  await deps.db.transaction(async (tx) => {
    const rollout = await findRollout(tx, id, { forUpdate: true });
    if (!rollout) throw notFound(`rollout ${id}`);
    if (!allowed.includes(rollout.status as RolloutStatus)) {
      throw new AppError(
        409,
        "rollout_not_" + allowed.join("_or_"),
        `rollout ${id} is ${rollout.status}; only a ${allowed.join(" or ")} rollout can be ${
          verb === "abort" ? "aborted" : `${verb}d`
        }`,
        [
          { field: "status", message: `is ${rollout.status}; must be ${allowed.join(" or ")} to ${verb}` },
        ],
      );
    }
    const now = deps.clock.now();
    const details = await work(tx, rollout, now, notify);
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: `rollout.${verb}`,
      targetType: "rollout",
      targetId: id,
      details: { previous_status: rollout.status, ...details },
      address: actor.address,
    });
  });
  for (const [nodeId, hash] of notify) services.configWatcher.notify(nodeId, hash);
}

/** Pauses a running rollout (409 naming "status" otherwise). */
export async function pauseRollout(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  id: number,
): Promise<RolloutDetail> {
  await steer(deps, actor, id, ["running"], "pause", async (tx, rollout, now) => {
    const reason = `paused by ${actorOf(actor.principal).actorName}`;
    await updateRollout(tx, rollout.id, { status: "paused", pauseReason: reason, updatedAt: now });
    return { reason };
  }, services);
  return await getRollout(deps, id);
}

/** Resumes a paused rollout (409 naming "status" otherwise). The nodes that failed a check are looked at
 * again: one that is now healthy on the new config continues (its bake starts over); any other is skipped
 * and put back on the version it had (a new version, audited). Then the rollout advances at once. */
export async function resumeRollout(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  id: number,
): Promise<RolloutDetail> {
  await steer(deps, actor, id, ["paused"], "resume", async (tx, rollout, now, notify) => {
    const failed = (await listRolloutNodeRows(tx, id)).filter((node) => node.state === "failed");
    const health = await findNodeHealth(tx, failed.map((node) => node.nodeId));
    const skipped: string[] = [];
    const continued: string[] = [];
    for (const node of failed) {
      const retry = { ...node, appliedAt: null };
      const check = node.sentAt
        ? await checkNode(deps, tx, rollout, retry, health.get(node.nodeId), now)
        : { fail: "not sent" };
      if (!("fail" in check) && check.state !== "pending") {
        await updateRolloutNode(tx, id, node.nodeId, { state: "applied", appliedAt: now, error: null });
        continued.push(node.nodeName);
        continue;
      }
      const hash = node.sentAt
        ? await revertNode(deps, tx, rollout, node, actor.principal, actor.address, "skipped on resume")
        : null;
      if (hash) notify.push([node.nodeId, hash]);
      await updateRolloutNode(tx, id, node.nodeId, { state: "skipped", activeNodeId: null });
      skipped.push(node.nodeName);
    }
    await updateRollout(tx, id, { status: "running", pauseReason: null, updatedAt: now });
    return { skipped, continued };
  }, services);
  await stepRollout(deps, services, id);
  return await getRollout(deps, id);
}

/** Aborts a running or paused rollout (409 naming "status" otherwise): every node that got the new config
 * and still has it goes back to the version it had, as a new version (source rollback, audited); nodes not
 * reached yet are cancelled. The nodes are free for other rollouts afterwards. */
export async function abortRollout(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  id: number,
): Promise<RolloutDetail> {
  await steer(deps, actor, id, ["running", "paused"], "abort", async (tx, rollout, now, notify) => {
    let reverted = 0;
    let cancelled = 0;
    for (const node of await listRolloutNodeRows(tx, id)) {
      if (node.state === "skipped") continue;
      if (node.state === "waiting") {
        await updateRolloutNode(tx, id, node.nodeId, { state: "cancelled" });
        cancelled++;
        continue;
      }
      const hash = await revertNode(deps, tx, rollout, node, actor.principal, actor.address, "aborted");
      if (hash) notify.push([node.nodeId, hash]);
      await updateRolloutNode(tx, id, node.nodeId, { state: hash ? "reverted" : "cancelled" });
      if (hash) reverted++;
      else cancelled++;
    }
    await releaseRolloutNodes(tx, id);
    await updateRollout(tx, id, { status: "aborted", finishedAt: now, updatedAt: now });
    return { reverted, cancelled };
  }, services);
  return await getRollout(deps, id);
}

// ---------------------------------------------------------------------------------------------- the job

/** Steps every running rollout; on the job runner, so one replica at a time does it. */
export function rolloutJob(services: WatcherHolder, intervalMs = ROLLOUT_JOB_INTERVAL_MS): Job {
  return {
    name: ROLLOUT_JOB,
    intervalMs,
    run: async ({ deps, stopping }) => {
      const counts: Record<string, number> = { rollouts: 0 };
      for (const id of await listRunningRolloutIds(deps.db)) {
        if (stopping()) break;
        const outcome = await stepRollout(deps, services, id);
        counts.rollouts++;
        counts[outcome] = (counts[outcome] ?? 0) + 1;
      }
      return counts;
    },
  };
}
