// Nodes for tests that need one without going through enrollment: a node row with a fresh node token
// (only its keyed hash is stored, as register does).
import { keyedHash, newSecret, SECRET_PREFIX } from "../../core/secrets.ts";
import { setNodeDecommissioned } from "../../db/agents.ts";
import { nodes } from "../../db/schema.ts";
import type { TestApp } from "./app.ts";

export interface TestNode {
  nodeId: string;
  name: string;
  /** The plain node token (acn_...), for `ctx.call(..., { token })`. */
  token: string;
}

export async function createNodeWithToken(ctx: TestApp, name: string): Promise<TestNode> {
  const nodeId = crypto.randomUUID();
  const token = newSecret(SECRET_PREFIX.nodeToken);
  const now = ctx.clock.now();
  await ctx.deps.db.insert(nodes).values({
    id: nodeId,
    name,
    hostname: `${name}.test`,
    labels: {},
    tokenHash: await keyedHash(ctx.deps.settings.SECRET_KEY, token),
    tokenIssuedAt: now,
    registeredAt: now,
    createdAt: now,
    updatedAt: now,
  });
  return { nodeId, name, token };
}

/** Marks a node decommissioned (its routes answer 410 afterwards: this replica forgets its token at once,
 * others at their next poll, as decommissioning through the service does). */
export async function decommissionNode(ctx: TestApp, nodeId: string): Promise<void> {
  await setNodeDecommissioned(ctx.deps.db, nodeId, ctx.clock.now());
  ctx.services.nodeAuth.forget(nodeId);
}
