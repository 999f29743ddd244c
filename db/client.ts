// The database handle: one mysql2 pool and the Drizzle instance over it.
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

export function createPool(settings: DatabaseSettings, connectionLimit: number): Pool {
  return mysql.createPool({
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password,
    database: settings.database,
    connectionLimit,
    // Every datetime is UTC, whatever the server's or the host's zone.
    timezone: "Z",
    connectTimeout: 5_000,
    enableKeepAlive: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
  });
}

export function createDatabase(settings: DatabaseSettings, connectionLimit: number): DatabaseHandle {
  const pool = createPool(settings, connectionLimit);
  return { pool, db: drizzle(pool, { schema, mode: "default" }) };
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
}
