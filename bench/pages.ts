// Page benchmark: server time of the console's pages, and of the API reads behind them, with a fleet of
// 10,000 nodes and its history in the database.
//
//   deno task bench pages [--quick] [--nodes N] [--pools N] [--charted N] [--days N] [--runs N] [--keep]
//                         [--database NAME (measure a database an earlier --keep run seeded; kept)]
//
// The seed (a throwaway database, dropped at the end unless --keep):
// - N nodes (default 10,000; --quick 100) with 2 pools each, labels, regions, config versions and a mix of
//   states: ~94% online, 3% offline for hours, 1% never seen, 1% decommissioned; config mostly in sync,
//   some pending, failed or drifted.
// - A day of samples for every pool, one per 5 minutes (the original autoscaler's evaluation interval) and
//   one per 30 s (the agents' rate) in the last 15 minutes, from the simulator's load model and scaling rule
//   (tools/simulator.ts, the same as `simulate --backfill`), with their scaling events. The --charted nodes
//   whose charts are measured (default 5; --quick 1) get --days of it (default 30; --quick 1: a smoke run,
//   its figures mean little).
// - Stored as the service holds it once its rollup job has run, computed here from the same samples: raw
//   samples of the last hour (charted nodes: RAW_RETENTION_DAYS), the pools' 5-minute rollups of the last
//   6 h and 1-hour rollups of the day (charted nodes: the whole window), the fleet's 5-minute rows of the
//   day, and the job's watermarks at the last settled bucket. Then ANALYZE TABLE. (Running the rollup job
//   over the seed took over 30 minutes; tests/fleet_rollup_test.ts and tests/jobs_test.ts check that the
//   job writes what raw samples give.)
// Rows go in through db/seed.ts in multi-row statements (generating a fleet over the API would take hours).
//
// Server time is measured in process (app.request through every middleware, the body read to its end), a
// few warm-up requests first, then --runs sequential requests (default 20; --quick 3; 3 in all for a
// request slower than 2 s): printed, never asserted. Targets (issue 9): dashboard and a node list page
// < 100 ms, a 30-day chart < 150 ms. Pages not on main yet (404) are listed as such. The host's load
// average is printed with the figures (they mean little on a busy host).
import { positiveFlag } from "./helpers.ts";
import { parseArgs } from "node:util";
import { flagOptions } from "../tools/cli/flags.ts";
import { createApp } from "../app.ts";
import { toYaml } from "../client/mod.ts";
import { systemClock } from "../core/clock.ts";
import { configHash } from "../core/configDocument.ts";
import type { CoreDeps } from "../core/deps.ts";
import { FLEET_WATERMARK, JOB_NAMES, ROLLUP_SETTLE_MS } from "../core/housekeeping.ts";
import { createLogger } from "../core/logger.ts";
import type { Principal } from "../core/principal.ts";
import { createUser } from "../core/users.ts";
import {
  analyzeTables,
  type SeedConfigVersion,
  seedConfigVersions,
  type SeedEvent,
  seedEvents,
  type SeedFleetRollup,
  seedFleetRollups,
  type SeedNode,
  seedNodes,
  type SeedPool,
  seedPools,
  type SeedRollup,
  seedRollups,
  type SeedSample,
  seedSamples,
  tableRowCounts,
} from "../db/seed.ts";
import { readJobState, saveJobWatermark } from "../db/jobs.ts";
import { createDatabase } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { listNodeRows } from "../db/nodes.ts";
import { createTestDatabase, testSettings } from "../tests/helpers/app.ts";
import {
  backfillWindow,
  hashUnit,
  initialConfig,
  nodeHistory,
  PoolLoad,
  ruleFromConfig,
  SimulatedPool,
  simulatedPoolOcid,
} from "../tools/simulator.ts";

