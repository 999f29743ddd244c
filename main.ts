// autoscaler-central: the command line. `serve` is the default command.
// Exit codes: 0 success, 1 failure (bad settings, database unreachable, ...), 2 usage error.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { createDrain } from "./routes/drain.ts";
import { createApp } from "./app.ts";
import { loadSettings, type Settings, SettingsError } from "./config.ts";
import { systemClock } from "./core/clock.ts";
import { createLogger, type Logger } from "./core/logger.ts";
import { VERSION } from "./core/version.ts";
import { createDatabase, type DatabaseHandle, ensureDatabaseExists } from "./db/client.ts";
import { migrate } from "./db/migrate.ts";
import { issueSetupCode, SETUP_CODE_TTL_MS } from "./core/setup.ts";
import { TOKEN_OPTIONS, TOKEN_USAGE, tokenCommand } from "./tools/cli/token.ts";
import { USER_OPTIONS, USER_USAGE, userCommand } from "./tools/cli/user.ts";
import { SIMULATE_OPTIONS, SIMULATE_USAGE, simulateCommand } from "./tools/cli/simulate.ts";

export class UsageError extends Error {}

/** How the commands in tools/cli/ report a bad command line. */
const usageError = (message: string) => new UsageError(message);

interface Command {
  summary: string;
  usage: string;
  options: ParseArgsConfig["options"];
  allowPositionals?: boolean;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  serve: {
    summary: "apply pending migrations, then serve the API, docs and pages (default)",
    usage: "serve [--port N] [--host H] [--no-migrate]",
    options: { port: { type: "string" }, host: { type: "string" }, "no-migrate": { type: "boolean" } },
    run: (values) => serve(values),
  },
  migrate: {
    summary: "create the database if missing and apply pending migrations, then exit",
    usage: "migrate",
    options: {},
    run: async () => {
      const settings = loadSettings();
      const logger = createLogger(settings.LOG_LEVEL, (line) => console.error(line));
      const handle = await connect(settings, logger);
      try {
        const applied = await migrate(handle.db, handle.pool);
        console.log(applied === 0 ? "database is up to date" : `applied ${applied} migration(s)`);
        return 0;
      } finally {
        await handle.pool.end();
      }
    },
  },
  token: {
    summary: "create, list or revoke enrollment tokens (a new token is printed once)",
    usage: TOKEN_USAGE,
    options: TOKEN_OPTIONS,
    allowPositionals: true,
    run: (values, positionals) => tokenCommand(values, positionals, { connect, usageError }),
  },
  user: {
    summary: "create operator accounts, change passwords, disable/enable, list (no default account exists)",
    usage: USER_USAGE,
    options: USER_OPTIONS,
    allowPositionals: true,
    run: (values, positionals) => userCommand(values, positionals, { connect, usageError }),
  },
  simulate: {
    summary: "run N simulated autoscalers (the real client, daily load, scaling) against a service",
    usage: SIMULATE_USAGE,
    options: SIMULATE_OPTIONS,
    run: (values) => simulateCommand(values, { usageError }),
  },
  healthcheck: {
    summary: "exit 0 when the service answers /healthz (for container HEALTHCHECK)",
    usage: "healthcheck [--url http://127.0.0.1:8000/healthz]",
    options: { url: { type: "string" } },
    run: async (values) => {
      const url = typeof values.url === "string"
        ? values.url
        : `http://127.0.0.1:${healthcheckPort()}/healthz`;
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
        await response.body?.cancel();
        if (response.ok) return 0;
        console.error(`healthcheck: ${url} answered ${response.status}`);
      } catch (error) {
        console.error(`healthcheck: ${url}: ${error instanceof Error ? error.message : error}`);
      }
      return 1;
    },
  },
  version: {
    summary: "print the version",
    usage: "version",
    options: {},
    run: () => {
      console.log(`autoscaler-central ${VERSION} (deno ${Deno.version.deno})`);
      return Promise.resolve(0);
    },
  },
};

function healthcheckPort(): number {
  const raw = Deno.env.get("API_PORT");
  return raw && /^\d+$/.test(raw) ? Number(raw) : 8000;
}

function helpText(): string {
  const width = Math.max(...Object.values(commands).map((c) => c.usage.length));
  return [
    `autoscaler-central ${VERSION}: control plane for a fleet of OCI autoscalers`,
    "",
    "Usage: autoscaler-central [command] [options]",
    "",
    "Commands:",
    ...Object.values(commands).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    `  ${"help".padEnd(width)}  show this help (also --help, -h)`,
    "",
    "Settings come from the environment or a .env file: see README.md.",
  ].join("\n");
}

