// The autoscaler side of the protocol: register, heartbeat, metric batches.
// Registration is rare and does everything in one transaction; heartbeats (core/heartbeats.ts) and metrics
// are the hot paths and are shaped for few round trips (see db/agents.ts).
import type { DbOrTx } from "../db/client.ts";
import type { PoolLimiter } from "./poolLimit.ts";
import {
  findNodeByName,
  insertNode,
  listNodePoolOcids,
  type NewNodeRow,
  type NodeRegistrationRow,
  type PoolLatest,
  type RegisteredPool,
  type SampleRow,
  type ScalingEventRow,
  updateNodeRegistration,
  upsertRegisteredPools,
  writeMetricBatch,
} from "../db/agents.ts";
import { findConfigVersionById, findNodeConfig } from "../db/configs.ts";
import { isRetryableWrite } from "../db/errors.ts";
import { type AuditEntry, recordAudits } from "./audit.ts";
import { parseConfigInput, prefixDetails } from "./configDocument.ts";
import { createConfigVersion, insertFirstConfigVersion } from "./configs.ts";
import type { ConfigWatcher } from "./configWatcher.ts";
import type { NodeAuthCache } from "./nodeAuthCache.ts";
import type { CoreDeps } from "./deps.ts";
import { LATE_SAMPLE_MS } from "./housekeeping.ts";
import { type RateLimiter, tooManyRequests } from "./limits.ts";
import { findUsableEnrollmentToken, takeEnrollmentUse } from "./enrollment.ts";
import type { RegistrationBatcher } from "./registrations.ts";
import type { EnrollmentTokenRow } from "../db/enrollment.ts";
import { findNodeByTokenHash } from "../db/nodeAuth.ts";
import { AppError, type ErrorDetail, validationFailed } from "./errors.ts";
import { parseZonedTimestamp } from "./fields.ts";
import type { Actor, AgentCaller, NodePrincipal } from "./principal.ts";
import { constantTimeEqual, keyedHash, newSecret, SECRET_PREFIX, secretShaped } from "./secrets.ts";

// -------------------------------------------------------------------------------------------- register

export interface RegisterPoolInput {
  instance_pool_id: string;
  display_name?: string | null;
  compartment_id?: string | null;
  region?: string | null;
  current_size?: number | null;
  min_size?: number | null;
  max_size?: number | null;
}

/** The register body as the route validated it (snake_case, as on the wire). */
export interface RegisterInput {
  /** Not needed when the node's current token is presented (a rotation). */
  enrollment_token?: string | null;
  name: string;
  registration_id?: string | null;
  hostname: string;
  address?: string | null;
  agent_version?: string | null;
  region?: string | null;
  labels?: Record<string, string> | null;
  pools?: RegisterPoolInput[] | null;
  config?: unknown;
}

export interface RegisterResult {
  /** true: a new node (201); false: a known node whose token was rotated on proof (200). */
  created: boolean;
  body: {
    node_id: string;
    node_token: string;
    heartbeat_interval_s: number;
    config: { version: number; hash: string; body: Record<string, unknown> } | null;
  };
}

type WatcherHolder = {
  configWatcher: Pick<ConfigWatcher, "notify">;
  /** This replica forgets a rotated token at once (the others at their next poll). */
  nodeAuth?: Pick<NodeAuthCache, "forget">;
  /** New nodes registered together, many in one transaction (core/registrations.ts); without it, each
   * registration is its own transaction. */
  registrations?: Pick<RegistrationBatcher, "submit">;
};

const REGISTER_ATTEMPTS = 5;

/** The credential check POST /register runs before it validates anything else of the body (so an
 * anonymous request costs one lookup, whatever it carries): the node's current token for that name
 * (Authorization: Bearer acn_...), or a usable enrollment token. `raw` is the parsed JSON body, unchecked.
 * Throws 401 (enrollment_token_invalid / _expired / _revoked / _exhausted). Decisions that need the
 * node row locked are registerNode's. */
