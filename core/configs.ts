// Config versions: immutable rows per node, one of them the node's desired config. Agents pull the desired
// one (ETag + long-poll) and ack what they applied; operators set, list, diff and roll back.
import { createTwoFilesPatch, structuredPatch } from "diff";
import {
  type ConfigVersionRow,
  findConfigVersion,
  findConfigVersionById,
  findDesiredHash,
  findLatestVersionWithHash,
  findNodeConfig,
  insertConfigVersion,
  listConfigVersionRows,
  maxConfigVersion,
  type NodeConfigRow,
  setNodeAck,
  setNodeDesired,
} from "../db/configs.ts";
import type { DbOrTx } from "../db/client.ts";
import { type AuditEntry, recordAudit } from "./audit.ts";
import { configHash, parseConfigInput, prefixDetails, sameBody, toYaml } from "./configDocument.ts";
import type { ConfigWaiter, ConfigWatcher, WaitOutcome } from "./configWatcher.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, describeDetails, type ErrorDetail, notFound, validationFailed } from "./errors.ts";
import { tooManyRequests } from "./limits.ts";
import type { ConfigState } from "./nodeStatus.ts";
import { type Actor, actorOf } from "./principal.ts";

export const CONFIG_SOURCES = ["agent", "operator", "rollback"] as const;
export type ConfigSource = typeof CONFIG_SOURCES[number];

export const MAX_COMMENT_LENGTH = 1000;
export const MAX_WAIT_S = 60;
const HASH = /^[0-9a-f]{64}$/;

export interface ConfigVersionView {
  version: number;
  hash: string;
  body: Record<string, unknown>;
  /** config.yaml as written (comments, key order); what agents write to disk. */
  yaml: string;
  source: ConfigSource;
  author: string;
  comment: string | null;
  rolled_back_from: number | null;
  created_at: string;
}

export interface ConfigStatusView {
  desired: { version: number; hash: string } | null;
  applied_hash: string | null;
  state: ConfigState;
  error: string | null;
  acked_at: string | null;
}

type WatcherHolder = {
  configWatcher: Pick<ConfigWatcher, "notify" | "watch" | "waiting"> & Partial<Pick<ConfigWatcher, "shared">>;
};

export function toConfigVersionView(row: ConfigVersionRow): ConfigVersionView {
  return {
    version: row.version,
    hash: row.hash,
    body: row.body,
    // Versions from before texts were kept are rendered from their body.
    yaml: row.yamlText ?? toYaml(row.body),
    source: row.source as ConfigSource,
    author: row.author,
    comment: row.comment,
    rolled_back_from: row.rolledBackFrom,
    created_at: row.createdAt.toISOString(),
  };
}

/**
 * Makes `text` (with its parsed `body`) the node's desired config as a new immutable version (next number
 * for the node; hash = sha256 of the text), sets the node's desired_* columns and config_state (in_sync when
 * it equals the applied hash, else pending), and audits "config.create" ("config.rollback" for source
 * rollback) as `actor`.
 *
 * Idempotent: when the text hashes to the node's desired hash, or (`same_body_is_unchanged`) its body
 * means the same as the desired body, no version is created, nothing is written, and the current version
 * is returned.
 *
 * `db` may be the database or a transaction; the work runs in a (nested) transaction with the node row
 * locked, so concurrent writers get consecutive version numbers. The body must already be valid
 * (parseConfigInput). After the caller commits it should call `services.configWatcher.notify(nodeId, hash)`.
 * Throws 404 for an unknown node.
 */
export async function createConfigVersion(
  deps: Pick<CoreDeps, "clock">,
  db: DbOrTx,
  actor: Actor,
  nodeId: string,
  input: ConfigVersionInput,
): Promise<ConfigVersionView> {
  return (await writeConfigVersion(deps, db, actor, nodeId, input)).view;
}

/** What a config write did: the version now desired, and whether this call created it. */
export interface ConfigChange {
  view: ConfigVersionView;
  created: boolean;
}

export interface ConfigVersionInput {
  body: Record<string, unknown>;
  /** config.yaml text of body, normalized (normalizeConfigText) */
  text: string;
  /** JSON input: a body equal to the desired one keeps that version and its text (comments stay). */
  same_body_is_unchanged?: boolean;
  source: ConfigSource;
  comment?: string | null;
  rolled_back_from?: number | null;
}

