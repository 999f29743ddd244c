// Formatting for templates: times relative to the request's clock, numbers, percentages, and the words
// and icons of node and config states (status is never shown by colour alone).
export interface Badge {
  /** CSS modifier: ok | warn | bad | muted | info */
  tone: string;
  icon: string;
  label: string;
}

const NODE_STATUS: Record<string, Badge> = {
  online: { tone: "ok", icon: "●", label: "Online" },
  offline: { tone: "bad", icon: "✕", label: "Offline" },
  never_seen: { tone: "warn", icon: "?", label: "Never seen" },
  decommissioned: { tone: "muted", icon: "⊘", label: "Decommissioned" },
};

const CONFIG_STATE: Record<string, Badge> = {
  in_sync: { tone: "ok", icon: "✓", label: "In sync" },
  pending: { tone: "info", icon: "…", label: "Pending" },
  failed: { tone: "bad", icon: "✕", label: "Failed" },
  drifted: { tone: "warn", icon: "≠", label: "Drifted" },
};

const ROLLOUT_STATUS: Record<string, Badge> = {
  running: { tone: "info", icon: "▶", label: "Running" },
  paused: { tone: "warn", icon: "‖", label: "Paused" },
  completed: { tone: "ok", icon: "✓", label: "Completed" },
  aborted: { tone: "muted", icon: "⊘", label: "Aborted" },
};

const ROLLOUT_NODE_STATE: Record<string, Badge> = {
  waiting: { tone: "muted", icon: "·", label: "Waiting" },
  pending: { tone: "info", icon: "…", label: "Sent" },
  applied: { tone: "info", icon: "◔", label: "Baking" },
  baked: { tone: "ok", icon: "✓", label: "Done" },
  failed: { tone: "bad", icon: "✕", label: "Failed" },
  skipped: { tone: "warn", icon: "↷", label: "Skipped" },
  reverted: { tone: "muted", icon: "↩", label: "Reverted" },
  cancelled: { tone: "muted", icon: "⊘", label: "Not sent" },
};

const WAVE_STATUS: Record<string, Badge> = {
  waiting: { tone: "muted", icon: "·", label: "Waiting" },
  in_progress: { tone: "info", icon: "◔", label: "In progress" },
  done: { tone: "ok", icon: "✓", label: "Done" },
  halted: { tone: "bad", icon: "✕", label: "Halted" },
};

export function createFormat(now: Date) {
  const nowMs = now.getTime();
  // "3 h 5 min": a span of seconds in its two largest units; "just now" under 5 s.
  const span = (s: number): string =>
    s < 5
      ? "just now"
      : s < 60
      ? `${s} s`
      : s < 3600
      ? `${Math.floor(s / 60)} min`
      : s < 86_400
      ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
      : `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
  const ago = (iso: string | Date | null | undefined, never = "never"): string => {
    if (!iso) return never;
    const ms = nowMs - new Date(iso).getTime();
    const future = ms < 0;
    const text = span(Math.round(Math.abs(ms) / 1000));
    if (text === "just now") return text;
    return future ? `in ${text}` : `${text} ago`;
  };
  return {
    now: now.toISOString(),
    ago,
    /** A duration in seconds: "3 h 5 min". */
    duration: (seconds: number | null | undefined): string =>
      seconds === null || seconds === undefined ? "—" : span(Math.round(seconds)),
    /** "2026-06-01 12:00 UTC" */
    time: (iso: string | Date | null | undefined, none = "—"): string =>
      iso ? new Date(iso).toISOString().slice(0, 16).replace("T", " ") + " UTC" : none,
    iso: (value: string | Date | null | undefined): string => (value ? new Date(value).toISOString() : ""),
    pct: (value: number | null | undefined): string =>
      value === null || value === undefined ? "—" : `${value.toFixed(value >= 10 ? 0 : 1)} %`,
    num: (value: number | null | undefined): string =>
      value === null || value === undefined ? "—" : value.toLocaleString("en-US"),
    status: (status: string): Badge => NODE_STATUS[status] ?? { tone: "muted", icon: "·", label: status },
    config: (state: string): Badge => CONFIG_STATE[state] ?? { tone: "muted", icon: "·", label: state },
    rollout: (status: string): Badge => ROLLOUT_STATUS[status] ?? { tone: "muted", icon: "·", label: status },
    rolloutNode: (state: string): Badge =>
      ROLLOUT_NODE_STATE[state] ?? { tone: "muted", icon: "·", label: state },
    wave: (status: string): Badge => WAVE_STATUS[status] ?? { tone: "muted", icon: "·", label: status },
    /** Shortens long OCIDs for tables: keeps the kind and the tail ("ocid1.instancepool…a1b2c3"). */
    ocid: (ocid: string): string => {
      if (ocid.length <= 36) return ocid;
      const parts = ocid.split(".");
      return `${parts.slice(0, 2).join(".")}…${ocid.slice(-8)}`;
    },
    plural: (n: number, one: string, many = `${one}s`) =>
      `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`,
  };
}

export type Format = ReturnType<typeof createFormat>;
