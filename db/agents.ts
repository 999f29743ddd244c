// What autoscalers write: registration (nodes + instance_pools), heartbeats and metric batches.
// Heartbeats and metrics are the hot paths, so they use hand-written multi-row statements over a pooled
// connection: one statement per batch, not one per row.
import { eq, inArray, sql } from "drizzle-orm";
import type { PoolConnection, ResultSetHeader, RowDataPacket } from "mysql2/promise";
import type { AuditRow } from "./audit.ts";
import type { Database, DbOrTx, Pool } from "./client.ts";
import type { NewConfigVersionRow } from "./configs.ts";
import type { EnrollmentTokenRow } from "./enrollment.ts";
import { recordNodeAuthChange } from "./nodeAuth.ts";
import { instancePools, nodes } from "./schema.ts";

// ---------------------------------------------------------------------------------------------- register

export interface NodeRegistrationRow {
  id: string;
  tokenHash: string | null;
  decommissionedAt: Date | null;
  desiredVersionId: number | null;
  registrationIdHash: string | null;
  registeredAt: Date;
  lastHeartbeatAt: Date | null;
}

/** The node of that name; with `forUpdate`, locked until the transaction ends (serializes re-registrations
 * of a name). */
export async function findNodeByName(
  db: DbOrTx,
  name: string,
  options: { forUpdate?: boolean } = {},
): Promise<NodeRegistrationRow | undefined> {
  const query = db.select({
    id: nodes.id,
    tokenHash: nodes.tokenHash,
    decommissionedAt: nodes.decommissionedAt,
    desiredVersionId: nodes.desiredVersionId,
    registrationIdHash: nodes.registrationIdHash,
    registeredAt: nodes.registeredAt,
    lastHeartbeatAt: nodes.lastHeartbeatAt,
  }).from(nodes).where(eq(nodes.name, name)).limit(1);
  const rows = options.forUpdate ? await query.for("update") : await query;
  return rows[0];
}

export type NewNodeRow = typeof nodes.$inferInsert;

export async function insertNode(db: DbOrTx, row: NewNodeRow): Promise<void> {
  await db.insert(nodes).values(row);
}

export async function updateNodeRegistration(
  db: DbOrTx,
  id: string,
  values: Partial<
    Pick<
      NewNodeRow,
      | "hostname"
      | "region"
      | "agentVersion"
      | "labels"
      | "tokenHash"
      | "tokenIssuedAt"
      | "lastAddress"
      | "claimedAddress"
      | "updatedAt"
    >
  >,
): Promise<void> {
  await db.update(nodes).set(values).where(eq(nodes.id, id));
  // A new token: replicas forget the old one at their next poll (core/nodeAuthCache.ts).
  if (values.tokenHash !== undefined) await recordNodeAuthChange(db, id, values.updatedAt ?? new Date());
}

export interface RegisteredPool {
  poolOcid: string;
  displayName: string | null;
  compartmentId: string | null;
  region: string | null;
  currentSize: number | null;
  minSize: number | null;
  maxSize: number | null;
}

/** Adds the node's pools or refreshes what the agent reported about them (absent fields keep their value). */
export async function upsertRegisteredPools(
  db: DbOrTx,
  nodeId: string,
  pools: RegisteredPool[],
  now: Date,
): Promise<void> {
  if (pools.length === 0) return;
  const keep = (column: string) => sql.raw(`COALESCE(VALUES(${column}), ${column})`);
  await db.insert(instancePools).values(pools.map((pool) => ({
    nodeId,
    ...pool,
    createdAt: now,
    updatedAt: now,
  }))).onDuplicateKeyUpdate({
    set: {
      updatedAt: sql.raw("VALUES(updated_at)"),
      ...Object.fromEntries(
        [
          ["displayName", "display_name"],
          ["compartmentId", "compartment_id"],
          ["region", "region"],
          ["currentSize", "current_size"],
          ["minSize", "min_size"],
          ["maxSize", "max_size"],
        ].map(([key, column]) => [key, keep(column)]),
      ),
    },
  });
}

// ------------------------------------------------------------------------------- registrations, batched

/** The enrollment tokens of these keyed hashes, in one statement, by hash. */
export async function findEnrollmentTokensByHashes(
  pool: Pool,
  tokenHashes: string[],
): Promise<Map<string, EnrollmentTokenRow>> {
  if (tokenHashes.length === 0) return new Map();
  const [rows] = await pool.query<(RowDataPacket & EnrollmentTokenRow)[]>(
    `SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens WHERE token_hash IN (?)`,
    [tokenHashes],
  );
  return byTokenHash(rows);
}

