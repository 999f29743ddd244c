// Soak: N simulated autoscalers (the real TypeScript client, tools/simulator.ts) against a real server
// process for a long time, watching that the server's memory stays flat and its latency steady.
//
//   deno task soak [--agents 500] [--minutes 10] [--pools 3] [--tick-ms 5000] [--svg bench/soak.svg]
//
// A throwaway database; `main.ts serve` as a subprocess with its periodic jobs on (rollups every minute);
// the fleet in this process. Every 10 s it samples the server's RSS (/proc) and scrapes GET /metrics,
// from which it takes the server-side heartbeat and metrics-batch latency of that window (histogram
// deltas), samples accepted, waiting pulls and job runs; a probe times one heartbeat a second from here.
// Prints a table per minute and a summary, writes a JSON of every window and a small SVG chart.
import { parseArgs } from "node:util";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { type Fleet, startFleet } from "../tools/simulator.ts";
import { flagOptions } from "../tools/cli/flags.ts";
import { benchDatabase, startServer } from "./helpers.ts";

const args = parseArgs({
  args: Deno.args,
  options: flagOptions("agents minutes pools tick-ms svg json"),
  strict: true,
});
const whole = (name: string, raw: string | undefined, fallback: number, max: number) => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    console.error(`--${name} must be a number in (0, ${max}]`);
    Deno.exit(2);
  }
  return value;
};
const AGENTS = whole("agents", args.values.agents, 500, 5_000);
const MINUTES = whole("minutes", args.values.minutes, 10, 24 * 60);
const POOLS = whole("pools", args.values.pools, 3, 10);
const TICK_MS = whole("tick-ms", args.values["tick-ms"], 5_000, 600_000);
const SVG_PATH = args.values.svg ?? new URL("./soak.svg", import.meta.url).pathname;
const JSON_PATH = args.values.json ?? "/tmp/autoscaler-central-soak.json";
const WINDOW_MS = 10_000;
const SECRET_KEY = "soak-secret-key-soak-secret-key-0123456789";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

// ---- /metrics reading: counters and histogram buckets by the labels we care about

interface Scrape {
  at: number;
  ms: number;
  text: string;
}

function seriesValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

/** Cumulative bucket counts (le -> count) of a histogram's series matching `labels`, summed. */
function buckets(text: string, name: string, labels: Record<string, string>): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    const le = /le="([^"]+)"/.exec(line)![1];
    const bound = le === "+Inf" ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return out;
}

/** A quantile from the difference of two cumulative histograms (upper bound of the bucket, as Prometheus'
 * histogram_quantile would interpolate within it; the bound is the honest figure with coarse buckets). */
function quantileOfDelta(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return NaN;
  for (const bound of bounds) {
    if ((after.get(bound) ?? 0) - (before.get(bound) ?? 0) >= q * total) return bound;
  }
  return Infinity;
}

// ---- setup

const { database, deps } = await benchDatabase("soak", SECRET_KEY);
const { process: server, base } = await startServer(database, SECRET_KEY, {
  env: { LOG_LEVEL: "warn", ROLLUP_INTERVAL_S: "60", RETENTION_INTERVAL_S: "300" },
});

const dir = await Deno.makeTempDir({ prefix: "soak-fleet-" });
const { token } = await createEnrollmentToken(deps, { principal: { kind: "system", name: "soak" } }, {
  name: "soak",
});
console.log(
  `soak: ${AGENTS} agents x ${POOLS} pools, a sample per pool every ${TICK_MS / 1000} s, ${MINUTES} min, ` +
    `server pid ${server.pid} on ${base}`,
);
// In waves of 50, each registered before the next: 500 registrations at once (they take turns on the
// enrollment token's row) time out client-side on a loaded host after the server registered the node, and
// a known name cannot register again with the enrollment token alone.
const WAVE = 50;
const fleets: Fleet[] = [];
for (let first = 0, wave = 0; first < AGENTS; first += WAVE, wave++) {
  fleets.push(
    await startFleet({
      url: `${base}/api`,
      token,
      nodes: Math.min(WAVE, AGENTS - first),
      pools: POOLS,
      tickMs: TICK_MS,
      dir,
      prefix: `soak${wave}`,
      seed: 42 + wave,
      clientOptions: { configWaitS: 30 },
    }),
  );
  // The next wave only once this one is registered (or a minute has passed).
  await Promise.race([
    Promise.all(fleets.at(-1)!.agents.map((agent) => agent.client.whenRegistered())),
    sleep(60_000),
  ]);
}
const fleet = {
  stop: async (deadlineMs: number) => {
    const summaries = await Promise.all(fleets.map((f) => f.stop(deadlineMs)));
    const total: Record<string, number> = {};
    for (const summary of summaries) {
      for (const [key, value] of Object.entries(summary)) {
        if (typeof value === "number") total[key] = (total[key] ?? 0) + value;
      }
    }
    return total;
  },
};

