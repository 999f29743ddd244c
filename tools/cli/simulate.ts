// `autoscaler-central simulate`: a fleet of simulated autoscalers (tools/simulator.ts) against a running
// service, each embedding the real TypeScript client. With --backfill it first writes that much past
// history; then it runs live until SIGINT/SIGTERM or --seconds, printing a progress line every few seconds
// and a JSON summary at the end.
import { type SimulationSummary, startFleet } from "../simulator.ts";
import { parseExpires } from "./token.ts";
import * as fields from "../../core/fields.ts";
import { flagOptions } from "./flags.ts";

export const SIMULATE_USAGE =
  "simulate --url URL --nodes N --token T [--pools 3] [--backfill 7d] [--backfill-step 1m] [--seconds S] " +
  "[--tick-ms 1000] [--prefix sim] [--dir D] [--seed 1] [--labels env=staging,team=web] " +
  "[--reject-config sim-007,sim-012]";

export const SIMULATE_OPTIONS = flagOptions(
  "url nodes token pools seconds backfill backfill-step speed tick-ms prefix dir seed labels reject-config",
);

export interface SimulateTools {
  usageError(message: string): Error;
  /** Where progress lines go (stdout by default). */
  print?(line: string): void;
}

function number(
  values: Record<string, string | boolean | undefined>,
  name: string,
  fallback: number | undefined,
  check: { min: number; max: number; integer?: boolean },
  tools: SimulateTools,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (
    typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(value) || value < check.min ||
    value > check.max ||
    (check.integer && !Number.isInteger(value))
  ) {
    const kind = check.integer ? "a whole number" : "a number";
    throw tools.usageError(`--${name} must be ${kind} in ${check.min}..${check.max} (got "${raw}")`);
  }
  return value;
}

/** A span like 30m, 12h, 7d, 2w within [min, max] seconds, in milliseconds; a usage error naming the flag. */
function span(
  values: Record<string, string | boolean | undefined>,
  name: string,
  bounds: { min: number; max: number; examples: string },
  tools: SimulateTools,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const seconds = typeof raw === "string" ? parseExpires(raw) : undefined;
  if (typeof seconds !== "number" || seconds < bounds.min || seconds > bounds.max) {
    throw tools.usageError(`--${name} must be a span like ${bounds.examples} (got "${raw}")`);
  }
  return seconds * 1000;
}

/** --labels env=staging,team=web: the labels every simulated node registers with (the field rules of
 * core/fields.ts); a usage error naming the bad pair. */
export function parseLabelsOption(
  raw: string | boolean | undefined,
  tools: SimulateTools,
): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  const labels: Record<string, string> = {};
  for (const pair of String(raw).split(",").map((part) => part.trim()).filter(Boolean)) {
    const equals = pair.indexOf("=");
    const key = equals < 0 ? pair : pair.slice(0, equals);
    const value = equals < 0 ? "" : pair.slice(equals + 1);
    const problem = equals < 0
      ? "expected key=value"
      : fields.problemWith(fields.labelKey, key) ?? fields.problemWith(fields.labelValue, value);
    if (problem || key === "simulated" || key === "fleet") {
      throw tools.usageError(
        `--labels: "${pair}" ${problem ?? "is set by the simulator itself (simulated, fleet)"}`,
      );
    }
    labels[key] = value;
  }
  if (Object.keys(labels).length === 0) throw tools.usageError("--labels needs key=value pairs");
  return labels;
}

/** --reject-config sim-007,12: the nodes (names, or numbers of this run's nodes) that refuse every config
 * the server sends; a usage error naming one that is not among the `nodes` simulated nodes. */
export function parseRejectOption(
  raw: string | boolean | undefined,
  prefix: string,
  nodes: number,
  tools: SimulateTools,
): string[] {
  if (raw === undefined) return [];
  const names = new Set<string>();
  for (const part of String(raw).split(",").map((item) => item.trim()).filter(Boolean)) {
    const number = part.startsWith(`${prefix}-`) ? part.slice(prefix.length + 1) : part;
    const index = /^\d{1,6}$/.test(number) ? Number(number) : NaN;
    if (!(index >= 1 && index <= nodes)) {
      throw tools.usageError(
        `--reject-config: "${part}" is not one of the simulated nodes (${prefix}-001..` +
          `${prefix}-${String(nodes).padStart(3, "0")}, or their numbers 1..${nodes})`,
      );
    }
    const name = `${prefix}-${String(index).padStart(3, "0")}`;
    names.add(name);
  }
  if (names.size === 0) throw tools.usageError("--reject-config needs node names, e.g. sim-007,sim-012");
  return [...names];
}

/** --speed used to squeeze simulated days into real minutes, which put a day's curve into minutes of
 * sample times; time is real now, so only 1 keeps its meaning. */
const SPEED_REMOVED = "--speed is no longer supported: samples carry the real time they describe, so a " +
  "faster clock would crowd a day's curve into minutes of chart. Use --backfill 1d (or 7d, ...) to write " +
  "past days at their real times, then watch the fleet live";

export function formatProgress(elapsedS: number, summary: SimulationSummary): string {
  const backfill = summary.backfill;
  const history = backfill
    ? `backfill ${backfill.samples} samples${backfill.done ? " done" : ""} ` +
      `(${backfill.accepted} new, ${backfill.duplicates} duplicate, ${backfill.scaling_events} scaling events), `
    : "";
  return `t=${elapsedS}s ${history}` +
    `nodes ${summary.registered}/${summary.nodes} registered, heartbeats ${summary.heartbeats}, ` +
    `samples ${summary.samples_sent} sent (${summary.samples_buffered} buffered, ${summary.samples_dropped} dropped), ` +
    `scaling ${summary.scaling_up} up / ${summary.scaling_down} down, ` +
    `configs ${summary.configs_applied} applied / ${summary.configs_failed} failed, errors ${summary.errors}`;
}

