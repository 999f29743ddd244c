// The MySQL schema. drizzle-kit generates db/migrations/ from this file (`deno task db:generate`).
// Only types both MySQL 8 and MariaDB 10.11 accept; JSON is kept as text we parse ourselves, because
// MariaDB stores JSON as LONGTEXT and hands it back as a string.
import {
  bigint,
  boolean,
  char,
  customType,
  datetime,
  double,
  index,
  int,
  mediumtext,
  mysqlTable,
  primaryKey,
  text,
  uniqueIndex,
  varchar,
} from "drizzle-orm/mysql-core";

/** JSON stored as LONGTEXT: identical on MySQL and MariaDB, parsed on read. */
export const jsonText = <T>(name: string) =>
  customType<{ data: T; driverData: string }>({
    dataType: () => "longtext",
    toDriver: (value) => JSON.stringify(value),
    fromDriver: (value) => (typeof value === "string" ? JSON.parse(value) : value) as T,
  })(name);

const ms = (name: string) => datetime(name, { mode: "date", fsp: 3 });

/** Actor names are copied into several tables: "node:" or "key:" before a name of up to 128 characters
 * (usernames are shorter), so every column that holds one has room for 160. */
export const ACTOR_NAME_LENGTH = 160;

export const nodes = mysqlTable("nodes", {
  id: char("id", { length: 36 }).primaryKey(),
  name: varchar("name", { length: 128 }).notNull(),
  displayName: varchar("display_name", { length: 255 }),
  hostname: varchar("hostname", { length: 255 }).notNull(),
  region: varchar("region", { length: 64 }),
  agentVersion: varchar("agent_version", { length: 64 }),
  labels: jsonText<Record<string, string>>("labels").notNull(),
  tokenHash: char("token_hash", { length: 64 }),
  tokenIssuedAt: ms("token_issued_at"),
  // The keyed hash of the registration_id the agent sent with its first registration: the same registration
  // sent again (its answer was lost) gets the node back until the node's first heartbeat (core/agents.ts).
  registrationIdHash: char("registration_id_hash", { length: 64 }),
  registeredAt: ms("registered_at").notNull(),
  lastHeartbeatAt: ms("last_heartbeat_at"),
  // The address the connection came from (the proxy's forwarded one with TRUST_PROXY); what the agent says
  // its address is goes to claimed_address, never here.
  lastAddress: varchar("last_address", { length: 64 }),
  claimedAddress: varchar("claimed_address", { length: 64 }),
  reportedStatus: varchar("reported_status", { length: 32 }),
  uptimeS: bigint("uptime_s", { mode: "number" }),
  // The desired config is a config_versions row; its hash is copied here so heartbeats and waiting
  // config pulls read one row, and desired_changed_at lets one query per replica find changed nodes.
  desiredVersionId: int("desired_version_id"),
  desiredHash: char("desired_hash", { length: 64 }),
  desiredChangedAt: ms("desired_changed_at"),
  appliedHash: char("applied_hash", { length: 64 }),
  // pending | in_sync | failed | drifted (see core/nodeStatus.ts)
  configState: varchar("config_state", { length: 16 }).notNull().default("pending"),
  configError: text("config_error"),
  configAckedAt: ms("config_acked_at"),
  decommissionedAt: ms("decommissioned_at"),
  createdAt: ms("created_at").notNull(),
  updatedAt: ms("updated_at").notNull(),
}, (t) => [
  uniqueIndex("nodes_name_uq").on(t.name),
  index("nodes_token_hash_idx").on(t.tokenHash),
  index("nodes_region_idx").on(t.region),
  index("nodes_last_heartbeat_idx").on(t.lastHeartbeatAt),
  index("nodes_config_state_idx").on(t.configState),
  index("nodes_desired_changed_idx").on(t.desiredChangedAt),
]);

