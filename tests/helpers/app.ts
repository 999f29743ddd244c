// Each test file gets its own throwaway database, built by the same migrations the service runs,
// and an app over it with a manual clock and an in-memory logger.
import { createApp } from "../../app.ts";
import { parseSettings, type Settings } from "../../config.ts";
import { ManualClock } from "../../core/clock.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { createMemoryLogger } from "../../core/logger.ts";
import { createDatabase, type DatabaseHandle, ensureDatabaseExists } from "../../db/client.ts";
import { migrate } from "../../db/migrate.ts";
import { migrations } from "../../db/migrations/index.ts";

/** Settings for tests: the MYSQL_* / DATABASE_URL of the environment, on a database of our own. */
export function testSettings(database: string, overrides: Record<string, string> = {}): Settings {
  // Heartbeats written before they are answered, so a test reads them right after (tests that want them
  // coalesced as in production pass HEARTBEAT_FLUSH_MS).
  const env = {
    ...Deno.env.toObject(),
    ENVIRONMENT: "test",
    LOG_LEVEL: "debug",
    HEARTBEAT_FLUSH_MS: "0",
    ...overrides,
  };
  const base = parseSettings(env);
  return { ...base, database: { ...base.database, database } };
}

export interface TestDatabase extends DatabaseHandle {
  name: string;
  settings: Settings;
  drop(): Promise<void>;
}

/** Creates a fresh database named after the test file, applies migrations, returns a pool on it. */
export async function createTestDatabase(
  label: string,
  options: { migrate?: boolean; env?: Record<string, string> } = {},
): Promise<TestDatabase> {
  const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  const name = `act_${label.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 40)}_${suffix}`;
  const settings = testSettings(name, options.env);
  await ensureDatabaseExists(settings.database);
  const handle = createDatabase(settings.database, 10, { queryTimeoutMs: settings.DB_QUERY_TIMEOUT_MS });
  if (options.migrate !== false) await migrate(handle.db, handle.pool);
  return {
    ...handle,
    name,
    settings,
    drop: async () => {
      await handle.pool.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await handle.pool.end();
    },
  };
}

export interface TestApp {
  app: ReturnType<typeof createApp>["app"];
  services: ReturnType<typeof createApp>["services"];
  /** Requests the agents' fast path answered itself. */
  agentFastPath: ReturnType<typeof createApp>["agentFastPath"];
  deps: CoreDeps;
  clock: ManualClock;
  logger: ReturnType<typeof createMemoryLogger>;
  database: TestDatabase;
  /** app.request() with JSON encoding of `json` and the given bearer token. */
  call(method: string, path: string, options?: CallOptions): Promise<Response>;
  /** Another app (a second replica) over the same database. */
  replica(): Promise<TestApp>;
  close(): Promise<void>;
}

export interface CallOptions {
  json?: unknown;
  body?: BodyInit;
  token?: string;
  headers?: Record<string, string>;
}

function buildTestApp(
  database: TestDatabase,
  handle: DatabaseHandle,
  clock: ManualClock,
  settings: Settings,
  ownsDatabase: boolean,
): TestApp {
  const logger = createMemoryLogger();
  const deps: CoreDeps = { ...handle, settings, clock, logger };
  const { app, services, agentFastPath, close } = createApp(deps);
  const call = (method: string, path: string, options: CallOptions = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] ??= "application/json";
      body = JSON.stringify(options.json);
    }
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    // As an HTTP client sends it: the agents' fast path (routes/agentFastPath.ts) takes only requests that
    // say their length, so without it every test call would go the full route.
    if (typeof body === "string") headers["content-length"] ??= String(new TextEncoder().encode(body).length);
    return Promise.resolve(app.request(path, { method, headers, body }));
  };
  const replicas: TestApp[] = [];
  return {
    app,
    services,
    agentFastPath,
    deps,
    clock,
    logger,
    database,
    call,
    replica: () => {
      const second = createDatabase(database.settings.database, 5, {
        queryTimeoutMs: database.settings.DB_QUERY_TIMEOUT_MS,
      });
      const replica = buildTestApp(database, second, clock, settings, false);
      replicas.push(replica);
      return Promise.resolve(replica);
    },
    close: async () => {
      for (const replica of replicas) await replica.close();
      await close();
      if (ownsDatabase) await database.drop();
      else await handle.pool.end();
    },
  };
}

/** A migrated throwaway database and an app over it. Close it at the end of the test file. */
export async function createTestApp(
  label: string,
  options: { env?: Record<string, string>; start?: string } = {},
): Promise<TestApp> {
  const database = await createTestDatabase(label, { env: options.env });
  const clock = new ManualClock(options.start ?? "2026-06-01T12:00:00Z");
  return buildTestApp(database, database, clock, database.settings, true);
}

/** A throwaway database migrated up to, not including, the first migration whose tag contains `tag`:
 * a test then writes rows the old schema allowed and runs `migrate` to see that migration treat them. */
export async function createDatabaseBefore(label: string, tag: string): Promise<TestDatabase> {
  const database = await createTestDatabase(label, { migrate: false });
  const index = migrations.findIndex((m) => m.tag.includes(tag));
  if (index < 1) {
    await database.drop();
    throw new Error(`no migration tagged like "${tag}" after the first`);
  }
  await migrate(database.db, database.pool, migrations.slice(0, index));
  return database;
}

/** What a migration does to rows the schema before it allowed: a throwaway database migrated up to the
 * migration tagged like `tag`, `statements` run on it, then the rest of the migrations; returns the rows
 * `query` reads after that. */
export async function rowsAfterMigration(
  label: string,
  tag: string,
  statements: string[],
  query: string,
): Promise<unknown[]> {
  const database = await createDatabaseBefore(label, tag);
  try {
    for (const sql of statements) await database.pool.query(sql);
    await migrate(database.db, database.pool);
    const [rows] = await database.pool.query(query);
    return rows as unknown[];
  } finally {
    await database.drop();
  }
}

/** Reads a JSON body, failing with the raw text when it is not JSON. */
export async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  const text = await response.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`expected JSON (status ${response.status}), got: ${text.slice(0, 500)}`);
  }
}