const TOKEN_COLUMNS = "id, name, prefix, token_hash AS tokenHash, created_by AS createdBy, " +
  "created_at AS createdAt, expires_at AS expiresAt, max_uses AS maxUses, uses, last_used_at AS lastUsedAt, " +
  "revoked_at AS revokedAt, node_id AS nodeId";

const byTokenHash = (rows: EnrollmentTokenRow[]) => new Map(rows.map((row) => [row.tokenHash, { ...row }]));

/** One new node of a batch: its row, its first config version (desired from the start) and its pools. */
export interface NewNodeWrite {
  node: NewNodeRow;
  config: NewConfigVersionRow | undefined;
  pools: RegisteredPool[];
}

/** What a batch writes, decided from what it read (RegistrationBatchState): its new nodes, the uses it
 * takes of each enrollment token, and its audit rows. */
export interface RegistrationBatchWrite {
  writes: NewNodeWrite[];
  tokenUses: { id: number; count: number }[];
  audits: AuditRow[];
  now: Date;
}

/** What a batch reads at the start of its transaction: which of its names are taken (lower-cased: the
 * column's collation ignores case, and a clash it finds otherwise fails the batch's INSERT) and its
 * enrollment tokens by hash, locked to the commit. */
export interface RegistrationBatchState {
  taken: Set<string>;
  tokens: Map<string, EnrollmentTokenRow>;
}

const NODE_COLUMNS = "id, name, hostname, region, agent_version, labels, token_hash, token_issued_at, " +
  "registration_id_hash, registered_at, last_address, claimed_address, config_state, desired_version_id, desired_hash, " +
  "desired_changed_at, created_at, updated_at";

/** A batch of registrations (core/registrations.ts) in ONE transaction sent in two round trips over `pool`,
 * a pool whose connections take several statements in one query (PoolOptions.multipleStatements). First:
 * START TRANSACTION, which of `names` are taken, and the enrollment tokens of `tokenHashes`, locked (FOR
 * UPDATE) so their uses, expiry and revocation cannot change before the commit. `plan` decides from that
 * what to write (undefined: nothing, rolled back). Then: each token's uses counted, the nodes' first config
 * versions, the nodes (each carrying its version as desired, found by a subquery: the ids of a multi-row
 * INSERT are not promised to be consecutive), their pools, the audit rows, and COMMIT. A name taken
 * meanwhile by another replica (ER_DUP_ENTRY), a deadlock or any other failure rolls all of it back.
 * Returns whether it committed. */