// A probe node of our own: one heartbeat a second, timed from here.
const probe = await (await fetch(`${base}/api/v1/register`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ enrollment_token: token, name: "soak-probe", hostname: "probe" }),
})).json() as { node_id: string; node_token: string };
const probeLatencies: number[] = [];
let probing = true;
const prober = (async () => {
  while (probing) {
    const started = performance.now();
    const response = await fetch(`${base}/api/v1/nodes/${probe.node_id}/heartbeat`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${probe.node_token}` },
      body: JSON.stringify({ status: "running" }),
    });
    await response.body?.cancel();
    probeLatencies.push(performance.now() - started);
    await sleep(1000);
  }
})();

async function scrape(): Promise<Scrape> {
  const started = performance.now();
  const response = await fetch(`${base}/metrics`);
  const text = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${text.slice(0, 200)}`);
  parsePrometheusTextFormat(text); // throws on a malformed line
  return { at: Date.now(), ms, text };
}

interface Window {
  t_s: number;
  rss_mb: number;
  heartbeats_per_s: number;
  samples_per_s: number;
  heartbeat_p50_ms: number;
  heartbeat_p99_ms: number;
  batch_p99_ms: number;
  probe_p50_ms: number;
  probe_p99_ms: number;
  long_polls: number;
  scrape_ms: number;
  refused: number;
}

const HB = { route: "/api/v1/nodes/:id/heartbeat" };
const BATCH = { route: "/api/v1/nodes/:id/metrics" };
const H = "autoscaler_central_http_request_duration_seconds";
const windows: Window[] = [];
const started = Date.now();
let previous = await scrape();
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
console.log(
  "  min  RSS MB  hb/s  samples/s  hb p50/p99 ms  batch p99 ms  probe p50/p99 ms  waiting  scrape ms",
);
while (Date.now() - started < MINUTES * 60_000) {
  await sleep(WINDOW_MS);
  const now = await scrape();
  const seconds = (now.at - previous.at) / 1000;
  const probes = probeLatencies.splice(0).sort((a, b) => a - b);
  const delta = (name: string, labels: Record<string, string> = {}) =>
    seriesValue(now.text, name, labels) - seriesValue(previous.text, name, labels);
  const window: Window = {
    t_s: Math.round((now.at - started) / 1000),
    rss_mb: Math.round(rssMb(server.pid) * 10) / 10,
    heartbeats_per_s: Math.round(delta("autoscaler_central_heartbeats_total") / seconds),
    samples_per_s: Math.round(
      delta("autoscaler_central_metric_samples_total", { outcome: "accepted" }) / seconds,
    ),
    heartbeat_p50_ms: quantileOfDelta(buckets(previous.text, H, HB), buckets(now.text, H, HB), 0.5) * 1000,
    heartbeat_p99_ms: quantileOfDelta(buckets(previous.text, H, HB), buckets(now.text, H, HB), 0.99) * 1000,
    batch_p99_ms: quantileOfDelta(buckets(previous.text, H, BATCH), buckets(now.text, H, BATCH), 0.99) * 1000,
    probe_p50_ms: Math.round(pct(probes, 0.5) * 10) / 10,
    probe_p99_ms: Math.round(pct(probes, 0.99) * 10) / 10,
    long_polls: seriesValue(now.text, "autoscaler_central_long_polls_waiting"),
    scrape_ms: Math.round(now.ms * 10) / 10,
    refused: delta("autoscaler_central_refusals_total"),
  };
  windows.push(window);
  previous = now;
  if (windows.length % 6 === 0 || windows.length === 1) {
    const w = window;
    console.log(
      `${(w.t_s / 60).toFixed(1).padStart(5)}  ${w.rss_mb.toFixed(0).padStart(6)}  ${
        String(w.heartbeats_per_s).padStart(4)
      }  ` +
        `${String(w.samples_per_s).padStart(9)}  ${
          `${w.heartbeat_p50_ms}/${w.heartbeat_p99_ms}`.padStart(13)
        }  ` +
        `${String(w.batch_p99_ms).padStart(12)}  ${`${w.probe_p50_ms}/${w.probe_p99_ms}`.padStart(16)}  ` +
        `${String(w.long_polls).padStart(7)}  ${String(w.scrape_ms).padStart(9)}`,
    );
  }
}

// ---- wind down and report

probing = false;
await prober;
const summary = await fleet.stop(5_000);
const final = await scrape();
const jobs = ["rollups", "retention", "prune"].map((job) => ({
  job,
  ran: seriesValue(final.text, "autoscaler_central_job_runs_total", { job, outcome: "ran" }),
  seconds: seriesValue(final.text, "autoscaler_central_job_duration_seconds_sum", { job }),
}));
const [tables] = await database.pool.query(
  `SELECT table_name AS name, table_rows AS rows_estimate, data_length + index_length AS bytes
   FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE 'metric%'`,
  [database.name],
);
const [counted] = await database.pool.query("SELECT COUNT(*) AS n FROM metric_samples");
server.kill("SIGTERM");
await server.status;
await database.drop();
await Deno.remove(dir, { recursive: true });

const first = windows.slice(0, 6), last = windows.slice(-6);
const avg = (list: Window[], key: keyof Window) =>
  list.reduce((s, w) => s + (w[key] as number), 0) / list.length;
const figures = {
  agents: AGENTS,
  pools: POOLS,
  tick_ms: TICK_MS,
  minutes: MINUTES,
  rss_mb: {
    start: windows[0]?.rss_mb,
    end: windows.at(-1)?.rss_mb,
    max: Math.max(...windows.map((w) => w.rss_mb)),
    first_minute_avg: Math.round(avg(first, "rss_mb")),
    last_minute_avg: Math.round(avg(last, "rss_mb")),
  },
  heartbeat_p99_ms: {
    first_minute: Math.max(...first.map((w) => w.heartbeat_p99_ms)),
    last_minute: Math.max(...last.map((w) => w.heartbeat_p99_ms)),
  },
  probe_p99_ms: {
    first_minute: Math.round(avg(first, "probe_p99_ms") * 10) / 10,
    last_minute: Math.round(avg(last, "probe_p99_ms") * 10) / 10,
  },
  heartbeats_per_s: Math.round(avg(windows, "heartbeats_per_s")),
  samples_per_s: Math.round(avg(windows, "samples_per_s")),
  scrape_ms: {
    p50: pct(windows.map((w) => w.scrape_ms).sort((a, b) => a - b), 0.5),
    max: Math.max(...windows.map((w) => w.scrape_ms)),
  },
  refused: windows.reduce((s, w) => s + w.refused, 0),
  samples_stored: Number((counted as { n: number }[])[0].n),
  tables,
  jobs,
  fleet: summary,
};
console.log(JSON.stringify(figures, null, 2));
await Deno.writeTextFile(JSON_PATH, JSON.stringify({ figures, windows }, null, 2));
await Deno.writeTextFile(SVG_PATH, chart(windows));
console.log(`windows: ${JSON_PATH}; chart: ${SVG_PATH}`);
Deno.exit(0);

/** RSS (left axis) and heartbeat p99 and probe p99 (right axis) over the soak, as a small static SVG. */
function chart(points: Window[]): string {
  const width = 640, height = 240, left = 48, right = 48, top = 24, bottom = 32;
  const plotW = width - left - right, plotH = height - top - bottom;
  const maxT = Math.max(...points.map((p) => p.t_s), 1);
  const maxRss = Math.ceil(Math.max(...points.map((p) => p.rss_mb), 1) / 50) * 50;
  const latencies = points.flatMap((p) => [p.heartbeat_p99_ms, p.probe_p99_ms]).filter(Number.isFinite);
  const maxLat = Math.ceil(Math.max(...latencies, 1) / 10) * 10;
  const x = (t: number) => (left + (t / maxT) * plotW).toFixed(1);
  const yRss = (v: number) => (top + plotH - (v / maxRss) * plotH).toFixed(1);
  const yLat = (v: number) => (top + plotH - (Math.min(v, maxLat) / maxLat) * plotH).toFixed(1);
  const line = (get: (p: Window) => number, y: (v: number) => string) =>
    points.filter((p) => Number.isFinite(get(p))).map((p, i) => `${i ? "L" : "M"}${x(p.t_s)},${y(get(p))}`)
      .join(" ");
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${left}" y="14" font-size="12">Soak: ${AGENTS} agents, ${MINUTES} min - server RSS (MB, left) and heartbeat p99 (ms, right)</text>
${
    ticks.map((f) =>
      `<line x1="${left}" x2="${width - right}" y1="${top + plotH * (1 - f)}" y2="${
        top + plotH * (1 - f)
      }" stroke="#eee"/>
<text x="${left - 4}" y="${top + plotH * (1 - f) + 4}" text-anchor="end" fill="#1f77b4">${
        Math.round(maxRss * f)
      }</text>
<text x="${width - right + 4}" y="${top + plotH * (1 - f) + 4}" fill="#d62728">${
        Math.round(maxLat * f)
      }</text>`
    ).join("\n")
  }
${
    ticks.map((f) =>
      `<text x="${x(maxT * f)}" y="${height - 12}" text-anchor="middle">${
        (maxT * f / 60).toFixed(1)
      } min</text>`
    ).join("\n")
  }
<path d="${line((p) => p.rss_mb, yRss)}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<path d="${line((p) => p.heartbeat_p99_ms, yLat)}" fill="none" stroke="#d62728" stroke-width="1.5"/>
<path d="${
    line((p) => p.probe_p99_ms, yLat)
  }" fill="none" stroke="#ff9896" stroke-width="1" stroke-dasharray="3 2"/>
<text x="${left + 8}" y="${top + 12}" fill="#1f77b4">RSS</text>
<text x="${left + 48}" y="${top + 12}" fill="#d62728">heartbeat p99 (server, histogram bucket bound)</text>
<text x="${left + 330}" y="${top + 12}" fill="#ff9896">probe p99 (client)</text>
</svg>
`;
}
