// Node tokens are checked from each replica's memory (core/nodeAuthCache.ts) and heartbeats are kept in
// memory and written every HEARTBEAT_FLUSH_MS (core/heartbeats.ts). Two real server processes on one
// database: a token rotated, a node decommissioned or deleted through one replica is refused by the other
// once it has polled (the test waits for that replica's polls to move on, read from its /metrics, rather
// than for a time); a heartbeat kept in memory is written on SIGTERM.
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { createApiKey } from "../core/apiKeys.ts";
import { systemClock } from "../core/clock.ts";
import type { CoreDeps } from "../core/deps.ts";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { createLogger } from "../core/logger.ts";
import { createTestDatabase } from "./helpers/app.ts";
import { databaseEnv, freePort, spawnServe, untilReady } from "./helpers/cli.ts";

const SYSTEM = { principal: { kind: "system" as const, name: "test" } };
const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaatokencachepool";

interface Replica {
  base: string;
  child: Deno.ChildProcess;
  output: Promise<string>;
}

async function startReplica(database: string, extra: Record<string, string> = {}): Promise<Replica> {
  const port = freePort();
  const { child, stdout, stderr } = spawnServe(port, {
    ...databaseEnv(database, {
      ENVIRONMENT: "test",
      LOG_LEVEL: "warn",
      JOBS_ENABLED: "false",
      CONFIG_POLL_MS: "200",
      ...extra,
    }),
  }, ["--unstable-no-legacy-abort"]);
  const output = Promise.all([stdout, stderr]).then(([out, err]) => out + err);
  if (!await untilReady(port)) {
    child.kill("SIGKILL");
    throw new Error(`replica did not become ready: ${await output}`);
  }
  return { base: `http://127.0.0.1:${port}`, child, output };
}

async function stop(replica: Replica): Promise<void> {
  try {
    replica.child.kill("SIGTERM");
  } catch { /* already stopped */ }
  await replica.child.status;
  await replica.output;
}

