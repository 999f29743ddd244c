// The database is cut while agents send metrics, then restored: every sample answered 2xx is in the
// database afterwards, requests during the cut get a bounded 503 (no hang, no crash), and the clients'
// buffers deliver everything else once the database is back, with nothing dropped.
import assert from "node:assert/strict";
import { count, eq } from "drizzle-orm";
import { createApp } from "../app.ts";
import { CentralManagementClient, toYaml } from "../client/mod.ts";
import { ManualClock } from "../core/clock.ts";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { createMemoryLogger } from "../core/logger.ts";
import { createDatabase } from "../db/client.ts";
import { metricSamples } from "../db/schema.ts";
import { createTestDatabase } from "./helpers/app.ts";
import { TEST_SETUP } from "./helpers/auth.ts";
import { eventually } from "./helpers/server.ts";
import { startTcpProxy } from "./helpers/tcpProxy.ts";

const POOL = "ocid1.instancepool.oc1.iad.aaaaoutageload";
const CLIENTS = 4;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test({
  name: "database cut under a load of agents sending metrics: nothing acknowledged is lost",
  sanitizeResources: false, // client keep-alive sockets to the test server outlive the test's bookkeeping
  sanitizeOps: false,
  fn: async () => {
    const database = await createTestDatabase("outage_load", {
      env: { DB_QUERY_TIMEOUT_MS: "1500", HEARTBEAT_INTERVAL_S: "1" },
    });
    const proxy = startTcpProxy(database.settings.database.host, database.settings.database.port);
    const throughProxy = createDatabase(
      { ...database.settings.database, host: "127.0.0.1", port: proxy.port },
      5,
    );
    const clock = new ManualClock();
    clock.now = () => new Date(); // agents stamp samples with the real time
    const deps = { ...throughProxy, settings: database.settings, clock, logger: createMemoryLogger() };
    const { app, close } = createApp(deps);
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
    const apiUrl = `http://127.0.0.1:${server.addr.port}/api`;
    const dir = await Deno.makeTempDir({ prefix: "central-outage-load-" });
    const clients: CentralManagementClient[] = [];
    const stored = async (nodeId: string) => {
      const [row] = await database.db.select({ n: count() }).from(metricSamples)
        .where(eq(metricSamples.nodeId, nodeId));
      return Number(row.n);
    };
    try {
      const { token } = await createEnrollmentToken({
        ...database,
        settings: database.settings,
        clock,
        logger: deps.logger,
      }, {
        principal: TEST_SETUP,
      }, { name: "outage-load" });

      // A raw agent that records exactly which batches were acknowledged.
      const reg = await fetch(`${apiUrl}/v1/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ enrollment_token: token, name: "raw-agent", hostname: "raw" }),
      });
      assert.equal(reg.status, 201);
      const { node_id: rawNode, node_token: rawToken } = await reg.json();

      // Clients with their buffers.
      for (let i = 0; i < CLIENTS; i++) {
        const path = `${dir}/config-${i}.yaml`;
        await Deno.writeTextFile(path, toYaml({ pools: [] }));
        const client = new CentralManagementClient({
          centralApiUrl: apiUrl,
          localConfigPath: path,
          enrollmentToken: token,
          nodeName: `buffered-${i}`,
          hostname: "buffered",
          heartbeatIntervalMs: 200,
          flushIntervalMs: 50,
          retryBaseMs: 50,
          retryMaxMs: 400,
          configWaitS: 1,
          requestTimeoutMs: 4_000,
        });
        client.on("error", () => {}); // failures during the cut are expected
        clients.push(client);
        await client.start();
      }

      let generating = true;
      const acknowledged: number[] = []; // ts (ms) of every raw sample whose batch got a 2xx
      const refusedStatuses: number[] = [];
      let sent = 0;
      const rawLoop = (async () => {
        let ts = Date.now() - 60_000;
        while (generating) {
          const batch = Array.from({ length: 10 }, () => ({
            instance_pool_id: POOL,
            ts: new Date(ts += 7).toISOString(),
            cpu_util: 40,
            memory_util: 30,
            instance_count: 2,
          }));
          const started = performance.now();
          const res = await fetch(`${apiUrl}/v1/nodes/${rawNode}/metrics`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${rawToken}` },
            body: JSON.stringify({ samples: batch }),
          });
          await res.body?.cancel();
          if (res.ok) acknowledged.push(...batch.map((s) => Date.parse(s.ts)));
          else {
            refusedStatuses.push(res.status);
            assert.ok(performance.now() - started < 10_000, "a refusal comes in bounded time");
          }
          await sleep(30);
        }
      })();
      const clientLoop = (async () => {
        while (generating) {
          for (const client of clients) {
            client.sendMetrics({ instancePoolId: POOL, cpuUtil: 50, memoryUtil: 50, instanceCount: 2 });
          }
          sent++;
          await sleep(20);
        }
      })();

      await sleep(1_000);
      proxy.cut();
      await sleep(3_000);
      const health = await app.request("/healthz");
      assert.equal(health.status, 200, "liveness holds while the database is away");
      await health.body?.cancel();
      proxy.restore();
      await sleep(1_500);
      generating = false;
      await Promise.all([rawLoop, clientLoop]);

      assert.ok(refusedStatuses.length > 0, "some batches were refused during the cut");
      assert.ok(refusedStatuses.every((s) => s === 503), `refusals are 503: ${refusedStatuses}`);
      const [rows] = await database.pool.query(
        "SELECT COUNT(*) AS n FROM metric_samples WHERE node_id = ?",
        [rawNode],
      );
      const rawStored = Number((rows as { n: number }[])[0].n);
      assert.ok(acknowledged.length > 0);
      assert.ok(
        rawStored >= acknowledged.length,
        `${rawStored} stored < ${acknowledged.length} acknowledged`,
      );
      const [ackRows] = await database.pool.query(
        `SELECT COUNT(*) AS n FROM metric_samples WHERE node_id = ? AND ts IN (${
          acknowledged.map(() => "?").join(",")
        })`,
        [rawNode, ...acknowledged.map((ms) => new Date(ms))],
      );
      assert.equal(
        Number((ackRows as { n: number }[])[0].n),
        acknowledged.length,
        "every acknowledged sample",
      );

      for (const client of clients) {
        await eventually("buffer drained", () => client.stats.buffered === 0, 20_000);
        assert.equal(client.droppedSamples, 0);
        assert.equal(await stored(client.nodeId!), sent, "every sample the client buffered arrived once");
      }
    } finally {
      for (const client of clients) await client.stop().catch(() => {});
      await server.shutdown();
      await close();
      await throughProxy.pool.end();
      await proxy.close();
      await database.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