export async function checkRegisterCredentials(
  deps: Pick<CoreDeps, "db" | "settings" | "clock">,
  caller: AgentCaller,
  raw: unknown,
  /** Reads enrollment tokens arriving together in one query (core/registrations.ts). */
  registrations?: Pick<RegistrationBatcher, "findEnrollmentToken">,
): Promise<void> {
  const body = (raw !== null && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  if (secretShaped(SECRET_PREFIX.nodeToken, caller.token) && typeof body.name === "string") {
    const owner = await findNodeByTokenHash(deps.db, await keyedHash(deps.settings.SECRET_KEY, caller.token));
    if (owner && owner.name === body.name) return;
  }
  if (body.enrollment_token === undefined || body.enrollment_token === null) {
    throw new AppError(
      401,
      "enrollment_token_invalid",
      "an enrollment token is required (enrollment_token), or the node's own token to rotate it",
    );
  }
  try {
    await findUsableEnrollmentToken(
      deps,
      registrations?.findEnrollmentToken ?? deps.db,
      body.enrollment_token,
    );
  } catch (error) {
    // The retry of a registration whose answer was lost may find the token's last use taken by itself.
    if (error instanceof AppError && await retriesRegistration(deps, body)) return;
    throw error;
  }
}

/** True when the body is the retry of the registration that registered its name (sameRegistration). */
async function retriesRegistration(
  deps: Pick<CoreDeps, "db" | "settings" | "clock">,
  body: Record<string, unknown>,
): Promise<boolean> {
  if (typeof body.registration_id !== "string" || typeof body.name !== "string") return false;
  const node = await findNodeByName(deps.db, body.name);
  return node !== undefined &&
    sameRegistration(node, await keyedHash(deps.settings.SECRET_KEY, body.registration_id), deps.clock.now());
}

/** Registers an agent. Who may register a name:
 * - a new name: any usable enrollment token (201);
 * - a known name: only with proof of identity (200, the node token rotated): the node's current token
 *   (`caller.token`), or a re-enrollment token an operator created for that node. A plain enrollment
 *   token for a known name is 409 node_name_taken and changes nothing: every agent holds the enrollment
 *   token, so it must not be enough to take another node's identity.
 * One transaction: the enrollment token use, the node, its pools, its first config version and the audit
 * entries; a refusal writes nothing (and gives the token use back). */
export async function registerNode(
  deps: CoreDeps,
  services: WatcherHolder & { registrationLimiter?: RateLimiter },
  caller: AgentCaller,
  input: RegisterInput,
): Promise<RegisterResult> {
  // Per connecting address (not the address the body claims), before any write.
  const retryAfterS = caller.address ? services.registrationLimiter?.take(caller.address) : undefined;
  if (retryAfterS !== undefined) {
    deps.telemetry?.registration("refused");
    throw tooManyRequests(
      "registration_rate_limited",
      `more than ${deps.settings.REGISTER_RATE_PER_MIN} registrations a minute from ${caller.address}; retry in ${retryAfterS}s`,
      retryAfterS,
    );
  }
  try {
    const result = await registerWithRetries(deps, services, caller, input);
    deps.telemetry?.registration(result.created ? "created" : "reregistered");
    return result;
  } catch (error) {
    deps.telemetry?.registration("refused");
    throw error;
  }
}

/** What one registration writes, worked out before its transaction. */
export interface Registration {
  input: RegisterInput;
  /** What the connection shows (the proxy's forwarded address with TRUST_PROXY): recorded as the node's
   * address and audited. What the agent claims (`input.address`) is kept beside it, never in its place. */
  address: string | null;
  /** The keyed hash of the node token the caller presented, if it presented one. */
  presentedHash: string | undefined;
  /** The keyed hash of the new node token. */
  tokenHash: string;
  /** The keyed hash of the agent's registration_id, if it sent one. */
  registrationIdHash: string | undefined;
  /** The config the agent brought, valid. */
  config: { body: Record<string, unknown>; text: string } | undefined;
}

export interface RegisterOutcome {
  created: boolean;
  nodeId: string;
  configCreated: boolean;
  config: RegisterResult["body"]["config"];
}

async function registerWithRetries(
  deps: CoreDeps,
  services: WatcherHolder,
  caller: AgentCaller,
  input: RegisterInput,
): Promise<RegisterResult> {
  const nodeToken = newSecret(SECRET_PREFIX.nodeToken);
  const registration: Registration = {
    input,
    address: caller.address,
    presentedHash: secretShaped(SECRET_PREFIX.nodeToken, caller.token)
      ? await keyedHash(deps.settings.SECRET_KEY, caller.token)
      : undefined,
    tokenHash: await keyedHash(deps.settings.SECRET_KEY, nodeToken),
    registrationIdHash: input.registration_id
      ? await keyedHash(deps.settings.SECRET_KEY, input.registration_id)
      : undefined,
    // Checked before any write, so a bad config costs no enrollment use.
    config: broughtConfig(input.config),
  };
  const answer = (outcome: RegisterOutcome): RegisterResult => {
    if (outcome.configCreated) services.configWatcher.notify(outcome.nodeId, outcome.config?.hash);
    if (!outcome.created) services.nodeAuth?.forget(outcome.nodeId);
    return {
      created: outcome.created,
      body: {
        node_id: outcome.nodeId,
        node_token: nodeToken,
        heartbeat_interval_s: deps.settings.HEARTBEAT_INTERVAL_S,
        config: outcome.config,
      },
    };
  };
  // A plain new node goes with the registrations around it in one transaction; anything else (a known or
  // repeated name, a token that is not plainly usable, a batch that failed) comes back undefined and is
  // registered on its own below, after that batch committed, exactly as if it had come after it.
  const batched = await services.registrations?.submit(registration);
  if (batched) return answer(batched);
  for (let attempt = 1;; attempt++) {
    try {
      // READ COMMITTED: the name lookup of a new node takes no gap lock, so concurrent first registrations
      // (a fleet enrolling at once) do not deadlock on each other's inserts; a real name clash still
      // surfaces as ER_DUP_ENTRY and is retried below.
      return answer(
        await deps.db.transaction(
          (tx) => registerInTransaction(deps, tx, registration),
          { isolationLevel: "read committed" },
        ),
      );
    } catch (error) {
      // Two first registrations of one name race on the unique name: the loser retries and re-registers.
      if (isRetryableWrite(error) && attempt < REGISTER_ATTEMPTS) {
        // A short random pause so the retries of a burst do not collide again in lockstep.
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * attempt));
        continue;
      }
      throw error;
    }
  }
}