/** createConfigVersion, also telling whether a version was created (false: the body was already desired). */
export function writeConfigVersion(
  deps: Pick<CoreDeps, "clock">,
  db: DbOrTx,
  actor: Actor,
  nodeId: string,
  input: ConfigVersionInput,
): Promise<ConfigChange> {
  return db.transaction(async (tx) => {
    const node = await findNodeConfig(tx, nodeId, { forUpdate: true });
    if (!node) throw notFound(`node ${nodeId}`);
    const hash = await configHash(input.text);
    if (node.desiredVersionId !== null && (node.desiredHash === hash || input.same_body_is_unchanged)) {
      const current = await findConfigVersionById(tx, node.desiredVersionId);
      if (current && (current.hash === hash || sameBody(current.body, input.body))) {
        return { view: toConfigVersionView(current), created: false };
      }
    }
    const now = deps.clock.now();
    const version = (await maxConfigVersion(tx, nodeId)) + 1;
    const row = versionRow(actor, nodeId, input, version, hash, now);
    const id = await insertConfigVersion(tx, row);
    const configState: ConfigState = node.appliedHash === hash ? "in_sync" : "pending";
    await setNodeDesired(tx, nodeId, {
      desiredVersionId: id,
      desiredHash: hash,
      desiredChangedAt: now,
      configState,
      configError: null,
    });
    await recordAudit(deps, tx, versionAudit(actor, nodeId, input, version, hash));
    return { view: toConfigVersionView({ id, ...row }), created: true };
  });
}

function versionRow(
  actor: Actor,
  nodeId: string,
  input: ConfigVersionInput,
  version: number,
  hash: string,
  now: Date,
) {
  return {
    nodeId,
    version,
    body: input.body,
    yamlText: input.text,
    hash,
    source: input.source,
    author: actorOf(actor.principal).actorName,
    // An operator's comment is refused over the limit before it gets here; one composed by the service (a
    // rollout's "rollout 7 (canary): " before the operator's 1,000 characters) is cut to fit the column.
    comment: input.comment ? clipComment(input.comment) : null,
    rolledBackFrom: input.rolled_back_from ?? null,
    createdAt: now,
  };
}

function versionAudit(
  actor: Actor,
  nodeId: string,
  input: ConfigVersionInput,
  version: number,
  hash: string,
): AuditEntry {
  return {
    principal: actor.principal,
    action: input.source === "rollback" ? "config.rollback" : "config.create",
    targetType: "node",
    targetId: nodeId,
    details: {
      version,
      hash,
      source: input.source,
      ...(input.comment ? { comment: input.comment } : {}),
      ...(input.rolled_back_from ? { rolled_back_from: input.rolled_back_from } : {}),
    },
    address: actor.address,
  };
}

/** A node's first config version, for a node this transaction is creating (registration): version 1
 * inserted, and what the new node row must say about it and the audit entry handed back for the caller to
 * write with its own (writeConfigVersion's lock, reads and savepoint are for nodes that exist). */
export async function insertFirstConfigVersion(
  deps: Pick<CoreDeps, "clock">,
  tx: DbOrTx,
  actor: Actor,
  nodeId: string,
  input: ConfigVersionInput,
): Promise<{
  view: ConfigVersionView;
  desired: {
    desiredVersionId: number;
    desiredHash: string;
    desiredChangedAt: Date;
    configState: ConfigState;
  };
  audit: AuditEntry;
}> {
  const now = deps.clock.now();
  const { row, hash, audit } = await firstConfigVersion(actor, nodeId, input, now);
  const id = await insertConfigVersion(tx, row);
  return {
    view: toConfigVersionView({ id, ...row }),
    desired: { desiredVersionId: id, desiredHash: hash, desiredChangedAt: now, configState: "pending" },
    audit,
  };
}

/** What a new node's first config version is (its row, hash and audit entry), written by the caller:
 * insertFirstConfigVersion, or a batch of registrations (core/registrations.ts). */
export async function firstConfigVersion(
  actor: Actor,
  nodeId: string,
  input: ConfigVersionInput,
  now: Date,
): Promise<{ row: ReturnType<typeof versionRow>; hash: string; audit: AuditEntry }> {
  const hash = await configHash(input.text);
  return {
    row: versionRow(actor, nodeId, input, 1, hash, now),
    hash,
    audit: versionAudit(actor, nodeId, input, 1, hash),
  };
}

