// Periodic jobs across replicas: one replica runs each run, another takes a job over when its replica dies
// (a real process killed mid-run) and continues from the watermark; rollups agree with raw samples, late
// samples are folded in, retention deletes in batches and never raw samples not yet rolled up.
import assert from "node:assert/strict";
import { eq, sql } from "drizzle-orm";
import { JOB_NAMES, LOGIN_FAILURE_KEEP_MS } from "../core/housekeeping.ts";
import { jobState, metricRollupDirty } from "../db/schema.ts";
import { createTestApp, type TestApp } from "./helpers/app.ts";
import { insertPool, insertSamples, type SampleSpec } from "./helpers/fixtures.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";

const START = "2026-06-01T12:00:00Z";
const HOUR = 3_600_000;

/** Deterministic samples every 37 s over [from, from + hours). */
function sampleSeries(from: string, hours: number, seed: number): SampleSpec[] {
  const out: SampleSpec[] = [];
  const start = new Date(from).getTime();
  for (let t = start, i = 0; t < start + hours * HOUR; t += 37_000, i++) {
    const x = (i * 7919 + seed * 104_729) % 1000;
    out.push({ ts: new Date(t), cpu: x / 10, memory: (x * 3 % 1000) / 10, instances: 1 + (x % 9) });
  }
  return out;
}

interface Agg {
  samples: number;
  cpuAvg: number;
  cpuMin: number;
  cpuMax: number;
  memoryMax: number;
  last: number;
}

/** Raw samples grouped per (node, pool, bucket) computed in SQL of our own, the reference for the rollups. */
async function rawAggregates(ctx: TestApp, stepS: number): Promise<Map<string, Agg>> {
  const [rows] = await ctx.deps.pool.query(
    `SELECT node_id, pool_id, TIMESTAMPDIFF(SECOND, '1970-01-01', ts) DIV ${stepS} AS b, ts, cpu_util, memory_util,
       instance_count FROM metric_samples ORDER BY ts`,
  );
  const out = new Map<string, Agg>();
  for (const r of rows as Record<string, unknown>[]) {
    const key = `${r.node_id}/${r.pool_id}/${Number(r.b) * stepS}`;
    const cpu = Number(r.cpu_util);
    const a = out.get(key) ??
      { samples: 0, cpuAvg: 0, cpuMin: Infinity, cpuMax: -Infinity, memoryMax: -Infinity, last: 0 };
    a.cpuAvg = (a.cpuAvg * a.samples + cpu) / (a.samples + 1);
    a.samples++;
    a.cpuMin = Math.min(a.cpuMin, cpu);
    a.cpuMax = Math.max(a.cpuMax, cpu);
    a.memoryMax = Math.max(a.memoryMax, Number(r.memory_util));
    a.last = Number(r.instance_count);
    out.set(key, a);
  }
  return out;
}

async function rollupRows(ctx: TestApp, table: "metric_rollups_5m" | "metric_rollups_1h") {
  const [rows] = await ctx.deps.pool.query(
    `SELECT node_id, pool_id, TIMESTAMPDIFF(SECOND, '1970-01-01', bucket_start) AS s, samples, cpu_avg, cpu_min,
       cpu_max, memory_max, instance_count_last FROM ${table}`,
  );
  return new Map(
    (rows as Record<string, unknown>[]).map((r) => [
      `${r.node_id}/${r.pool_id}/${r.s}`,
      {
        samples: Number(r.samples),
        cpuAvg: Number(r.cpu_avg),
        cpuMin: Number(r.cpu_min),
        cpuMax: Number(r.cpu_max),
        memoryMax: Number(r.memory_max),
        last: Number(r.instance_count_last),
      },
    ]),
  );
}

