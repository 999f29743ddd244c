import assert from "node:assert/strict";
import { DEFAULT_SECRET_KEY, loadSettings, parseDotEnv, parseSettings, SettingsError } from "../config.ts";

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseSettings(env);
  } catch (error) {
    assert.ok(error instanceof SettingsError, `expected SettingsError, got ${error}`);
    return error.problems;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`);
}

Deno.test("settings: defaults match the original README", () => {
  const settings = parseSettings({});
  assert.equal(settings.API_PORT, 8000);
  assert.equal(settings.ENVIRONMENT, "development");
  assert.deepEqual(settings.database, {
    host: "127.0.0.1",
    port: 3306,
    user: "root",
    password: "",
    database: "autoscaler_central",
  });
  assert.equal(settings.SECRET_KEY, DEFAULT_SECRET_KEY);
  assert.equal(settings.HEARTBEAT_INTERVAL_S, 30);
  assert.equal(settings.OFFLINE_AFTER_S, 90);
});

Deno.test("settings: MYSQL_* variables and DATABASE_URL", async (t) => {
  await t.step("MYSQL_* build the connection", () => {
    const s = parseSettings({
      MYSQL_USER: "svc",
      MYSQL_PASSWORD: "pw",
      MYSQL_HOST: "mysql",
      MYSQL_PORT: "3307",
      MYSQL_DB: "central",
    });
    assert.deepEqual(s.database, {
      host: "mysql",
      port: 3307,
      user: "svc",
      password: "pw",
      database: "central",
    });
  });
  await t.step("DATABASE_URL wins and decodes escapes", () => {
    const s = parseSettings({
      MYSQL_HOST: "ignored",
      DATABASE_URL: "mysql://app:p%40ss@db.internal:3310/fleet",
    });
    assert.deepEqual(s.database, {
      host: "db.internal",
      port: 3310,
      user: "app",
      password: "p@ss",
      database: "fleet",
    });
  });
  await t.step("empty values count as unset", () => {
    assert.equal(parseSettings({ API_PORT: "", MYSQL_DB: "" }).API_PORT, 8000);
  });
});

Deno.test("settings: every bad value is refused with the variable named", async (t) => {
  // Values of a variable that it refuses on its own.
  const alone: Record<string, string[]> = {
    API_PORT: ["eighty", "70000", "0"],
    MYSQL_PORT: ["-1"],
    MYSQL_DB: ["bad-name; drop"],
    ENVIRONMENT: ["staging"],
    DATABASE_URL: ["not a url", "postgres://u@h/db", "mysql://u@h/"],
    HEARTBEAT_INTERVAL_S: ["0"],
    OFFLINE_AFTER_S: ["abc"],
    DB_POOL_SIZE: ["0"],
    METRICS_RETENTION_DAYS: ["1.5"],
    ROLLUP_1H_RETENTION_DAYS: ["3"],
    RETENTION_BATCH_ROWS: ["10"],
    JOBS_ENABLED: ["yes"],
    CONFIG_POLL_MS: ["5"],
    LOG_LEVEL: ["loud"],
    TRUST_PROXY: ["maybe"],
  };
  // Values refused together (or by a rule between variables), and the variable the refusal names.
  const together: [Record<string, string>, string][] = [
    [{ HEARTBEAT_INTERVAL_S: "60", OFFLINE_AFTER_S: "30" }, "OFFLINE_AFTER_S"],
    [{ RAW_RETENTION_DAYS: "7", METRICS_RETENTION_DAYS: "30" }, "METRICS_RETENTION_DAYS"],
    [{ RAW_RETENTION_DAYS: "120" }, "ROLLUP_5M_RETENTION_DAYS"],
  ];
  const cases: [Record<string, string>, string][] = [
    ...Object.entries(alone).flatMap(([variable, values]) =>
      values.map((value): [Record<string, string>, string] => [{ [variable]: value }, variable])
    ),
    ...together,
  ];
  for (const [env, variable] of cases) {
    await t.step(`${JSON.stringify(env)} -> ${variable}`, () => {
      const problems = problemsOf(env);
      assert.ok(problems.some((p) => p.startsWith(`${variable}:`)), problems.join("\n"));
    });
  }
});

Deno.test("settings: raw retention, and the ingestion window it bounds", () => {
  const defaults = parseSettings({});
  assert.equal(defaults.RAW_RETENTION_DAYS, 7);
  assert.equal(defaults.METRICS_RETENTION_DAYS, 7);
  assert.equal(defaults.ROLLUP_5M_RETENTION_DAYS, 90);
  assert.equal(defaults.ROLLUP_1H_RETENTION_DAYS, 730);
  // The original name alone still sets the raw retention (an upgrade keeps what it had).
  const legacy = parseSettings({ METRICS_RETENTION_DAYS: "30" });
  assert.equal(legacy.RAW_RETENTION_DAYS, 30);
  assert.equal(legacy.METRICS_RETENTION_DAYS, 30);
  const narrower = parseSettings({ RAW_RETENTION_DAYS: "14", METRICS_RETENTION_DAYS: "3" });
  assert.deepEqual([narrower.RAW_RETENTION_DAYS, narrower.METRICS_RETENTION_DAYS], [14, 3]);
});

Deno.test("settings: production refuses a default or short SECRET_KEY", async (t) => {
  await t.step("default key", () => {
    const problems = problemsOf({ ENVIRONMENT: "production" });
    assert.ok(problems.some((p) => p.startsWith("SECRET_KEY:") && p.includes("default")));
  });
  await t.step("short key", () => {
    const problems = problemsOf({ ENVIRONMENT: "production", SECRET_KEY: "short-secret" });
    assert.ok(problems.some((p) => p.startsWith("SECRET_KEY:") && p.includes("32")));
  });
  await t.step("a long random key is accepted", () => {
    const key = "k".repeat(16) + crypto.randomUUID();
    assert.equal(parseSettings({ ENVIRONMENT: "production", SECRET_KEY: key }).SECRET_KEY, key);
  });
  await t.step("development accepts the default", () => {
    assert.equal(parseSettings({ ENVIRONMENT: "development" }).SECRET_KEY, DEFAULT_SECRET_KEY);
  });
});

Deno.test("settings: .env files", () => {
  const parsed = parseDotEnv([
    "# Database Configuration",
    "MYSQL_USER=root",
    "MYSQL_PASSWORD='pass word'",
    'SECRET_KEY="with # hash"',
    "export API_PORT=9000 # trailing comment",
    "",
    "not a line",
  ].join("\n"));
  assert.deepEqual(parsed, {
    MYSQL_USER: "root",
    MYSQL_PASSWORD: "pass word",
    SECRET_KEY: "with # hash",
    API_PORT: "9000",
  });
});

Deno.test("settings: an empty environment variable does not hide the .env file's value", async () => {
  const dir = await Deno.makeTempDir();
  const previous = Deno.env.get("SECRET_KEY");
  try {
    await Deno.writeTextFile(`${dir}/.env`, `SECRET_KEY=${"f".repeat(40)}\nAPI_PORT=9001\n`);
    Deno.env.set("SECRET_KEY", "");
    const settings = loadSettings(`${dir}/.env`);
    assert.equal(settings.SECRET_KEY, "f".repeat(40));
    assert.equal(settings.API_PORT, 9001);
    Deno.env.set("SECRET_KEY", "e".repeat(40));
    assert.equal(loadSettings(`${dir}/.env`).SECRET_KEY, "e".repeat(40), "a set variable still wins");
  } finally {
    if (previous === undefined) Deno.env.delete("SECRET_KEY");
    else Deno.env.set("SECRET_KEY", previous);
    await Deno.remove(dir, { recursive: true });
  }
});