export async function writeRegistrationBatch(
  pool: Pool,
  names: string[],
  tokenHashes: string[],
  plan: (state: RegistrationBatchState) => Promise<RegistrationBatchWrite | undefined>,
): Promise<boolean> {
  const connection = await pool.getConnection();
  try {
    // The values are escaped into the text by mysql2 with backslashes: make sure the server reads them so
    // (a sql_mode with NO_BACKSLASH_ESCAPES would not), in the same round trip.
    const [opened] = await connection.query<RowDataPacket[][]>(
      `SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '');
       START TRANSACTION;
       SELECT name FROM nodes WHERE name IN (?);
       SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens WHERE token_hash IN (?) FOR UPDATE`,
      [names, tokenHashes.length > 0 ? tokenHashes : [""]],
    );
    const batch = await plan({
      taken: new Set((opened[2] as unknown as { name: string }[]).map((row) => row.name.toLowerCase())),
      tokens: byTokenHash(opened[3] as unknown as EnrollmentTokenRow[]),
    });
    if (!batch) {
      await connection.query("ROLLBACK");
      return false;
    }
    const { writes, tokenUses, audits, now } = batch;
    const statements: string[] = [];
    const params: unknown[] = [];
    // Checked against the rows this transaction locked (plan): no other registration can take them now.
    for (const { id, count } of tokenUses) {
      statements.push("UPDATE enrollment_tokens SET uses = uses + ?, last_used_at = ? WHERE id = ?");
      params.push(count, now, id);
    }
    const configs = writes.flatMap((w) => (w.config ? [w.config] : []));
    if (configs.length > 0) {
      statements.push(
        `INSERT INTO config_versions
           (node_id, version, body, yaml_text, hash, source, author, comment, rolled_back_from, created_at)
         VALUES ?`,
      );
      params.push(configs.map((c) => [
        c.nodeId,
        c.version,
        JSON.stringify(c.body),
        c.yamlText ?? null,
        c.hash,
        c.source,
        c.author,
        c.comment ?? null,
        c.rolledBackFrom ?? null,
        c.createdAt,
      ]));
    }
    const nodeRows = writes.map(({ node, config }) => {
      params.push(
        node.id,
        node.name,
        node.hostname,
        node.region ?? null,
        node.agentVersion ?? null,
        JSON.stringify(node.labels),
        node.tokenHash ?? null,
        node.tokenIssuedAt ?? null,
        node.registrationIdHash ?? null,
        node.registeredAt,
        node.lastAddress ?? null,
        node.claimedAddress ?? null,
        node.configState ?? "pending",
      );
      if (config) params.push(node.id, config.hash, config.createdAt);
      params.push(node.createdAt, node.updatedAt);
      return config
        ? "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " +
          "(SELECT id FROM config_versions WHERE node_id = ? AND version = 1), ?, ?, ?, ?)"
        : "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)";
    });
    statements.push(`INSERT INTO nodes (${NODE_COLUMNS}) VALUES ${nodeRows.join(", ")}`);
    const pools = writes.flatMap(({ node, pools }) =>
      pools.map((p) => [
        node.id,
        p.poolOcid,
        p.displayName,
        p.compartmentId,
        p.region,
        p.currentSize,
        p.minSize,
        p.maxSize,
        now,
        now,
      ])
    );
    if (pools.length > 0) {
      // As upsertRegisteredPools: a pool named twice in one registration keeps what its later mention says.
      const keep = (column: string) => `${column} = COALESCE(VALUES(${column}), ${column})`;
      statements.push(
        `INSERT INTO instance_pools (node_id, pool_ocid, display_name, compartment_id, region, current_size,
           min_size, max_size, created_at, updated_at)
         VALUES ?
         ON DUPLICATE KEY UPDATE updated_at = VALUES(updated_at), ${
          ["display_name", "compartment_id", "region", "current_size", "min_size", "max_size"].map(keep)
            .join(", ")
        }`,
      );
      params.push(pools);
    }
    const rows = audits;
    if (rows.length > 0) {
      statements.push(
        `INSERT INTO audit_log
           (at, actor_type, actor_id, actor_name, action, target_type, target_id, details, address)
         VALUES ?`,
      );
      params.push(rows.map((row) => [
        row.at,
        row.actorType,
        row.actorId ?? null,
        row.actorName,
        row.action,
        row.targetType ?? null,
        row.targetId ?? null,
        row.details == null ? null : JSON.stringify(row.details),
        row.address ?? null,
      ]));
    }
    // A statement that fails stops the query there, before the COMMIT: the ROLLBACK below undoes the rest.
    statements.push("COMMIT");
    await connection.query(statements.join(";\n"), params);
    return true;
  } catch (error) {
    await connection.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    connection.release();
  }
}

// --------------------------------------------------------------------------------------------- heartbeat

export interface HeartbeatWrite {
  nodeId: string;
  tokenHash: string;
  at: Date;
  /** The connection's address (or the trusted proxy's forwarded one). */
  address: string | null;
  /** The address the agent says it has (its own report, unverified). */
  claimedAddress: string | null;
  status: string | null;
  uptimeS: number | null;
  agentVersion: string | null;
  /** undefined: the agent did not say; null: it runs no config. */
  appliedHash: string | null | undefined;
  pools: { poolOcid: string; instanceCount: number }[];
}

export interface HeartbeatOutcome {
  /** False when the node is unknown, decommissioned or the token is not its own: nothing was written. */
  written: boolean;
  desiredHash: string | null;
  appliedHash: string | null;
}

interface NodeAfterHeartbeat extends RowDataPacket {
  id: string;
  token_hash: string | null;
  decommissioned_at: Date | null;
  desired_hash: string | null;
  applied_hash: string | null;
}

/** Writes a batch of heartbeats (one per node and token; the caller dedupes) in ONE multi-row UPDATE joined
 * on (id, token hash), so a heartbeat with a wrong token changes nothing, then ONE upsert of the reported
 * pool sizes joined the same way. In parallel, on a second connection, ONE SELECT tells which heartbeats
 * belong to their node and reads the desired hash (neither is changed by a heartbeat, so it does not
 * matter whether it sees the UPDATE). Two round trips per batch, however large, instead of three per
 * heartbeat. Each statement is atomic on its own; the pool sizes are separate observations, so they are
 * not tied to the node row by a transaction (that would cost two more round trips on the hot path). */
