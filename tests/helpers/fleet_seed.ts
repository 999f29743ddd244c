// A small but varied fleet for page tests: online, offline, never-seen and decommissioned nodes, failed and
// drifted configs, pools with a day of samples and scaling events, and a node whose name and labels try
// to inject markup. Times are relative to the test's clock.
import type { TestApp } from "./app.ts";
import { sessionWithRole, type TestSession } from "./auth.ts";
import type { NodeInsert } from "../../db/nodes.ts";
import { insertEvents, insertNode, insertPool, insertSamples, poolOcid } from "./fixtures.ts";

export const HOSTILE_NAME = "<script>alert(1)</script>";
export const HOSTILE_LABELS = { team: `o"neil's <b>`, "quote.key": `"x" onmouseover="alert(2)` };

export interface SeededFleet {
  online: string;
  offline: string;
  neverSeen: string;
  decommissioned: string;
  failed: string;
  hostile: string;
  names: Record<string, string>;
}

export async function seedFleet(ctx: TestApp): Promise<SeededFleet> {
  const now = ctx.clock.now().getTime();
  const ago = (ms: number) => new Date(now - ms);
  // A node of `region` last heard from `seenAgo` ms ago (never when undefined).
  const node = (name: string, region: string, seenAgo: number | undefined, more: Partial<NodeInsert>) =>
    insertNode(ctx, {
      name,
      region,
      ...(seenAgo === undefined ? {} : { lastHeartbeatAt: ago(seenAgo) }),
      ...more,
    });
  const online = await node("web-eu-1", "eu-frankfurt-1", 5_000, {
    labels: { env: "prod" },
    configState: "in_sync",
  });
  const offline = await node("batch-us-7", "us-ashburn-1", 3_600_000, {
    labels: { env: "staging" },
    configState: "in_sync",
  });
  const neverSeen = await node("fresh-node", "us-ashburn-1", undefined, {});
  const decommissioned = await node("old-node", "us-ashburn-1", 86_400_000, {
    decommissionedAt: ago(3_600_000),
  });
  const failed = await node("api-eu-2", "eu-frankfurt-1", 10_000, {
    configState: "failed",
    configError: "cpu_threshold.max must exceed min",
  });
  const hostile = await node(HOSTILE_NAME, "eu-frankfurt-1", 2_000, {
    hostname: `"><img src=x onerror=alert(3)>`,
    labels: HOSTILE_LABELS,
    configState: "drifted",
  });
  const pool = await insertPool(ctx, online, poolOcid("webpool"), {
    displayName: "web frontends",
    region: "eu-frankfurt-1",
    currentSize: 4,
    minSize: 2,
    maxSize: 10,
    lastCpuUtil: 61.5,
    lastMemoryUtil: 40.2,
    lastMetricsAt: ago(20_000),
  });
  const batchPool = await insertPool(ctx, offline, poolOcid("batchpool"), {
    region: "us-ashburn-1",
    currentSize: 2,
    minSize: 1,
    maxSize: 5,
    lastCpuUtil: 12,
    lastMemoryUtil: 30,
    lastMetricsAt: ago(3_600_000),
  });
  const samples = [];
  for (let i = 0; i < 24 * 4; i++) {
    samples.push({
      ts: ago(i * 15 * 60_000 + 30_000),
      cpu: 40 + (i % 10),
      memory: 35,
      instances: 3 + (i % 3),
    });
  }
  await insertSamples(ctx, online, pool, samples);
  await insertSamples(ctx, offline, batchPool, samples.slice(4).map((s) => ({ ...s, instances: 2 })));
  await insertEvents(ctx, online, pool, [
    { ts: ago(2 * 3_600_000), direction: "UP", from: 3, to: 4, reason: "cpu 81% > 75%" },
    { ts: ago(5 * 3_600_000), direction: "DOWN", from: 4, to: 3, reason: `<i>quiet</i>` },
  ]);
  return {
    online,
    offline,
    neverSeen,
    decommissioned,
    failed,
    hostile,
    names: { online: "web-eu-1", offline: "batch-us-7", failed: "api-eu-2" },
  };
}

/** The seeded fleet and two users looking at it, an operator and a viewer, each logged in. */
export async function seedFleetWithSessions(
  ctx: TestApp,
): Promise<{ fleet: SeededFleet; operator: TestSession; viewer: TestSession }> {
  const fleet = await seedFleet(ctx);
  return {
    fleet,
    operator: await sessionWithRole(ctx, "operator"),
    viewer: await sessionWithRole(ctx, "viewer"),
  };
}
