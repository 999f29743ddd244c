import assert from "node:assert/strict";
import { createApp } from "../app.ts";
import { ManualClock } from "../core/clock.ts";
import { createMemoryLogger } from "../core/logger.ts";
import { createDatabase } from "../db/client.ts";
import { migrate, migrationLockName, migrationStatus } from "../db/migrate.ts";
import { migrations } from "../db/migrations/index.ts";
import * as schema from "../db/schema.ts";
import { getTableConfig, MySqlTable } from "drizzle-orm/mysql-core";
import { createTestDatabase, json } from "./helpers/app.ts";

Deno.test("migrations on a fresh database, re-run, and two replicas at once", async (t) => {
  const database = await createTestDatabase("migrations", { migrate: false });
  try {
    const deps = {
      ...database,
      settings: database.settings,
      clock: new ManualClock(),
      logger: createMemoryLogger(),
    };

    await t.step("before migrating, /readyz is 503 with migrations pending", async () => {
      const { app, close } = createApp(deps);
      const res = await app.request("/readyz");
      assert.equal(res.status, 503);
      const body = await json<{ status: string; checks: { database: string; migrations: string } }>(res);
      assert.equal(body.status, "not_ready");
      assert.deepEqual(body.checks, { database: "ok", migrations: "pending" });
      await close();
    });

    await t.step(
      "two replicas migrating together: one applies, the other waits and finds nothing to do",
      async () => {
        const second = createDatabase(database.settings.database, 2);
        try {
          const results = await Promise.all([
            migrate(database.db, database.pool),
            migrate(second.db, second.pool),
          ]);
          assert.deepEqual(results.sort(), [0, migrations.length]);
        } finally {
          await second.pool.end();
        }
      },
    );

    await t.step("every table of db/schema.ts exists", async () => {
      const expected = Object.values(schema)
        .filter((value) => value instanceof MySqlTable)
        .map((table) => getTableConfig(table as MySqlTable).name)
        .sort();
      const [rows] = await database.pool.query(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ?",
        [database.name],
      );
      const actual = (rows as { name: string }[]).map((r) => r.name).filter((n) => !n.startsWith("__"))
        .sort();
      assert.deepEqual(actual, expected);
    });

    await t.step("re-running applies nothing and status is at head", async () => {
      assert.equal(await migrate(database.db, database.pool), 0);
      const status = await migrationStatus(database.pool);
      assert.deepEqual(status, {
        applied: migrations.length,
        latestKnown: migrations.at(-1)!.when,
        atHead: true,
      });
    });

    await t.step("a build that carries a newer migration reports not at head", async () => {
      const newer = [...migrations, {
        tag: "9999_future",
        when: migrations.at(-1)!.when + 1,
        breakpoints: true,
        sql: "",
      }];
      const status = await migrationStatus(database.pool, newer);
      assert.equal(status.atHead, false);
      assert.equal(status.applied, migrations.length);
    });

    await t.step("after migrating, /readyz is 200", async () => {
      const { app, close } = createApp(deps);
      const res = await app.request("/readyz");
      assert.equal(res.status, 200);
      assert.equal((await json(res)).status, "ready");
      await close();
    });
  } finally {
    await database.drop();
  }
});

Deno.test("readiness with the database unreachable is 503, not a crash; liveness stays 200", async () => {
  const database = await createTestDatabase("unreachable", { migrate: false });
  await database.drop();
  // A port nothing listens on: the pool's connection attempts fail at once.
  const unreachable = createDatabase({ ...database.settings.database, port: 1 }, 2);
  const logger = createMemoryLogger();
  const { app, close } = createApp({
    ...unreachable,
    settings: database.settings,
    clock: new ManualClock(),
    logger,
  });
  try {
    const ready = await app.request("/readyz");
    assert.equal(ready.status, 503);
    const body = await json<{ status: string; checks: { database: string }; detail: string }>(ready);
    assert.equal(body.status, "not_ready");
    assert.equal(body.checks.database, "unreachable");
    assert.ok(body.detail.length > 0);
    const live = await app.request("/healthz");
    assert.equal(live.status, 200);
  } finally {
    await close();
    await unreachable.pool.end();
  }
});

Deno.test("the migration lock is per database: one database migrating never holds up another", async () => {
  const held = await createTestDatabase("migration_lock_held", { migrate: false });
  const other = await createTestDatabase("migration_lock_other", { migrate: false });
  const holder = await held.pool.getConnection();
  try {
    const [got] = await holder.query("SELECT GET_LOCK(?, 0) AS got", [migrationLockName(held.name)]);
    assert.equal((got as { got: number }[])[0].got, 1);
    // The other database migrates while the first one's lock is taken (with one server-wide name, it waited
    // up to 120 s and then failed).
    assert.equal(await migrate(other.db, other.pool), migrations.length);
    // The held database's own migration waits for its lock, and runs once it is released.
    let finished = false;
    const waiting = migrate(held.db, held.pool).then((applied) => {
      finished = true;
      return applied;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(finished, false);
    await holder.query("SELECT RELEASE_LOCK(?)", [migrationLockName(held.name)]);
    assert.equal(await waiting, migrations.length);
    assert.notEqual(migrationLockName(held.name), migrationLockName(other.name));
    assert.ok(migrationLockName("x".repeat(64)).length <= 64);
  } finally {
    holder.release();
    await held.drop();
    await other.drop();
  }
});