/** Sets a node's config from YAML text or an object (`config`, as the API's body has it): 422 naming
 * "config.<path>" when invalid (nothing is written), 404 unknown node, 409 decommissioned. Wakes waiting
 * pulls. */
export async function setNodeConfig(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  nodeId: string,
  input: SetConfigInput,
): Promise<ConfigVersionView> {
  return (await changeNodeConfig(deps, services, actor, nodeId, input)).view;
}

export interface SetConfigInput {
  /** YAML text or an object */
  config: unknown;
  comment?: string | null;
  /** The console asks every change for its reason; the API leaves it optional. */
  require_comment?: boolean;
}

/** setNodeConfig, also telling whether a version was created (the API answers 201 or 200). */
export async function changeNodeConfig(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  nodeId: string,
  input: SetConfigInput,
): Promise<ConfigChange> {
  const parsed = parseConfigInput(input.config);
  const details = parsed.ok ? [] : prefixDetails(parsed.details, "config");
  details.push(...commentProblems(input.comment, input.require_comment));
  if (details.length > 0) throw validationFailed(`invalid config: ${describeDetails(details)}`, details);
  if (!parsed.ok) throw new Error("unreachable: a refused config has details");
  const comment = checkComment(input.comment);
  await requireWritableNode(deps, nodeId);
  const change = await deps.db.transaction((tx) =>
    writeConfigVersion(deps, tx, actor, nodeId, {
      body: parsed.body,
      text: parsed.text,
      // JSON says what, YAML also says how: only YAML text that differs makes a new version.
      same_body_is_unchanged: parsed.from === "json",
      source: "operator",
      comment,
    })
  );
  services.configWatcher.notify(nodeId, change.view.hash);
  return change;
}

/** A new version carrying the body of version `to_version` (source rollback, rolled_back_from =
 * to_version). 404 unknown node or version, 409 decommissioned. Idempotent like createConfigVersion:
 * rolling back to a body that is already desired returns the current version. */
export async function rollbackConfig(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  nodeId: string,
  input: RollbackInput,
): Promise<ConfigVersionView> {
  return (await rollbackNodeConfig(deps, services, actor, nodeId, input)).view;
}

export interface RollbackInput {
  to_version: number;
  comment?: string | null;
}

/** rollbackConfig, also telling whether a version was created. */
export async function rollbackNodeConfig(
  deps: CoreDeps,
  services: WatcherHolder,
  actor: Actor,
  nodeId: string,
  input: RollbackInput,
): Promise<ConfigChange> {
  const comment = checkComment(input.comment);
  await requireWritableNode(deps, nodeId);
  const target = await findConfigVersion(deps.db, nodeId, input.to_version);
  if (!target) throw notFound(`config version ${input.to_version} of node ${nodeId}`);
  const change = await deps.db.transaction((tx) =>
    writeConfigVersion(deps, tx, actor, nodeId, {
      body: target.body,
      text: target.yamlText ?? toYaml(target.body),
      // A version from before texts were kept has no text to compare: its body decides.
      same_body_is_unchanged: target.yamlText === null,
      source: "rollback",
      comment,
      rolled_back_from: target.version,
    })
  );
  services.configWatcher.notify(nodeId, change.view.hash);
  return change;
}

/** Versions newest first, at most `limit` (1..100); `before_version` pages back. `next_before_version` is
 * the value to pass for the next page, null on the last one. 404 unknown node. */
export async function listConfigVersions(
  deps: Pick<CoreDeps, "db">,
  nodeId: string,
  options: { limit: number; before_version?: number },
): Promise<{ versions: ConfigVersionView[]; next_before_version: number | null }> {
  await requireNode(deps, nodeId);
  const limit = Math.min(Math.max(Math.trunc(options.limit), 1), 100);
  const rows = await listConfigVersionRows(deps.db, nodeId, {
    limit: limit + 1,
    beforeVersion: options.before_version,
  });
  const page = rows.slice(0, limit);
  return {
    versions: page.map(toConfigVersionView),
    next_before_version: rows.length > limit ? page[page.length - 1].version : null,
  };
}

