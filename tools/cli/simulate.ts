// `autoscaler-central simulate`: a fleet of simulated autoscalers (tools/simulator.ts) against a running
// service, each embedding the real TypeScript client. Runs until SIGINT/SIGTERM or --seconds, printing a
// progress line every few seconds and a JSON summary at the end.
import { type SimulationSummary, startFleet } from "../simulator.ts";

export const SIMULATE_USAGE =
  "simulate --url URL --nodes N --token T [--pools 3] [--seconds S] [--speed 60] [--tick-ms 1000] " +
  "[--prefix sim] [--dir D] [--seed N]";

export const SIMULATE_OPTIONS = {
  url: { type: "string" },
  nodes: { type: "string" },
  token: { type: "string" },
  pools: { type: "string" },
  seconds: { type: "string" },
  speed: { type: "string" },
  "tick-ms": { type: "string" },
  prefix: { type: "string" },
  dir: { type: "string" },
  seed: { type: "string" },
} as const;

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

export function formatProgress(elapsedS: number, summary: SimulationSummary): string {
  return `t=${elapsedS}s sim=${summary.simulated_time.slice(0, 16).replace("T", " ")} ` +
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
  if (typeof url !== "string" || !/^https?:\/\/./.test(url)) {
    throw tools.usageError('--url is required: the API root, e.g. "http://127.0.0.1:8000/api"');
  }
  const token = typeof values.token === "string" ? values.token : Deno.env.get("CENTRAL_ENROLLMENT_TOKEN");
  if (!token) {
    throw tools.usageError("--token (or CENTRAL_ENROLLMENT_TOKEN) is required: an enrollment token");
  }
  const nodes = number(values, "nodes", undefined, { min: 1, max: 10_000, integer: true }, tools);
  if (nodes === undefined) throw tools.usageError("--nodes is required (1..10000)");
  const pools = number(values, "pools", 3, { min: 1, max: 50, integer: true }, tools)!;
  const seconds = number(values, "seconds", undefined, { min: 1, max: 7 * 86_400 }, tools);
  const speed = number(values, "speed", 60, { min: 0.01, max: 1_000_000 }, tools)!;
  const tickMs = number(values, "tick-ms", 1_000, { min: 50, max: 3_600_000, integer: true }, tools)!;
  const seed = number(values, "seed", undefined, { min: 0, max: 2 ** 32 - 1, integer: true }, tools);
  const prefix = typeof values.prefix === "string" ? values.prefix : "sim";
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(prefix)) {
    throw tools.usageError(`--prefix must be 1..100 of A-Z a-z 0-9 . _ - (got "${prefix}")`);
  }
  const keepDir = typeof values.dir === "string";
  const dir = keepDir ? values.dir as string : await Deno.makeTempDir({ prefix: "autoscaler-sim-" });

  const fleet = await startFleet({ url, token, nodes, pools, speed, tickMs, dir, prefix, seed });
  print(
    `simulating ${nodes} node(s) x ${pools} pool(s) against ${url} at ${speed}x ` +
      `(config files in ${dir}); Ctrl-C to stop`,
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
    const timer = seconds === undefined ? undefined : setTimeout(() => resolve("time"), seconds * 1000);
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
  print(`stopping (${reason === "time" ? `--seconds ${seconds} elapsed` : reason}); flushing metrics`);
  const summary = await fleet.stop(5_000);
  const lastErrors = fleet.agents.map((a) => a.lastError).filter((e): e is string => e !== undefined);
  print(formatProgress(Math.round((Date.now() - started) / 1000), summary));
  print(JSON.stringify({ ...summary, last_error: lastErrors.at(-1) ?? null }));
  if (!keepDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  // Nothing registered at all means the URL or the token is wrong: say so with the exit code.
  return summary.registered === 0 ? 1 : 0;
}