/** A counter of the replica's /metrics (summed over the series matching `labels`). */
async function counter(replica: Replica, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${replica.base}/metrics`);
  const families = parsePrometheusTextFormat(await res.text()) as {
    name: string;
    metrics: { value: string; labels?: Record<string, string> }[];
  }[];
  const family = families.find((f) => f.name === name);
  assert.ok(family, `${name} exported`);
  return family.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    .reduce((sum, m) => sum + Number(m.value), 0);
}

/** Until the replica has finished a poll that started after this call (its poll count moved by two). */
async function afterNextPoll(replica: Replica): Promise<void> {
  const start = await counter(replica, "autoscaler_central_config_watch_polls_total");
  for (let i = 0; i < 600; i++) {
    if (await counter(replica, "autoscaler_central_config_watch_polls_total") >= start + 2) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("the replica stopped polling");
}

Deno.test("node tokens from memory: rotation, decommission and delete reach the other replica by its poll; heartbeats kept in memory are written at SIGTERM", async (t) => {
  const database = await createTestDatabase("token_cache");
  const deps: CoreDeps = {
    db: database.db,
    pool: database.pool,
    settings: database.settings,
    clock: systemClock,
    logger: createLogger("error", () => {}),
  };
  const replicas: Replica[] = [];
  try {
    const { token: enrollment } = await createEnrollmentToken(deps, SYSTEM, { name: "cache" });
    const { key: admin } = await createApiKey(deps, SYSTEM, { name: "admin", role: "admin" });
    const [a, b] = await Promise.all([startReplica(database.name), startReplica(database.name)]);
    replicas.push(a, b);

    const register = async (replica: Replica, name: string, nodeToken?: string) => {
      const res = await fetch(`${replica.base}/api/v1/register`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(nodeToken ? { authorization: `Bearer ${nodeToken}` } : {}),
        },
        body: JSON.stringify({
          ...(nodeToken ? {} : { enrollment_token: enrollment }),
          name,
          hostname: `${name}.test`,
          pools: [{ instance_pool_id: POOL, current_size: 1 }],
        }),
      });
      const body = await res.json();
      assert.ok(res.status === 200 || res.status === 201, JSON.stringify(body));
      return body as { node_id: string; node_token: string };
    };
    const beat = async (replica: Replica, nodeId: string, token: string, uptime = 1) => {
      const res = await fetch(`${replica.base}/api/v1/nodes/${nodeId}/heartbeat`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ uptime_s: uptime, pools: [{ instance_pool_id: POOL, instance_count: 2 }] }),
      });
      const body = await res.json();
      return { status: res.status, code: body.error?.code as string | undefined };
    };
    const operator = (replica: Replica, method: string, path: string) =>
      fetch(`${replica.base}${path}`, { method, headers: { authorization: `Bearer ${admin}` } })
        .then(async (res) => {
          await res.body?.cancel();
          return res.status;
        });

    const rotating = await register(a, "cache-rotating");
    const retiring = await register(a, "cache-retiring");
    const deleted = await register(a, "cache-deleted");
    // Never changed: B keeps it in memory, so B keeps polling whatever happens to the others.
    const keeper = await register(a, "cache-keeper");

    await t.step("the other replica answers from memory once it knows the token", async () => {
      for (const node of [rotating, retiring, deleted, keeper]) {
        assert.equal((await beat(b, node.node_id, node.node_token)).status, 200);
      }
      await afterNextPoll(b); // memory is trusted only while polls succeed
      const fromMemory = await counter(b, "autoscaler_central_node_token_checks_total", { source: "memory" });
      for (const node of [rotating, retiring, deleted]) {
        assert.equal((await beat(b, node.node_id, node.node_token)).status, 200);
      }
      assert.equal(
        await counter(b, "autoscaler_central_node_token_checks_total", { source: "memory" }),
        fromMemory + 3,
      );
    });

    await t.step("a token rotated on one replica is refused by the other after its next poll", async () => {
      const rotated = await register(a, "cache-rotating", rotating.node_token);
      assert.equal(rotated.node_id, rotating.node_id);
      assert.equal(
        (await beat(a, rotating.node_id, rotating.node_token)).status,
        401,
        "at once where rotated",
      );
      await afterNextPoll(b);
      assert.deepEqual(await beat(b, rotating.node_id, rotating.node_token), {
        status: 401,
        code: "unauthorized",
      });
      assert.equal((await beat(b, rotating.node_id, rotated.node_token)).status, 200);
    });

    await t.step("decommissioned: 410 on the other replica after its next poll", async () => {
      assert.equal(await operator(a, "POST", `/api/v1/nodes/${retiring.node_id}/decommission`), 200);
      await afterNextPoll(b);
      assert.deepEqual(await beat(b, retiring.node_id, retiring.node_token), {
        status: 410,
        code: "node_decommissioned",
      });
    });

    await t.step("deleted: 404 on the other replica after its next poll", async () => {
      assert.equal(await operator(a, "DELETE", `/api/v1/nodes/${deleted.node_id}`), 200);
      await afterNextPoll(b);
      assert.deepEqual(await beat(b, deleted.node_id, deleted.node_token), {
        status: 404,
        code: "not_found",
      });
    });

    await t.step("heartbeats kept in memory are written when the replica stops (SIGTERM)", async () => {
      const c = await startReplica(database.name, { HEARTBEAT_FLUSH_MS: "10000" });
      replicas.push(c);
      const node = await register(c, "cache-flushed");
      for (let uptime = 1; uptime <= 5; uptime++) {
        assert.equal((await beat(c, node.node_id, node.node_token, uptime)).status, 200);
      }
      await stop(c);
      const [rows] = await database.pool.query(
        "SELECT uptime_s, last_heartbeat_at FROM nodes WHERE id = ?",
        [node.node_id],
      );
      const row = (rows as { uptime_s: number; last_heartbeat_at: Date | null }[])[0];
      assert.equal(Number(row.uptime_s), 5, "the latest of the five");
      assert.ok(row.last_heartbeat_at, "last heartbeat written");
    });
  } finally {
    for (const replica of replicas) await stop(replica);
    await database.drop();
  }
});