/** One version; 404 for an unknown node or version. */
export async function getConfigVersion(
  deps: Pick<CoreDeps, "db">,
  nodeId: string,
  version: number,
): Promise<ConfigVersionView> {
  await requireNode(deps, nodeId);
  const row = await findConfigVersion(deps.db, nodeId, version);
  if (!row) throw notFound(`config version ${version} of node ${nodeId}`);
  return toConfigVersionView(row);
}

/** The node's desired version, or null when it has none. 404 unknown node. */
export async function getDesiredConfig(
  deps: Pick<CoreDeps, "db">,
  nodeId: string,
): Promise<ConfigVersionView | null> {
  const node = await requireNode(deps, nodeId);
  if (node.desiredVersionId === null) return null;
  const row = await findConfigVersionById(deps.db, node.desiredVersionId);
  return row ? toConfigVersionView(row) : null;
}

/** Unified diff of the YAML texts of two versions, comments included (file names "v<from>" and "v<to>").
 * 404 unknown version. */
export async function diffConfigVersions(
  deps: Pick<CoreDeps, "db">,
  nodeId: string,
  fromVersion: number,
  toVersion: number,
): Promise<{ from: ConfigVersionView; to: ConfigVersionView; diff: string }> {
  const from = await getConfigVersion(deps, nodeId, fromVersion);
  const to = await getConfigVersion(deps, nodeId, toVersion);
  const diff = createTwoFilesPatch(
    `v${from.version}`,
    `v${to.version}`,
    from.yaml,
    to.yaml,
    from.hash.slice(0, 12),
    to.hash.slice(0, 12),
  );
  return { from, to, diff };
}

/** Desired vs applied, for the node page and the API. 404 unknown node. */
export async function configStatus(deps: Pick<CoreDeps, "db">, nodeId: string): Promise<ConfigStatusView> {
  return (await configOverview(deps, nodeId)).status;
}

/** An agent's report on a config (the ack body). */
export interface AckInput {
  hash: string;
  status: "applied" | "failed";
  error?: string | null;
}

/**
 * The agent reports what it did with a config. applied + desired hash -> in_sync; applied + another hash
 * -> drifted (the agent runs something else); failed -> failed with the error text (applied hash kept,
 * the agent still runs what it ran). Audits "config.ack". 422 naming "hash" / "error" for bad input.
 */
export async function ackConfig(
  deps: Pick<CoreDeps, "db" | "clock" | "telemetry">,
  actor: Actor,
  nodeId: string,
  input: AckInput,
): Promise<{ config_state: ConfigState; desired_config_hash: string | null }> {
  const problems = [];
  if (!HASH.test(input.hash)) {
    problems.push({ field: "hash", message: "must be 64 lowercase hex characters" });
  }
  if (input.status !== "applied" && input.status !== "failed") {
    problems.push({ field: "status", message: "must be applied or failed" });
  }
  const errorText = input.error?.trim() || null;
  if (input.status === "failed" && !errorText) {
    problems.push({ field: "error", message: "is required when status is failed" });
  }
  if (problems.length > 0) throw validationFailed(`invalid ack: ${describeDetails(problems)}`, problems);

  const result = await deps.db.transaction(async (tx) => {
    const node = await findNodeConfig(tx, nodeId, { forUpdate: true });
    if (!node) throw notFound(`node ${nodeId}`);
    const now = deps.clock.now();
    // A failure reported for a config that is no longer the desired one (a late retry of an old ack) says
    // nothing about the node now: it is audited and changes nothing, or a healthy node would read as failed
    // (and a rollout being resumed would revert it).
    const stale = input.status === "failed" && input.hash !== node.desiredHash;
    let state: ConfigState;
    let appliedHash = node.appliedHash;
    if (stale) {
      state = node.configState as ConfigState;
    } else if (input.status === "failed") {
      state = "failed";
    } else {
      appliedHash = input.hash;
      state = input.hash === node.desiredHash ? "in_sync" : "drifted";
    }
    const configError = input.status === "failed" ? errorText : null;
    if (!stale) {
      await setNodeAck(tx, nodeId, { appliedHash, configState: state, configError, configAckedAt: now });
    }
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "config.ack",
      targetType: "node",
      targetId: nodeId,
      details: {
        hash: input.hash,
        status: input.status,
        config_state: state,
        desired_hash: node.desiredHash,
        ...(stale ? { stale: true } : {}),
        ...(configError ? { error: configError } : {}),
      },
      address: actor.address,
    });
    return { config_state: state, desired_config_hash: node.desiredHash };
  });
  deps.telemetry?.configAck(input.status);
  return result;
}