/** The config an agent brings to registration, parsed; 422 naming config.<path> when it is invalid. */
function broughtConfig(config: unknown): Registration["config"] {
  if (config === undefined || config === null) return undefined;
  const parsed = parseConfigInput(config);
  if (!parsed.ok) {
    const details = prefixDetails(parsed.details, "config").map((d) => ({ ...d, location: "body" }));
    throw validationFailed(`invalid config: ${describe(details)}`, details);
  }
  return { body: parsed.body, text: parsed.text };
}

/** One attempt: the node row locked by name, the proof checked, the node, its pools, its first config and
 * the audit entries written. */
async function registerInTransaction(
  deps: CoreDeps,
  tx: DbOrTx,
  registration: Registration,
): Promise<RegisterOutcome> {
  const { input } = registration;
  const now = deps.clock.now();
  const existing = await findNodeByName(tx, input.name, { forUpdate: true });
  const proof = await proveIdentity(deps, tx, existing, registration);
  const nodeId = existing?.id ?? crypto.randomUUID();
  await checkRegisteredPools(deps, tx, existing ? nodeId : undefined, input.pools ?? []);
  const principal: NodePrincipal = { kind: "node", nodeId, nodeName: input.name };
  const actor = { principal, address: registration.address };
  const brought = registration.config && {
    body: registration.config.body,
    text: registration.config.text,
    source: "agent" as const,
    comment: "brought by the agent at registration",
  };
  let configCreated = false;
  let version: { version: number; hash: string; body: Record<string, unknown> } | undefined;
  // A new node's first config goes in before the node row, which carries it as desired from the start, and
  // its audit entry is written with the registration's (five round trips fewer than for a node that exists).
  const first = brought && !existing
    ? await insertFirstConfigVersion(deps, tx, actor, nodeId, brought)
    : undefined;
  await writeNodeRows(tx, nodeId, existing !== undefined, registration, now, first?.desired);
  if (first) {
    version = first.view;
    configCreated = true;
  } else if (brought && !existing?.desiredVersionId) {
    version = await createConfigVersion(deps, tx, actor, nodeId, brought);
    configCreated = true;
  }
  if (!configCreated) {
    // The version just created is the desired one; otherwise read what is desired.
    const desired = await findNodeConfig(tx, nodeId);
    version = desired?.desiredVersionId
      ? await findConfigVersionById(tx, desired.desiredVersionId)
      : undefined;
  }
  await auditRegistration(deps, tx, {
    principal,
    registration,
    known: existing !== undefined,
    proof,
    configVersion: version?.version ?? null,
    configAudit: first?.audit,
  });
  return {
    created: !existing,
    nodeId,
    configCreated,
    config: version ? { version: version.version, hash: version.hash, body: version.body } : null,
  };
}