export async function writeHeartbeats(pool: Pool, batch: HeartbeatWrite[]): Promise<HeartbeatOutcome[]> {
  // Sorted by id, so concurrent batches (here and on other replicas) lock rows in the same order.
  const sorted = [...batch].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  const write = async () => {
    const params: unknown[] = [];
    for (const hb of sorted) {
      params.push(
        hb.nodeId,
        hb.tokenHash,
        hb.at,
        hb.address,
        hb.claimedAddress,
        hb.status,
        hb.uptimeS,
        hb.agentVersion,
        hb.appliedHash === undefined ? 0 : 1,
        hb.appliedHash ?? null,
      );
    }
    const derived = unionOf(
      sorted.length,
      "? AS id, ? AS token_hash, ? AS at, ? AS address, ? AS claimed_address, ? AS status, ? AS uptime_s, ? AS agent_version, " +
        "? AS applied_set, ? AS applied_hash",
    );
    // config_state is set before applied_hash and reads only v.* and columns this statement does not set,
    // so the order of assignments (which MySQL does not promise for multi-table UPDATE) cannot matter.
    // Heartbeats are written up to a second after they arrive (core/agents.ts), possibly by two replicas:
    // one older than the stored last heartbeat changes nothing, and its applied hash does not undo an ack
    // the node made after it (config_acked_at).
    await pool.query(
      `UPDATE nodes n JOIN (${derived}) v
         ON n.id = v.id AND n.token_hash = v.token_hash AND n.decommissioned_at IS NULL
            AND (n.last_heartbeat_at IS NULL OR n.last_heartbeat_at <= v.at)
       SET n.config_state = CASE
             WHEN v.applied_set = 0 OR n.desired_hash IS NULL THEN n.config_state
             WHEN n.config_acked_at > v.at THEN n.config_state
             WHEN n.desired_hash = v.applied_hash THEN 'in_sync'
             WHEN n.config_state = 'in_sync' THEN 'drifted'
             ELSE n.config_state END,
           n.applied_hash = IF(
             v.applied_set = 1 AND (n.config_acked_at IS NULL OR n.config_acked_at <= v.at),
             v.applied_hash,
             n.applied_hash
           ),
           n.last_heartbeat_at = v.at,
           n.last_address = COALESCE(v.address, n.last_address),
           n.claimed_address = COALESCE(v.claimed_address, n.claimed_address),
           n.reported_status = COALESCE(v.status, n.reported_status),
           n.uptime_s = COALESCE(v.uptime_s, n.uptime_s),
           n.agent_version = COALESCE(v.agent_version, n.agent_version),
           n.updated_at = v.at`,
      params,
    );
    const poolParams: unknown[] = [];
    let poolRows = 0;
    for (const hb of sorted) {
      for (const p of [...hb.pools].sort((a, b) => (a.poolOcid < b.poolOcid ? -1 : 1))) {
        poolParams.push(hb.nodeId, hb.tokenHash, p.poolOcid, p.instanceCount, hb.at);
        poolRows++;
      }
    }
    if (poolRows === 0) return;
    await pool.query(
      `INSERT INTO instance_pools (node_id, pool_ocid, current_size, created_at, updated_at)
       SELECT v.node_id, v.pool_ocid, v.instance_count, v.at, v.at
         FROM (${
        unionOf(poolRows, "? AS node_id, ? AS token_hash, ? AS pool_ocid, ? AS instance_count, ? AS at")
      }) v
         JOIN nodes n ON n.id = v.node_id AND n.token_hash = v.token_hash AND n.decommissioned_at IS NULL
       ON DUPLICATE KEY UPDATE current_size = VALUES(current_size), updated_at = VALUES(updated_at)`,
      poolParams,
    );
  };
  const read = async () => {
    const [rows] = await pool.query<NodeAfterHeartbeat[]>(
      "SELECT id, token_hash, decommissioned_at, desired_hash, applied_hash FROM nodes WHERE id IN (?)",
      [sorted.map((hb) => hb.nodeId)],
    );
    return rows;
  };
  const [, rows] = await Promise.all([write(), read()]);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return batch.map((hb): HeartbeatOutcome => {
    const row = byId.get(hb.nodeId);
    const written = row !== undefined && row.token_hash === hb.tokenHash && row.decommissioned_at === null;
    return {
      written,
      desiredHash: row?.desired_hash ?? null,
      appliedHash: hb.appliedHash !== undefined ? hb.appliedHash : row?.applied_hash ?? null,
    };
  });
}

