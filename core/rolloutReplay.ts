// What-if replay of a fleet-wide change (issue 12, part 3 applied to part 1): the change is planned as for
// a rollout (core/rollouts.ts planChange), then the first `nodes` included nodes' new configs are replayed
// over their recorded metrics (core/replay.ts replayConfig, the one scaling rule) and summed up against
// their current configs. Reads only.
import type { CoreDeps } from "./deps.ts";
import {
  formatDuration,
  parseReplayWindow,
  replayConfig,
  type ReplayResult,
  type ReplayWindow,
} from "./replay.ts";
import { REPLAY_WINDOWS } from "./replay.ts";
import { parseConfigInput } from "./configDocument.ts";
import { validationFailed } from "./errors.ts";
import { type ChangeSpec, planChange } from "./rollouts.ts";

export const CHANGE_REPLAY_MAX_NODES = 20;
export const CHANGE_REPLAY_DEFAULT_NODES = 5;

export interface ChangeReplayTotals {
  scale_ups: number;
  scale_downs: number;
  above_max_s: number;
  instance_hours: number;
}

export interface ChangeReplayNode {
  node_id: string;
  name: string;
  verdict: string;
  /** Why nothing was replayed for this node (no metrics in the window); null otherwise. */
  reason: string | null;
  proposed: ChangeReplayTotals;
  /** The node's current config on the same pools; null when some pool has none to compare with. */
  current: ChangeReplayTotals | null;
}

export interface ChangeReplay {
  window: ReplayWindow;
  /** Nodes the change would include, and how many of them were replayed (the first ones, by name). */
  included: number;
  replayed: number;
  nodes: ChangeReplayNode[];
  proposed: ChangeReplayTotals;
  current: ChangeReplayTotals | null;
  verdict: string;
  /** The full results, for charts (not in the API answer). */
  results: ReplayResult[];
}

const zero = (): ChangeReplayTotals => ({ scale_ups: 0, scale_downs: 0, above_max_s: 0, instance_hours: 0 });

function add(total: ChangeReplayTotals, f: ChangeReplayTotals): void {
  total.scale_ups += f.scale_ups;
  total.scale_downs += f.scale_downs;
  total.above_max_s += f.above_max_s;
  total.instance_hours += f.instance_hours;
}

/** Replays a change on its first `nodes` included nodes. 422 naming the field for a bad spec, window or
 * node count (as planChange, "window", "nodes"). */
export async function replayChange(
  deps: Pick<CoreDeps, "db" | "clock" | "settings">,
  spec: ChangeSpec,
  options: { window?: unknown; nodes?: number } = {},
): Promise<ChangeReplay> {
  const window = parseReplayWindow(options.window ?? "24h");
  const count = options.nodes ?? CHANGE_REPLAY_DEFAULT_NODES;
  if (!Number.isInteger(count) || count < 1 || count > CHANGE_REPLAY_MAX_NODES) {
    throw validationFailed(`nodes must be 1..${CHANGE_REPLAY_MAX_NODES}`, [
      { field: "nodes", message: `must be a whole number of 1..${CHANGE_REPLAY_MAX_NODES}` },
    ]);
  }
  const plan = await planChange(deps, spec);
  const included = plan.nodes.filter((node) => node.included);
  const results: ReplayResult[] = [];
  const nodes: ChangeReplayNode[] = [];
  const proposed = zero();
  let current: ChangeReplayTotals | null = zero();
  for (const node of included.slice(0, count)) {
    const parsed = parseConfigInput(node.targetText!);
    if (!parsed.ok) continue;
    const result = await replayConfig(deps, { nodeId: node.node_id, document: parsed.body, window });
    results.push(result);
    const mine = zero();
    let theirs: ChangeReplayTotals | null = zero();
    for (const pool of result.pools) {
      add(mine, pool.proposed.simulated);
      if (pool.current && theirs) add(theirs, pool.current.simulated);
      else theirs = null;
    }
    add(proposed, mine);
    if (theirs && current) add(current, theirs);
    else if (result.pools.length) current = null;
    nodes.push({
      node_id: node.node_id,
      name: node.name,
      verdict: result.verdict,
      reason: result.reason,
      proposed: mine,
      current: theirs,
    });
  }
  const withData = nodes.filter((node) => node.reason === null).length;
  return {
    window,
    included: included.length,
    replayed: nodes.length,
    nodes,
    proposed,
    current: withData ? current : null,
    verdict: verdictOf(window, nodes.length, withData, included.length, proposed, withData ? current : null),
    results,
  };
}

function verdictOf(
  window: ReplayWindow,
  replayed: number,
  withData: number,
  included: number,
  proposed: ChangeReplayTotals,
  current: ChangeReplayTotals | null,
): string {
  const label = REPLAY_WINDOWS[window].label;
  if (included === 0) return "No node would get a changed config: nothing to replay.";
  if (withData === 0) return `None of the ${replayed} replayed nodes has metrics in the last ${label}.`;
  const scope = `${withData} of the ${included} nodes${
    withData < replayed ? ` (${replayed - withData} without metrics)` : ""
  }`;
  const moves = proposed.scale_ups + proposed.scale_downs;
  if (!current) {
    return `Over the last ${label}, on ${scope}: ${moves} scaling actions and ${
      formatDuration(proposed.above_max_s)
    } above the maxima with the change.`;
  }
  const before = current.scale_ups + current.scale_downs;
  const worse = proposed.above_max_s > current.above_max_s * 1.1 + 300 || moves > before * 1.5 + 2;
  return `${
    worse ? "Riskier" : "No riskier"
  } than today over the last ${label}, on ${scope}: ${moves} scaling ` +
    `actions (current configs: ${before}), ${
      formatDuration(proposed.above_max_s)
    } above the maxima (current: ` +
    `${formatDuration(current.above_max_s)}).`;
}