export type PullResult =
  | { kind: "config"; config: ConfigVersionView }
  | { kind: "not_modified"; hash: string }
  | { kind: "none" };

/**
 * An agent's config pull. `knownHashes` are the hashes of If-None-Match ("*" means whatever is current).
 * Answers at once with the desired config when its hash is not among them; otherwise waits up to `waitS`
 * seconds for it to change (services.configWatcher: no query per waiter), then answers not_modified, or
 * none when the node has no config at all. The node must already be authenticated.
 */
export async function pullConfig(
  deps: Pick<CoreDeps, "db" | "settings" | "telemetry">,
  services: WatcherHolder,
  input: PullInput,
): Promise<PullResult> {
  let answer!: PullAnswer;
  const later = new Promise<PullResult>((resolve, reject) => {
    answer = (error, result) => error === null ? resolve(result!) : reject(error);
  });
  const started = await startPull(deps, services, input, answer);
  return started === "waiting" ? await later : started.now;
}

/** The answer to a pull that waited: `error` null and its result, or what failed. */
export type PullAnswer = (error: unknown, result?: PullResult) => void;

export interface PullInput {
  nodeId: string;
  knownHashes: readonly string[] | "*";
  waitS: number;
  signal?: AbortSignal;
  /** The node's desired hash as the replica's memory has it (core/nodeAuthCache.ts, current to the last
   * poll). When the agent has it already, a waiting pull parks without reading the node: a change the poll
   * has not seen yet wakes it at the next poll, as it would wake a pull parked before the change. */
  rememberedDesiredHash?: string | null;
}

/** pullConfig for a caller that holds no frame while a pull waits (the agents' fast path,
 * routes/agentFastPath.ts): `now` when the answer is known at once; "waiting" when the pull waits for a
 * change, and then `answer` is called once with what pullConfig would return or throw. Refusals before the
 * wait (bad wait, too many waiting, unknown node) are thrown. */
export async function startPull(
  deps: Pick<CoreDeps, "db" | "settings" | "telemetry">,
  services: WatcherHolder,
  input: PullInput,
  answer: PullAnswer,
): Promise<{ now: PullResult } | "waiting"> {
  if (!Number.isInteger(input.waitS) || input.waitS < 0 || input.waitS > MAX_WAIT_S) {
    throw validationFailed(`wait must be a whole number of seconds in 0..${MAX_WAIT_S}`, [
      { field: "wait", message: `must be between 0 and ${MAX_WAIT_S}`, location: "query" },
    ]);
  }
  // Each waiting pull holds memory (~23 KB, most of it Deno's) until it is answered: past the limit, clients come
  // back later.
  if (input.waitS > 0 && services.configWatcher.waiting >= deps.settings.MAX_WAITING_PULLS) {
    throw tooManyRequests(
      "too_many_waiting_pulls",
      `this replica holds ${deps.settings.MAX_WAITING_PULLS} waiting config pulls; retry shortly`,
      5,
    );
  }
  // "*" matches whatever config is current: the pull waits for the next one. A copy of exactly its length:
  // the list lives as long as the wait, and filter() leaves room for more.
  const known: readonly string[] = input.knownHashes !== "*"
    ? input.knownHashes.slice()
    : [(await readDesired(deps, input.nodeId)).desiredHash].filter((hash): hash is string => hash !== null);
  // Registered before the read below, so a change committed in between still wakes this pull.
  const waiter = input.waitS > 0
    ? services.configWatcher.watch(input.nodeId, known, input.waitS * 1000)
    : undefined;
  // A client that hangs up stops holding a waiter for the rest of the wait.
  const signal = input.signal;
  if (waiter && signal) {
    signal.addEventListener("abort", waiter, { once: true });
    if (signal.aborted) waiter.cancel();
  }
  let current: { desiredHash: string | null; desiredVersionId: number | null };
  try {
    const remembered = input.rememberedDesiredHash;
    current = waiter && typeof remembered === "string" && known.includes(remembered)
      ? { desiredHash: remembered, desiredVersionId: null }
      : await readDesired(deps, input.nodeId);
    if (current.desiredHash !== null && !known.includes(current.desiredHash)) {
      stopWaiting(waiter, signal);
      return { now: delivered(deps, await desiredResult(deps, current)) };
    }
  } catch (error) {
    stopWaiting(waiter, signal);
    throw error;
  }
  if (!waiter) return { now: delivered(deps, unchanged(current.desiredHash)) };
  // While it waits, a pull holds only the waiter and this listener's few values (no promise, no frame).
  const { nodeId } = input;
  const lastHash = current.desiredHash;
  waiter.listen((outcome) =>
    answerWait(deps, services, { nodeId, known, lastHash, waiter, signal }, outcome).then(
      (result) => answer(null, result),
      answer,
    )
  );
  return "waiting";
}

