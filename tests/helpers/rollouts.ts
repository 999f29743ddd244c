// A small fleet for rollout tests: nodes with labels, a node token, a commented config.yaml (version 1,
// acked) and a fresh heartbeat; and the agent's side (ack, heartbeat, scaling events) without round trips
// beyond the ack route.
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { nodes } from "../../db/schema.ts";
import type { TestApp } from "./app.ts";
import { createApiKeyWithRole } from "./auth.ts";
import { insertEvents, insertNode, insertPool, newNodeToken, poolOcid } from "./fixtures.ts";

export interface FleetNode {
  id: string;
  name: string;
  token: string;
  poolRowId: number;
}

export function nodeConfigYaml(name: string, region: string): string {
  return `# ${name}: managed by the platform team
pools:
  - instance_pool_id: ${poolOcid(name.replace(/[^a-z0-9]/g, ""))}
    compartment_id: ocid1.compartment.oc1..aaaatest
    region: ${region} # where it runs
    cpu_threshold:
      min: 30
      max: 75 # scale up above this
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
`;
}

/** `count` nodes named `<prefix>-01`.. with labels, online, each on version 1 of its config (acked). */
export async function createFleet(
  ctx: TestApp,
  count: number,
  options: { prefix?: string; labels?: Record<string, string>; region?: string } = {},
): Promise<FleetNode[]> {
  const operator = (await createApiKeyWithRole(ctx, "operator")).token;
  const fleet: FleetNode[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `${options.prefix ?? "n"}-${String(i).padStart(2, "0")}`;
    const { token, tokenHash } = await newNodeToken(ctx);
    const region = options.region ?? "eu-frankfurt-1";
    const id = await insertNode(ctx, {
      name,
      region,
      labels: options.labels ?? { env: "staging" },
      tokenHash,
      lastHeartbeatAt: ctx.clock.now(),
    });
    const poolRowId = await insertPool(ctx, id, poolOcid(name.replace(/[^a-z0-9]/g, "")));
    const res = await ctx.call("POST", `/api/v1/nodes/${id}/configs`, {
      token: operator,
      body: nodeConfigYaml(name, region),
      headers: { "content-type": "application/yaml" },
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    const { hash } = JSON.parse(text);
    const node = { id, name, token, poolRowId };
    await ack(ctx, node, hash);
    fleet.push(node);
  }
  return fleet;
}

/** The node acks `hash` (its desired one when omitted) as applied, or as failed with `error`. */
export async function ack(ctx: TestApp, node: FleetNode, hash?: string, error?: string): Promise<void> {
  const desired = hash ?? (await ctx.deps.db.select({ h: nodes.desiredHash }).from(nodes)
    .where(eq(nodes.id, node.id)))[0].h!;
  const res = await ctx.call("POST", `/api/v1/nodes/${node.id}/config/ack`, {
    token: node.token,
    json: error ? { hash: desired, status: "failed", error } : { hash: desired, status: "applied" },
  });
  assert.equal(res.status, 200, await res.text());
}

/** Every listed node heartbeats now (by the test clock). */
export async function heartbeat(ctx: TestApp, fleet: FleetNode[]): Promise<void> {
  for (const node of fleet) {
    await ctx.deps.db.update(nodes).set({ lastHeartbeatAt: ctx.clock.now() }).where(eq(nodes.id, node.id));
  }
}

/** `n` scaling events of the node's pool, one a second from now. */
export async function scalingStorm(ctx: TestApp, node: FleetNode, n: number): Promise<void> {
  const start = ctx.clock.now().getTime();
  await insertEvents(
    ctx,
    node.id,
    node.poolRowId,
    Array.from({ length: n }, (_, i) => ({
      ts: new Date(start + i * 1000),
      direction: i % 2 ? "DOWN" as const : "UP" as const,
    })),
  );
}
