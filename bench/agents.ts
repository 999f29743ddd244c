// Load benchmark of the autoscaler protocol against a real server process on loopback.
//
//   deno task bench [--agents N] [--seconds S] [--pulls N] [--quick]
//                   [--concurrency N] [--rate N] [--paced-rate N] [--metric-workers N] [--phases awpbcd]
//                   [--log-level L]
//                   [--profile DIR (server --cpu-prof)] [--server-log FILE] [--v8-flags F (the server's)]
//
// It creates a throwaway database, starts `main.ts serve` as a subprocess (so the peak RSS is the
// server's own), enrolls N agents over HTTP, then runs these phases:
//   a. heartbeats as fast as 64 concurrent clients can send them   -> heartbeats/s, p50/p99
//   w. the same from wrk (when installed), a load generator that leaves the CPU to the server
//   p. heartbeats paced at 5,000/s from wrk: 250 connections, each waiting 50 ms between its requests
//      (wrk's Lua delay), so the server sees a steady rate it does not set -> rate reached, p50/p99
//   b. heartbeats at a fixed 1,000/s (open loop, fetch)              -> p50/p99
//   c. metric batches of 500..1,000 samples from many agents        -> samples/s, p50/p99 per batch
//   d. 10,000 waiting config pulls (wait=60, current ETag): all held, then a new config for some nodes
//      (written by this process, i.e. as another replica would) -> wake-up latency; then SIGTERM releases
//      the rest -> release time
// and prints one table. Targets (issue 11): >= 20,000 heartbeats/s from wrk, p99 < 20 ms at 5,000/s,
// >= 100,000 samples/s, 10,000 waiting pulls in ~380 MB (1.25x bare Deno), registration >= 1,000/s.
//
// Ceilings, measured in the same run before the phases, so a noisy host shows as a noisy ceiling rather
// than as a regression: wrk on GET /healthz of the same server (no database), raw 1,000-row INSERTs into a
// scratch copy of metric_samples through mysql2 (no server), and for phase d a bare Deno.serve holding as
// many requests (bench/bare_server.ts), which for phase w also answers the same heartbeats bare. Each result is printed with its share of its ceiling and the load
// average when it was taken.
// Everything is bounded in count and time and talks to 127.0.0.1 only. The database is dropped at the end.
import { parseArgs } from "node:util";
import { setNodeConfig } from "../core/configs.ts";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { createServices } from "../core/services.ts";
import { benchDatabase, freePort, positiveFlag, serverEnv } from "./helpers.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    agents: { type: "string" },
    seconds: { type: "string" },
    pulls: { type: "string" },
    concurrency: { type: "string" },
    rate: { type: "string" },
    "paced-rate": { type: "string" },
    "metric-workers": { type: "string" },
    quick: { type: "boolean" },
    "log-level": { type: "string" },
    phases: { type: "string" },
    profile: { type: "string" },
    "server-log": { type: "string" },
    "v8-flags": { type: "string" },
  },
  strict: true,
});
const quick = args.values.quick === true;
const AGENTS = positiveFlag("agents", args.values.agents, quick ? 40 : 2000, 50_000);
const SECONDS = positiveFlag("seconds", args.values.seconds, quick ? 2 : 10, 600);
const PULLS = positiveFlag("pulls", args.values.pulls, quick ? 200 : 10_000, 30_000);
const CONCURRENCY = positiveFlag("concurrency", args.values.concurrency, 64, 2_000);
const METRIC_WORKERS = positiveFlag("metric-workers", args.values["metric-workers"], 8, 256);
const RATE = positiveFlag("rate", args.values.rate, quick ? 200 : 1000, 100_000);
const PACED_RATE = positiveFlag("paced-rate", args.values["paced-rate"], quick ? 500 : 5000, 100_000);
/** Phase p's connections: each sends, waits for the answer, then waits its turn again. */
const PACED_CONNECTIONS = quick ? 25 : 250;
const LOG_LEVEL = args.values["log-level"] ?? "info";
const PHASES = new Set((args.values.phases ?? "awpbcd").split(""));
const SECRET_KEY = "bench-secret-key-bench-secret-key-0123456789";
const ROOT = new URL("..", import.meta.url).pathname;
/** Phase b's bound on requests open at once. */
const MAX_OPEN = 512;

// ------------------------------------------------------------------------------------------------ helpers

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summarize(latencies: number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

function peakRssMb(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return Math.round(kb / 1024);
  } catch {
    return NaN;
  }
}