/** `SELECT <first> UNION ALL SELECT ?, ?, ...` with as many rows as asked: a derived table of parameters
 * that both MySQL 8 and MariaDB accept (their VALUES-row syntaxes differ). */
function unionOf(rows: number, first: string): string {
  const placeholders = first.split("?").length - 1;
  const rest = `SELECT ${Array(placeholders).fill("?").join(", ")}`;
  return [`SELECT ${first}`, ...Array(rows - 1).fill(rest)].join(" UNION ALL ");
}

// ---------------------------------------------------------------------------------------------- metrics

/** Times in these rows are UTC text "YYYY-MM-DD HH:MM:SS.mmm" (see parseZonedTimestamp in core/fields.ts). */
export interface SampleRow {
  poolOcid: string;
  ts: string;
  cpuUtil: number;
  memoryUtil: number;
  instanceCount: number;
}

export interface ScalingEventRow {
  poolOcid: string;
  ts: string;
  direction: "UP" | "DOWN";
  fromCount: number | null;
  toCount: number | null;
  reason: string | null;
}

export interface PoolLatest {
  poolOcid: string;
  ts: string;
  cpuUtil: number;
  memoryUtil: number;
  instanceCount: number;
}

interface PoolIdRow extends RowDataPacket {
  id: number;
  pool_ocid: string;
}

/** Stores one metric batch in one transaction: pools created when unknown, ONE multi-row INSERT IGNORE of
 * the samples (the primary key (node, pool, ts) turns re-sent samples into ignored rows), ONE INSERT IGNORE
 * of the scaling events, and each pool's latest values moved forward (never back) by the newest sample. */
export async function writeMetricBatch(
  pool: Pool,
  nodeId: string,
  input: {
    samples: SampleRow[];
    events: ScalingEventRow[];
    latest: PoolLatest[];
    /** Hour starts ("YYYY-MM-DD HH:00:00.000") holding late samples, for the rollup job to recompute. */
    lateHours?: string[];
    now: Date;
  },
): Promise<{ accepted: number }> {
  return await inTransaction(pool, async (connection) => {
    // The pools first: this creates unknown ones and moves each pool's latest values forward (never back:
    // assignments in ON DUPLICATE KEY UPDATE run left to right, so last_metrics_at comes last and the
    // conditions before it still see the stored time).
    const newer = "VALUES(last_metrics_at) >= COALESCE(last_metrics_at, VALUES(last_metrics_at))";
    const latest = [...input.latest].sort((a, b) => (a.poolOcid < b.poolOcid ? -1 : 1));
    await connection.query(
      `INSERT INTO instance_pools
         (node_id, pool_ocid, last_cpu_util, last_memory_util, current_size, last_metrics_at, created_at, updated_at)
       VALUES ?
       ON DUPLICATE KEY UPDATE
         last_cpu_util = IF(${newer}, VALUES(last_cpu_util), last_cpu_util),
         last_memory_util = IF(${newer}, VALUES(last_memory_util), last_memory_util),
         current_size = IF(${newer}, VALUES(current_size), current_size),
         updated_at = VALUES(updated_at),
         last_metrics_at = IF(${newer}, VALUES(last_metrics_at), last_metrics_at)`,
      [latest.map((p) => [
        nodeId,
        p.poolOcid,
        p.cpuUtil,
        p.memoryUtil,
        p.instanceCount,
        p.ts,
        sqlTime(input.now),
        sqlTime(input.now),
      ])],
    );
    const [poolRows] = await connection.query<PoolIdRow[]>(
      "SELECT id, pool_ocid FROM instance_pools WHERE node_id = ? AND pool_ocid IN (?)",
      [nodeId, latest.map((p) => p.poolOcid)],
    );
    const poolIds = new Map(poolRows.map((row) => [row.pool_ocid, row.id]));
    // Samples and events both lead with their key columns: node_id, pool_id, ts.
    const keyedRow = (row: { poolOcid: string; ts: string }, ...columns: unknown[]) => [
      nodeId,
      poolIds.get(row.poolOcid),
      row.ts,
      ...columns,
    ];
    const [inserted] = await connection.query<ResultSetHeader>(
      "INSERT IGNORE INTO metric_samples (node_id, pool_id, ts, cpu_util, memory_util, instance_count) VALUES ?",
      [input.samples.map((s) => keyedRow(s, s.cpuUtil, s.memoryUtil, s.instanceCount))],
    );
    if (input.events.length > 0) {
      await connection.query(
        "INSERT IGNORE INTO scaling_events (node_id, pool_id, ts, direction, from_count, to_count, reason) VALUES ?",
        [input.events.map((e) => keyedRow(e, e.direction, e.fromCount, e.toCount, e.reason))],
      );
    }
    if (input.lateHours?.length) {
      // Written in the same transaction as the samples, so a crash cannot keep one without the other; the
      // mark only ever moves forward, so the job clears it only when nothing newer arrived meanwhile.
      await connection.query(
        `INSERT INTO metric_rollup_dirty (node_id, hour_start, marked_at) VALUES ?
         ON DUPLICATE KEY UPDATE marked_at = GREATEST(VALUES(marked_at), marked_at + INTERVAL 1000 MICROSECOND)`,
        [input.lateHours.map((hour) => [nodeId, hour, sqlTime(input.now)])],
      );
    }
    return { accepted: inserted.affectedRows };
  });
}