/** How a registration proved it may take the name: the node's own token, or an enrollment token (plain for
 * a new name, a re-enrollment token made for this node for a known one). */
interface Proof {
  ownToken: boolean;
  /** The same registration sent again (sameRegistration). */
  retried?: boolean;
  enrollment: EnrollmentTokenRow | undefined;
}

/** How long after a node registered a retry of that registration (same registration_id) gets it back, unless
 * the node has sent a heartbeat: then its agent has its token, and a retry can only be someone else's. */
export const REGISTRATION_RETRY_MS = 15 * 60_000;

/** True when `node` was registered by this same registration (its registration_id) and its agent cannot have
 * seen the answer yet: no heartbeat since, within REGISTRATION_RETRY_MS. */
export function sameRegistration(
  node: Pick<
    NodeRegistrationRow,
    "registrationIdHash" | "lastHeartbeatAt" | "registeredAt" | "decommissionedAt"
  >,
  registrationIdHash: string | undefined,
  now: Date,
): boolean {
  return Boolean(
    registrationIdHash && node.registrationIdHash && !node.decommissionedAt &&
      node.lastHeartbeatAt === null &&
      now.getTime() - node.registeredAt.getTime() <= REGISTRATION_RETRY_MS &&
      constantTimeEqual(node.registrationIdHash, registrationIdHash),
  );
}

/** Who may register the name (see registerNode): 409 node_decommissioned / node_name_taken, 401 without an
 * enrollment token, 403 enrollment_token_wrong_node. Uses the enrollment token when that is the proof. */
async function proveIdentity(
  deps: CoreDeps,
  tx: DbOrTx,
  existing: NodeRegistrationRow | undefined,
  registration: Registration,
): Promise<Proof> {
  const { input, presentedHash } = registration;
  if (existing?.decommissionedAt) {
    throw new AppError(
      409,
      "node_decommissioned",
      `node ${input.name} is decommissioned; an operator must delete it before the name can register again`,
    );
  }
  const ownToken = Boolean(
    existing?.tokenHash && presentedHash && constantTimeEqual(existing.tokenHash, presentedHash),
  );
  if (ownToken) return { ownToken, enrollment: undefined };
  // The agent's earlier attempt registered the node but its answer was lost: the node back, a new token, no
  // second use of the enrollment token.
  if (existing && sameRegistration(existing, registration.registrationIdHash, deps.clock.now())) {
    return { ownToken: false, retried: true, enrollment: undefined };
  }
  if (!input.enrollment_token) {
    throw new AppError(401, "enrollment_token_invalid", "an enrollment token is required");
  }
  // Checked here; its use is counted at the end of the transaction (auditRegistration, takeEnrollmentUse), so
  // the token's row stays locked from that UPDATE to the commit only, not through the whole registration:
  // a fleet enrolling with one token takes turns on that row.
  const enrollment = await findUsableEnrollmentToken(deps, tx, input.enrollment_token);
  if (enrollment.nodeId !== null && enrollment.nodeId !== existing?.id) {
    throw new AppError(
      403,
      "enrollment_token_wrong_node",
      `this re-enrollment token was made for another node; it registers only that node's name`,
    );
  }
  if (existing && enrollment.nodeId === null) throw nameTaken(input.name);
  return { ownToken, enrollment };
}

