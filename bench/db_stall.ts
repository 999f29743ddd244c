// How long requests that need the database take to answer while it is stalled (packets black-holed
// through a proxy), with the query bound (DB_QUERY_TIMEOUT_MS) and without it (the behaviour before the
// bound). Prints figures; asserts nothing.
//   deno run -A bench/db_stall.ts [--timeout-ms 5000] [--cap-s 60] [--requests 30]
import { parseArgs } from "node:util";
import { createApp } from "../app.ts";
import { createApiKey } from "../core/apiKeys.ts";
import { ManualClock } from "../core/clock.ts";
import { createMemoryLogger } from "../core/logger.ts";
import { createDatabase } from "../db/client.ts";
import { createTestDatabase, testSettings } from "../tests/helpers/app.ts";
import { startTcpProxy } from "../tests/helpers/tcpProxy.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "timeout-ms": { type: "string", default: "5000" },
    "cap-s": { type: "string", default: "60" },
    requests: { type: "string", default: "30" },
  },
});
const capMs = Number(values["cap-s"]) * 1000;
const requestCount = Number(values.requests);

async function measure(label: string, queryTimeoutMs: number): Promise<void> {
  const database = await createTestDatabase("bench_db_stall");
  const proxy = startTcpProxy(database.settings.database.host, database.settings.database.port);
  const settings = testSettings(database.name, { DB_QUERY_TIMEOUT_MS: String(queryTimeoutMs || 5000) });
  const handle = createDatabase({ ...settings.database, host: "127.0.0.1", port: proxy.port }, 20, {
    queryTimeoutMs,
  });
  const deps = { ...handle, settings, clock: new ManualClock(), logger: createMemoryLogger() };
  const { app, close } = createApp(deps);
  const { key } = await createApiKey(deps, { principal: { kind: "system", name: "bench" } }, {
    name: "b",
    role: "viewer",
  });
  // Warm the pool so the stall catches open connections, as in a running service.
  await Promise.all(Array.from({ length: 20 }, () => handle.pool.query("SELECT 1")));
  proxy.stall();
  const started = performance.now();
  const timings = await Promise.all(Array.from({ length: requestCount }, async (_, i) => {
    const request = i % 3 === 2
      ? app.request("/api/v1/auth/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: "someone", password: "a password" }),
      })
      : app.request("/api/v1/nodes", { headers: { authorization: `Bearer ${key}` } });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const capped = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), capMs)));
    const outcome = await Promise.race([Promise.resolve(request), capped]);
    clearTimeout(timer);
    const ms = performance.now() - started;
    if (outcome === "hung") return { ms, status: "no answer" };
    await outcome.body?.cancel();
    return { ms, status: String(outcome.status) };
  }));
  const answered = timings.filter((t) => t.status !== "no answer").map((t) => t.ms).sort((a, b) => a - b);
  const statuses = Object.entries(
    timings.reduce<Record<string, number>>((acc, t) => ((acc[t.status] = (acc[t.status] ?? 0) + 1), acc), {}),
  ).map(([status, n]) => `${n}x ${status}`).join(", ");
  const pct = (p: number) =>
    answered.length
      ? `${Math.round(answered[Math.min(answered.length - 1, Math.floor(p * answered.length))])} ms`
      : "-";
  console.log(
    `${label}: ${requestCount} requests during a stall -> ${statuses}; answered p50 ${pct(0.5)}, max ${
      pct(1)
    } (cap ${capMs / 1000} s)`,
  );
  proxy.restore();
  const recoveredAt = performance.now();
  for (;;) {
    const res = await app.request("/api/v1/nodes", { headers: { authorization: `Bearer ${key}` } });
    await res.body?.cancel();
    if (res.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(
    `${label}: first 200 ${Math.round(performance.now() - recoveredAt)} ms after the network came back`,
  );
  await close();
  await handle.pool.end();
  await proxy.close();
  await database.drop();
}

await measure(`bounded (DB_QUERY_TIMEOUT_MS=${values["timeout-ms"]})`, Number(values["timeout-ms"]));
await measure("unbounded (before)", 0);