function rssMb(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024);
  } catch {
    return NaN;
  }
}

/** Opens `count` requests that a server holds (paced like phase d's pulls) and waits until it is quiet. */
async function holdRequests(
  url: (i: number) => string,
  count: number,
  pid: number,
  init?: (i: number) => RequestInit,
) {
  const settled: Promise<number>[] = [];
  for (let i = 0; i < count; i++) {
    settled.push(
      fetch(url(i), init?.(i)).then(async (res) => {
        await res.body?.cancel();
        return res.status;
      }).catch(() => -1),
    );
    if (i % 250 === 249) await sleep(20); // let the listener accept; no SYN storm
  }
  const quietDeadline = performance.now() + 60_000;
  for (let busy = true; busy && performance.now() < quietDeadline;) {
    const before = cpuMs(pid);
    await sleep(500);
    busy = cpuMs(pid) - before > 50; // more than 10% of a core
  }
  return settled;
}

/** Runs `use` against a bare Deno.serve (bench/bare_server.ts) in a process of its own, then stops it. */
async function withBareServer<T>(use: (base: string, pid: number) => Promise<T>): Promise<T> {
  const port = freePort();
  const bare = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("bare_server.ts", import.meta.url).pathname, String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    for (let i = 0;; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        await res.body?.cancel();
        if (res.ok) break;
      } catch { /* not listening yet */ }
      if (i > 300) throw new Error("bare server did not start within 30 s");
      await sleep(100);
    }
    return await use(`http://127.0.0.1:${port}`, bare.pid);
  } finally {
    try {
      bare.kill("SIGKILL");
    } catch { /* stopped */ }
    await bare.status;
  }
}

/** Phase d's floor: peak RSS of a bare Deno.serve holding `count` requests. */
function bareWaitersCeiling(count: number): Promise<{ idleMb: number; peakMb: number }> {
  return withBareServer(async (base, pid) => {
    const idleMb = rssMb(pid);
    const settled = await holdRequests((i) => `${base}/wait/${i}`, count, pid);
    const peakMb = peakRssMb(pid);
    Deno.kill(pid, "SIGTERM");
    await Promise.all(settled);
    return { idleMb, peakMb };
  });
}

async function raiseFileLimit(wanted: number): Promise<string> {
  try {
    const current = new TextDecoder().decode(
      (await new Deno.Command("sh", { args: ["-c", "ulimit -Sn; ulimit -Hn"], stdout: "piped" }).output())
        .stdout,
    ).trim().split("\n").map((v) => (v === "unlimited" ? Infinity : Number(v)));
    if (current[0] >= wanted) return `${current[0]} (enough)`;
    wanted = Math.min(wanted, current[1]);
    const out = await new Deno.Command("prlimit", {
      args: [`--pid=${Deno.pid}`, `--nofile=${wanted}:${wanted}`],
      stderr: "piped",
      stdout: "null",
    }).output();
    if (out.success) return `raised to ${wanted}`;
    return `could not raise (${new TextDecoder().decode(out.stderr).trim()})`;
  } catch (error) {
    return `could not raise (${(error as Error).message})`;
  }
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat. */
function cpuMs(pid: number | "self"): number {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

function mariadbPid(): number | undefined {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const comm = Deno.readTextFileSync(`/proc/${entry.name}/comm`).trim();
      if (comm === "mariadbd" || comm === "mysqld") return Number(entry.name);
    } catch { /* gone */ }
  }
  return undefined;
}

/** CPU used by the server, this client and the database during `work`, per operation. */
async function withCpu<T>(operations: () => number, work: () => Promise<T>): Promise<[T, string]> {
  const db = mariadbPid();
  const before = [cpuMs(server.pid), cpuMs("self"), db ? cpuMs(db) : NaN];
  const result = await work();
  const after = [cpuMs(server.pid), cpuMs("self"), db ? cpuMs(db) : NaN];
  const n = Math.max(1, operations());
  const per = (i: number) => ((after[i] - before[i]) / n).toFixed(3);
  return [result, `cpu ms/op: server ${per(0)}, client ${per(1)}, database ${per(2)}`];
}

interface Agent {
  id: string;
  token: string;
  pool: string;
  hash: string;
  nextTs: number;
  uptime: number;
}

const poolOcid = (i: number) => `ocid1.instancepool.oc1.iad.aaaabench${String(i).padStart(7, "0")}`;