export const instancePools = mysqlTable("instance_pools", {
  id: int("id").autoincrement().primaryKey(),
  nodeId: char("node_id", { length: 36 }).notNull(),
  poolOcid: varchar("pool_ocid", { length: 255 }).notNull(),
  displayName: varchar("display_name", { length: 255 }),
  compartmentId: varchar("compartment_id", { length: 255 }),
  region: varchar("region", { length: 64 }),
  currentSize: int("current_size"),
  minSize: int("min_size"),
  maxSize: int("max_size"),
  lastMetricsAt: ms("last_metrics_at"),
  lastCpuUtil: double("last_cpu_util"),
  lastMemoryUtil: double("last_memory_util"),
  createdAt: ms("created_at").notNull(),
  updatedAt: ms("updated_at").notNull(),
}, (t) => [
  uniqueIndex("instance_pools_node_ocid_uq").on(t.nodeId, t.poolOcid),
  index("instance_pools_ocid_idx").on(t.poolOcid),
]);

/** Raw samples. The primary key makes a re-sent batch idempotent (INSERT IGNORE counts duplicates). */
export const metricSamples = mysqlTable("metric_samples", {
  nodeId: char("node_id", { length: 36 }).notNull(),
  poolId: int("pool_id").notNull(),
  ts: ms("ts").notNull(),
  cpuUtil: double("cpu_util").notNull(),
  memoryUtil: double("memory_util").notNull(),
  instanceCount: int("instance_count").notNull(),
}, (t) => [
  primaryKey({ name: "metric_samples_pk", columns: [t.nodeId, t.poolId, t.ts] }),
  // Range queries always name node and pool, so the primary key serves them; ts alone is for fleet-wide
  // windows and retention. (A (pool_id, ts) index cost ingestion a third more and served no query.)
  index("metric_samples_ts_idx").on(t.ts),
]);

const rollupColumns = {
  nodeId: char("node_id", { length: 36 }).notNull(),
  poolId: int("pool_id").notNull(),
  bucketStart: ms("bucket_start").notNull(),
  samples: int("samples").notNull(),
  cpuAvg: double("cpu_avg").notNull(),
  cpuMin: double("cpu_min").notNull(),
  cpuMax: double("cpu_max").notNull(),
  memoryAvg: double("memory_avg").notNull(),
  memoryMin: double("memory_min").notNull(),
  memoryMax: double("memory_max").notNull(),
  instanceCountLast: int("instance_count_last").notNull(),
};

/** 5-minute and 1-hour rollups of metric_samples; range queries pick the coarsest that fits the step. */
export const metricRollups5m = mysqlTable("metric_rollups_5m", rollupColumns, (t) => [
  primaryKey({ name: "metric_rollups_5m_pk", columns: [t.nodeId, t.poolId, t.bucketStart] }),
  index("metric_rollups_5m_bucket_idx").on(t.bucketStart),
]);

export const metricRollups1h = mysqlTable("metric_rollups_1h", rollupColumns, (t) => [
  primaryKey({ name: "metric_rollups_1h_pk", columns: [t.nodeId, t.poolId, t.bucketStart] }),
  index("metric_rollups_1h_bucket_idx").on(t.bucketStart),
]);

/** The whole fleet per 5-minute bucket, from the 5-minute rollups of every pool: what the fleet summary and
 * the dashboard read instead of every pool's rows (one row per bucket, whatever the fleet's size). Sums, so
 * buckets add up over any range; the extremes name where they were (the sample's time is looked up in raw
 * samples while they are kept). */
export const metricRollupsFleet5m = mysqlTable("metric_rollups_fleet_5m", {
  bucketStart: ms("bucket_start").primaryKey(),
  samples: bigint("samples", { mode: "number" }).notNull(),
  /** Pools with samples in the bucket. */
  pools: int("pools").notNull(),
  cpuSum: double("cpu_sum").notNull(),
  memorySum: double("memory_sum").notNull(),
  cpuMax: double("cpu_max").notNull(),
  cpuMaxNodeId: char("cpu_max_node_id", { length: 36 }).notNull(),
  cpuMaxPoolId: int("cpu_max_pool_id").notNull(),
  memoryMax: double("memory_max").notNull(),
  memoryMaxNodeId: char("memory_max_node_id", { length: 36 }).notNull(),
  memoryMaxPoolId: int("memory_max_pool_id").notNull(),
  /** The sum over pools of each pool's last instance count in the bucket. */
  instances: bigint("instances", { mode: "number" }).notNull(),
  /** Scaling events in the bucket, by direction (what the summary counts). */
  scaleUps: int("scale_ups").notNull().default(0),
  scaleDowns: int("scale_downs").notNull().default(0),
});

