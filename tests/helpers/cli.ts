// Runs the CLI as users run it: main.ts in a subprocess, its exit code and what it prints.
import { testSettings } from "./app.ts";

export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts <args>` in an empty temp cwd (so no stray .env is read); stdin is closed unless given. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<CliRun> {
  const cwd = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      cwd,
      env: { NO_COLOR: "1", ...options.env },
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const output = await child.output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

/** The MYSQL_* variables that point the CLI at a test database, plus any extra variables. */
export function databaseEnv(
  databaseName: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const db = testSettings(databaseName).database;
  return {
    MYSQL_HOST: db.host,
    MYSQL_PORT: String(db.port),
    MYSQL_USER: db.user,
    MYSQL_PASSWORD: db.password,
    MYSQL_DB: databaseName,
    ...extra,
  };
}

/** A TCP port free right now on 127.0.0.1 (for a server subprocess). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** `main.ts serve` on `port` against a test database, with its stdout and stderr collected. */
export function spawnServe(
  port: number,
  env: Record<string, string>,
  runtimeFlags: string[] = [],
): { child: Deno.ChildProcess; stdout: Promise<string>; stderr: Promise<string> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...runtimeFlags, MAIN, "serve", "--port", String(port), "--host", "127.0.0.1"],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  return { child, stdout: new Response(child.stdout).text(), stderr: new Response(child.stderr).text() };
}

/** True once GET /readyz answers 200, polled for up to `timeoutMs`: with the whole suite running in parallel
 * on two cores, starting takes 10 s and more (and a refused connection returns at once, so a count of
 * attempts is no measure of time). */
export async function untilReady(port: number, timeoutMs = 60_000): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      await res.body?.cancel();
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
