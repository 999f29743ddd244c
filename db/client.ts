// The database handle: one mysql2 pool and the Drizzle instance over it.
import { AsyncLocalStorage } from "node:async_hooks";
import mysql from "mysql2/promise";
import { drizzle, type MySql2Database } from "drizzle-orm/mysql2";
import type { DatabaseSettings } from "../config.ts";
import * as schema from "./schema.ts";

export type Database = MySql2Database<typeof schema>;
export type Pool = mysql.Pool;
/** A Drizzle transaction (what db.transaction hands its callback). */
export type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];
/** What every query function takes: the database or a transaction on it. */
export type DbOrTx = Database | Transaction;

export interface DatabaseHandle {
  pool: Pool;
  db: Database;
}

/** Default bound on one query (and on waiting for a pooled connection): DB_QUERY_TIMEOUT_MS. */
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000;
/** Bound on each query of work done under a named lock (migrations, jobs): long, but never forever. */
export const LONG_WORK_QUERY_TIMEOUT_MS = 15 * 60_000;

export interface PoolOptions {
  /** Bound on each query, waiting for a connection included; 0 leaves queries unbounded. */
  queryTimeoutMs?: number;
  /** Several statements in one query (its values escaped by mysql2 as always): for a writer that sends a
   * transaction in two round trips (db/agents.ts writeRegistrationBatch). Never for SQL with text from outside. */
  multipleStatements?: boolean;
}

/** Thrown when a query or a connection does not come within its bound; the code makes it a 503. */
export const DB_TIMEOUT_CODE = "DB_TIMEOUT";

function databaseTimeout(message: string): Error {
  return Object.assign(new Error(message), { code: DB_TIMEOUT_CODE });
}

// The bound that applies to the queries of the current async context: work under a named lock runs
// with the long one. A context carrier, not shared state: each async chain sees only its own value.
const queryBoundOverride = new AsyncLocalStorage<number>();

export function createPool(
  settings: DatabaseSettings,
  connectionLimit: number,
  options: PoolOptions = {},
): Pool {
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const pool = mysql.createPool({
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password,
    database: settings.database,
    connectionLimit,
    // Every datetime is UTC, whatever the server's or the host's zone.
    timezone: "Z",
    // A black-holed server never answers the handshake: give up as soon as a query would.
    connectTimeout: queryTimeoutMs > 0 ? Math.min(queryTimeoutMs, 10_000) : 10_000,
    enableKeepAlive: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    multipleStatements: options.multipleStatements ?? false,
    // Each connection's prepared-statement cache is allocated at its full size up front: mysql2's default
    // (16,000) is 512 KB per connection. Queries here are sent as text (pool.query, drizzle), so few are
    // ever prepared.
    maxPreparedStatements: 64,
    // No call-site stack captured for every query (an Error per query): a failed query is reported with its
    // SQL error and the request it served, not with the caller's frames.
    trace: false,
  });
  return queryTimeoutMs > 0 ? boundedPool(pool, queryTimeoutMs) : pool;
}

export function createDatabase(
  settings: DatabaseSettings,
  connectionLimit: number,
  options: PoolOptions = {},
): DatabaseHandle {
  const pool = createPool(settings, connectionLimit, options);
  return { pool, db: drizzle(pool, { schema, mode: "default" }) };
}

type QueryMethod = "query" | "execute";
type Connection = mysql.PoolConnection;

/** A pool whose every query (and wait for a connection) is bounded, so a stalled database (packets
 * black-holed, not refused) fails requests in bounded time instead of hanging them. A connection whose
 * query timed out is destroyed, not returned: its late answer would confuse the next query, and the
 * pool opens a fresh one when the database is back. Drizzle and the rest of db/ see a plain Pool. */