/** Every rollup bucket equals the raw samples of that bucket; raw buckets before `until` all have one. */
async function assertRollupsMatchRaw(ctx: TestApp, until: Date) {
  for (const [table, stepS] of [["metric_rollups_5m", 300], ["metric_rollups_1h", 3600]] as const) {
    const raw = await rawAggregates(ctx, stepS);
    const rolled = await rollupRows(ctx, table);
    for (const [key, expected] of raw) {
      const bucketEnd = (Number(key.split("/")[2]) + stepS) * 1000;
      const got = rolled.get(key);
      if (bucketEnd > until.getTime()) continue; // not settled yet (the 1h bucket may be partial)
      assert.ok(got, `${table} lacks ${key}`);
      assert.equal(got.samples, expected.samples, `${table} ${key} samples`);
      assert.ok(Math.abs(got.cpuAvg - expected.cpuAvg) < 1e-9, `${table} ${key} cpu avg`);
      assert.equal(got.cpuMin, expected.cpuMin);
      assert.equal(got.cpuMax, expected.cpuMax);
      assert.equal(got.memoryMax, expected.memoryMax);
      assert.equal(got.last, expected.last, `${table} ${key} last instance count`);
    }
    for (const key of rolled.keys()) assert.ok(raw.has(key), `${table} has ${key} without raw samples`);
  }
}

async function stateOf(ctx: TestApp, name: string) {
  const rows = await ctx.deps.db.select().from(jobState).where(eq(jobState.name, name));
  return rows[0];
}

async function rowCount(ctx: TestApp, table: string): Promise<number> {
  const [rows] = await ctx.deps.pool.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number((rows as { n: number }[])[0].n);
}