function configFor(pool: string, max: number) {
  return {
    pools: [{
      instance_pool_id: pool,
      compartment_id: "ocid1.compartment.oc1..aaaabenchcompartment",
      region: "us-ashburn-1",
      monitoring_method: "oci",
      cpu_threshold: { min: 30, max: 75 },
      ram_threshold: { min: 20, max: 75 },
      scaling_limits: { min: 1, max },
      scheduler_max_instances: Math.min(3, max),
      schedules: [{ start_time: "05:30", end_time: "05:50" }],
    }],
  };
}

/** Runs `count` jobs with at most `parallel` at once. */
async function inParallel(count: number, parallel: number, job: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) await job(next++);
  }));
}

// ------------------------------------------------------------------------------------------------- setup

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "?";
  }
}
const loadAtStart = loadAverage();
/** "12,345/s (61% of ceiling)" */
const share = (value: number, ceiling: number | undefined) =>
  ceiling ? ` (${Math.round((value / ceiling) * 100)}% of its ceiling)` : "";
const ceilings: { healthz?: number; inserts?: number; bareHeartbeats?: number } = {};
/** Requests the last wrk run made, and the CPU wrk itself used (for CPU per request). */
let lastWrkCount = 0;
let lastWrkCpuMs = NaN;
const wrkCost = () => `, wrk ${(lastWrkCpuMs / Math.max(1, lastWrkCount)).toFixed(3)}`;
const fileLimit = await raiseFileLimit(Math.max(20_000, PULLS * 2 + 2_000));
const { database, deps } = await benchDatabase("bench", SECRET_KEY);
const port = freePort();
const base = `http://127.0.0.1:${port}`;
const server = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "--unstable-no-legacy-abort",
    ...(args.values.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.values.profile}`] : []),
    ...(args.values["v8-flags"] ? [`--v8-flags=${args.values["v8-flags"]}`] : []),
    "main.ts",
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--no-migrate",
  ],
  cwd: ROOT,
  env: serverEnv(database, SECRET_KEY, {
    LOG_LEVEL,
    // The whole fleet enrolls from one address here; the per-address limit is for floods, not this.
    REGISTER_RATE_PER_MIN: "1000000",
    // Phase d parks several pulls per agent (10,000 over 2,000 agents): above the per-node default of 4.
    MAX_CONFIG_WAITS_PER_NODE: String(Math.max(4, Math.ceil(PULLS / AGENTS))),
  }),
  stdin: "null",
  stdout: args.values["server-log"] ? "piped" : "null",
  stderr: "inherit",
}).spawn();
const serverLog = args.values["server-log"]
  ? server.stdout.pipeTo(
    (await Deno.open(args.values["server-log"], { write: true, create: true, truncate: true })).writable,
  )
  : undefined;

const results: [string, string][] = [];
const record = (name: string, value: string) => {
  value = `${value}  [load ${loadAverage()}]`;
  results.push([name, value]);
  console.error(`  ${name}: ${value}`);
};
let pullsHeld = 0;
let exitCode = 0;

try {
  for (let i = 0;; i++) {
    try {
      const res = await fetch(`${base}/healthz`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (i > 300) throw new Error("server did not start within 30 s");
    await sleep(100);
  }
  console.error(`server pid ${server.pid} on ${base}, database ${database.name}, file limit ${fileLimit}`);

  // -------------------------------------------------------------------------------------------- ceilings
  {
    const [healthz, cpu] = await withCpu(() => lastWrkCount, () => runWrk(base, SECONDS, CONCURRENCY));
    if (healthz) {
      ceilings.healthz = healthz.rate;
      record(
        `ceiling: GET /healthz, ${CONCURRENCY} connections (wrk)`,
        `${healthz.text}  ${cpu}${wrkCost()}`,
      );
    }
    let rows = 0;
    const [inserts, insertCpu] = await withCpu(
      () => rows / 1000,
      async () => {
        const rate = await rawInsertCeiling(SECONDS, METRIC_WORKERS);
        rows = rate * SECONDS;
        return rate;
      },
    );
    ceilings.inserts = inserts;
    record(
      `ceiling: raw 1,000-row INSERTs, ${METRIC_WORKERS} connections (mysql2)`,
      `${Math.round(inserts).toLocaleString("en")} rows/s  ${
        insertCpu.replace("cpu ms/op", "cpu ms per 1,000 rows").replace(/server [\d.]+, /, "")
      }`,
    );
  }

  // ---------------------------------------------------------------------------------------------- enroll
  const { token: enrollmentToken } = await createEnrollmentToken(deps, {
    principal: { kind: "system", name: "bench" },
  }, { name: "bench", max_uses: AGENTS });
  const agents: Agent[] = new Array(AGENTS);
  const enrollStart = performance.now();
  const [, enrollCpu] = await withCpu(() => AGENTS, () =>
    inParallel(AGENTS, 16, async (i) => {
      const pool = poolOcid(i);
      const res = await fetch(`${base}/api/v1/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          enrollment_token: enrollmentToken,
          name: `bench-${i}`,
          hostname: `bench-${i}.local`,
          agent_version: "bench",
          labels: { bench: "yes" },
          pools: [{ instance_pool_id: pool, current_size: 2, min_size: 1, max_size: 10 }],
          config: configFor(pool, 10),
        }),
      });
      const body = await res.json();
      if (res.status !== 201) throw new Error(`register ${i}: ${res.status} ${JSON.stringify(body)}`);
      agents[i] = {
        id: body.node_id,
        token: body.node_token,
        pool,
        hash: body.config.hash,
        nextTs: Date.now() - 60_000,
        uptime: 0,
      };
    }));
  const enrollS = (performance.now() - enrollStart) / 1000;
  record(
    "agents enrolled (16 concurrent)",
    `${AGENTS} in ${enrollS.toFixed(1)} s (${Math.round(AGENTS / enrollS)}/s${
      ceilings.healthz ? `, ${((AGENTS / enrollS / ceilings.healthz) * 100).toFixed(1)}% of /healthz` : ""
    })`,
  );
  record("registration cost", enrollCpu);

  const heartbeat = async (agent: Agent): Promise<number> => {
    const started = performance.now();
    const res = await fetch(`${base}/api/v1/nodes/${agent.id}/heartbeat`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${agent.token}` },
      body: JSON.stringify({
        status: "ok",
        uptime_s: agent.uptime++,
        applied_config_hash: agent.hash,
        agent_version: "bench",
        pools: [{ instance_pool_id: agent.pool, instance_count: 2 }],
      }),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`heartbeat: ${res.status} ${text}`);
    return performance.now() - started;
  };

  // ------------------------------------------------------- h. (optional) the floor: GET /healthz, no database
  if (PHASES.has("h")) {
    const latencies: number[] = [];
    const deadline = performance.now() + SECONDS * 1000;
    const started = performance.now();
    const [, cpu] = await withCpu(
      () => latencies.length,
      () =>
        Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < deadline) {
            const t0 = performance.now();
            const res = await fetch(`${base}/healthz`);
            await res.text();
            latencies.push(performance.now() - t0);
          }
        })),
    );
    const elapsed = (performance.now() - started) / 1000;
    const { p50, p99 } = summarize(latencies);
    record(
      `h. GET /healthz, ${CONCURRENCY} concurrent`,
      `${Math.round(latencies.length / elapsed)}/s  p50 ${p50.toFixed(1)} ms  p99 ${p99.toFixed(1)} ms`,
    );
    record("h. cost", cpu);
  }

  // ------------------------------------------------------------------------------ a. max heartbeats/s
  if (PHASES.has("a")) {
    const latencies: number[] = [];
    const deadline = performance.now() + SECONDS * 1000;
    let next = 0;
    const started = performance.now();
    const [, cpu] = await withCpu(
      () => latencies.length,
      () =>
        Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < deadline) latencies.push(await heartbeat(agents[next++ % AGENTS]));
        })),
    );
    const elapsed = (performance.now() - started) / 1000;
    const { p50, p99 } = summarize(latencies);
    record(
      `a. heartbeats, ${CONCURRENCY} concurrent`,
      `${Math.round(latencies.length / elapsed)}/s  p50 ${p50.toFixed(1)} ms  p99 ${p99.toFixed(1)} ms` +
        share(latencies.length / elapsed, ceilings.healthz),
    );
    record("a. cost", cpu);
  }

  // ------------------------------------ w. max heartbeats/s from a lean load generator (wrk), when installed
  // The fetch clients of phase a cost the machine about as much CPU per heartbeat as the server does; on
  // 2 shared cores that caps what a can show. wrk (Debian package) costs far less, so w shows the server
  // and database's own capacity on the same machine.
  if (PHASES.has("w")) {
    // What Deno itself allows: the same wrk load against a bare Deno.serve that parses each heartbeat and
    // answers it as the route does, nothing else (bench/bare_server.ts).
    let bareCpuMs = NaN;
    const bare = await withBareServer(async (bareBase, pid) => {
      const before = cpuMs(pid);
      const result = await wrkHeartbeats(agents, bareBase, SECONDS, CONCURRENCY);
      bareCpuMs = cpuMs(pid) - before;
      return result;
    });
    if (bare) {
      ceilings.bareHeartbeats = bare.rate;
      record(
        `ceiling: bare Deno.serve answering the same heartbeats, ${CONCURRENCY} connections (wrk)`,
        `${bare.text}  cpu ms/op: bare server ${
          (bareCpuMs / Math.max(1, lastWrkCount)).toFixed(3)
        }${wrkCost()}`,
      );
    }
    const [wrk, cpu] = await withCpu(
      () => lastWrkCount,
      () => wrkHeartbeats(agents, base, SECONDS, CONCURRENCY),
    );
    if (wrk) {
      record(
        `w. heartbeats, ${CONCURRENCY} connections (wrk)`,
        wrk.text +
          (ceilings.healthz
            ? ` (${Math.round((wrk.rate / ceilings.healthz) * 100)}% of /healthz${
              ceilings.bareHeartbeats
                ? `, ${Math.round((wrk.rate / ceilings.bareHeartbeats) * 100)}% of bare Deno's`
                : ""
            })`
            : ""),
      );
      record("w. cost", cpu + wrkCost());
    } else {
      record("w. heartbeats (wrk)", "skipped: wrk is not installed (apt-get install wrk)");
    }
  }

  // --------------------------------------------------------------------------- b. fixed-rate heartbeats
  // ------------------------------------------------ p. heartbeats at a steady 5,000/s from wrk (paced)
  // The fetch client of phase b costs as much CPU per request as the server, so it cannot send 5,000/s here.
  // wrk can: each connection waits its turn (connections / rate) before each request, so the rate is set by
  // the load generator, and wrk's latencies are the server's answers (the wait is not counted).
  if (PHASES.has("p")) {
    // The turn, a little shorter than connections / rate: each request's own latency adds to it.
    const delayMs = Math.max(0, (PACED_CONNECTIONS * 1000) / PACED_RATE - 1);
    const [wrk, cpu] = await withCpu(
      () => lastWrkCount,
      () => wrkHeartbeats(agents, base, SECONDS, PACED_CONNECTIONS, delayMs),
    );
    if (wrk) {
      record(`p. heartbeats paced at ${PACED_RATE}/s (wrk, ${PACED_CONNECTIONS} connections)`, wrk.text);
      record("p. cost", cpu + wrkCost());
    } else {
      record("p. heartbeats paced (wrk)", "skipped: wrk is not installed (apt-get install wrk)");
    }
  }

  if (PHASES.has("b")) {
    const total = RATE * SECONDS;
    const latencies: number[] = [];
    const inflight = new Set<Promise<void>>();
    const started = performance.now();
    let late = 0;
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      else if (wait < -5) late++;
      // At most MAX_OPEN requests open (each is a connection: past a few thousand the process runs out of
      // files). Waiting for one to finish delays the next send, and latency counts from the scheduled time,
      // so a stalled server shows in the figures rather than being hidden by a stalled sender.
      while (inflight.size >= MAX_OPEN) await Promise.race(inflight);
      const request: Promise<void> = heartbeat(agents[i % AGENTS]).then(() => {
        latencies.push(performance.now() - due);
      }).finally(() => inflight.delete(request));
      inflight.add(request);
    }
    await Promise.all(inflight);
    const elapsed = (performance.now() - started) / 1000;
    const { p50, p99, max } = summarize(latencies);
    record(
      `b. heartbeats at ${RATE}/s`,
      `${Math.round(total / elapsed)}/s done  p50 ${p50.toFixed(1)} ms  p99 ${p99.toFixed(1)} ms  max ${
        max.toFixed(1)
      } ms${late ? `  (${late} sent >5 ms late)` : ""}`,
    );
  }

  // ------------------------------------------------------------------------------------ c. metric batches
  if (PHASES.has("c")) {
    const latencies: number[] = [];
    let samples = 0;
    const workers = METRIC_WORKERS;
    const deadline = performance.now() + SECONDS * 1000;
    let next = 0;
    const started = performance.now();
    const [, cpu] = await withCpu(
      () => samples / 1000,
      () =>
        Promise.all(Array.from({ length: workers }, async () => {
          while (performance.now() < deadline) {
            const agent = agents[next++ % AGENTS];
            const size = 500 + Math.floor(Math.random() * 501);
            const batch = Array.from({ length: size }, (_, k) => {
              agent.nextTs -= 1000; // one sample per second, going back in time: never a duplicate
              return {
                instance_pool_id: agent.pool,
                ts: new Date(agent.nextTs).toISOString(),
                cpu_util: (k * 7) % 100,
                memory_util: (k * 3) % 100,
                instance_count: 2,
                ...(k === 0
                  ? { scaling_event: true, scaling_direction: "UP", from_count: 1, to_count: 2 }
                  : {}),
              };
            });
            const t0 = performance.now();
            const res = await fetch(`${base}/api/v1/nodes/${agent.id}/metrics`, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: `Bearer ${agent.token}` },
              body: JSON.stringify({ samples: batch }),
            });
            const body = await res.json();
            if (res.status !== 200 || body.accepted !== size) {
              throw new Error(`metrics: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
            }
            latencies.push(performance.now() - t0);
            samples += size;
          }
        })),
    );
    const elapsed = (performance.now() - started) / 1000;
    const { p50, p99 } = summarize(latencies);
    record(
      `c. metric batches (500..1000), ${workers} concurrent`,
      `${Math.round(samples / elapsed)} samples/s (${Math.round(latencies.length / elapsed)} batches/s)  ` +
        `p50 ${p50.toFixed(1)} ms  p99 ${p99.toFixed(1)} ms per batch` +
        share(samples / elapsed, ceilings.inserts),
    );
    record("c. cost", cpu.replace("cpu ms/op", "cpu ms per 1,000 samples"));
  }

  // --------------------------------------------------------------------------------- d. waiting pulls
  if (PHASES.has("d")) {
    interface Pull {
      agent: Agent;
      settled: boolean;
      status?: number;
      at?: number;
      done: Promise<void>;
    }
    const bare = await bareWaitersCeiling(PULLS);
    record(
      `ceiling: bare Deno.serve holding ${PULLS} requests`,
      `RSS ${bare.idleMb} MB idle -> ${bare.peakMb} MB peak (${
        Math.round(((bare.peakMb - bare.idleMb) * 1024) / PULLS)
      } KB per request)`,
    );
    const serverIdleMb = rssMb(server.pid);
    record("server memory before the pulls", await memoryBreakdown(base));
    const pulls: Pull[] = [];
    const openStart = performance.now();
    for (let i = 0; i < PULLS; i++) {
      const agent = agents[i % AGENTS];
      const pull: Pull = { agent, settled: false, done: Promise.resolve() };
      pull.done = fetch(`${base}/api/v1/nodes/${agent.id}/config?wait=60`, {
        headers: { authorization: `Bearer ${agent.token}`, "if-none-match": `"${agent.hash}"` },
      }).then(async (res) => {
        await res.body?.cancel();
        pull.status = res.status;
      }).catch(() => {
        pull.status = -1;
      }).finally(() => {
        pull.settled = true;
        pull.at = performance.now();
      });
      pulls.push(pull);
      if (i % 250 === 249) await sleep(20); // let the listener accept; no SYN storm
    }
    // Sent is not yet received: wait until the server has worked through the backlog (its CPU goes quiet),
    // so every pull is really parked in the server's watcher before the change is made.
    const quietDeadline = performance.now() + 60_000;
    for (let busy = true; busy && performance.now() < quietDeadline;) {
      const before = cpuMs(server.pid);
      await sleep(500);
      busy = cpuMs(server.pid) - before > 50; // more than 10% of a core
    }
    const openS = (performance.now() - openStart) / 1000;
    await sleep(1_000);
    pullsHeld = pulls.filter((p) => !p.settled).length;
    if (pullsHeld < PULLS) {
      const early = new Map<number, number>();
      for (const p of pulls) if (p.settled) early.set(p.status!, (early.get(p.status!) ?? 0) + 1);
      record("d. pulls answered before any change", JSON.stringify(Object.fromEntries(early)));
    }
    record(
      "d. waiting config pulls held",
      `${pullsHeld} of ${PULLS} (sent and parked in ${openS.toFixed(1)} s; server RSS now ${
        peakRssMb(server.pid)
      } MB peak)`,
    );
    record("server memory with the pulls held", await memoryBreakdown(base));

    // A new config for some nodes, written here as another replica would: the server sees it by its poll.
    const changed = agents.slice(0, Math.min(100, AGENTS));
    const services = createServices(deps);
    const committedAt = new Map<string, number>();
    try {
      await inParallel(changed.length, 8, async (i) => {
        const agent = changed[i];
        await setNodeConfig(deps, services, { principal: { kind: "system", name: "bench" } }, agent.id, {
          config: configFor(agent.pool, 12),
          comment: "bench change",
        });
        committedAt.set(agent.id, performance.now());
      });
    } finally {
      await services.close();
    }
    const woken = pulls.filter((p) => committedAt.has(p.agent.id));
    const wakeDeadline = performance.now() + 10_000;
    while (woken.some((p) => !p.settled) && performance.now() < wakeDeadline) await sleep(10);
    const wakeLatencies = woken.filter((p) => p.settled && p.status === 200).map((p) =>
      p.at! - committedAt.get(p.agent.id)!
    );
    const wake = summarize(wakeLatencies);
    record(
      "d. wake-up after a config change",
      `${wakeLatencies.length} of ${woken.length} pulls answered 200  p50 ${wake.p50.toFixed(0)} ms  p99 ${
        wake.p99.toFixed(0)
      } ms (server polls every CONFIG_POLL_MS)`,
    );
    const stillHeld = pulls.filter((p) => !p.settled).length;
    const peak = peakRssMb(server.pid);
    record(
      "server peak RSS (VmHWM)",
      `${peak} MB (${serverIdleMb} MB before the pulls: ${
        Math.round(((peak - serverIdleMb) * 1024) / PULLS)
      } KB per pull; ${
        ((peak - serverIdleMb) / (bare.peakMb - bare.idleMb)).toFixed(2)
      }x bare Deno's growth)`,
    );

    // Release: graceful shutdown answers every waiting pull at once.
    const releaseStart = performance.now();
    server.kill("SIGTERM");
    const releaseDeadline = performance.now() + 30_000;
    while (pulls.some((p) => !p.settled) && performance.now() < releaseDeadline) await sleep(10);
    const answered = pulls.filter((p) => p.settled && !committedAt.has(p.agent.id) && p.status! > 0).length;
    record(
      "d. release by SIGTERM",
      `${stillHeld} held pulls settled in ${((performance.now() - releaseStart) / 1000).toFixed(2)} s ` +
        `(${answered} answered with a status)`,
    );
  }
  if (!PHASES.has("d")) record("server peak RSS (VmHWM)", `${peakRssMb(server.pid)} MB`);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  try {
    server.kill("SIGTERM");
  } catch { /* already stopped */ }
  const status = await Promise.race([server.status, sleep(35_000).then(() => undefined)]);
  if (!status) server.kill("SIGKILL");
  await serverLog;
  await database.drop();
}