const args = parseArgs({
  args: Deno.args,
  options: flagOptions("nodes pools charted days runs database", "quick keep"),
  strict: true,
});
const quick = args.values.quick === true;
const NODES = positiveFlag("nodes", args.values.nodes, quick ? 100 : 10_000, 100_000);
const POOLS = positiveFlag("pools", args.values.pools, 2, 10);
const CHARTED = Math.min(NODES, positiveFlag("charted", args.values.charted, quick ? 1 : 5, 100));
const CHARTED_DAYS = positiveFlag("days", args.values.days, quick ? 1 : 30, 30);
const RUNS = positiveFlag("runs", args.values.runs, quick ? 3 : 20, 1_000);
const STEP_MS = 5 * 60_000;
/** The last minutes are sampled at the agents' own rate: the raw tail the fleet-wide reads add up. */
const TAIL_MS = 15 * 60_000;
const TAIL_STEP_MS = 30_000;
/** Every pool's raw samples go back this far, its 5-minute rollups FLEET_5M_MS, its 1-hour rollups and the
 * fleet's rows a day; the charted nodes have all of it over their whole window (raw within retention). */
const FLEET_RAW_MS = 3_600_000;
const FLEET_5M_MS = 6 * 3_600_000;
const SLOW_MS = 2_000;
const STATEMENT_CAP_S = 30;
interface CapConnection {
  query(sql: string, callback: () => void): void;
}
const DAY_MS = 86_400_000;
const SEED = 11;
const PREFIX = "bench";
const REGIONS = ["us-ashburn-1", "us-phoenix-1", "eu-frankfurt-1", "uk-london-1", "ap-tokyo-1"];
const TEAMS = ["payments", "search", "checkout", "media", "identity", "ads", "data", "edge"];
const BENCH_ENV = { SECRET_KEY: "bench-secret-key-bench-secret-key-0123456789", LOG_LEVEL: "warn" };
const SYSTEM: Principal = { kind: "system", name: "bench" };

/** Pool ids are given, so samples can be written before the pool rows (which take the latest figures). */
const poolIdOf = (nodeIndex: number, poolIndex: number) => nodeIndex * POOLS + poolIndex + 1;
const pad = (n: number, width = 2) => String(n).padStart(width, "0");
const sqlTime = (ms: number) => new Date(ms).toISOString().slice(0, 23).replace("T", " ");
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const count = (n: number) => n.toLocaleString("en-US");

// ------------------------------------------------------------------------------------------------ seeding

type NodeKind = "online" | "offline" | "never_seen" | "decommissioned";

/** A node's state from its index: fixed shares, spread over the fleet. */
function kindOf(index: number): NodeKind {
  if (index < CHARTED) return "online"; // charted nodes are healthy nodes with 30 days of history
  const roll = hashUnit(SEED, 101, index);
  if (roll < 0.03) return "offline";
  if (roll < 0.04) return "never_seen";
  if (roll < 0.05) return "decommissioned";
  return "online";
}

function configStateOf(index: number, kind: NodeKind): string {
  if (kind === "never_seen") return "pending";
  const roll = hashUnit(SEED, 102, index);
  return roll < 0.9 ? "in_sync" : roll < 0.94 ? "pending" : roll < 0.97 ? "failed" : "drifted";
}

interface SeedReport {
  samples: number;
  events: number;
  phases: [string, number][];
}