/** A UTC time as DATETIME(3) text, like the sample times. */
function sqlTime(date: Date): string {
  return date.toISOString().slice(0, 23).replace("T", " ");
}

// ------------------------------------------------------------------------------------------------ shared

async function inTransaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    try {
      const result = await work(connection);
      await connection.commit();
      return result;
    } catch (error) {
      await connection.rollback().catch(() => {});
      throw error;
    }
  } finally {
    connection.release();
  }
}

/** Creates the node's pools among `ocids` it does not have, unless that takes it past `limit`: then it
 * creates none and returns the ones beyond the limit (in the order given). Locks the node row, so
 * concurrent callers for one node take turns and cannot overshoot together. */
export async function reserveNodePools(
  db: Database,
  nodeId: string,
  ocids: string[],
  limit: number,
  now: Date,
): Promise<{ refused: Set<string> }> {
  return await db.transaction(async (tx) => {
    await tx.select({ id: nodes.id }).from(nodes).where(eq(nodes.id, nodeId)).for("update");
    const rows = await tx.select({ ocid: instancePools.poolOcid }).from(instancePools)
      .where(eq(instancePools.nodeId, nodeId));
    const existing = new Set(rows.map((row) => row.ocid));
    const fresh = [...new Set(ocids)].filter((ocid) => !existing.has(ocid));
    const room = Math.max(0, limit - existing.size);
    const refused = new Set(fresh.slice(room));
    if (refused.size === 0 && fresh.length > 0) {
      await tx.insert(instancePools).values(fresh.map((poolOcid) => ({
        nodeId,
        poolOcid,
        createdAt: now,
        updatedAt: now,
      }))).onDuplicateKeyUpdate({ set: { updatedAt: sql.raw("updated_at") } });
    }
    return { refused };
  });
}

/** The pool OCIDs of each of these nodes that has any (at most MAX_POOLS_PER_NODE each). */
export async function findPoolOcidsOfNodes(db: DbOrTx, nodeIds: string[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (nodeIds.length === 0) return found;
  const rows = await db.select({ nodeId: instancePools.nodeId, ocid: instancePools.poolOcid })
    .from(instancePools).where(inArray(instancePools.nodeId, nodeIds));
  for (const row of rows) {
    const ocids = found.get(row.nodeId);
    if (ocids) ocids.push(row.ocid);
    else found.set(row.nodeId, [row.ocid]);
  }
  return found;
}

/** The node's pool OCIDs (at most MAX_POOLS_PER_NODE of them). */
export async function listNodePoolOcids(db: DbOrTx, nodeId: string): Promise<string[]> {
  const rows = await db.select({ ocid: instancePools.poolOcid }).from(instancePools)
    .where(eq(instancePools.nodeId, nodeId));
  return rows.map((row) => row.ocid);
}

/** For tests and tools: marks a node decommissioned (the admin route for it lives elsewhere). */
export async function setNodeDecommissioned(db: Database, nodeId: string, at: Date | null): Promise<void> {
  await db.update(nodes).set({ decommissionedAt: at }).where(eq(nodes.id, nodeId));
  await recordNodeAuthChange(db, nodeId, at ?? new Date());
}
