// What the CLI's database commands (token, user) share: the service's settings and logger, a connection
// for the length of one command, the service's refusals printed as a message with exit code 1, and
// plain-text tables.
import type { Settings } from "../../config.ts";
import { loadSettings } from "../../config.ts";
import { systemClock } from "../../core/clock.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { AppError } from "../../core/errors.ts";
import { createLogger, type Logger } from "../../core/logger.ts";
import type { Principal } from "../../core/principal.ts";
import type { DatabaseHandle } from "../../db/client.ts";

/** The actor the audit log records for what the CLI does. */
export const CLI_PRINCIPAL: Principal = { kind: "system", name: "cli" };

export type Connect = (settings: Settings, logger: Logger) => Promise<DatabaseHandle>;

/** What main.ts (or a test) gives a database command. */
export interface CommandTools {
  connect: Connect;
  /** A bad argument: the CLI prints the usage and exits 2. */
  usageError: (message: string) => Error;
  /** Where the command's output goes (stdout by default). */
  out?: (line: string) => void;
}

/** The command's one positional argument, its action: one of `actions`, else a usage error. */
export function actionOf<A extends string>(
  command: string,
  actions: readonly A[],
  positionals: string[],
  usageError: (message: string) => Error,
): A {
  const [action, ...extra] = positionals;
  if (extra.length > 0) throw usageError(`unexpected argument "${extra[0]}"`);
  if (!(actions as readonly string[]).includes(action ?? "")) {
    throw usageError(action ? `unknown ${command} action "${action}"` : `say one of ${actions.join(", ")}`);
  }
  return action as A;
}

/** Runs `body` over a connection made with the service's settings, and closes it. An AppError that
 * `isRefusal` accepts is printed as `autoscaler-central <command>: <message>` and gives exit code 1. */
export async function withDatabase(
  command: string,
  connect: Connect,
  isRefusal: (error: AppError) => boolean,
  body: (deps: CoreDeps) => Promise<number>,
): Promise<number> {
  const settings = loadSettings();
  const logger = createLogger(settings.LOG_LEVEL, (line) => console.error(line));
  const handle = await connect(settings, logger);
  try {
    return await body({ ...handle, settings, clock: systemClock, logger });
  } catch (error) {
    if (error instanceof AppError && isRefusal(error)) {
      console.error(`autoscaler-central ${command}: ${error.message}`);
      return 1;
    }
    if ((error as { code?: string }).code === "ER_NO_SUCH_TABLE") {
      throw new Error("the database has no tables yet: run `autoscaler-central migrate` first");
    }
    throw error;
  } finally {
    await handle.pool.end();
  }
}

/** Prints `rows` under `header`, each column as wide as its widest cell, two spaces apart. */
export function printTable(out: (line: string) => void, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const line of [header, ...rows]) {
    out(line.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
  }
}