async function seed(
  deps: CoreDeps,
): Promise<{ report: SeedReport; charted: { id: string; ocid: string }[] }> {
  const now = Date.now();
  const phases: [string, number][] = [];
  let phaseStart = performance.now();
  const phase = (name: string) => {
    phases.push([name, performance.now() - phaseStart]);
    phaseStart = performance.now();
  };

  // Sorted ids: rows then go in primary-key order, as they would pile up over time.
  const ids = Array.from({ length: NODES }, () => crypto.randomUUID()).sort();
  const nodeRows: SeedNode[] = [];
  const poolRows: SeedPool[] = [];
  const versionRows: SeedConfigVersion[] = [];
  const ends: number[] = [];
  for (let index = 0; index < NODES; index++) {
    const id = ids[index];
    const name = `${PREFIX}-${pad(index + 1, 5)}`;
    const region = REGIONS[index % REGIONS.length];
    const kind = kindOf(index);
    const configState = configStateOf(index, kind);
    const body = initialConfig(PREFIX, index + 1, POOLS, region);
    const yamlText = toYaml(body);
    const hash = await configHash(yamlText);
    // Offline nodes went quiet 1 to 20 hours ago; decommissioned ones 2 to 5 days ago.
    const lastSeen = kind === "online"
      ? now - hashUnit(SEED, 103, index) * 25_000
      : kind === "offline"
      ? now - (1 + 19 * hashUnit(SEED, 104, index)) * 3_600_000
      : kind === "decommissioned"
      ? now - (2 + 3 * hashUnit(SEED, 105, index)) * DAY_MS
      : null;
    ends.push(lastSeen ?? now);
    const registered = now -
      (index < CHARTED ? CHARTED_DAYS + 10 : 5 + 30 * hashUnit(SEED, 106, index)) * DAY_MS;
    nodeRows.push({
      id,
      name,
      hostname: `${name}.${region}.internal`,
      region,
      agentVersion: index % 7 === 0 ? "1.4.2" : "1.5.0",
      labels: {
        env: index % 10 < 7 ? "prod" : index % 10 < 9 ? "staging" : "dev",
        team: TEAMS[index % TEAMS.length],
      },
      tokenHash: Array.from({ length: 4 }, (_, k) => hashUnit(SEED, 107, index, k).toString(16).slice(2, 18))
        .join("").padEnd(64, "0").slice(0, 64),
      tokenIssuedAt: new Date(registered),
      registeredAt: new Date(registered),
      lastHeartbeatAt: lastSeen === null ? null : new Date(lastSeen),
      lastAddress: lastSeen === null ? null : `10.${index >> 16}.${(index >> 8) & 255}.${index & 255}`,
      reportedStatus: lastSeen === null ? null : "running",
      uptimeS: lastSeen === null ? null : Math.round((lastSeen - registered) / 1000),
      desiredHash: hash,
      desiredChangedAt: new Date(registered),
      appliedHash: configState === "in_sync" ? hash : configState === "pending" ? null : "0".repeat(64),
      configState,
      configError: configState === "failed" ? "pools.0.cpu_threshold: agent could not apply (bench)" : null,
      configAckedAt: configState === "pending" ? null : new Date(registered + 60_000),
      decommissionedAt: kind === "decommissioned" ? new Date(lastSeen!) : null,
      createdAt: new Date(registered),
      updatedAt: new Date(lastSeen ?? registered),
    });
    versionRows.push({
      nodeId: id,
      version: 1,
      body,
      yamlText,
      hash,
      source: "agent",
      author: name,
      comment: null,
      createdAt: new Date(registered),
    });
    (body.pools as { instance_pool_id: string }[]).forEach((pool, j) => {
      poolRows.push({
        id: poolIdOf(index, j),
        nodeId: id,
        poolOcid: pool.instance_pool_id,
        displayName: pool.instance_pool_id.slice(-8),
        compartmentId: "ocid1.compartment.oc1..aaaabench",
        region,
        minSize: 1,
        maxSize: 10,
        createdAt: new Date(registered),
        updatedAt: new Date(registered),
      });
    });
  }
  await seedNodes(deps.db, nodeRows);
  await seedConfigVersions(deps.db, versionRows);
  phase(`${count(NODES)} nodes and their config versions`);

  // History: the simulator's pools stepped over each node's window (5-minute steps, then the last
  // TAIL_MS at the agents' own 30 s), written as the service would hold it once its rollup job had run: raw
  // samples for the recent part, the pools' 5-minute and 1-hour rollups and the fleet's 5-minute rows
  // computed here from the same samples (running the job over millions of rows took half an hour), and
  // the job's watermarks at the last settled bucket.
  const settled = Math.floor((now - ROLLUP_SETTLE_MS) / STEP_MS) * STEP_MS;
  const fleetFrom = now - DAY_MS;
  const inFlight = new Set<Promise<void>>();
  const raw = batcher<SeedSample>((rows) => seedSamples(deps.pool, rows), inFlight);
  const rollups5m = batcher<SeedRollup>(
    (rows) => seedRollups(deps.pool, "metric_rollups_5m", rows),
    inFlight,
  );
  const rollups1h = batcher<SeedRollup>(
    (rows) => seedRollups(deps.pool, "metric_rollups_1h", rows),
    inFlight,
  );
  const events = batcher<SeedEvent>((rows) => seedEvents(deps.db, rows), inFlight);
  const fleet = new Map<number, FleetBucket>();
  const fleetEvents = new Map<number, { UP: number; DOWN: number }>();
  let generated = 0;
  for (let index = 0; index < NODES; index++) {
    const kind = kindOf(index);
    if (kind === "never_seen") continue;
    const id = ids[index];
    const charted = index < CHARTED;
    const region = REGIONS[index % REGIONS.length];
    const config = initialConfig(PREFIX, index + 1, POOLS, region).pools as Record<string, unknown>[];
    const pools = config.map((entry) => {
      const ocid = String(entry.instance_pool_id);
      return new SimulatedPool(ocid, ruleFromConfig(entry), new PoolLoad(SEED, ocid));
    });
    const poolIds = new Map(pools.map((pool, j) => [pool, poolIdOf(index, j)]));
    const rawFrom = now - (charted ? deps.settings.RAW_RETENTION_DAYS * DAY_MS : FLEET_RAW_MS);
    const rollup5mFrom = charted ? 0 : now - FLEET_5M_MS;
    const buckets = new Map<number, PoolBuckets>();
    const closeBucket = async (bucket: ClosedBucket) => {
      if (bucket.startMs >= rollup5mFrom) await rollups5m.push(bucket.row);
      if (bucket.hour) await rollups1h.push(bucket.hour);
      if (bucket.startMs >= fleetFrom) {
        let sum = fleet.get(bucket.startMs);
        if (!sum) fleet.set(bucket.startMs, sum = new FleetBucket());
        sum.add(bucket.row);
      }
    };
    const end = ends[index];
    const history = backfillWindow(
      Math.min(end, now - TAIL_MS),
      (charted ? CHARTED_DAYS : 1) * DAY_MS,
      STEP_MS,
    );
    const tailEnd = Math.floor(end / TAIL_STEP_MS) * TAIL_STEP_MS;
    const tailPoints = Math.max(0, Math.floor((tailEnd - history.toMs) / TAIL_STEP_MS));
    const windows = [history, {
      fromMs: history.toMs + TAIL_STEP_MS,
      toMs: tailEnd,
      stepMs: TAIL_STEP_MS,
      points: tailPoints,
    }];
    for (const window of windows) {
      for (const { ms, pool, observation } of nodeHistory(pools, window)) {
        const poolId = poolIds.get(pool)!;
        const instances = observation.decision ? observation.decision.to : observation.count;
        generated++;
        if (ms >= rawFrom) {
          await raw.push({
            nodeId: id,
            poolId,
            ts: sqlTime(ms),
            cpu: observation.cpu,
            memory: observation.ram,
            count: instances,
          });
        }
        if (ms < settled) {
          let state = buckets.get(poolId);
          if (!state) buckets.set(poolId, state = new PoolBuckets(id, poolId));
          const closed = state.add(ms, observation.cpu, observation.ram, instances);
          if (closed) await closeBucket(closed);
        }
        // The pool row carries the latest figures, as ingestion keeps them.
        Object.assign(poolRows[poolId - 1], {
          currentSize: instances,
          lastCpuUtil: observation.cpu,
          lastMemoryUtil: observation.ram,
          lastMetricsAt: new Date(ms),
        });
        if (observation.decision) {
          if (ms < settled && ms >= fleetFrom) {
            const bucket = Math.floor(ms / STEP_MS) * STEP_MS;
            let counts = fleetEvents.get(bucket);
            if (!counts) fleetEvents.set(bucket, counts = { UP: 0, DOWN: 0 });
            counts[observation.decision.direction]++;
          }
          await events.push({
            nodeId: id,
            poolId,
            ts: new Date(ms),
            direction: observation.decision.direction,
            fromCount: observation.count,
            toCount: observation.decision.to,
            reason: observation.decision.reason,
          });
        }
      }
    }
    for (const state of buckets.values()) {
      const closed = state.finish();
      if (closed) await closeBucket(closed);
      const hour = state.finishHour();
      if (hour) await rollups1h.push(hour);
    }
  }
  for (const writer of [raw, rollups5m, rollups1h, events]) await writer.flush();
  await Promise.all(inFlight);
  await seedFleetRollups(
    deps.pool,
    [...fleet.entries()].sort((a, b) => a[0] - b[0]).map(([ms, sum]) =>
      sum.row(sqlTime(ms), fleetEvents.get(ms) ?? { UP: 0, DOWN: 0 })
    ),
  );
  await seedPools(deps.db, poolRows);
  for (const name of [JOB_NAMES.rollups, FLEET_WATERMARK]) {
    await readJobState(deps.db, name);
    await saveJobWatermark(deps.db, name, new Date(settled));
  }
  phase(
    `${count(generated)} samples (${count(raw.total)} raw), rollups ${count(rollups5m.total)} 5 min, ` +
      `${count(rollups1h.total)} 1 h, ${count(fleet.size)} fleet; ${count(events.total)} scaling events`,
  );
  await analyzeTables(deps.pool);
  phase("ANALYZE TABLE");
  return { report: { samples: generated, events: events.total, phases }, charted: chartedNodes(ids) };
}

