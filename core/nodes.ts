// The fleet as operators see it: node lists with filters and keyset pagination, node detail, and the
// operator changes (display name and labels, decommission, delete). Every change is audited in its
// transaction. Results are plain JSON-ready objects (snake_case, ISO times) for the API and the pages.
import { z } from "zod";
import {
  countNodesByStatus,
  decommissionNodeRow,
  type DeletedCounts,
  deleteNodeRows,
  findNodeRow,
  listNodeRows,
  listPoolRows,
  lockNodeRow,
  type NodeCursor,
  type NodeListRow,
  type NodeSortKey,
  type PoolRow,
  type SortOrder,
  type StatusCounts,
  updateNodeRow,
} from "../db/nodes.ts";
import { countEventsByDirection } from "../db/metricsQuery.ts";
import { recordAudit } from "./audit.ts";
import { cursorDate, decodeCursor, encodeCursor, invalidCursor } from "./cursor.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, notFound, validationFailed } from "./errors.ts";
import * as fields from "./fields.ts";
import { type ConfigState, type NodeStatus, nodeStatus, onlineSince } from "./nodeStatus.ts";
import type { Actor } from "./principal.ts";

export const NODE_SORT_KEYS = ["name", "last_heartbeat", "registered"] as const;
export const NODE_LIST_DEFAULT_LIMIT = 50;
export const NODE_LIST_MAX_LIMIT = 500;

export interface NodeListParams {
  status?: NodeStatus[];
  region?: string;
  /** `key:value` (exact value) or `key` (has the key); all must match. */
  label?: string[];
  q?: string;
  config_state?: ConfigState[];
  sort?: NodeSortKey;
  order?: SortOrder;
  cursor?: string;
  limit?: number;
}

export interface NodeSummary {
  id: string;
  name: string;
  display_name: string | null;
  hostname: string;
  region: string | null;
  agent_version: string | null;
  labels: Record<string, string>;
  status: NodeStatus;
  last_heartbeat_at: string | null;
  registered_at: string;
  last_address: string | null;
  reported_status: string | null;
  config: {
    state: string;
    desired_hash: string | null;
    desired_version: number | null;
    applied_hash: string | null;
    error: string | null;
  };
  pool_count: number;
}

export interface PoolView {
  instance_pool_id: string;
  display_name: string | null;
  compartment_id: string | null;
  region: string | null;
  current_size: number | null;
  min_size: number | null;
  max_size: number | null;
  last_cpu_util: number | null;
  last_memory_util: number | null;
  last_metrics_at: string | null;
}

export interface NodeDetail extends NodeSummary {
  /** What the agent says its address is (unverified); last_address is what the connection showed. */
  claimed_address: string | null;
  uptime_s: number | null;
  token_issued_at: string | null;
  decommissioned_at: string | null;
  config_acked_at: string | null;
  pools: PoolView[];
  figures: {
    instances: number;
    avg_cpu_util: number | null;
    avg_memory_util: number | null;
    max_cpu_util: number | null;
    max_memory_util: number | null;
    last_metrics_at: string | null;
    scaling_events_24h: { UP: number; DOWN: number };
  };
}

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);

/** Default direction per sort key: names A..Z, times newest first. */
export function defaultOrder(sort: NodeSortKey): SortOrder {
  return sort === "name" ? "asc" : "desc";
}

function toSummary(row: NodeListRow, now: Date, offlineAfterS: number): NodeSummary {
  return {
    id: row.id,
    name: row.name,
    display_name: row.displayName,
    hostname: row.hostname,
    region: row.region,
    agent_version: row.agentVersion,
    labels: row.labels ?? {},
    status: nodeStatus(row, now, offlineAfterS),
    last_heartbeat_at: iso(row.lastHeartbeatAt),
    registered_at: row.registeredAt.toISOString(),
    last_address: row.lastAddress,
    reported_status: row.reportedStatus,
    config: {
      state: row.configState,
      desired_hash: row.desiredHash,
      desired_version: row.desiredVersion,
      applied_hash: row.appliedHash,
      error: row.configError,
    },
    pool_count: row.poolCount,
  };
}

function toPoolView(pool: PoolRow): PoolView {
  return {
    instance_pool_id: pool.poolOcid,
    display_name: pool.displayName,
    compartment_id: pool.compartmentId,
    region: pool.region,
    current_size: pool.currentSize,
    min_size: pool.minSize,
    max_size: pool.maxSize,
    last_cpu_util: pool.lastCpuUtil,
    last_memory_util: pool.lastMemoryUtil,
    last_metrics_at: iso(pool.lastMetricsAt),
  };
}