export async function simulateCommand(
  values: Record<string, string | boolean | undefined>,
  tools: SimulateTools,
): Promise<number> {
  const print = tools.print ?? ((line: string) => console.log(line));
  const url = values.url;
  if (typeof url !== "string") {
    throw tools.usageError('--url is required: the API root, e.g. "http://127.0.0.1:8000/api"');
  }
  if (!/^https?:\/\/./.test(url)) {
    throw tools.usageError(
      `--url must be an http:// or https:// URL, e.g. "http://127.0.0.1:8000/api" (got "${url}")`,
    );
  }
  const token = typeof values.token === "string" ? values.token : Deno.env.get("CENTRAL_ENROLLMENT_TOKEN");
  if (!token) {
    throw tools.usageError("--token (or CENTRAL_ENROLLMENT_TOKEN) is required: an enrollment token");
  }
  const nodes = number(values, "nodes", undefined, { min: 1, max: 10_000, integer: true }, tools);
  if (nodes === undefined) throw tools.usageError("--nodes is required (1..10000)");
  const pools = number(values, "pools", 3, { min: 1, max: 50, integer: true }, tools)!;
  const seconds = number(values, "seconds", undefined, { min: 1, max: 7 * 86_400 }, tools);
  if (number(values, "speed", 1, { min: 0.01, max: 1_000_000 }, tools) !== 1) {
    throw tools.usageError(SPEED_REMOVED);
  }
  const backfillMs = span(
    values,
    "backfill",
    { min: 600, max: 365 * 86_400, examples: "30m, 12h, 7d" },
    tools,
  );
  const stepMs = span(
    values,
    "backfill-step",
    { min: 10, max: 3_600, examples: "10s, 1m, 5m (10s..1h)" },
    tools,
  );
  if (stepMs !== undefined && backfillMs === undefined) {
    throw tools.usageError("--backfill-step needs --backfill");
  }
  if (backfillMs !== undefined && backfillMs < 2 * (stepMs ?? 60_000)) {
    throw tools.usageError("--backfill must span at least two --backfill-step (default 1m)");
  }
  const tickMs = number(values, "tick-ms", 1_000, { min: 50, max: 3_600_000, integer: true }, tools)!;
  const seed = number(values, "seed", 1, { min: 0, max: 2 ** 32 - 1, integer: true }, tools);
  const prefix = typeof values.prefix === "string" ? values.prefix : "sim";
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(prefix)) {
    throw tools.usageError(`--prefix must be 1..100 of A-Z a-z 0-9 . _ - (got "${prefix}")`);
  }
  const labels = parseLabelsOption(values.labels, tools);
  const rejectConfig = parseRejectOption(values["reject-config"], prefix, nodes, tools);
  const keepDir = typeof values.dir === "string";
  const dir = keepDir ? values.dir as string : await Deno.makeTempDir({ prefix: "autoscaler-sim-" });

  const fleet = await startFleet({
    url,
    token,
    nodes,
    pools,
    tickMs,
    dir,
    prefix,
    seed,
    labels,
    rejectConfig,
    backfill: backfillMs === undefined ? undefined : { spanMs: backfillMs, stepMs: stepMs ?? 60_000 },
  });
  print(
    `simulating ${nodes} node(s) x ${pools} pool(s) against ${url}` +
      (backfillMs === undefined ? "" : `, first writing ${values.backfill} of history`) +
      (rejectConfig.length ? `; ${rejectConfig.join(", ")} will reject every new config` : "") +
      ` (config files in ${dir}); Ctrl-C to stop`,
  );
  const started = Date.now();
  let stoppedCleanup = () => {};
  const stopped = new Promise<string>((resolve) => {
    const onSignal = (signal: "SIGINT" | "SIGTERM") => () => resolve(signal);
    const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
      const handler = onSignal(signal);
      Deno.addSignalListener(signal, handler);
      return [signal, handler] as const;
    });
    // --seconds counts live time: it starts once the history is written.
    let timer: ReturnType<typeof setTimeout> | undefined;
    void fleet.live.then((backfill) => {
      if (backfill?.refused) resolve("refused");
      else if (backfill && !backfill.done) return;
      else if (seconds !== undefined) timer = setTimeout(() => resolve("time"), seconds * 1000);
      if (backfill) print(formatProgress(Math.round((Date.now() - started) / 1000), fleet.summary()));
    });
    const progress = setInterval(
      () => print(formatProgress(Math.round((Date.now() - started) / 1000), fleet.summary())),
      5_000,
    );
    stoppedCleanup = () => {
      clearTimeout(timer);
      clearInterval(progress);
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    };
  });
  const reason = await stopped;
  stoppedCleanup();
  const why = reason === "time"
    ? `--seconds ${seconds} elapsed`
    : reason === "refused"
    ? "the server refused the history"
    : reason;
  print(`stopping (${why}); flushing metrics`);
  const summary = await fleet.stop(5_000);
  const lastErrors = fleet.agents.map((a) => a.lastError).filter((e): e is string => e !== undefined);
  print(formatProgress(Math.round((Date.now() - started) / 1000), summary));
  print(JSON.stringify({ ...summary, last_error: lastErrors.at(-1) ?? null }));
  if (!keepDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  if (summary.backfill?.refused) {
    throw tools.usageError(
      `--backfill ${values.backfill} was refused by the server (${summary.backfill.refused}); ` +
        "a span within its METRICS_RETENTION_DAYS is accepted",
    );
  }
  // Nothing registered at all means the URL or the token is wrong: say so with the exit code.
  return summary.registered === 0 ? 1 : 0;
}