/** Rows collected and written 5,000 at a time, at most two statements in flight across all writers (the
 * generator overlaps the database's work). */
function batcher<T>(write: (rows: T[]) => Promise<void>, inFlight: Set<Promise<void>>) {
  let rows: T[] = [];
  const writer = {
    total: 0,
    async push(row: T) {
      rows.push(row);
      writer.total++;
      if (rows.length >= 5_000) await writer.flush();
    },
    async flush() {
      if (!rows.length) return;
      const batch = rows;
      rows = [];
      const done: Promise<void> = write(batch).finally(() => inFlight.delete(done));
      inFlight.add(done);
      if (inFlight.size >= 2) await Promise.race(inFlight);
    },
  };
  return writer;
}

interface Figures {
  samples: number;
  cpuSum: number;
  cpuMin: number;
  cpuMax: number;
  memorySum: number;
  memoryMin: number;
  memoryMax: number;
  last: number;
}

const emptyFigures = (): Figures => ({
  samples: 0,
  cpuSum: 0,
  cpuMin: Infinity,
  cpuMax: -Infinity,
  memorySum: 0,
  memoryMin: Infinity,
  memoryMax: -Infinity,
  last: 0,
});

function rollupRow(nodeId: string, poolId: number, startMs: number, f: Figures): SeedRollup {
  return {
    nodeId,
    poolId,
    bucketStart: sqlTime(startMs),
    samples: f.samples,
    cpuAvg: f.cpuSum / f.samples,
    cpuMin: f.cpuMin,
    cpuMax: f.cpuMax,
    memoryAvg: f.memorySum / f.samples,
    memoryMin: f.memoryMin,
    memoryMax: f.memoryMax,
    instanceCountLast: f.last,
  };
}

