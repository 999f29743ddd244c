// What the load scripts share: a throwaway database with service dependencies over it, a free port, the
// environment that points a `main.ts serve` subprocess at that database, and that subprocess.
import { systemClock } from "../core/clock.ts";
import type { CoreDeps } from "../core/deps.ts";
import { createLogger } from "../core/logger.ts";
import { createTestDatabase, type TestDatabase } from "../tests/helpers/app.ts";

export async function benchDatabase(
  label: string,
  secretKey: string,
): Promise<{ database: TestDatabase; deps: CoreDeps }> {
  const database = await createTestDatabase(label, { env: { SECRET_KEY: secretKey } });
  const deps: CoreDeps = {
    db: database.db,
    pool: database.pool,
    settings: database.settings,
    clock: systemClock,
    logger: createLogger("warn", (line) => console.error(line)),
  };
  return { database, deps };
}

import { freePort } from "../tests/helpers/cli.ts";
export { freePort };

/** The environment of a server subprocess on `database`. */
export function serverEnv(
  database: TestDatabase,
  secretKey: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    MYSQL_HOST: database.settings.database.host,
    MYSQL_PORT: String(database.settings.database.port),
    MYSQL_USER: database.settings.database.user,
    MYSQL_PASSWORD: database.settings.database.password,
    MYSQL_DB: database.name,
    SECRET_KEY: secretKey,
    ENVIRONMENT: "test",
    ...extra,
  };
}

/** A whole-number command-line flag in 1..max (the fallback when absent); anything else exits 2 naming it. */
export function positiveFlag(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    console.error(`--${name} must be a whole number 1..${max}`);
    Deno.exit(2);
  }
  return value;
}

export interface ServerProcess {
  process: Deno.ChildProcess;
  port: number;
  /** http://127.0.0.1:<port> */
  base: string;
}

/** `main.ts serve` in a subprocess on a free port of 127.0.0.1, over `database` (see serverEnv for `env`);
 * `denoFlags` go to `deno run`, `serveFlags` after the port. Resolves once GET `readyPath` answers 2xx. */
export async function startServer(
  database: TestDatabase,
  secretKey: string,
  options: {
    env?: Record<string, string>;
    denoFlags?: string[];
    serveFlags?: string[];
    stdout?: "piped" | "null";
    readyPath?: string;
  } = {},
): Promise<ServerProcess> {
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const run = ["run", "-A", "--unstable-no-legacy-abort", ...options.denoFlags ?? []];
  const listen = ["--host", "127.0.0.1", "--port", String(port)];
  const process = new Deno.Command(Deno.execPath(), {
    args: [...run, "main.ts", "serve", ...listen, ...options.serveFlags ?? []],
    cwd: new URL("..", import.meta.url).pathname,
    env: serverEnv(database, secretKey, options.env),
    stdin: "null",
    stdout: options.stdout ?? "null",
    stderr: "inherit",
  }).spawn();
  const readyPath = options.readyPath ?? "/readyz";
  for (let i = 0;; i++) {
    try {
      const response = await fetch(`${base}${readyPath}`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (i > 300) throw new Error(`the server did not answer ${readyPath} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { process, port, base };
}