/** Runs the CLI; returns the exit code. */
export async function runCli(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === "help" || first === "--help" || first === "-h") {
    console.log(helpText());
    return 0;
  }
  const name = first === undefined || first.startsWith("-") ? "serve" : first;
  const commandArgs = first === undefined || first.startsWith("-") ? args : rest;
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    console.error(`autoscaler-central: unknown command "${name}"\n\n${helpText()}`);
    return 2;
  }
  if (commandArgs.includes("--help") || commandArgs.includes("-h")) {
    console.log(`Usage: autoscaler-central ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: commandArgs,
      options: command.options,
      strict: true,
      allowPositionals: command.allowPositionals ?? false,
    });
  } catch (error) {
    console.error(
      `autoscaler-central ${name}: ${error instanceof Error ? error.message : error}\n` +
        `Usage: autoscaler-central ${command.usage}`,
    );
    return 2;
  }
  try {
    return await command.run(
      parsed.values as Record<string, string | boolean | undefined>,
      parsed.positionals,
    );
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(
        `autoscaler-central ${name}: ${error.message}\nUsage: autoscaler-central ${command.usage}`,
      );
      return 2;
    }
    if (error instanceof SettingsError) {
      console.error(`autoscaler-central: ${error.message}`);
      return 1;
    }
    // Drizzle's "Failed query: ..." carries the database's own reason (a missing table, say) as its cause.
    const cause = error instanceof Error && error.cause instanceof Error
      ? `\n  cause: ${error.cause.message}`
      : "";
    console.error(`autoscaler-central ${name}: ${error instanceof Error ? error.message : error}${cause}`);
    return 1;
  }
}

/** Opens the pool, creating the database first when it is missing and the user may. Retries while the
 * server is starting (as under docker compose), for up to DB_CONNECT_RETRIES seconds. */
async function connect(settings: Settings, logger: Logger): Promise<DatabaseHandle> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1;; attempt++) {
    try {
      const created = await ensureDatabaseExists(settings.database);
      if (!created) {
        logger.warn("may not create databases; expecting it to exist", { db: settings.database.database });
      }
      break;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ER_ACCESS_DENIED_ERROR" || Date.now() > deadline) throw error;
      logger.warn("database not reachable yet; retrying", { attempt, error: (error as Error).message });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
  return createDatabase(settings.database, settings.DB_POOL_SIZE, {
    queryTimeoutMs: settings.DB_QUERY_TIMEOUT_MS,
  });
}

async function serve(values: Record<string, string | boolean | undefined>): Promise<number> {
  const settings = loadSettings();
  if (typeof values.port === "string") {
    if (!/^\d+$/.test(values.port) || Number(values.port) < 1 || Number(values.port) > 65535) {
      throw new UsageError(`--port must be 1..65535 (got "${values.port}")`);
    }
    settings.API_PORT = Number(values.port);
  }
  if (typeof values.host === "string") settings.API_HOST = values.host;
  const logger = createLogger(settings.LOG_LEVEL);
  // Until the server is up there is nothing to drain, so a stop signal ends the process at once (after the
  // migrations in progress, never halfway through them). As PID 1 in a container (the image has no init)
  // nothing else would: the kernel ignores signals PID 1 does not handle, and a replica waiting for its
  // database would hold `docker stop` or a pod's deletion for the whole grace period.
  let migrating = false;
  let stopRequested: "SIGTERM" | "SIGINT" | undefined;
  const exitEarly = (signal: "SIGTERM" | "SIGINT") => {
    logger.info("stopped before serving", { signal });
    Deno.exit(signal === "SIGTERM" ? 143 : 130);
  };
  const earlyListeners = (["SIGTERM", "SIGINT"] as const).map((signal) => {
    const listener = () => {
      if (!migrating) exitEarly(signal);
      stopRequested ??= signal;
      logger.info("stop requested: finishing the migrations first", { signal });
    };
    Deno.addSignalListener(signal, listener);
    return () => Deno.removeSignalListener(signal, listener);
  });
  const handle = await connect(settings, logger);
  if (!values["no-migrate"]) {
    migrating = true;
    const applied = await migrate(handle.db, handle.pool);
    migrating = false;
    logger.info("migrations", { applied });
    if (stopRequested) exitEarly(stopRequested);
  }
  const deps = { ...handle, settings, clock: systemClock, logger };
  const { app, services, close } = createApp(deps);
  const drain = createDrain(app.fetch, logger);
  // Listen before the jobs start and a setup code is issued: a port in use stops the start with nothing done.
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: settings.API_HOST,
      port: settings.API_PORT,
      onListen: ({ hostname, port }) =>
        logger.info("listening", {
          url: `http://${hostname}:${port}`,
          version: VERSION,
          env: settings.ENVIRONMENT,
        }),
    }, drain.fetch);
  } catch (error) {
    await close();
    await handle.pool.end();
    throw new Error(
      `API_HOST/API_PORT: cannot listen on ${settings.API_HOST}:${settings.API_PORT}: ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
  if (settings.JOBS_ENABLED) services.jobs.start();
  const setupCode = await issueSetupCode(deps);
  if (setupCode) {
    logger.warn("setup code: no user exists yet; open the console and enter this code to create the admin", {
      setup_code: setupCode,
      valid_h: SETUP_CODE_TTL_MS / 3600_000,
    });
  }

  // The shutdown in progress: runCli's caller exits the process when serve returns, so serve waits for it.
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => stopping ??= shutDown(signal);
  const shutDown = async (signal: string) => {
    logger.info("shutting down: draining in-flight requests", { signal, grace_s: settings.SHUTDOWN_GRACE_S });
    const started = Date.now();
    // Release waiting config pulls first, so they answer now instead of holding the drain.
    const released = close();
    // Requests in the handler finish, bodies still arriving included (new ones get 503 meanwhile); only
    // then are connections closed, since closing them makes any body still being read fail.
    await drain.drain(settings.SHUTDOWN_GRACE_S * 1000);
    await released;
    if (drain.inFlight > 0) {
      logger.warn("grace period over: closing connections", { in_flight: drain.inFlight });
    }
    drain.closing();
    const left = Math.max(0, settings.SHUTDOWN_GRACE_S * 1000 - (Date.now() - started));
    const grace = new Promise((resolve) => setTimeout(resolve, left));
    await Promise.race([server.shutdown(), grace]);
    // Heartbeats answered while draining are kept in memory like the others: write them before the pool ends.
    await services.heartbeats.flush().catch((error) => logger.warn("heartbeat flush failed", { error }));
    await handle.pool.end();
    logger.info("stopped");
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void stop(signal));
  }
  for (const remove of earlyListeners) remove();
  await server.finished;
  if (stopping) await stopping;
  else await handle.pool.end();
  return 0;
}

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