interface ClosedBucket {
  startMs: number;
  row: SeedRollup;
  /** The 1-hour row the bucket closed, when it was the first of a new hour. */
  hour: SeedRollup | null;
}

/** One pool's open 5-minute and 1-hour buckets, as the rollup job would aggregate them. */
class PoolBuckets {
  private start = -1;
  private figures = emptyFigures();
  private hourStart = -1;
  private hour = emptyFigures();
  constructor(readonly nodeId: string, readonly poolId: number) {}

  /** Adds a sample (in time order); returns the bucket it closed, if any. */
  add(ms: number, cpu: number, memory: number, instances: number): ClosedBucket | null {
    const start = Math.floor(ms / STEP_MS) * STEP_MS;
    const closed = start !== this.start ? this.finish() : null;
    this.start = start;
    const f = this.figures;
    f.samples++;
    f.cpuSum += cpu;
    f.cpuMin = Math.min(f.cpuMin, cpu);
    f.cpuMax = Math.max(f.cpuMax, cpu);
    f.memorySum += memory;
    f.memoryMin = Math.min(f.memoryMin, memory);
    f.memoryMax = Math.max(f.memoryMax, memory);
    f.last = instances;
    return closed;
  }

  finish(): ClosedBucket | null {
    if (this.figures.samples === 0) return null;
    const row = rollupRow(this.nodeId, this.poolId, this.start, this.figures);
    const hourStart = Math.floor(this.start / 3_600_000) * 3_600_000;
    const hour = hourStart !== this.hourStart ? this.finishHour() : null;
    this.hourStart = hourStart;
    const h = this.hour, f = this.figures;
    h.samples += f.samples;
    h.cpuSum += f.cpuSum;
    h.cpuMin = Math.min(h.cpuMin, f.cpuMin);
    h.cpuMax = Math.max(h.cpuMax, f.cpuMax);
    h.memorySum += f.memorySum;
    h.memoryMin = Math.min(h.memoryMin, f.memoryMin);
    h.memoryMax = Math.max(h.memoryMax, f.memoryMax);
    h.last = f.last;
    const closed = { startMs: this.start, row, hour };
    this.figures = emptyFigures();
    return closed;
  }

