// The database stalls (packets black-holed, not refused): requests that need it answer 503
// database_unavailable with Retry-After within a bounded time instead of hanging, liveness stays up,
// readiness says 503, and the pool recovers by itself when the network does.
import assert from "node:assert/strict";
import { createApp } from "../app.ts";
import { ManualClock } from "../core/clock.ts";
import { createMemoryLogger } from "../core/logger.ts";
import { createDatabase } from "../db/client.ts";
import { createTestDatabase, json, testSettings } from "./helpers/app.ts";
import { expectError } from "./helpers/assertions.ts";
import { startTcpProxy } from "./helpers/tcpProxy.ts";
import { createApiKey } from "../core/apiKeys.ts";
import { TEST_SETUP } from "./helpers/auth.ts";

const QUERY_TIMEOUT_MS = 400;
/** Far above the setting, far below a hang: a request still waiting this long is hanging. */
const HANG_MS = 15 * QUERY_TIMEOUT_MS;

/** The response, or a failure saying the request hung. */
async function answeredWithin(request: Promise<Response> | Response, ms: number): Promise<Response> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: the request hangs`)), ms);
  });
  try {
    return await Promise.race([Promise.resolve(request), hung]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("database stall: bounded 503 with Retry-After, readiness 503, recovery", async (t) => {
  const database = await createTestDatabase("db_stall");
  const proxy = startTcpProxy(database.settings.database.host, database.settings.database.port);
  const settings = testSettings(database.name, { DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS) });
  const throughProxy = createDatabase(
    { ...settings.database, host: "127.0.0.1", port: proxy.port },
    3,
    { queryTimeoutMs: settings.DB_QUERY_TIMEOUT_MS },
  );
  const deps = { ...throughProxy, settings, clock: new ManualClock(), logger: createMemoryLogger() };
  const { app, close } = createApp(deps);
  const { key } = await createApiKey(deps, { principal: TEST_SETUP }, { name: "reader", role: "viewer" });
  const listNodes = () => app.request("/api/v1/nodes", { headers: { authorization: `Bearer ${key}` } });
  try {
    await t.step("answers while the database does", async () => {
      const res = await listNodes();
      assert.equal(res.status, 200);
      await res.body?.cancel();
    });

    await t.step(
      "stalled: more requests than connections, each a 503 with Retry-After, none hangs",
      async () => {
        proxy.stall();
        const requests = [
          ...Array.from({ length: 6 }, () => listNodes()),
          app.request("/api/v1/auth/login", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ username: "anyone", password: "some password" }),
          }),
        ];
        for (const request of requests) {
          const res = await answeredWithin(request, HANG_MS);
          assert.ok(Number(res.headers.get("retry-after")) > 0, "Retry-After");
          await expectError(res, 503, "database_unavailable");
        }
      },
    );

    await t.step("stalled: liveness 200, readiness 503 naming the database", async () => {
      const live = await answeredWithin(app.request("/healthz"), HANG_MS);
      assert.equal(live.status, 200);
      await live.body?.cancel();
      const ready = await answeredWithin(app.request("/readyz"), HANG_MS);
      assert.equal(ready.status, 503);
      assert.equal((await json<{ checks: { database: string } }>(ready)).checks.database, "unreachable");
    });

    await t.step("restored: the same requests succeed again, no restart", async () => {
      proxy.restore();
      let status = 0;
      for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
        const res = await answeredWithin(listNodes(), HANG_MS);
        status = res.status;
        await res.body?.cancel();
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(status, 200);
      const ready = await app.request("/readyz");
      assert.equal(ready.status, 200);
      await ready.body?.cancel();
    });
  } finally {
    proxy.restore();
    await close();
    await throughProxy.pool.end();
    await proxy.close();
    await database.drop();
  }
});