function boundedPool(pool: Pool, defaultTimeoutMs: number): Pool {
  const boundNow = () => queryBoundOverride.getStore() ?? defaultTimeoutMs;

  const acquire = async (timeoutMs: number): Promise<Connection> => {
    const pending = pool.getConnection();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(databaseTimeout(`no database connection within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([pending, late]);
    } catch (error) {
      // A connection that arrives after we gave up goes straight back.
      pending.then((connection) => connection.release(), () => {});
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };

  const run = async (
    connection: Connection,
    method: QueryMethod,
    sql: unknown,
    values: unknown,
    timeoutMs: number,
  ) => {
    // An explicit timeout (a long GET_LOCK wait) wins over the default.
    const options: Record<string, unknown> = typeof sql === "string"
      ? { sql }
      : { ...(sql as Record<string, unknown>) };
    options.timeout ??= Math.max(1, timeoutMs);
    try {
      // deno-lint-ignore no-explicit-any
      return await (connection[method] as any).call(connection, options, values);
    } catch (error) {
      if ((error as { code?: string }).code === "PROTOCOL_SEQUENCE_TIMEOUT") connection.destroy();
      throw error;
    }
  };

  const boundedConnection = (connection: Connection): Connection =>
    new Proxy(connection, {
      get(target, property) {
        if (property === "query" || property === "execute") {
          return (sql: unknown, values?: unknown) => run(target, property, sql, values, boundNow());
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });

  return new Proxy(pool, {
    get(target, property) {
      if (property === "getConnection") {
        return async () => boundedConnection(await acquire(boundNow()));
      }
      if (property === "query" || property === "execute") {
        return async (sql: unknown, values?: unknown) => {
          const timeoutMs = boundNow();
          const started = Date.now();
          const connection = await acquire(timeoutMs);
          try {
            return await run(connection, property, sql, values, timeoutMs - (Date.now() - started));
          } finally {
            connection.release(); // a no-op when run() destroyed it
          }
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Creates the database when missing. Returns false when the user may not (it must then exist already). */
export async function ensureDatabaseExists(settings: DatabaseSettings): Promise<boolean> {
  const connection = await mysql.createConnection({
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password,
    connectTimeout: 5_000,
  });
  try {
    await connection.query(
      `CREATE DATABASE IF NOT EXISTS \`${settings.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
    return true;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ER_DBACCESS_DENIED_ERROR" || code === "ER_ACCESS_DENIED_ERROR") return false;
    throw error;
  } finally {
    await connection.end();
  }
}

/** Runs `work` while holding a MySQL named lock (GET_LOCK), so one replica at a time does it. */
export async function withNamedLock<T>(
  pool: Pool,
  name: string,
  timeoutS: number,
  work: () => Promise<T>,
): Promise<T> {
  return await holdingNamedLock(pool, name, timeoutS, work, () => {
    throw new Error(`could not take the database lock "${name}" within ${timeoutS}s`);
  });
}

/** Like withNamedLock, but gives up at once (returns undefined) when another holder has the lock. */
export async function tryWithNamedLock<T>(
  pool: Pool,
  name: string,
  work: () => Promise<T>,
): Promise<T | undefined> {
  return await holdingNamedLock(pool, name, 0, work, () => undefined);
}

/** GET_LOCK on one pooled connection, `work`, RELEASE_LOCK on that same connection; `busy` when the
 * lock was not had within `timeoutS`. */
async function holdingNamedLock<T, B>(
  pool: Pool,
  name: string,
  timeoutS: number,
  work: () => Promise<T>,
  busy: () => B,
): Promise<T | B> {
  // Work under a lock (migrations, jobs) may legitimately run long: its queries get the long bound.
  return await queryBoundOverride.run(LONG_WORK_QUERY_TIMEOUT_MS, async () => {
    const connection = await pool.getConnection();
    try {
      const [rows] = await connection.query("SELECT GET_LOCK(?, ?) AS got", [name, timeoutS]);
      if ((rows as { got: number | null }[])[0]?.got !== 1) return busy();
      try {
        return await work();
      } finally {
        await connection.query("SELECT RELEASE_LOCK(?)", [name]);
      }
    } finally {
      connection.release();
    }
  });
}