/** The node row (inserted, or updated with what the agent reports now) and the pools it names. */
async function writeNodeRows(
  tx: DbOrTx,
  nodeId: string,
  known: boolean,
  registration: Registration,
  now: Date,
  /** A new node's first config (insertFirstConfigVersion). */
  desired?: { desiredVersionId: number; desiredHash: string; desiredChangedAt: Date; configState: string },
): Promise<void> {
  const { input, address, tokenHash } = registration;
  const claimedAddress = input.address ?? null;
  if (known) {
    await updateNodeRegistration(tx, nodeId, {
      hostname: input.hostname,
      ...(input.region != null ? { region: input.region } : {}),
      ...(input.agent_version != null ? { agentVersion: input.agent_version } : {}),
      ...(input.labels != null ? { labels: input.labels } : {}),
      tokenHash,
      tokenIssuedAt: now,
      lastAddress: address,
      ...(claimedAddress !== null ? { claimedAddress } : {}),
      updatedAt: now,
    });
  } else {
    await insertNode(tx, { ...newNodeRow(nodeId, registration, now), ...desired });
  }
  await upsertRegisteredPools(tx, nodeId, registeredPools(input), now);
}

/** A new node's row (its desired config set by the caller when it brought one). */
export function newNodeRow(
  nodeId: string,
  { input, address, tokenHash, registrationIdHash }: Registration,
  now: Date,
): NewNodeRow {
  return {
    id: nodeId,
    name: input.name,
    hostname: input.hostname,
    region: input.region ?? null,
    agentVersion: input.agent_version ?? null,
    labels: input.labels ?? {},
    tokenHash,
    tokenIssuedAt: now,
    registrationIdHash: registrationIdHash ?? null,
    registeredAt: now,
    lastAddress: address,
    claimedAddress: input.address ?? null,
    configState: "pending",
    createdAt: now,
    updatedAt: now,
  };
}

/** The pools a registration names, as stored. */
export function registeredPools(input: RegisterInput): RegisteredPool[] {
  return (input.pools ?? []).map((p) => ({
    poolOcid: p.instance_pool_id,
    displayName: p.display_name ?? null,
    compartmentId: p.compartment_id ?? null,
    region: p.region ?? null,
    currentSize: p.current_size ?? null,
    minSize: p.min_size ?? null,
    maxSize: p.max_size ?? null,
  }));
}

/** The audit entries of a registration: the enrollment token's use (when one was the proof), then
 * node.register or node.reregister. */
async function auditRegistration(
  deps: CoreDeps,
  tx: DbOrTx,
  entry: {
    principal: NodePrincipal;
    registration: Registration;
    known: boolean;
    proof: Proof;
    configVersion: number | null;
    /** The first config's entry (a new node), written first, as writeConfigVersion would have. */
    configAudit?: AuditEntry;
  },
): Promise<void> {
  // The enrollment token's use, counted last (see proveIdentity); the entries in one statement.
  const enrollment = entry.proof.enrollment && await takeEnrollmentUse(deps, tx, entry.proof.enrollment);
  await recordAudits(deps, tx, registrationAudits({ ...entry, enrollment }));
}

/** A registration's audit entries, in order: its first config's (a new node that brought one), the
 * enrollment token's use (`enrollment`: the token as that use left it), node.register or node.reregister. */
export function registrationAudits(entry: {
  principal: NodePrincipal;
  registration: Registration;
  known: boolean;
  proof: Pick<Proof, "ownToken" | "retried">;
  configVersion: number | null;
  configAudit?: AuditEntry;
  enrollment: EnrollmentTokenRow | undefined;
}): AuditEntry[] {
  const { principal, registration: { input, address }, known, proof: { ownToken, retried }, enrollment } =
    entry;
  const audits: AuditEntry[] = entry.configAudit ? [entry.configAudit] : [];
  if (enrollment) {
    audits.push({
      principal,
      action: "enrollment_token.use",
      targetType: "enrollment_token",
      targetId: enrollment.id,
      details: { name: enrollment.name, prefix: enrollment.prefix, uses: enrollment.uses, node: input.name },
      address,
    });
  }
  audits.push({
    principal,
    action: known ? "node.reregister" : "node.register",
    targetType: "node",
    targetId: principal.nodeId,
    details: {
      name: input.name,
      hostname: input.hostname,
      agent_version: input.agent_version ?? null,
      pools: (input.pools ?? []).length,
      claimed_address: input.address ?? null,
      enrollment_token_id: enrollment?.id ?? null,
      // What proved a known node's identity: its own token or an operator's re-enrollment token.
      ...(known
        ? { proof: ownToken ? "node_token" : retried ? "registration_retry" : "reenrollment_token" }
        : {}),
      config_version: entry.configVersion,
    },
    address,
  });
  return audits;
}