export const scalingEvents = mysqlTable("scaling_events", {
  id: bigint("id", { mode: "number" }).autoincrement().primaryKey(),
  nodeId: char("node_id", { length: 36 }).notNull(),
  poolId: int("pool_id").notNull(),
  ts: ms("ts").notNull(),
  direction: varchar("direction", { length: 4 }).notNull(), // UP | DOWN
  fromCount: int("from_count"),
  toCount: int("to_count"),
  reason: varchar("reason", { length: 500 }),
}, (t) => [
  uniqueIndex("scaling_events_node_pool_ts_uq").on(t.nodeId, t.poolId, t.ts),
  index("scaling_events_ts_idx").on(t.ts),
  index("scaling_events_pool_ts_idx").on(t.poolId, t.ts),
]);

/** Immutable config versions; nodes.desired_version_id names the one a node should run. */
export const configVersions = mysqlTable("config_versions", {
  id: int("id").autoincrement().primaryKey(),
  nodeId: char("node_id", { length: 36 }).notNull(),
  version: int("version").notNull(),
  body: jsonText<Record<string, unknown>>("body").notNull(),
  // config.yaml exactly as the operator or agent wrote it (comments, key order), delivered to agents beside
  // body. Null only for versions written before this column existed: those are rendered from body.
  yamlText: mediumtext("yaml_text"),
  // sha256 of yaml_text (of canonical JSON of body for the older versions without text)
  hash: char("hash", { length: 64 }).notNull(),
  source: varchar("source", { length: 16 }).notNull(), // agent | operator | rollback
  author: varchar("author", { length: ACTOR_NAME_LENGTH }).notNull(),
  comment: varchar("comment", { length: 1000 }),
  rolledBackFrom: int("rolled_back_from"),
  createdAt: ms("created_at").notNull(),
}, (t) => [
  uniqueIndex("config_versions_node_version_uq").on(t.nodeId, t.version),
  index("config_versions_node_hash_idx").on(t.nodeId, t.hash),
]);

export const users = mysqlTable("users", {
  id: int("id").autoincrement().primaryKey(),
  username: varchar("username", { length: 64 }).notNull(),
  passwordHash: varchar("password_hash", { length: 255 }).notNull(),
  role: varchar("role", { length: 16 }).notNull(), // admin | operator | viewer
  disabled: boolean("disabled").notNull().default(false),
  lastLoginAt: ms("last_login_at"),
  passwordChangedAt: ms("password_changed_at").notNull(),
  createdAt: ms("created_at").notNull(),
  updatedAt: ms("updated_at").notNull(),
}, (t) => [uniqueIndex("users_username_uq").on(t.username)]);

/** Server-side sessions; the cookie carries a random id, the table keeps only its keyed hash. */
export const sessions = mysqlTable("sessions", {
  idHash: char("id_hash", { length: 64 }).primaryKey(),
  userId: int("user_id").notNull(),
  csrfToken: char("csrf_token", { length: 43 }).notNull(),
  address: varchar("address", { length: 64 }),
  userAgent: varchar("user_agent", { length: 255 }),
  createdAt: ms("created_at").notNull(),
  lastSeenAt: ms("last_seen_at").notNull(),
  expiresAt: ms("expires_at").notNull(),
}, (t) => [
  index("sessions_user_idx").on(t.userId),
  index("sessions_expires_idx").on(t.expiresAt),
]);

export const apiKeys = mysqlTable("api_keys", {
  id: int("id").autoincrement().primaryKey(),
  name: varchar("name", { length: 128 }).notNull(),
  prefix: varchar("prefix", { length: 16 }).notNull(),
  keyHash: char("key_hash", { length: 64 }).notNull(),
  role: varchar("role", { length: 16 }).notNull(),
  createdBy: varchar("created_by", { length: ACTOR_NAME_LENGTH }).notNull(),
  // The person answerable for the key: its creator, or the owner of the key that created it. Null for
  // keys made by the system (CLI, tests). Disabling the owner revokes the key.
  ownerUserId: int("owner_user_id"),
  createdAt: ms("created_at").notNull(),
  expiresAt: ms("expires_at"),
  lastUsedAt: ms("last_used_at"),
  revokedAt: ms("revoked_at"),
}, (t) => [
  uniqueIndex("api_keys_prefix_uq").on(t.prefix),
  uniqueIndex("api_keys_hash_uq").on(t.keyHash),
  index("api_keys_owner_idx").on(t.ownerUserId),
]);