  finishHour(): SeedRollup | null {
    if (this.hour.samples === 0) return null;
    const row = rollupRow(this.nodeId, this.poolId, this.hourStart, this.hour);
    this.hour = emptyFigures();
    return row;
  }
}

/** The fleet's row of one 5-minute bucket, summed over the pools' rows (highest first, then node and pool
 * id, as the rollup job picks). */
class FleetBucket {
  private samples = 0;
  private pools = 0;
  private cpuSum = 0;
  private memorySum = 0;
  private instances = 0;
  private cpu: SeedRollup | null = null;
  private memory: SeedRollup | null = null;

  add(row: SeedRollup) {
    this.samples += row.samples;
    this.pools++;
    this.cpuSum += row.cpuAvg * row.samples;
    this.memorySum += row.memoryAvg * row.samples;
    this.instances += row.instanceCountLast;
    const before = (a: SeedRollup, b: SeedRollup) =>
      a.nodeId < b.nodeId || (a.nodeId === b.nodeId && a.poolId < b.poolId);
    if (
      !this.cpu || row.cpuMax > this.cpu.cpuMax || (row.cpuMax === this.cpu.cpuMax && before(row, this.cpu))
    ) {
      this.cpu = row;
    }
    if (
      !this.memory || row.memoryMax > this.memory.memoryMax ||
      (row.memoryMax === this.memory.memoryMax && before(row, this.memory))
    ) this.memory = row;
  }

  row(bucketStart: string, events: { UP: number; DOWN: number }): SeedFleetRollup {
    return {
      scaleUps: events.UP,
      scaleDowns: events.DOWN,
      bucketStart,
      samples: this.samples,
      pools: this.pools,
      cpuSum: this.cpuSum,
      memorySum: this.memorySum,
      cpuMax: this.cpu!.cpuMax,
      cpuMaxNodeId: this.cpu!.nodeId,
      cpuMaxPoolId: this.cpu!.poolId,
      memoryMax: this.memory!.memoryMax,
      memoryMaxNodeId: this.memory!.nodeId,
      memoryMaxPoolId: this.memory!.poolId,
      instances: this.instances,
    };
  }
}

/** The nodes whose charts are measured: the first ones in id order, by construction. */
function chartedNodes(ids: string[]): { id: string; ocid: string }[] {
  return ids.slice(0, CHARTED).map((id, index) => ({ id, ocid: simulatedPoolOcid(PREFIX, index + 1, 1) }));
}

async function seedAndReport(deps: CoreDeps): Promise<{ id: string; ocid: string }[]> {
  const { report, charted } = await seed(deps);
  for (const [name, ms] of report.phases) console.log(`  seed: ${name.padEnd(72)} ${seconds(ms)}`);
  return charted;
}

async function firstNodeIds(deps: CoreDeps): Promise<string[]> {
  const rows = await listNodeRows(deps.db, {
    sort: "name",
    order: "asc",
    limit: CHARTED,
    onlineSince: new Date(0),
  });
  return rows.map((row) => row.id);
}

// ------------------------------------------------------------------------------------------------ measuring

interface Measured {
  what: string;
  target: number | null;
  status: number;
  bytes: number;
  timesMs: number[];
  firstMs: number;
}