/** Register's share of MAX_POOLS_PER_NODE: the pools it names that the node lacks must fit (the node row
 * is locked by the registration's transaction). 422 naming pools.<i>.instance_pool_id otherwise. */
async function checkRegisteredPools(
  deps: CoreDeps,
  tx: DbOrTx,
  nodeId: string | undefined,
  pools: RegisterPoolInput[],
): Promise<void> {
  if (pools.length === 0) return;
  const limit = deps.settings.MAX_POOLS_PER_NODE;
  const known = nodeId ? await listNodePoolOcids(tx, nodeId) : [];
  const details = poolLimitProblems(known, pools, limit);
  if (details.length > 0) throw validationFailed(`too many pools: at most ${limit} per node`, details);
}

/** The pools a registration names beyond MAX_POOLS_PER_NODE (`limit`), given the node's `known` ones. */
export function poolLimitProblems(known: string[], pools: RegisterPoolInput[], limit: number): ErrorDetail[] {
  const seen = new Set(known);
  let room = limit - seen.size;
  const details: ErrorDetail[] = [];
  pools.forEach((pool, index) => {
    if (seen.has(pool.instance_pool_id)) return;
    seen.add(pool.instance_pool_id);
    if (room-- > 0) return;
    details.push({
      field: `pools.${index}.instance_pool_id`,
      message: `a new pool, beyond the ${limit} pools a node may have (MAX_POOLS_PER_NODE)`,
      location: "body",
    });
  });
  return details;
}

/** 409 for a known name registered without proof: says what the operator can do. */
function nameTaken(name: string): AppError {
  return new AppError(
    409,
    "node_name_taken",
    `node name "${name}" is already registered and this request did not prove it is that node, so its ` +
      `token was not changed. If this agent is "${name}" and lost its node token, an operator can issue a ` +
      `one-time re-enrollment token (autoscaler-central token create --node ${name}, or POST ` +
      `/api/v1/nodes/{id}/reenrollment-token) to use as this agent's enrollment token. Otherwise give this ` +
      `agent another name.`,
  );
}

function describe(details: ErrorDetail[]): string {
  const head = details.slice(0, 3).map((d) => `${d.field}: ${d.message}`).join("; ");
  return details.length > 3 ? `${head}; and ${details.length - 3} more` : head;
}

// --------------------------------------------------------------------------------------------- metrics

/** The hard ceiling of a batch (the request schema's); MAX_BATCH_SAMPLES (default 1000) is the setting. */
export const MAX_SAMPLES_PER_BATCH = 10_000;
/** How far ahead of the server's clock a sample may be (agent clocks drift a little). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

export interface MetricSampleInput {
  instance_pool_id: string;
  ts: string;
  cpu_util: number;
  memory_util: number;
  instance_count: number;
  scaling_event?: boolean;
  scaling_direction?: "UP" | "DOWN" | null;
  from_count?: number | null;
  to_count?: number | null;
  reason?: string | null;
}

/** A batch of samples checked and turned into rows, ready to store. */
export interface PreparedMetricBatch {
  samples: SampleRow[];
  events: ScalingEventRow[];
  latest: PoolLatest[];
  lateHours: string[];
  now: Date;
}

/** Stores a batch of samples: 413 past MAX_BATCH_SAMPLES; 422 naming "samples.<i>.ts" for a time that is no
 * date, too far ahead or older than the retention, and "samples.<i>.scaling_direction" unless it is given
 * exactly when scaling_event is true; re-sent samples (same node, pool, ts) count as duplicates. */
export async function ingestMetrics(
  deps: CoreDeps,
  services: { pools: PoolLimiter },
  actor: Actor<NodePrincipal>,
  input: { samples: MetricSampleInput[] },
): Promise<{ accepted: number; duplicates: number }> {
  if (input.samples.length > deps.settings.MAX_BATCH_SAMPLES) {
    deps.telemetry?.samples("refused", input.samples.length);
    throw new AppError(
      413,
      "batch_too_large",
      `${input.samples.length} samples in one batch; at most ${deps.settings.MAX_BATCH_SAMPLES}: send smaller batches`,
      [{ field: "samples", location: "body", message: `at most ${deps.settings.MAX_BATCH_SAMPLES} samples` }],
    );
  }
  const prepared = prepareMetricBatch(deps, input.samples);
  if ("problems" in prepared) {
    deps.telemetry?.samples("refused", input.samples.length);
    throw validationFailed(`invalid samples: ${describe(prepared.problems)}`, prepared.problems);
  }
  return await storeMetricBatch(deps, services, actor.principal.nodeId, prepared);
}