export const enrollmentTokens = mysqlTable("enrollment_tokens", {
  id: int("id").autoincrement().primaryKey(),
  name: varchar("name", { length: 128 }).notNull(),
  prefix: varchar("prefix", { length: 16 }).notNull(),
  tokenHash: char("token_hash", { length: 64 }).notNull(),
  createdBy: varchar("created_by", { length: ACTOR_NAME_LENGTH }).notNull(),
  createdAt: ms("created_at").notNull(),
  expiresAt: ms("expires_at"),
  maxUses: int("max_uses"),
  uses: int("uses").notNull().default(0),
  lastUsedAt: ms("last_used_at"),
  revokedAt: ms("revoked_at"),
  // Set for a re-enrollment token: an operator's one-time proof that lets the agent of this node (and
  // only it) register under the node's name again and receive a new node token.
  nodeId: char("node_id", { length: 36 }),
}, (t) => [
  uniqueIndex("enrollment_tokens_hash_uq").on(t.tokenHash),
  index("enrollment_tokens_created_idx").on(t.createdAt),
]);

/** Failed logins, kept in the database so throttling holds across replicas. */
export const loginFailures = mysqlTable("login_failures", {
  id: bigint("id", { mode: "number" }).autoincrement().primaryKey(),
  username: varchar("username", { length: 64 }).notNull(),
  address: varchar("address", { length: 64 }).notNull(),
  at: ms("at").notNull(),
}, (t) => [
  index("login_failures_username_at_idx").on(t.username, t.at),
  index("login_failures_address_at_idx").on(t.address, t.at),
]);

export const auditLog = mysqlTable("audit_log", {
  id: bigint("id", { mode: "number" }).autoincrement().primaryKey(),
  at: ms("at").notNull(),
  actorType: varchar("actor_type", { length: 16 }).notNull(), // user | api_key | node | system
  actorId: varchar("actor_id", { length: 64 }),
  actorName: varchar("actor_name", { length: ACTOR_NAME_LENGTH }).notNull(),
  action: varchar("action", { length: 64 }).notNull(),
  targetType: varchar("target_type", { length: 32 }),
  targetId: varchar("target_id", { length: 64 }),
  details: jsonText<Record<string, unknown>>("details"),
  address: varchar("address", { length: 64 }),
}, (t) => [
  index("audit_log_at_idx").on(t.at),
  index("audit_log_actor_at_idx").on(t.actorName, t.at),
  index("audit_log_action_at_idx").on(t.action, t.at),
  index("audit_log_target_at_idx").on(t.targetType, t.targetId, t.at),
]);

/** One row per periodic job (core/jobs.ts): when it last ran, where it got to, so a replica that takes the
 * job over continues from the watermark instead of starting again. */
export const jobState = mysqlTable("job_state", {
  name: varchar("name", { length: 64 }).primaryKey(),
  watermark: ms("watermark"),
  owner: varchar("owner", { length: 128 }),
  startedAt: ms("started_at"),
  finishedAt: ms("finished_at"),
  lastOutcome: varchar("last_outcome", { length: 16 }),
  lastError: varchar("last_error", { length: 1000 }),
  lastDurationMs: int("last_duration_ms"),
  runs: bigint("runs", { mode: "number" }).notNull().default(0),
});

/** Hours of a node that received samples after the rollup job had passed them (agents that were cut off
 * send their buffers late); the rollup job recomputes these hours from raw samples. Written only for late
 * batches, so live ingestion pays nothing. */
export const metricRollupDirty = mysqlTable("metric_rollup_dirty", {
  nodeId: char("node_id", { length: 36 }).notNull(),
  hourStart: ms("hour_start").notNull(),
  markedAt: ms("marked_at").notNull(),
}, (t) => [primaryKey({ name: "metric_rollup_dirty_pk", columns: [t.nodeId, t.hourStart] })]);