/** `env:prod` -> {key: env, value: prod}; `env` -> has key env. 422 naming "label" when malformed. */
export function parseLabelFilters(filters: string[]): { key: string; value?: string }[] {
  return filters.map((filter, index) => {
    const colon = filter.indexOf(":");
    const key = colon < 0 ? filter : filter.slice(0, colon);
    const value = colon < 0 ? undefined : filter.slice(colon + 1);
    if (!fields.LABEL_KEY.test(key)) {
      throw validationFailed(`invalid query: label: "${filter}" is not key:value`, [{
        field: filters.length > 1 ? `label.${index}` : "label",
        message: "expected key:value (or key), key of letters, digits and . _ / - (at most 63)",
        location: "query",
      }]);
    }
    return { key, value };
  });
}

function cursorKey(row: NodeListRow, sort: NodeSortKey): string | null {
  switch (sort) {
    case "name":
      return row.name;
    case "last_heartbeat":
      return iso(row.lastHeartbeatAt);
    case "registered":
      return row.registeredAt.toISOString();
  }
}

function parseNodeCursor(cursor: string, sort: NodeSortKey, order: SortOrder): NodeCursor {
  const [cursorSort, cursorOrder, key, id] = decodeCursor(cursor);
  if (cursorSort !== sort || cursorOrder !== order) {
    throw invalidCursor(`this cursor belongs to sort=${cursorSort}&order=${cursorOrder}; repeat those`);
  }
  if (typeof id !== "string") throw invalidCursor("not a cursor this server issued");
  if (sort === "name") {
    if (typeof key !== "string") throw invalidCursor("not a cursor this server issued");
    return { key, id };
  }
  if (key === null && sort === "last_heartbeat") return { key: null, id };
  return { key: cursorDate(key), id };
}

/** One page of nodes: { items, next_cursor } (next_cursor null on the last page). */
export async function listNodes(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  params: NodeListParams,
): Promise<{ items: NodeSummary[]; next_cursor: string | null }> {
  const sort = params.sort ?? "name";
  const order = params.order ?? defaultOrder(sort);
  const limit = params.limit ?? NODE_LIST_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > NODE_LIST_MAX_LIMIT) {
    throw validationFailed(`invalid query: limit: 1..${NODE_LIST_MAX_LIMIT}`, [
      { field: "limit", message: `must be an integer in 1..${NODE_LIST_MAX_LIMIT}`, location: "query" },
    ]);
  }
  const now = deps.clock.now();
  const rows = await listNodeRows(deps.db, {
    statuses: params.status,
    onlineSince: onlineSince(now, deps.settings.OFFLINE_AFTER_S),
    region: params.region,
    labels: params.label ? parseLabelFilters(params.label) : undefined,
    q: params.q,
    configStates: params.config_state,
    sort,
    order,
    after: params.cursor ? parseNodeCursor(params.cursor, sort, order) : undefined,
    limit,
  });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map((row) => toSummary(row, now, deps.settings.OFFLINE_AFTER_S)),
    next_cursor: rows.length > limit && last
      ? encodeCursor([sort, order, cursorKey(last, sort), last.id])
      : null,
  };
}

/** The node with its pools and latest figures; 404 when unknown. */
export async function getNode(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  nodeId: string,
): Promise<NodeDetail> {
  const row = await findNodeRow(deps.db, nodeId);
  if (!row) throw notFound(`node ${nodeId}`);
  const now = deps.clock.now();
  const [pools, events] = await Promise.all([
    listPoolRows(deps.db, nodeId),
    countEventsByDirection(deps.db, { nodeId, from: new Date(now.getTime() - 86_400_000), to: now }),
  ]);
  const numbers = (pick: (p: PoolRow) => number | null) =>
    pools.map(pick).filter((v): v is number => v !== null);
  const cpu = numbers((p) => p.lastCpuUtil);
  const memory = numbers((p) => p.lastMemoryUtil);
  const average = (values: number[]) =>
    values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  const lastMetrics = pools.reduce<Date | null>(
    (latest, p) => (p.lastMetricsAt && (!latest || p.lastMetricsAt > latest) ? p.lastMetricsAt : latest),
    null,
  );
  return {
    ...toSummary(row, now, deps.settings.OFFLINE_AFTER_S),
    claimed_address: row.claimedAddress,
    uptime_s: row.uptimeS,
    token_issued_at: iso(row.tokenIssuedAt),
    decommissioned_at: iso(row.decommissionedAt),
    config_acked_at: iso(row.configAckedAt),
    pools: pools.map(toPoolView),
    figures: {
      instances: numbers((p) => p.currentSize).reduce((a, b) => a + b, 0),
      avg_cpu_util: average(cpu),
      avg_memory_util: average(memory),
      max_cpu_util: cpu.length ? Math.max(...cpu) : null,
      max_memory_util: memory.length ? Math.max(...memory) : null,
      last_metrics_at: iso(lastMetrics),
      scaling_events_24h: events,
    },
  };
}