/** The checks of ingestMetrics that need no database, and the rows: what the agents' fast path
 * (routes/agentFastPath.ts) runs first, leaving any batch with a problem to the full route. Counts nothing. */
export function prepareMetricBatch(
  deps: Pick<CoreDeps, "clock" | "settings">,
  input: MetricSampleInput[],
): PreparedMetricBatch | { problems: ErrorDetail[] } {
  const now = deps.clock.now();
  const latestAllowed = now.getTime() + MAX_FUTURE_SKEW_MS;
  const oldestAllowed = now.getTime() - deps.settings.METRICS_RETENTION_DAYS * 86_400_000;
  const problems: ErrorDetail[] = [];
  const samples: SampleRow[] = [];
  const events: ScalingEventRow[] = [];
  const latest = new Map<string, { row: PoolLatest; ms: number }>();
  const lateBefore = now.getTime() - LATE_SAMPLE_MS;
  const lateHours = new Set<string>();
  input.forEach((s, i) => {
    if (Boolean(s.scaling_event) !== Boolean(s.scaling_direction)) {
      problems.push({
        field: `samples.${i}.scaling_direction`,
        message: s.scaling_event
          ? "is required when scaling_event is true"
          : "must be absent or null unless scaling_event is true",
        location: "body",
      });
      return;
    }
    const parsed = parseZonedTimestamp(s.ts);
    const field = `samples.${i}.ts`;
    if (parsed === undefined) {
      problems.push({ field, message: "must be an ISO 8601 time with a zone", location: "body" });
      return;
    }
    const { ms, utc: ts } = parsed;
    if (ms > latestAllowed) {
      problems.push({ field, message: "is more than 5 minutes in the future", location: "body" });
      return;
    }
    if (ms < oldestAllowed) {
      problems.push({
        field,
        message: `is older than the retention (${deps.settings.METRICS_RETENTION_DAYS} days)`,
        location: "body",
      });
      return;
    }
    // A sample arriving late may land in a bucket the rollup job has passed: mark its hour for recomputation.
    if (ms < lateBefore) lateHours.add(`${ts.slice(0, 13)}:00:00.000`);
    const row = {
      poolOcid: s.instance_pool_id,
      ts,
      cpuUtil: s.cpu_util,
      memoryUtil: s.memory_util,
      instanceCount: s.instance_count,
    };
    samples.push(row);
    const previous = latest.get(row.poolOcid);
    if (!previous || previous.ms <= ms) latest.set(row.poolOcid, { row, ms });
    if (s.scaling_event && s.scaling_direction) {
      events.push({
        poolOcid: s.instance_pool_id,
        ts,
        direction: s.scaling_direction,
        fromCount: s.from_count ?? null,
        toCount: s.to_count ?? null,
        reason: s.reason ?? null,
      });
    }
  });
  if (problems.length > 0) return { problems };
  return {
    samples,
    events,
    latest: [...latest.values()].map((entry) => entry.row),
    lateHours: [...lateHours],
    now,
  };
}

/** Writes a prepared batch: its unknown pools first (422 past MAX_POOLS_PER_NODE, naming the samples), then
 * the samples, events and pools' latest values in one transaction. */
export async function storeMetricBatch(
  deps: CoreDeps,
  services: { pools: PoolLimiter },
  nodeId: string,
  batch: PreparedMetricBatch,
): Promise<{ accepted: number; duplicates: number }> {
  // Rows are in the order of the samples sent (a batch with a problem has none), so index i names sample i.
  await services.pools.ensure(
    nodeId,
    batch.samples.map((s) => s.poolOcid),
    (i) => `samples.${i}.instance_pool_id`,
  );
  const { accepted } = await writeMetricBatch(deps.pool, nodeId, batch);
  const duplicates = batch.samples.length - accepted;
  deps.telemetry?.samples("accepted", accepted);
  deps.telemetry?.samples("duplicate", duplicates);
  return { accepted, duplicates };
}
