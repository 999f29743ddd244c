// The fleet simulator: its scaling rule and load model, a short run of 5 simulated autoscalers against the
// real service (online, samples, scaling events, a config change applied and acked and then driving the
// rule), the backfill of past history (span, count, daily shape, idempotent re-run), and the `simulate`
// command as users run it.
import assert from "node:assert/strict";
import { count, eq, inArray, sql } from "drizzle-orm";
import {
  backfillWindow,
  dailyDemand,
  DEFAULT_RULE,
  initialConfig,
  PoolLoad,
  ruleFromConfig,
  SimulatedPool,
  startFleet,
} from "../tools/simulator.ts";
import { configVersions, metricSamples, nodes, scalingEvents } from "../db/schema.ts";
import { runCli } from "./helpers/cli.ts";
import { parseLabelsOption, parseRejectOption } from "../tools/cli/simulate.ts";
import { eventually, startTestServer } from "./helpers/server.ts";

Deno.test("simulator: config entries become rules; the daily curve peaks at its hour", () => {
  const config = initialConfig("sim", 1, 2, "us-ashburn-1");
  const pools = config.pools as Record<string, unknown>[];
  assert.equal(pools.length, 2);
  assert.match(String(pools[0].instance_pool_id), /^ocid1\.instancepool\.oc1\.iad\.aaaasimn001p1$/);
  assert.deepEqual(ruleFromConfig(pools[0]), {
    cpu: { min: 30, max: 75 },
    ram: { min: 20, max: 75 },
    limits: { min: 1, max: 10 },
    schedulerMaxInstances: 4,
    schedules: [{ start: "05:30", end: "05:50" }],
  });
  assert.deepEqual(ruleFromConfig({ cpu_threshold: { min: 5, max: 9 } }), {
    ...DEFAULT_RULE,
    cpu: { min: 5, max: 9 },
  });
  const shape = { peakDemand: 6, peakHour: 14, nightShare: 0.2, spikeRatePerHour: 0 };
  const at = (hour: number) => dailyDemand(shape, Date.UTC(2026, 5, 1, hour));
  assert.equal(at(14), 6);
  assert.ok(Math.abs(at(2) - 1.2) < 1e-9);
  assert.ok(at(10) > at(6) && at(14) > at(10));
});

Deno.test("simulator: the load is a function of the sample's own time", () => {
  const day = Date.UTC(2026, 5, 1);
  const a = new PoolLoad(7, "ocid1.instancepool.oc1.iad.aaaasimn001p1");
  const b = new PoolLoad(7, "ocid1.instancepool.oc1.iad.aaaasimn001p1");
  const other = new PoolLoad(8, "ocid1.instancepool.oc1.iad.aaaasimn001p1");
  const times = Array.from({ length: 24 * 60 }, (_, minute) => day + minute * 60_000);
  // Same seed and pool: the same load at the same time, whatever was asked before.
  assert.deepEqual(times.map((ms) => a.demand(ms)), [...times].reverse().map((ms) => b.demand(ms)).reverse());
  assert.notDeepEqual(times.map((ms) => a.demand(ms)), times.map((ms) => other.demand(ms)));
  // The day's shape: the busiest hours carry more load than the night.
  const mean = (hours: number[]) => {
    const values = times.filter((ms) => hours.includes(new Date(ms).getUTCHours())).map((ms) => a.demand(ms));
    return values.reduce((sum, value) => sum + value, 0) / values.length;
  };
  assert.ok(mean([12, 13, 14, 15]) > 1.5 * mean([0, 1, 2, 3]));

  // Two pools stepped over the same times from the same start decide the same.
  const rule = ruleFromConfig(
    (initialConfig("sim", 1, 1, "us-ashburn-1").pools as Record<string, unknown>[])[0],
  );
  const first = new SimulatedPool("p", rule, a);
  const second = new SimulatedPool("p", rule, b);
  const window = backfillWindow(day + 86_400_000, 86_400_000, 60_000);
  assert.equal(window.points, 1440); // every minute, the first a minute inside the span
  assert.equal(window.toMs, day + 86_400_000);
  const decisions = (pool: SimulatedPool) =>
    Array.from({ length: window.points }, (_, i) => pool.step(window.fromMs + i * 60_000).decision);
  const decided = decisions(first);
  assert.deepEqual(decided, decisions(second));
  assert.ok(decided.some((decision) => decision?.direction === "UP"));
  assert.ok(decided.some((decision) => decision?.direction === "DOWN"));
});

