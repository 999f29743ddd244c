// Node status is derived at read time from the clock and settings, never stored by a sweeper.
export const NODE_STATUSES = ["never_seen", "online", "offline", "decommissioned"] as const;
export type NodeStatus = typeof NODE_STATUSES[number];

export interface StatusInputs {
  lastHeartbeatAt: Date | null;
  decommissionedAt: Date | null;
}

export function nodeStatus(node: StatusInputs, now: Date, offlineAfterS: number): NodeStatus {
  if (node.decommissionedAt) return "decommissioned";
  if (!node.lastHeartbeatAt) return "never_seen";
  return now.getTime() - node.lastHeartbeatAt.getTime() <= offlineAfterS * 1000 ? "online" : "offline";
}

/** The instant before which a last heartbeat means offline (for SQL filters on status). */
export function onlineSince(now: Date, offlineAfterS: number): Date {
  return new Date(now.getTime() - offlineAfterS * 1000);
}

/** Config states: pending (desired not yet applied), in_sync, failed (agent reported failure), drifted
 * (agent runs a hash other than the desired one). */
export const CONFIG_STATES = ["pending", "in_sync", "failed", "drifted"] as const;
export type ConfigState = typeof CONFIG_STATES[number];