/** One-time codes for the first-run setup page: `serve` issues one at start while no user exists and
 * prints it; any replica accepts any code still here; creating the first admin deletes them all. */
export const setupCodes = mysqlTable("setup_codes", {
  codeHash: char("code_hash", { length: 64 }).primaryKey(),
  createdAt: ms("created_at").notNull(),
  expiresAt: ms("expires_at").notNull(),
});

/** A node's credentials changed: its token rotated, it was decommissioned or deleted. Each replica keeps
 * the nodes whose token it checked lately in memory (core/nodeAuthCache.ts) and reads the rows newer than
 * its last look with the config watcher's poll, every CONFIG_POLL_MS, to forget those nodes. Rows older than
 * an hour are pruned (a replica reads back a few seconds only). */
export const nodeAuthChanges = mysqlTable("node_auth_changes", {
  id: bigint("id", { mode: "number" }).autoincrement().primaryKey(),
  nodeId: char("node_id", { length: 36 }).notNull(),
  changedAt: ms("changed_at").notNull(),
}, (t) => [index("node_auth_changes_changed_idx").on(t.changedAt)]);

/** A staged change of many nodes' configs (core/rollouts.ts): what was asked (spec), how it goes out (canary,
 * waves, bake, storm limit) and where it stands. The rollout job advances running ones, one replica at a time. */
export const rollouts = mysqlTable("rollouts", {
  id: int("id").autoincrement().primaryKey(),
  // running | paused | completed | aborted
  status: varchar("status", { length: 16 }).notNull(),
  comment: varchar("comment", { length: 1000 }),
  /** The selectors and the edit as asked (JSON), for people and the audit trail. */
  spec: jsonText<Record<string, unknown>>("spec").notNull(),
  canaryCount: int("canary_count").notNull(),
  waveSize: int("wave_size").notNull(),
  bakeS: int("bake_s").notNull(),
  maxScalingEvents: int("max_scaling_events").notNull(),
  waves: int("waves").notNull(),
  /** The wave going out (0 = canary); equals `waves` once every wave is done. */
  currentWave: int("current_wave").notNull().default(0),
  pauseReason: varchar("pause_reason", { length: 1000 }),
  createdBy: varchar("created_by", { length: ACTOR_NAME_LENGTH }).notNull(),
  createdAt: ms("created_at").notNull(),
  updatedAt: ms("updated_at").notNull(),
  finishedAt: ms("finished_at"),
}, (t) => [index("rollouts_status_idx").on(t.status), index("rollouts_created_idx").on(t.createdAt)]);

/** The nodes of a rollout, each with the config it gets (computed and checked when the rollout was created)
 * and the version it had. `active_node_id` repeats node_id while the rollout is running or paused and is
 * NULL afterwards: its unique key is what keeps a node out of two active rollouts, in the transaction. */
export const rolloutNodes = mysqlTable("rollout_nodes", {
  rolloutId: int("rollout_id").notNull(),
  nodeId: char("node_id", { length: 36 }).notNull(),
  nodeName: varchar("node_name", { length: 128 }).notNull(),
  wave: int("wave").notNull(),
  // waiting | pending | applied | baked | failed | skipped | reverted
  state: varchar("state", { length: 16 }).notNull(),
  baseVersion: int("base_version").notNull(),
  baseHash: char("base_hash", { length: 64 }).notNull(),
  targetText: mediumtext("target_text").notNull(),
  targetHash: char("target_hash", { length: 64 }).notNull(),
  targetVersion: int("target_version"),
  sentAt: ms("sent_at"),
  appliedAt: ms("applied_at"),
  error: varchar("error", { length: 1000 }),
  activeNodeId: char("active_node_id", { length: 36 }),
}, (t) => [
  primaryKey({ name: "rollout_nodes_pk", columns: [t.rolloutId, t.nodeId] }),
  uniqueIndex("rollout_nodes_active_uq").on(t.activeNodeId),
  index("rollout_nodes_node_idx").on(t.nodeId),
]);
