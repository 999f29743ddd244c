// Applies the embedded migrations with Drizzle's own migrator (same __drizzle_migrations table as
// drizzle-kit), under a named lock so replicas starting together take turns.
import { createHash } from "node:crypto";
import type { MigrationMeta } from "drizzle-orm/migrator";
import type { Database, Pool } from "./client.ts";
import { withNamedLock } from "./client.ts";
import { type EmbeddedMigration, migrations as embedded } from "./migrations/index.ts";

export const MIGRATIONS_TABLE = "__drizzle_migrations";

/** The lock replicas of one database take turns under while migrating: per database (lock names are
 * server-wide, and staging, production or test databases may share a server), 64 characters at most. */
export function migrationLockName(database: string): string {
  return `ac_migrate_${createHash("sha256").update(database).digest("hex").slice(0, 32)}`;
}

function toMeta(migration: EmbeddedMigration): MigrationMeta {
  return {
    sql: migration.sql.split("--> statement-breakpoint"),
    bps: migration.breakpoints,
    folderMillis: migration.when,
    hash: createHash("sha256").update(migration.sql).digest("hex"),
  };
}

export interface MigrationStatus {
  applied: number;
  latestKnown: number;
  atHead: boolean;
}

/** How many of the embedded migrations the database has, read from drizzle's own table. */
export async function migrationStatus(pool: Pool, migrations = embedded): Promise<MigrationStatus> {
  const latestKnown = migrations.at(-1)?.when ?? 0;
  let lastApplied = 0;
  try {
    const [rows] = await pool.query(`SELECT MAX(created_at) AS last FROM \`${MIGRATIONS_TABLE}\``);
    lastApplied = Number((rows as { last: number | string | null }[])[0]?.last ?? 0);
  } catch (error) {
    if ((error as { code?: string }).code !== "ER_NO_SUCH_TABLE") throw error;
  }
  const applied = migrations.filter((m) => m.when <= lastApplied).length;
  return { applied, latestKnown, atHead: lastApplied >= latestKnown };
}

/** Applies pending migrations; returns how many were applied by this call. */
export async function migrate(db: Database, pool: Pool, migrations = embedded): Promise<number> {
  const [rows] = await pool.query("SELECT DATABASE() AS name");
  const database = String((rows as { name: string | null }[])[0]?.name ?? "");
  return await withNamedLock(pool, migrationLockName(database), 120, async () => {
    const before = await migrationStatus(pool, migrations);
    if (before.atHead) return 0;
    // deno-lint-ignore no-explicit-any
    const internals = db as any;
    await internals.dialect.migrate(migrations.map(toMeta), internals.session, {
      migrationsTable: MIGRATIONS_TABLE,
    });
    const after = await migrationStatus(pool, migrations);
    return after.applied - before.applied;
  });
}
