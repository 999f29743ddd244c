// What the load scripts share: a throwaway database with service dependencies over it, a free port, and
// the environment that points a `main.ts serve` subprocess at that database.
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

export { freePort } from "../tests/helpers/cli.ts";

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
