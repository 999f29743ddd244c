// Every instance pool of the fleet (the console's Pools page): pool, region, node, size and limits,
// latest figures, last scaling event. Filterable by text, region and node status; offset pages.
import { type FleetPoolRow, listFleetPoolRows, listRegions } from "../db/pools.ts";
import type { CoreDeps } from "./deps.ts";
import type { PoolView } from "./nodes.ts";
import { validationFailed } from "./errors.ts";
import { type NodeStatus, nodeStatus, onlineSince } from "./nodeStatus.ts";

export const POOL_PAGE_SIZE = 50;

export interface FleetPoolParams {
  q?: string;
  region?: string;
  node_status?: NodeStatus;
  page?: number;
}

/** A pool as the node detail shows it (core/nodes.ts PoolView), plus its node and last scaling event. */
export interface FleetPoolView extends Omit<PoolView, "compartment_id"> {
  last_scaled_at: string | null;
  node: { id: string; name: string; status: NodeStatus };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function toView(row: FleetPoolRow, now: Date, offlineAfterS: number): FleetPoolView {
  return {
    instance_pool_id: row.poolOcid,
    display_name: row.displayName,
    region: row.region ?? row.nodeRegion,
    current_size: row.currentSize,
    min_size: row.minSize,
    max_size: row.maxSize,
    last_cpu_util: row.lastCpuUtil,
    last_memory_util: row.lastMemoryUtil,
    last_metrics_at: iso(row.lastMetricsAt),
    last_scaled_at: iso(row.lastScaledAt),
    node: { id: row.nodeId, name: row.nodeName, status: nodeStatus(row, now, offlineAfterS) },
  };
}

export async function listFleetPools(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  params: FleetPoolParams,
): Promise<{ items: FleetPoolView[]; page: number; has_more: boolean }> {
  const page = params.page ?? 1;
  if (!Number.isInteger(page) || page < 1 || page > 100_000) {
    throw validationFailed("invalid query: page", [{
      field: "page",
      message: "a page number from 1",
      location: "query",
    }]);
  }
  const now = deps.clock.now();
  const rows = await listFleetPoolRows(deps.db, {
    q: params.q?.trim() || undefined,
    region: params.region || undefined,
    nodeStatus: params.node_status,
    onlineSince: onlineSince(now, deps.settings.OFFLINE_AFTER_S),
    offset: (page - 1) * POOL_PAGE_SIZE,
    limit: POOL_PAGE_SIZE,
  });
  return {
    items: rows.slice(0, POOL_PAGE_SIZE).map((row) => toView(row, now, deps.settings.OFFLINE_AFTER_S)),
    page,
    has_more: rows.length > POOL_PAGE_SIZE,
  };
}

/** Regions of active nodes, for filter menus. */
export function fleetRegions(deps: Pick<CoreDeps, "db">): Promise<string[]> {
  return listRegions(deps.db);
}
