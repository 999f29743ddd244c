// Adding or removing one label on many nodes at once (the node list's bulk action). One transaction;
// each node that actually changes gets its own node.update audit entry, like a single PATCH would.
import { lockNodeRow, updateNodeRow } from "../db/nodes.ts";
import { recordAudit } from "./audit.ts";
import type { CoreDeps } from "./deps.ts";
import { type ErrorDetail, validationFailed } from "./errors.ts";
import * as fields from "./fields.ts";
import type { Actor } from "./principal.ts";

export const BULK_MAX_NODES = 500;

export type LabelChange = { op: "add"; key: string; value: string } | { op: "remove"; key: string };

export function labelChangeProblems(nodeIds: string[], change: LabelChange): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  if (nodeIds.length === 0) problems.push({ field: "id", message: "select at least one node" });
  if (nodeIds.length > BULK_MAX_NODES) {
    problems.push({ field: "id", message: `at most ${BULK_MAX_NODES} nodes at once` });
  }
  const keyProblem = fields.problemWith(fields.labelKey, change.key);
  if (keyProblem) problems.push({ field: "key", message: keyProblem });
  const valueProblem = change.op === "add" ? fields.problemWith(fields.labelValue, change.value) : undefined;
  if (valueProblem) problems.push({ field: "value", message: valueProblem });
  return problems;
}

/** Applies the change to every listed node; returns how many changed. 422 naming the field when the
 * input is bad or a node would exceed MAX_LABELS; unknown ids are skipped (deleted meanwhile). */
export async function changeNodeLabels(
  deps: CoreDeps,
  actor: Actor,
  nodeIds: string[],
  change: LabelChange,
): Promise<{ changed: number }> {
  const ids = [...new Set(nodeIds)];
  const problems = labelChangeProblems(ids, change);
  if (problems.length > 0) throw validationFailed("label change refused", problems);
  return await deps.db.transaction(async (tx) => {
    let changed = 0;
    const now = deps.clock.now();
    for (const id of ids.sort()) { // a fixed lock order keeps two bulk changes from deadlocking
      const node = await lockNodeRow(tx, id);
      if (!node) continue;
      const labels = { ...node.labels };
      if (change.op === "add") {
        if (labels[change.key] === change.value) continue;
        labels[change.key] = change.value;
        if (Object.keys(labels).length > fields.MAX_LABELS) {
          throw validationFailed(`node ${node.name} would have more than ${fields.MAX_LABELS} labels`, [
            { field: "key", message: `node ${node.name} already has ${fields.MAX_LABELS} labels` },
          ]);
        }
      } else {
        if (!(change.key in labels)) continue;
        delete labels[change.key];
      }
      await updateNodeRow(tx, id, { labels }, now);
      await recordAudit(deps, tx, {
        principal: actor.principal,
        action: "node.update",
        targetType: "node",
        targetId: id,
        details: { name: node.name, before: { labels: node.labels }, after: { labels }, bulk: true },
        address: actor.address,
      });
      changed++;
    }
    return { changed };
  });
}