function stopWaiting(waiter: ConfigWaiter | undefined, signal: AbortSignal | undefined): void {
  if (!waiter) return;
  signal?.removeEventListener("abort", waiter);
  waiter.cancel();
}

function delivered(deps: Pick<CoreDeps, "telemetry">, result: PullResult): PullResult {
  deps.telemetry?.configDelivery(result.kind);
  return result;
}

function unchanged(desiredHash: string | null): PullResult {
  return desiredHash === null ? { kind: "none" } : { kind: "not_modified", hash: desiredHash };
}

/** The answer to a pull whose wait ended. On shutdown or hang-up it answers from the read made before
 * waiting: thousands of waiters must not each query while draining, and nobody reads the answer to a
 * hung-up request. */
async function answerWait(
  deps: Pick<CoreDeps, "db" | "telemetry">,
  services: WatcherHolder,
  wait: {
    nodeId: string;
    known: readonly string[];
    lastHash: string | null;
    waiter: ConfigWaiter;
    signal: AbortSignal | undefined;
  },
  outcome: WaitOutcome,
): Promise<PullResult> {
  const { nodeId, known, lastHash, waiter } = wait;
  try {
    if (outcome !== "changed" && outcome !== "timeout") return delivered(deps, unchanged(lastHash));
    // Woken by a change (the poll read the node's new desired version: no second read) or the deadline (the
    // database has the answer; a missed wake-up only delays it).
    const fresh = outcome === "changed" && waiter.woken ? waiter.woken : await readDesired(deps, nodeId);
    if (fresh.desiredHash !== null && !known.includes(fresh.desiredHash)) {
      // The pulls one change wakes (an agent may hold several) share the read of the version.
      const read = () => desiredResult(deps, fresh);
      return delivered(
        deps,
        await (services.configWatcher.shared?.(`version ${fresh.desiredVersionId}`, read) ?? read()),
      );
    }
    return delivered(deps, unchanged(fresh.desiredHash));
  } finally {
    stopWaiting(waiter, wait.signal);
  }
}

async function readDesired(deps: Pick<CoreDeps, "db">, nodeId: string) {
  const row = await findDesiredHash(deps.db, nodeId);
  if (!row) throw notFound(`node ${nodeId}`);
  return row;
}

async function desiredResult(
  deps: Pick<CoreDeps, "db">,
  current: { desiredHash: string | null; desiredVersionId: number | null },
): Promise<PullResult> {
  const row = current.desiredVersionId === null
    ? undefined
    : await findConfigVersionById(deps.db, current.desiredVersionId);
  return row ? { kind: "config", config: toConfigVersionView(row) } : { kind: "none" };
}

async function requireNode(deps: Pick<CoreDeps, "db">, nodeId: string): Promise<NodeConfigRow> {
  const node = await findNodeConfig(deps.db, nodeId);
  if (!node) throw notFound(`node ${nodeId}`);
  return node;
}

async function requireWritableNode(deps: Pick<CoreDeps, "db">, nodeId: string): Promise<NodeConfigRow> {
  const node = await requireNode(deps, nodeId);
  if (node.decommissionedAt) {
    throw new AppError(
      409,
      "node_decommissioned",
      `node ${node.name} is decommissioned; its config can no longer change`,
    );
  }
  return node;
}

function clipComment(comment: string): string {
  const characters = Array.from(comment);
  return characters.length <= MAX_COMMENT_LENGTH
    ? comment
    : characters.slice(0, MAX_COMMENT_LENGTH - 1).join("") + "…";
}