async function measure(
  app: ReturnType<typeof createApp>["app"],
  what: string,
  path: string,
  headers: Record<string, string>,
  target: number | null,
): Promise<Measured> {
  const once = async () => {
    const started = performance.now();
    const response = await app.request(path, { headers });
    const body = await response.arrayBuffer();
    return { ms: performance.now() - started, status: response.status, bytes: body.byteLength };
  };
  const first = await once();
  if (first.status !== 200) {
    return { what, target, status: first.status, bytes: first.bytes, timesMs: [], firstMs: first.ms };
  }
  // A request that takes seconds is measured twice more, not --runs times: the verdict is clear already.
  const slow = first.ms > SLOW_MS;
  if (!slow) await once();
  const timesMs: number[] = slow ? [first.ms] : [];
  let bytes = first.bytes;
  for (let i = 0; i < (slow ? 2 : RUNS); i++) {
    const run = await once();
    timesMs.push(run.ms);
    bytes = run.bytes;
  }
  return { what, target, status: 200, bytes, timesMs, firstMs: first.ms };
}

/** The host's 1, 5 and 15 minute load averages (Linux), or "?" elsewhere. */
function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function table(rows: Measured[]): string {
  const header = ["what", "target", "p50 ms", "p90 ms", "max ms", "KB", "verdict"];
  const lines = rows.map((row) => {
    if (row.status !== 200) {
      const why = row.status === 404
        ? "not on main yet (404)"
        : row.firstMs >= STATEMENT_CAP_S * 1000
        ? `over ${STATEMENT_CAP_S} s (query cut at the cap)`
        : `HTTP ${row.status}`;
      return [row.what, row.target ? `< ${row.target}` : "", "", "", "", "", why];
    }
    const sorted = [...row.timesMs].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    return [
      row.what,
      row.target ? `< ${row.target}` : "",
      p50.toFixed(1),
      percentile(sorted, 90).toFixed(1),
      sorted.at(-1)!.toFixed(1),
      (row.bytes / 1024).toFixed(1),
      row.target === null ? "" : p50 < row.target ? "within" : "OVER",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join("  ");
  return [format(header), format(widths.map((w) => "-".repeat(w))), ...lines.map(format)].join("\n");
}

// ------------------------------------------------------------------------------------------------ main

const started = performance.now();
const reuse = args.values.database;
if (reuse !== undefined && !/^act_bench_pages_[A-Za-z0-9_]+$/.test(reuse)) {
  console.error("--database must name a database an earlier --keep run left (act_bench_pages_...)");
  Deno.exit(2);
}
const database = reuse === undefined
  ? await createTestDatabase("bench_pages", { env: BENCH_ENV })
  : { ...createDatabase({ ...testSettings(reuse, BENCH_ENV).database }, 10), name: reuse, drop: () => {} };
// A kept database catches up with the migrations added since it was seeded.
if (reuse !== undefined) await migrate(database.db, database.pool);
const settings = testSettings(database.name, BENCH_ENV);
const deps: CoreDeps = {
  db: database.db,
  pool: database.pool,
  settings,
  clock: systemClock,
  logger: createLogger("warn", (line) => console.error(line)),
};
// Requests run on a pool of their own whose statements MariaDB cuts after STATEMENT_CAP_S (a request that
// would take minutes then fails at the cap and is reported as such, instead of holding up the run).
const measured = createDatabase(settings.database, 10);
(measured.pool as unknown as { pool: { on(event: "connection", fn: (c: CapConnection) => void): void } }).pool
  .on("connection", (connection) => {
    connection.query(`SET SESSION max_statement_time = ${STATEMENT_CAP_S}`, () => {});
  });
const { app, close } = createApp({ ...deps, db: measured.db, pool: measured.pool });
try {
  console.log(
    `page benchmark: ${count(NODES)} nodes x ${POOLS} pools, a day of 5-minute samples each, ` +
      `${CHARTED} charted node(s) with ${CHARTED_DAYS} days; ${RUNS} runs per request (database ${database.name})`,
  );
  const charted = reuse === undefined ? await seedAndReport(deps) : chartedNodes(await firstNodeIds(deps));
  if (reuse !== undefined) await analyzeTables(deps.pool);
  // Counting millions of rows again takes minutes on a busy host: a kept seed was counted when it was made.
  const rows = reuse === undefined ? await tableRowCounts(deps.db) : {};
  if (reuse === undefined) {
    console.log(
      `  rows: ${Object.entries(rows).map(([table, n]) => `${table} ${count(n)}`).join(", ")}`,
    );
  }

  const password = `bench-${crypto.randomUUID()}`;
  const username = `bench-viewer-${Date.now()}`;
  await createUser(deps, { principal: SYSTEM }, { username, password, role: "viewer" });
  const login = await app.request("/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const cookie = /acs_session=[^;]+/.exec(login.headers.get("set-cookie") ?? "")?.[0];
  if (login.status !== 200 || !cookie) throw new Error(`login failed: ${login.status} ${await login.text()}`);
  const asApi = { cookie };
  const asPage = { cookie, accept: "text/html" };

  const loadAtStart = loadAverage();
  const node = charted[0];
  const ocid = encodeURIComponent(node.ocid);
  const results: Measured[] = [];
  const run = async (what: string, path: string, headers: Record<string, string>, target: number | null) => {
    const result = await measure(app, what, path, headers, target);
    results.push(result);
    console.log(`  ${table([result]).split("\n")[2]}`);
  };
  await run("page: node list  GET /nodes", "/nodes", asPage, 100);
  await run("page: node list, filtered  GET /nodes?status=offline", "/nodes?status=offline", asPage, 100);
  await run(
    "page: node list, label filter  GET /nodes?label=env:staging",
    "/nodes?label=env:staging",
    asPage,
    100,
  );
  await run("page: pools  GET /pools", "/pools", asPage, 100);
  await run("page: pools, page 100  GET /pools?page=100", "/pools?page=100", asPage, 100);
  await run("page: node detail  GET /nodes/{id}", `/nodes/${node.id}`, asPage, null);
  await run("page: 30-day chart  GET /nodes/{id}?range=30d", `/nodes/${node.id}?range=30d`, asPage, 150);
  // What the range switcher asks for: the charts alone (htmx names its target), and the 10 s status poll.
  const fragment = (target: string) => ({
    ...asPage,
    "hx-request": "true",
    "hx-request-type": "partial",
    "hx-target": target,
  });
  await run(
    "fragment: 30-day charts (range switch)",
    `/nodes/${node.id}?range=30d`,
    fragment("section#node-charts"),
    150,
  );
  await run(
    "fragment: 7-day charts (range switch)",
    `/nodes/${node.id}?range=7d`,
    fragment("section#node-charts"),
    null,
  );
  await run("fragment: node status (10 s poll)", `/nodes/${node.id}`, fragment("div#node-status"), null);
  await run("api: GET /api/v1/nodes (first page of 50)", "/api/v1/nodes", asApi, 100);
  await run(
    "api: GET /api/v1/nodes?status=offline&sort=last_heartbeat",
    "/api/v1/nodes?status=offline&sort=last_heartbeat",
    asApi,
    100,
  );
  await run("api: GET /api/v1/events (latest 50)", "/api/v1/events", asApi, null);
  await run(
    "api: 30-day series of a pool (default step)",
    `/api/v1/nodes/${node.id}/metrics/${ocid}?hours=720`,
    asApi,
    150,
  );
  await run(
    "api: 24-hour series of a pool (default step)",
    `/api/v1/nodes/${node.id}/metrics/${ocid}?hours=24`,
    asApi,
    null,
  );
  // The fleet-wide reads last: with a large seed they take seconds.
  await run("page: dashboard  GET /", "/", asPage, 100);
  await run("page: dashboard, live refresh (partial)", "/", {
    ...asPage,
    "hx-request": "true",
    "hx-request-type": "partial",
  }, 100);
  await run("api: GET /api/v1/metrics/summary (24 h)", "/api/v1/metrics/summary", asApi, 100);
  console.log("");
  console.log(table(results));
  console.log(`load average at the start of the measurements ${loadAtStart}, at the end ${loadAverage()}`);
  console.log(`\ntotal ${seconds(performance.now() - started)}`);
} finally {
  await close();
  await measured.pool.end();
  if (args.values.keep || reuse !== undefined) {
    await database.pool.end();
    console.log(`kept database ${database.name}`);
  } else {
    await database.drop();
  }
}