Deno.test("jobs across replicas", async (t) => {
  const ctx = await createTestApp("jobs", { start: START });
  const other = await ctx.replica();
  try {
    const nodeA = crypto.randomUUID(), nodeB = crypto.randomUUID();
    const pools = [
      await insertPool(ctx, nodeA, "ocid1.instancepool.oc1.iad.a1"),
      await insertPool(ctx, nodeA, "ocid1.instancepool.oc1.iad.a2"),
      await insertPool(ctx, nodeB, "ocid1.instancepool.oc1.iad.b1"),
    ];
    // 06:00 .. 11:59:xx: six hours of raw samples per pool.
    for (const [i, poolId] of pools.entries()) {
      await insertSamples(ctx, i < 2 ? nodeA : nodeB, poolId, sampleSeries("2026-06-01T06:00:00Z", 6, i + 1));
    }

    await t.step("two replicas ticking together: one runs each job, the other skips it", async () => {
      for (const name of [JOB_NAMES.prune, JOB_NAMES.retention]) {
        const outcomes = await Promise.all([ctx.services.jobs.tick(name), other.services.jobs.tick(name)]);
        assert.equal(outcomes.filter((o) => o === "ran").length, 1, `${name}: ${outcomes}`);
        assert.ok(outcomes.every((o) => ["ran", "busy", "not_due"].includes(o)), `${name}: ${outcomes}`);
        const state = await stateOf(ctx, name);
        assert.equal(state.runs, 1);
        assert.equal(state.lastOutcome, "ok");
        const runner = outcomes[0] === "ran" ? ctx.services.jobs : other.services.jobs;
        assert.equal(state.owner, runner.owner);
      }
      // Not due again until its interval has passed, on either replica.
      assert.equal(await other.services.jobs.tick(JOB_NAMES.prune), "not_due");
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.prune), "not_due");
      ctx.clock.advance(10 * 60_000);
      assert.equal(await other.services.jobs.tick(JOB_NAMES.prune), "ran");
      assert.equal((await stateOf(ctx, JOB_NAMES.prune)).owner, other.services.jobs.owner);
      assert.equal((await stateOf(ctx, JOB_NAMES.prune)).runs, 2);
    });

    await t.step(
      "a service process dies mid-rollup; the other replica takes over from its watermark",
      async () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("./helpers/job_replica.ts", import.meta.url).pathname,
            ctx.database.name,
            ctx.clock.now().toISOString(),
          ],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let output = "";
        while (!output.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          output += value;
        }
        // The first hour step is saved; the process hangs holding the lock, its run unfinished.
        assert.match(output, /^step 2026-06-01T07:00:00.000Z/);
        assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "busy");
        const midway = await stateOf(ctx, JOB_NAMES.rollups);
        assert.equal(midway.owner, "replica-process");
        assert.equal(midway.watermark?.toISOString(), "2026-06-01T07:00:00.000Z");
        assert.equal(midway.finishedAt, null);

        child.kill("SIGKILL");
        await child.status;
        await reader.cancel().catch(() => {});
        // The server releases the lock when it sees the connection close; look until it has.
        let outcome = "busy";
        for (let i = 0; i < 50 && outcome === "busy"; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          outcome = await other.services.jobs.tick(JOB_NAMES.rollups);
        }
        assert.equal(outcome, "ran");
        const after = await stateOf(ctx, JOB_NAMES.rollups);
        assert.equal(after.owner, other.services.jobs.owner);
        // Settled: the clock (12:10) - 2 min, floored to 5 minutes.
        assert.equal(after.watermark?.toISOString(), "2026-06-01T12:05:00.000Z");
        assert.equal(after.runs, 1, "the killed run never finished");
        await assertRollupsMatchRaw(ctx, after.watermark!);
        // The bucket after the watermark is not rolled up yet.
        const [rows] = await ctx.deps.pool.query(
          "SELECT COUNT(*) AS n FROM metric_rollups_5m WHERE bucket_start >= '2026-06-01 12:05:00'",
        );
        assert.equal(Number((rows as { n: number }[])[0].n), 0);
      },
    );

    await t.step("running again changes nothing; the next run rolls the newly settled buckets", async () => {
      const before5m = await rowCount(ctx, "metric_rollups_5m");
      ctx.clock.advance(60_000);
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
      assert.equal(await rowCount(ctx, "metric_rollups_5m"), before5m);
      await insertSamples(ctx, nodeA, pools[0], [
        { ts: "2026-06-01T12:06:00Z", cpu: 40, memory: 40, instances: 3 },
        { ts: "2026-06-01T12:07:00Z", cpu: 60, memory: 40, instances: 4 },
      ]);
      ctx.clock.advance(5 * 60_000);
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
      const state = await stateOf(ctx, JOB_NAMES.rollups);
      assert.equal(state.watermark?.toISOString(), "2026-06-01T12:10:00.000Z");
      assert.equal(await rowCount(ctx, "metric_rollups_5m"), before5m + 1);
      await assertRollupsMatchRaw(ctx, state.watermark!);
    });

    await t.step(
      "late samples (an agent's buffer after an outage) are folded into their buckets",
      async () => {
        const node = await createNodeWithToken(ctx, "late-agent");
        const late = (ts: string, cpu: number) => ({
          instance_pool_id: "ocid1.instancepool.oc1.iad.late1",
          ts,
          cpu_util: cpu,
          memory_util: 50,
          instance_count: 4,
        });
        const response = await ctx.call("POST", `/api/v1/nodes/${node.nodeId}/metrics`, {
          token: node.token,
          json: { samples: [late("2026-06-01T08:01:00Z", 10), late("2026-06-01T08:02:00Z", 30)] },
        });
        assert.equal(response.status, 200, await response.clone().text());
        const dirty = await ctx.deps.db.select().from(metricRollupDirty);
        assert.deepEqual(dirty.map((d) => [d.nodeId, d.hourStart.toISOString()]), [
          [node.nodeId, "2026-06-01T08:00:00.000Z"],
        ]);
        // A live sample (seconds old) marks nothing.
        const live = await ctx.call("POST", `/api/v1/nodes/${node.nodeId}/metrics`, {
          token: node.token,
          json: { samples: [late(new Date(ctx.clock.now().getTime() - 5_000).toISOString(), 20)] },
        });
        assert.equal(live.status, 200);
        assert.equal((await ctx.deps.db.select().from(metricRollupDirty)).length, 1);

        ctx.clock.advance(60_000);
        assert.equal(await other.services.jobs.tick(JOB_NAMES.rollups), "ran");
        assert.equal((await ctx.deps.db.select().from(metricRollupDirty)).length, 0);
        const [rows] = await ctx.deps.pool.query(
          `SELECT samples, cpu_avg FROM metric_rollups_1h WHERE node_id = ? AND bucket_start = '2026-06-01 08:00:00'`,
          [node.nodeId],
        );
        assert.deepEqual(
          (rows as { samples: number; cpu_avg: number }[]).map((r) => [r.samples, r.cpu_avg]),
          [
            [2, 20],
          ],
        );
        await assertRollupsMatchRaw(ctx, (await stateOf(ctx, JOB_NAMES.rollups)).watermark!);
      },
    );

    await t.step("retention: batched deletes, raw kept until rolled up, each table its own age", async () => {
      // Move 8 days on: the raw samples are past RAW_RETENTION_DAYS (7), but the rollup job has not run
      // since, so its watermark (12:00 on day 0) holds the raw cutoff back only until then.
      ctx.clock.advance(8 * 24 * HOUR);
      const rawBefore = await rowCount(ctx, "metric_samples");
      const rollupsBefore = await rowCount(ctx, "metric_rollups_5m");
      await ctx.deps.pool.query(
        `INSERT INTO scaling_events (node_id, pool_id, ts, direction) VALUES (?, ?, ?, 'UP'), (?, ?, ?, 'DOWN')`,
        [
          nodeA,
          pools[0],
          new Date("2025-01-01T00:00:00Z"),
          nodeA,
          pools[0],
          new Date("2026-06-01T08:00:00Z"),
        ],
      );
      assert.equal(await other.services.jobs.tick(JOB_NAMES.retention), "ran");
      // Raw retention alone would delete up to 12:00 on day 1; the rollup watermark (12:05 on day 0) holds
      // it at 12:00 on day 0 (whole hours), so the samples of 12:06, 12:07 and 12:15:55 stay for now.
      assert.equal(await rowCount(ctx, "metric_samples"), 3);
      assert.ok(rawBefore > 1700);
      assert.equal(await rowCount(ctx, "metric_rollups_5m"), rollupsBefore, "rollups outlive raw samples");
      const [events] = await ctx.deps.pool.query("SELECT direction FROM scaling_events");
      assert.deepEqual((events as { direction: string }[]).map((e) => e.direction), ["DOWN"]);
    });

    await t.step("pruning: expired sessions and stale login failures", async () => {
      const now = ctx.clock.now();
      await ctx.deps.pool.query(
        `INSERT INTO login_failures (username, address, at) VALUES ('a', '1.2.3.4', ?), ('a', '1.2.3.4', ?)`,
        [new Date(now.getTime() - LOGIN_FAILURE_KEEP_MS - 1000), new Date(now.getTime() - 1000)],
      );
      await ctx.deps.pool.query(
        `INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) VALUES
           (REPEAT('a', 64), 1, REPEAT('c', 43), ?, ?, ?), (REPEAT('b', 64), 1, REPEAT('c', 43), ?, ?, ?)`,
        [now, now, new Date(now.getTime() - 1000), now, now, new Date(now.getTime() + HOUR)],
      );
      ctx.clock.advance(10 * 60_000);
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.prune), "ran");
      assert.equal(await rowCount(ctx, "login_failures"), 1);
      const [left] = await ctx.deps.pool.query("SELECT LEFT(id_hash, 1) AS h FROM sessions");
      assert.deepEqual((left as { h: string }[]).map((r) => r.h), ["b"]);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("retention never deletes raw samples the rollup job has not passed, and deletes in batches", async () => {
  const ctx = await createTestApp("jobs_retention", { start: START, env: { RETENTION_BATCH_ROWS: "100" } });
  try {
    const nodeId = crypto.randomUUID();
    const poolId = await insertPool(ctx, nodeId, "ocid1.instancepool.oc1.iad.r1");
    await insertSamples(ctx, nodeId, poolId, sampleSeries("2026-05-20T00:00:00Z", 3, 9)); // 12 days old
    // The rollup job never ran: nothing raw may go.
    assert.equal(await ctx.services.jobs.tick(JOB_NAMES.retention), "ran");
    const all = await rowCount(ctx, "metric_samples");
    assert.equal(all, 292);
    // Rolled up to 01:00 on 05-20 only: samples of the first hour go (in batches of 100), the rest stay.
    await ctx.deps.db.insert(jobState).values({
      name: JOB_NAMES.rollups,
      watermark: new Date("2026-05-20T01:00:00Z"),
    })
      .onDuplicateKeyUpdate({ set: { watermark: sql`VALUES(watermark)` } });
    ctx.clock.advance(HOUR);
    assert.equal(await ctx.services.jobs.tick(JOB_NAMES.retention), "ran");
    const [rows] = await ctx.deps.pool.query("SELECT MIN(ts) AS ts FROM metric_samples");
    assert.equal((rows as { ts: Date }[])[0].ts.toISOString(), "2026-05-20T01:00:26.000Z");
    assert.equal(await rowCount(ctx, "metric_samples"), all - 98);
    const logged = ctx.logger.lines.filter((l) => l.msg === "job ran" && l.job === "retention");
    assert.equal(logged.at(-1)?.deleted_metric_samples, 98);
  } finally {
    await ctx.close();
  }
});