function commentProblems(comment: string | null | undefined, required = false): ErrorDetail[] {
  const trimmed = comment?.trim() ?? "";
  if (required && trimmed === "") return [{ field: "comment", message: "say what changes and why" }];
  if (trimmed.length > MAX_COMMENT_LENGTH) {
    return [{ field: "comment", message: `must be at most ${MAX_COMMENT_LENGTH} characters` }];
  }
  return [];
}

function checkComment(comment: string | null | undefined): string | null {
  const trimmed = comment?.trim() || null;
  if (trimmed && trimmed.length > MAX_COMMENT_LENGTH) {
    throw validationFailed(`comment is longer than ${MAX_COMMENT_LENGTH} characters`, [
      { field: "comment", message: `must be at most ${MAX_COMMENT_LENGTH} characters` },
    ]);
  }
  return trimmed;
}

/** Everything the console's config page shows about a node besides its history. */
export interface ConfigOverview {
  node: { id: string; name: string; decommissioned: boolean };
  status: ConfigStatusView;
  desired: ConfigVersionView | null;
  /** The version whose hash the agent last acked as applied; null when unknown or never acked. */
  appliedVersion: number | null;
}

/** The node's config at a glance: desired version, what the agent runs, its state and error. 404 unknown. */
export async function configOverview(deps: Pick<CoreDeps, "db">, nodeId: string): Promise<ConfigOverview> {
  const node = await requireNode(deps, nodeId);
  const row = node.desiredVersionId === null
    ? undefined
    : await findConfigVersionById(deps.db, node.desiredVersionId);
  const desired = row ? toConfigVersionView(row) : null;
  const appliedVersion = node.appliedHash === null
    ? null
    : desired?.hash === node.appliedHash
    ? desired.version
    : (await findLatestVersionWithHash(deps.db, nodeId, node.appliedHash)) ?? null;
  return {
    node: { id: node.id, name: node.name, decommissioned: node.decommissionedAt !== null },
    status: {
      desired: desired ? { version: desired.version, hash: desired.hash } : null,
      applied_hash: node.appliedHash,
      state: node.configState as ConfigState,
      error: node.configError,
      acked_at: node.configAckedAt?.toISOString() ?? null,
    },
    desired,
    appliedVersion,
  };
}

/** One line of a diff for people: kept, removed or added, with its number in the old and the new text. */
export interface DiffRow {
  kind: "context" | "removed" | "added" | "gap";
  /** For a gap: how many unchanged lines it stands for. */
  hidden?: number;
  oldLine: number | null;
  newLine: number | null;
  text: string;
}

/** The line-by-line difference of two texts with `context` unchanged lines around each change; "gap" rows
 * stand for the unchanged lines left out. Empty when the texts are equal. */
export function diffRows(oldText: string, newText: string, context = 3): DiffRow[] {
  const rows: DiffRow[] = [];
  const patch = structuredPatch("old", "new", oldText, newText, "", "", { context });
  let lastOld = 0;
  for (const hunk of patch.hunks) {
    // Lines before the hunk (an insertion at the very start has oldStart 0).
    const skipped = Math.max(0, hunk.oldStart - 1 - lastOld - (hunk.oldLines === 0 ? -1 : 0));
    if (skipped > 0) rows.push({ kind: "gap", hidden: skipped, oldLine: null, newLine: null, text: "" });
    let oldLine = hunk.oldStart;
    let newLine = hunk.newStart;
    for (const line of hunk.lines) {
      const sign = line[0];
      const text = line.slice(1);
      if (sign === "-") rows.push({ kind: "removed", oldLine: oldLine++, newLine: null, text });
      else if (sign === "+") rows.push({ kind: "added", oldLine: null, newLine: newLine++, text });
      else if (sign === " ") rows.push({ kind: "context", oldLine: oldLine++, newLine: newLine++, text });
      // "\ No newline at end of file" carries no line of its own.
    }
    lastOld = oldLine - 1;
  }
  const oldCount = oldText.split("\n").length - (oldText.endsWith("\n") ? 1 : 0);
  if (rows.length > 0 && lastOld < oldCount) {
    rows.push({ kind: "gap", hidden: oldCount - lastOld, oldLine: null, newLine: null, text: "" });
  }
  return rows;
}
