// The CLI as users run it: a subprocess, its exit code and what it prints.
import assert from "node:assert/strict";
import { createTestDatabase } from "./helpers/app.ts";
import { databaseEnv, freePort, MAIN, runCli, spawnServe, untilReady } from "./helpers/cli.ts";

Deno.test("cli: help, version and usage errors", async (t) => {
  await t.step("--help lists the commands, exit 0", async () => {
    const run = await runCli(["--help"]);
    assert.equal(run.code, 0);
    for (const command of ["serve", "migrate", "healthcheck", "version"]) {
      assert.match(run.stdout, new RegExp(command));
    }
  });
  await t.step("command --help shows its usage, exit 0", async () => {
    const run = await runCli(["migrate", "--help"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /Usage: autoscaler-central migrate/);
  });
  await t.step("version prints the version, exit 0", async () => {
    const run = await runCli(["version"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^autoscaler-central \d+\.\d+\.\d+/);
  });
  await t.step("unknown command: named, exit 2", async () => {
    const run = await runCli(["frobnicate"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown command "frobnicate"/);
  });
  await t.step("unknown flag: named, exit 2", async () => {
    const run = await runCli(["serve", "--colour"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--colour/);
  });
  await t.step("bad flag value: named, exit 2", async () => {
    const run = await runCli(["serve", "--port", "http"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--port/);
  });
  await t.step("bad setting: variable named, exit 1", async () => {
    const run = await runCli(["migrate"], { env: { API_PORT: "eighty" } });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /API_PORT/);
  });
  await t.step("production with the default SECRET_KEY does not start, exit 1", async () => {
    const run = await runCli(["serve"], { env: { ENVIRONMENT: "production" } });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /SECRET_KEY/);
  });
});

Deno.test("cli: migrate creates the database and is idempotent", async () => {
  const database = await createTestDatabase("cli_migrate", { migrate: false });
  const name = `${database.name}_fresh`;
  try {
    const first = await runCli(["migrate"], { env: databaseEnv(name) });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied \d+ migration/);
    const second = await runCli(["migrate"], { env: databaseEnv(name) });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /up to date/);
    const [rows] = await database.pool.query(
      "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = 'nodes'",
      [name],
    );
    assert.equal(Number((rows as { n: number }[])[0].n), 1);
  } finally {
    await database.pool.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await database.drop();
  }
});

Deno.test("cli: serve answers, healthcheck passes, SIGTERM stops it cleanly", async () => {
  const database = await createTestDatabase("cli_serve", { migrate: false });
  const port = freePort();
  const { child, stdout, stderr } = spawnServe(port, databaseEnv(database.name));
  try {
    const up = await untilReady(port);
    assert.ok(up, "service did not become ready");
    const healthy = await runCli(["healthcheck", "--url", `http://127.0.0.1:${port}/healthz`]);
    assert.equal(healthy.code, 0, healthy.stderr);
    const down = await runCli(["healthcheck", "--url", "http://127.0.0.1:1/healthz"]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /healthcheck/);
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    const log = await stdout;
    await stderr;
    await database.drop();
    assert.equal(status.code, 0);
    const lines = log.trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(lines.some((l) => l.msg === "listening"));
    assert.ok(
      lines.some((l) => l.msg === "request" && l.path === "/readyz" && l.status === 200 && l.request_id),
    );
    assert.equal(lines.at(-1).msg, "stopped");
  }
});

Deno.test("cli: failures say why (the database's reason, the address that is taken), exit 1", async (t) => {
  const database = await createTestDatabase("cli_failures", { migrate: false });
  try {
    await t.step("a command on a database never migrated prints the database's reason", async () => {
      const run = await runCli(["token", "list"], { env: databaseEnv(database.name) });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /cause: Table '[^']*enrollment_tokens' doesn't exist/);
    });

    await t.step("SIGTERM while serve still waits for its database ends it at once (143)", async () => {
      // Port 1: nothing listens, so serve retries the connection for DB_CONNECT_RETRIES (60 s by default).
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "serve", "--port", String(freePort()), "--host", "127.0.0.1"],
        env: { NO_COLOR: "1", ...databaseEnv(database.name, { MYSQL_PORT: "1" }) },
        stdout: "piped",
        stderr: "null",
        stdin: "null",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let log = "";
      while (!log.includes("database not reachable yet")) {
        const { value, done } = await reader.read();
        assert.ok(!done, `serve ended before waiting for its database: ${log}`);
        log += value;
      }
      const signalled = Date.now();
      child.kill("SIGTERM");
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) log += chunk.value;
      const status = await child.status;
      assert.equal(status.code, 143);
      assert.ok(Date.now() - signalled < 5_000, `stopped after ${Date.now() - signalled} ms`);
      assert.match(log, /"msg":"stopped before serving"/);
      assert.match(log, /"signal":"SIGTERM"/);
    });

    await t.step("serve on a port in use names API_HOST/API_PORT and issues no setup code", async () => {
      assert.equal((await runCli(["migrate"], { env: databaseEnv(database.name) })).code, 0);
      const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (taken.addr as Deno.NetAddr).port;
      try {
        const run = await runCli(["serve", "--host", "127.0.0.1", "--port", String(port)], {
          env: databaseEnv(database.name),
        });
        assert.equal(run.code, 1);
        assert.match(run.stderr, new RegExp(`API_HOST/API_PORT: cannot listen on 127\\.0\\.0\\.1:${port}`));
        assert.doesNotMatch(run.stdout, /setup code/);
        const [rows] = await database.pool.query("SELECT COUNT(*) AS n FROM setup_codes");
        assert.equal(Number((rows as { n: number }[])[0].n), 0);
      } finally {
        taken.close();
      }
    });
  } finally {
    await database.drop();
  }
});