Deno.test("simulator: 5 nodes against the real service", async (t) => {
  const server = await startTestServer("simulate", { env: { HEARTBEAT_INTERVAL_S: "1" } });
  const dir = await Deno.makeTempDir({ prefix: "central-sim-" });
  const db = server.ctx.deps.db;
  const fleet = await startFleet({
    url: server.apiUrl,
    token: await server.enrollmentToken({ maxUses: 5 }),
    nodes: 5,
    pools: 2,
    tickMs: 100,
    timing: { evaluationMs: 100, cooldownMs: 0 },
    dir,
    prefix: "simtest",
    seed: 42,
    clientOptions: {
      heartbeatIntervalMs: 200,
      flushIntervalMs: 100,
      configWaitS: 2,
      retryBaseMs: 50,
      retryMaxMs: 300,
    },
  });
  try {
    const ids = () => fleet.agents.map((agent) => agent.client.nodeId!);

    await t.step("every node registers, heartbeats and brings its config.yaml as version 1", async () => {
      await eventually("5 registered", () => fleet.agents.every((agent) => agent.client.nodeId));
      const rows = await eventually("5 nodes heartbeating", async () => {
        const found = await db.select().from(nodes).where(inArray(nodes.id, ids()));
        return found.length === 5 && found.every((row) => row.lastHeartbeatAt) ? found : undefined;
      });
      assert.deepEqual(rows.map((row) => row.name).sort(), [
        "simtest-001",
        "simtest-002",
        "simtest-003",
        "simtest-004",
        "simtest-005",
      ]);
      assert.ok(rows.every((row) => row.labels.simulated === "true" && row.agentVersion === "simulator-1.0"));
      const versions = await db.select().from(configVersions).where(inArray(configVersions.nodeId, ids()));
      assert.equal(versions.length, 5);
      assert.ok(versions.every((version) => version.source === "agent" && version.version === 1));
    });

    await t.step("samples from every pool of every node arrive", async () => {
      await eventually("samples for all 10 pools", async () => {
        const rows = await db.select({
          nodeId: metricSamples.nodeId,
          poolId: metricSamples.poolId,
          n: count(),
        })
          .from(metricSamples).where(inArray(metricSamples.nodeId, ids()))
          .groupBy(metricSamples.nodeId, metricSamples.poolId);
        return rows.length === 10 && rows.every((row) => Number(row.n) >= 3);
      });
    });

    await t.step(
      "a config change from the server is applied, acked, and drives the scaling rule",
      async () => {
        const agent = fleet.agents[0];
        const nodeId = agent.client.nodeId!;
        const body = initialConfig("simtest", 1, 2, "us-ashburn-1");
        for (const pool of body.pools as Record<string, unknown>[]) {
          pool.cpu_threshold = { min: 0, max: 1 }; // any load is too much: scale up to the limit
          pool.scaling_limits = { min: 1, max: 12 };
          pool.scheduler_max_instances = 2;
        }
        const set = await server.setConfig(nodeId, body);
        await eventually("in sync on the new config", async () => {
          const [row] = await db.select().from(nodes).where(eq(nodes.id, nodeId));
          return row.configState === "in_sync" && row.appliedHash === set.hash;
        });
        assert.ok(
          [...agent.pools.values()].every((pool) => pool.rule.cpu.max === 1 && pool.rule.limits.max === 12),
        );
        assert.match(await Deno.readTextFile(agent.configPath), /max: 12/);
        await eventually(
          "both pools scaled to 12",
          () => [...agent.pools.values()].every((pool) => pool.count === 12),
        );
        const events = await eventually("UP events to 12 stored", async () => {
          const rows = await db.select().from(scalingEvents).where(eq(scalingEvents.nodeId, nodeId));
          return rows.filter((row) => row.toCount === 12).length === 2 ? rows : undefined;
        });
        const last = events.filter((row) => row.toCount === 12);
        assert.ok(
          last.every((row) =>
            row.direction === "UP" && row.fromCount === 11 && row.reason?.startsWith("cpu")
          ),
        );
        assert.ok(fleet.summary().configs_applied >= 1);
      },
    );

    await t.step("stop flushes every buffer; nothing dropped", async () => {
      const summary = await fleet.stop(5_000);
      assert.equal(summary.registered, 5);
      assert.equal(summary.samples_buffered, 0);
      assert.equal(summary.samples_dropped, 0);
      const [stored] = await db.select({ n: count() }).from(metricSamples).where(
        inArray(metricSamples.nodeId, ids()),
      );
      assert.equal(Number(stored.n), summary.samples_sent);
      const [events] = await db.select({ n: count() }).from(scalingEvents).where(
        inArray(scalingEvents.nodeId, ids()),
      );
      assert.equal(Number(events.n), summary.scaling_up + summary.scaling_down);
    });
  } finally {
    await fleet.stop(500);
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("simulate options: --labels and --reject-config, each bad value named", () => {
  const tools = { usageError: (message: string) => new Error(message) };
  assert.deepEqual(parseLabelsOption("env=staging, team=web", tools), { env: "staging", team: "web" });
  assert.equal(parseLabelsOption(undefined, tools), undefined);
  assert.throws(() => parseLabelsOption("env", tools), /--labels: "env" expected key=value/);
  assert.throws(() => parseLabelsOption("-x=1", tools), /--labels: "-x=1" label keys are/);
  assert.throws(() => parseLabelsOption("fleet=x", tools), /set by the simulator itself/);
  assert.deepEqual(parseRejectOption("sim-007, 12,sim-7", "sim", 20, tools), ["sim-007", "sim-012"]);
  assert.deepEqual(parseRejectOption(undefined, "sim", 20, tools), []);
  for (const bad of ["sim-021", "0", "web-007", "sim-x"]) {
    assert.throws(
      () => parseRejectOption(bad, "sim", 20, tools),
      new RegExp(`--reject-config: "${bad}" is not one of the simulated nodes \\(sim-001\\.\\.sim-020`),
    );
  }
});

Deno.test("simulator: a node told to reject configs acks them as failed and keeps its rule", async () => {
  const server = await startTestServer("simulate_reject", { env: { HEARTBEAT_INTERVAL_S: "1" } });
  const dir = await Deno.makeTempDir({ prefix: "central-sim-" });
  const db = server.ctx.deps.db;
  const fleet = await startFleet({
    url: server.apiUrl,
    token: await server.enrollmentToken(),
    nodes: 3,
    pools: 1,
    tickMs: 200,
    dir,
    prefix: "rej",
    labels: { env: "staging" },
    rejectConfig: ["rej-002"],
    clientOptions: { heartbeatIntervalMs: 200, flushIntervalMs: 100, configWaitS: 2, retryBaseMs: 50 },
  });
  try {
    await eventually("3 registered", () => fleet.agents.every((agent) => agent.client.nodeId));
    const rows = await db.select().from(nodes).where(inArray(nodes.name, ["rej-001", "rej-002", "rej-003"]));
    assert.ok(rows.every((row) => row.labels.env === "staging" && row.labels.fleet === "rej"));
    const hashes = new Map<string, string>();
    for (const [index, agent] of fleet.agents.entries()) {
      const body = initialConfig("rej", index + 1, 1, agent.region);
      (body.pools as Record<string, unknown>[])[0].cpu_threshold = { min: 20, max: 60 };
      hashes.set(agent.name, (await server.setConfig(agent.client.nodeId!, body)).hash);
    }
    const states = await eventually("every node acked", async () => {
      const found = await db.select().from(nodes).where(
        inArray(nodes.id, fleet.agents.map((a) => a.client.nodeId!)),
      );
      return found.every((row) => row.configState !== "pending") ? found : undefined;
    });
    const byName = new Map(states.map((row) => [row.name, row]));
    assert.equal(byName.get("rej-001")!.configState, "in_sync");
    assert.equal(byName.get("rej-003")!.configState, "in_sync");
    const rejecting = byName.get("rej-002")!;
    assert.equal(rejecting.configState, "failed");
    assert.match(rejecting.configError ?? "", /^simulated rejection: rej-002 refuses config version 2 /);
    assert.notEqual(rejecting.appliedHash, hashes.get("rej-002"));
    // It still scales by what it ran before; the others took the new thresholds.
    assert.equal([...fleet.agents[1].pools.values()][0].rule.cpu.max, 75);
    assert.equal([...fleet.agents[0].pools.values()][0].rule.cpu.max, 60);
    assert.equal(fleet.summary().configs_failed, 1);
  } finally {
    await fleet.stop(500);
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("simulator: --backfill writes past history through the API, once", async (t) => {
  const server = await startTestServer("simulate_backfill", { env: { HEARTBEAT_INTERVAL_S: "1" } });
  const dir = await Deno.makeTempDir({ prefix: "central-sim-backfill-" });
  const db = server.ctx.deps.db;
  const token = await server.enrollmentToken();
  const untilMs = Date.now();
  const day = 86_400_000;
  // One run of the fleet with a backfill, stopped once the backfill is done: what the backfill reports.
  const backfillRun = async () => {
    const fleet = await startFleet({
      url: server.apiUrl,
      token,
      nodes: 2,
      pools: 2,
      tickMs: 200,
      dir,
      prefix: "backfill",
      seed: 5,
      backfill: { spanMs: day, stepMs: 60_000, untilMs },
      clientOptions: { heartbeatIntervalMs: 500, flushIntervalMs: 100, configWaitS: 1, retryBaseMs: 50 },
    });
    const backfill = (await fleet.live)!;
    await fleet.stop(2_000);
    assert.equal(backfill.done, true);
    return backfill;
  };
  const window = backfillWindow(untilMs, day, 60_000);
  const expected = 2 * 2 * window.points;
  const stored = async () => {
    const [row] = await db.select({ n: count() }).from(metricSamples)
      .where(sql`${metricSamples.ts} <= ${new Date(window.toMs)}`);
    return Number(row.n);
  };
  const storedEvents = async () => Number((await db.select({ n: count() }).from(scalingEvents))[0].n);
  const storedPastEvents = async () => {
    const [row] = await db.select({ n: count() }).from(scalingEvents)
      .where(sql`${scalingEvents.ts} <= ${new Date(window.toMs)}`);
    return Number(row.n);
  };
  try {
    await t.step("a day of samples for every pool, at their real past times", async () => {
      const backfill = await backfillRun();
      assert.equal(backfill.refused, null);
      assert.equal(backfill.nodes, 2);
      assert.equal(window.points, Math.floor((window.toMs - window.fromMs) / 60_000) + 1);
      assert.ok(window.points >= 1438 && window.points <= 1440, String(window.points));
      assert.equal(backfill.samples, expected);
      assert.equal(backfill.accepted, expected);
      assert.equal(backfill.duplicates, 0);
      assert.equal(backfill.from, new Date(window.fromMs).toISOString());
      assert.equal(await stored(), expected);

      const [span] = await db.select({
        first: sql<Date>`MIN(${metricSamples.ts})`,
        last: sql<Date>`MAX(${metricSamples.ts})`,
        hours: sql<number>`COUNT(DISTINCT DATE_FORMAT(${metricSamples.ts}, '%Y-%m-%d %H'))`,
      }).from(metricSamples).where(sql`${metricSamples.ts} <= ${new Date(window.toMs)}`);
      assert.equal(new Date(span.first).getTime(), window.fromMs);
      assert.equal(new Date(span.last).getTime(), window.toMs);
      assert.ok(window.toMs <= untilMs && window.fromMs > untilMs - day);
      assert.ok(Number(span.hours) >= 24, `samples in ${span.hours} distinct hours`); // spread over the day
      // Every pool has every minute.
      const perPool = await db.select({ n: count() }).from(metricSamples)
        .where(sql`${metricSamples.ts} <= ${new Date(window.toMs)}`)
        .groupBy(metricSamples.nodeId, metricSamples.poolId);
      assert.deepEqual(perPool.map((row) => Number(row.n)), [1, 2, 3, 4].map(() => window.points));

      // The daily curve: more instances in the busy hours than at night.
      const meanCount = async (fromHour: number, toHour: number) => {
        const [row] = await db.select({ mean: sql<number>`AVG(${metricSamples.instanceCount})` })
          .from(metricSamples)
          .where(sql`HOUR(${metricSamples.ts}) BETWEEN ${fromHour} AND ${toHour}`);
        return Number(row.mean);
      };
      const dayMean = await meanCount(12, 16);
      const nightMean = await meanCount(0, 4);
      assert.ok(dayMean > nightMean + 1, `day ${dayMean} vs night ${nightMean}`);

      // Scaling events at their past times, one per decision.
      assert.ok(await storedEvents() >= backfill.scaling_events);
      assert.equal(await storedPastEvents(), backfill.scaling_events);
      assert.ok(backfill.scaling_events >= 4, `${backfill.scaling_events} events`);
    });

    await t.step("a re-run sends the same history: counted as duplicates, not stored twice", async () => {
      const backfill = await backfillRun();
      assert.equal(backfill.samples, expected);
      assert.equal(backfill.duplicates, expected);
      assert.equal(backfill.accepted, 0);
      assert.equal(await stored(), expected);
      assert.equal(await storedPastEvents(), backfill.scaling_events);
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("simulate command: runs for --seconds and prints a summary; bad arguments exit 2", async (t) => {
  const server = await startTestServer("simulate_cli", {
    env: { HEARTBEAT_INTERVAL_S: "1", METRICS_RETENTION_DAYS: "1" },
  });
  try {
    await t.step("two nodes: an hour of history, then two seconds live", async () => {
      const token = await server.enrollmentToken();
      const run = await runCli([
        "simulate",
        "--url",
        server.apiUrl,
        "--nodes",
        "2",
        "--token",
        token,
        "--pools",
        "1",
        "--seconds",
        "2",
        "--backfill",
        "1h",
        "--tick-ms",
        "200",
        "--prefix",
        "clisim",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const summary = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
      assert.equal(summary.nodes, 2);
      assert.equal(summary.registered, 2);
      assert.equal(summary.samples_buffered, 0);
      assert.ok(summary.samples_sent > 0);
      const rows = await server.ctx.deps.db.select().from(nodes);
      assert.deepEqual(rows.map((row) => row.name).sort(), ["clisim-001", "clisim-002"]);
      const [stored] = await server.ctx.deps.db.select({ n: count() }).from(metricSamples);
      assert.equal(Number(stored.n), summary.samples_sent);
      // An hour at one sample a minute per pool, then live samples (one per pool every 200 ms).
      const backfill = summary.backfill;
      assert.equal(backfill.done, true);
      assert.ok(backfill.samples === 2 * 59 || backfill.samples === 2 * 60, String(backfill.samples));
      assert.equal(backfill.accepted, backfill.samples);
      assert.equal(backfill.step_s, 60);
      assert.ok(summary.samples_sent > backfill.samples);
      const [old] = await server.ctx.deps.db.select({ n: count() }).from(metricSamples)
        .where(sql`${metricSamples.ts} <= ${new Date(backfill.to)}`);
      assert.equal(Number(old.n), backfill.samples);
      assert.match(run.stdout, /backfill \d+ samples done/);
    });

    await t.step("history older than the server keeps is refused: exit 2 naming --backfill", async () => {
      const token = await server.enrollmentToken();
      const before = Number((await server.ctx.deps.db.select({ n: count() }).from(metricSamples))[0].n);
      const run = await runCli([
        "simulate",
        "--url",
        server.apiUrl,
        "--nodes",
        "1",
        "--token",
        token,
        "--backfill",
        "3d",
        "--prefix",
        "tooold",
      ]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /--backfill 3d was refused by the server/);
      assert.match(run.stderr, /older than the retention \(1 days\)/);
      const after = Number((await server.ctx.deps.db.select({ n: count() }).from(metricSamples))[0].n);
      assert.equal(after, before);
    });

    await t.step("usage errors name the option and exit 2", async () => {
      const given = ["--url", server.apiUrl, "--nodes", "2", "--token", "ace_x"];
      const cases: [string[], RegExp][] = [
        [["--nodes", "2", "--token", "ace_x"], /--url is required/],
        [
          ["--url", "notaurl", "--nodes", "2", "--token", "ace_x"],
          /--url must be an http:\/\/ or https:\/\/ URL.*"notaurl"/,
        ],
        [["--url", server.apiUrl, "--token", "ace_x"], /--nodes is required/],
        [
          ["--url", server.apiUrl, "--nodes", "0", "--token", "ace_x"],
          /--nodes must be a whole number in 1\.\.10000/,
        ],
        [[...given, "--speed", "fast"], /--speed must be a number/],
        [[...given, "--speed", "600"], /--speed is no longer supported: .*Use --backfill 1d/],
        [[...given, "--prefix", "a b"], /--prefix/],
        ...["0", "7x", "abc", "5m", "400d", "1.5d"].map((value): [string[], RegExp] => [
          [...given, "--backfill", value],
          new RegExp(`--backfill must be a span like 30m, 12h, 7d \\(got "${value}"\\)`),
        ]),
        [[...given, "--backfill", "1d", "--backfill-step", "5s"], /--backfill-step must be a span like 10s/],
        [[...given, "--backfill-step", "1m"], /--backfill-step needs --backfill/],
        [[...given, "--backfill", "1h", "--backfill-step", "1h"], /--backfill must span at least two/],
        [[...given, "--reject-config", "sim-003"], /--reject-config: "sim-003" is not one of the simulated/],
        [[...given, "--labels", "env"], /--labels: "env" expected key=value/],
      ];
      for (const [args, message] of cases) {
        const run = await runCli(["simulate", ...args]);
        assert.equal(run.code, 2, args.join(" "));
        assert.match(run.stderr, message);
        assert.match(run.stderr, /Usage: autoscaler-central simulate/);
      }
    });
  } finally {
    await server.close();
  }
});