export interface NodeUpdate {
  display_name?: string | null;
  labels?: Record<string, string>;
}

/** The rules of a node update, for the API's PATCH body and the console's form alike. */
export const nodeUpdateSchema = z.object({
  display_name: fields.displayName.nullable().optional(),
  labels: fields.labels.optional(),
});

/** Changes display name and/or labels (labels are replaced as a whole). Audited as node.update. */
export async function updateNode(
  deps: CoreDeps,
  actor: Actor,
  nodeId: string,
  update: NodeUpdate,
): Promise<NodeDetail> {
  update = fields.parseOrThrow(nodeUpdateSchema, update, "node update");
  await deps.db.transaction(async (tx) => {
    const node = await lockNodeRow(tx, nodeId);
    if (!node) throw notFound(`node ${nodeId}`);
    const before: Record<string, unknown> = {};
    const after: Record<string, unknown> = {};
    if (update.display_name !== undefined && update.display_name !== node.displayName) {
      before.display_name = node.displayName;
      after.display_name = update.display_name;
    }
    if (update.labels !== undefined && JSON.stringify(update.labels) !== JSON.stringify(node.labels)) {
      before.labels = node.labels;
      after.labels = update.labels;
    }
    if (Object.keys(after).length === 0) return; // nothing changes: no write, no audit entry
    const now = deps.clock.now();
    await updateNodeRow(tx, nodeId, {
      ...("display_name" in after ? { displayName: update.display_name } : {}),
      ...("labels" in after ? { labels: update.labels } : {}),
    }, now);
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "node.update",
      targetType: "node",
      targetId: nodeId,
      details: { name: node.name, before, after },
      address: actor.address,
    });
  });
  return await getNode(deps, nodeId);
}

/** Decommissions a node: its token stops working at once and it can no longer re-register under its name.
 * 409 already_decommissioned when it already is. */
export async function decommissionNode(deps: CoreDeps, actor: Actor, nodeId: string): Promise<NodeDetail> {
  await deps.db.transaction(async (tx) => {
    const node = await lockNodeRow(tx, nodeId);
    if (!node) throw notFound(`node ${nodeId}`);
    if (node.decommissionedAt) {
      throw new AppError(
        409,
        "already_decommissioned",
        `node ${node.name} was decommissioned at ${node.decommissionedAt.toISOString()}`,
      );
    }
    await decommissionNodeRow(tx, nodeId, deps.clock.now());
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "node.decommission",
      targetType: "node",
      targetId: nodeId,
      details: { name: node.name },
      address: actor.address,
    });
  });
  return await getNode(deps, nodeId);
}

/** Deletes the node with all its data (pools, samples, rollups, events, config versions) in one
 * transaction. The audit log keeps its history. */
export async function deleteNode(
  deps: CoreDeps,
  actor: Actor,
  nodeId: string,
): Promise<{ id: string; name: string; deleted: DeletedCounts }> {
  return await deps.db.transaction(async (tx) => {
    const node = await lockNodeRow(tx, nodeId);
    if (!node) throw notFound(`node ${nodeId}`);
    const deleted = await deleteNodeRows(tx, nodeId, deps.clock.now());
    await recordAudit(deps, tx, {
      principal: actor.principal,
      action: "node.delete",
      targetType: "node",
      targetId: nodeId,
      details: { name: node.name, deleted },
      address: actor.address,
    });
    return { id: nodeId, name: node.name, deleted };
  });
}

/** Node counts per status at the clock's now. */
export async function fleetStatusCounts(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
): Promise<StatusCounts> {
  return await countNodesByStatus(deps.db, onlineSince(deps.clock.now(), deps.settings.OFFLINE_AFTER_S));
}
