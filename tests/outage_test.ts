// The database goes away while the service runs: readiness says so (503), nothing crashes, and the
// service recovers by itself when the database is back.
import assert from "node:assert/strict";
import { createApp } from "../app.ts";
import { ManualClock } from "../core/clock.ts";
import { createMemoryLogger } from "../core/logger.ts";
import { createDatabase } from "../db/client.ts";
import { createTestDatabase, json } from "./helpers/app.ts";
import { startTcpProxy } from "./helpers/tcpProxy.ts";

Deno.test("database outage: /readyz 503 while it is down, 200 again after", async (t) => {
  const database = await createTestDatabase("outage");
  const proxy = startTcpProxy(database.settings.database.host, database.settings.database.port);
  const throughProxy = createDatabase(
    { ...database.settings.database, host: "127.0.0.1", port: proxy.port },
    3,
  );
  const { app, close } = createApp({
    ...throughProxy,
    settings: database.settings,
    clock: new ManualClock(),
    logger: createMemoryLogger(),
  });
  try {
    await t.step("ready while the database answers", async () => {
      const res = await app.request("/readyz");
      assert.equal(res.status, 200);
      await res.body?.cancel();
    });

    await t.step("503 naming the database while it is cut; liveness unaffected", async () => {
      proxy.cut();
      const res = await app.request("/readyz");
      assert.equal(res.status, 503);
      const body = await json<{ checks: { database: string } }>(res);
      assert.equal(body.checks.database, "unreachable");
      const live = await app.request("/healthz");
      assert.equal(live.status, 200);
      await live.body?.cancel();
    });

    await t.step("ready again once it is back, with no restart", async () => {
      proxy.restore();
      let status = 0;
      for (let attempt = 0; attempt < 20 && status !== 200; attempt++) {
        const res = await app.request("/readyz");
        status = res.status;
        await res.body?.cancel();
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(status, 200);
    });
  } finally {
    await close();
    await throughProxy.pool.end();
    await proxy.close();
    await database.drop();
  }
});