const width = Math.max(...results.map(([name]) => name.length));
console.log(
  `\nAutoscaler Central bench: ${AGENTS} agents, ${SECONDS} s per phase, ${Deno.build.os}, ${navigator.hardwareConcurrency} cpus (load average ${loadAtStart} at start), server LOG_LEVEL=${LOG_LEVEL}${
    args.values["v8-flags"] ? `, server --v8-flags=${args.values["v8-flags"]}` : ""
  }${
    quick ? " (quick)" : ""
  }\n  (client, server and database share this machine; "cost" lines are CPU per operation of each part)`,
);
for (const [name, value] of results) console.log(`  ${name.padEnd(width)}  ${value}`);
if (PHASES.has("d") && pullsHeld < PULLS) {
  console.log(`  NOTE: only ${pullsHeld} of ${PULLS} pulls were held`);
}
Deno.exit(exitCode);

interface WrkResult {
  rate: number;
  text: string;
}

/** The server's RSS and JavaScript heap from its /metrics (autoscaler_central_process_memory_bytes). */
async function memoryBreakdown(base: string): Promise<string> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const mb = (kind: string) => {
    const line = text.split("\n").find((l) =>
      l.startsWith(`autoscaler_central_process_memory_bytes{kind="${kind}"}`)
    );
    return line ? `${Math.round(Number(line.split(" ").at(-1)) / 1048576)} MB` : "?";
  };
  return `RSS ${mb("rss")}: JavaScript heap ${mb("heap_used")} used of ${mb("heap_total")}, external ${
    mb("external")
  }`;
}

/** Runs wrk against the heartbeat route, cycling through the agents; undefined when wrk is missing. */
async function wrkHeartbeats(
  agents: Agent[],
  base: string,
  seconds: number,
  connections: number,
  delayMs?: number,
): Promise<WrkResult | undefined> {
  const rows = agents.map((a) => `{"${a.id}","${a.token}","${a.pool}","${a.hash}"}`).join(",\n");
  return await runWrk(
    base,
    seconds,
    connections,
    `local nodes = {\n${rows}\n}
local i = 0
request = function()
  i = i + 1
  local n = nodes[(i % #nodes) + 1]
  local body = '{"status":"ok","uptime_s":' .. i .. ',"applied_config_hash":"' .. n[4] ..
    '","agent_version":"bench","pools":[{"instance_pool_id":"' .. n[3] .. '","instance_count":2}]}'
  return wrk.format("POST", "/api/v1/nodes/" .. n[1] .. "/heartbeat",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. n[2]}, body)
end
${delayMs === undefined ? "" : `delay = function() return ${Math.round(delayMs)} end\n`}`,
  );
}

/** wrk against `base` (GET /healthz without a script); undefined when wrk is missing. */
async function runWrk(
  base: string,
  seconds: number,
  connections: number,
  lua?: string,
): Promise<WrkResult | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "bench-wrk-" });
  try {
    const script = `${dir}/script.lua`;
    if (lua) await Deno.writeTextFile(script, lua);
    let output;
    try {
      // Through bash, whose `times` prints wrk's own CPU afterwards (the load generator shares the cores).
      const wrkArgs = [
        "-t1",
        `-c${connections}`,
        `-d${seconds}s`,
        "--latency",
        ...(lua ? ["-s", script, base] : [`${base}/healthz`]),
      ];
      output = await new Deno.Command("bash", {
        args: ["-c", 'command -v wrk >/dev/null || exit 127; wrk "$@"; times', "bench", ...wrkArgs],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (output.code === 127) return undefined;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    const text = new TextDecoder().decode(output.stdout);
    const rate = text.match(/Requests\/sec:\s+([\d.]+)/)?.[1];
    lastWrkCount = Number(text.match(/(\d+) requests in/)?.[1] ?? 0);
    const p50 = text.match(/^\s+50%\s+(\S+)/m)?.[1];
    const p99 = text.match(/^\s+99%\s+(\S+)/m)?.[1];
    const failed = text.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1];
    if (!rate) throw new Error(`wrk printed no rate: ${text} ${new TextDecoder().decode(output.stderr)}`);
    // `times`: the shell's user/system, then its children's (wrk): "0m1.234s 0m0.567s".
    const childTimes = text.trim().split("\n").at(-1)!.match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
    const wrkCpuMs = childTimes
      ? (Number(childTimes[1]) * 60 + Number(childTimes[2]) + Number(childTimes[3]) * 60 +
        Number(childTimes[4])) *
        1000
      : NaN;
    lastWrkCpuMs = wrkCpuMs;
    return {
      rate: Number(rate),
      text: `${Math.round(Number(rate)).toLocaleString("en")}/s  p50 ${p50}  p99 ${p99}${
        failed ? `  (${failed} not 200!)` : ""
      }`,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Rows/s MariaDB takes as 1,000-row INSERTs into a scratch copy of metric_samples, `workers` connections
 * at once, straight through mysql2: what phase c could reach if the server cost nothing. */
async function rawInsertCeiling(seconds: number, workers: number): Promise<number> {
  await deps.pool.query("CREATE TABLE bench_scratch_samples LIKE metric_samples");
  try {
    let rows = 0;
    const deadline = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(Array.from({ length: workers }, async (_, w) => {
      const nodeId = crypto.randomUUID();
      let ts = Date.now() - 86_400_000;
      while (performance.now() < deadline) {
        const batch = Array.from({ length: 1000 }, (_, k) => {
          ts -= 1000;
          return [
            nodeId,
            w + 1,
            new Date(ts).toISOString().slice(0, 23).replace("T", " "),
            k % 100,
            k % 50,
            2,
          ];
        });
        await deps.pool.query(
          "INSERT IGNORE INTO bench_scratch_samples (node_id, pool_id, ts, cpu_util, memory_util, instance_count) VALUES ?",
          [batch],
        );
        rows += batch.length;
      }
    }));
    return rows / ((performance.now() - started) / 1000);
  } finally {
    await deps.pool.query("DROP TABLE bench_scratch_samples");
  }
}
