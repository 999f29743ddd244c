// Settings: environment (plus an optional .env file) -> typed, validated values.
// Every bad value is refused at start with the variable named.
import { z } from "zod";

export const DEFAULT_SECRET_KEY = "change_me_in_production";
const MIN_PRODUCTION_SECRET_LENGTH = 32;
export const DEFAULT_RAW_RETENTION_DAYS = 7;

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();

const settingsSchema = z.object({
  ENVIRONMENT: z.enum(["development", "test", "production"]).default("development"),
  DATABASE_URL: z.string().optional(),
  MYSQL_USER: z.string().min(1).default("root"),
  MYSQL_PASSWORD: z.string().default(""),
  MYSQL_HOST: z.string().min(1).default("127.0.0.1"),
  MYSQL_PORT: port.default(3306),
  MYSQL_DB: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, "letters, digits and _ only, at most 64").default(
    "autoscaler_central",
  ),
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
  DB_QUERY_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  SECRET_KEY: z.string().min(1).default(DEFAULT_SECRET_KEY),
  API_HOST: z.string().min(1).default("0.0.0.0"),
  API_PORT: port.default(8000),
  HEARTBEAT_INTERVAL_S: positiveInt.max(3600).default(30),
  OFFLINE_AFTER_S: positiveInt.max(86400).default(90),
  // Heartbeats are kept in memory and written at most this often, the latest per node, in one statement
  // per replica (core/agents.ts); 0 writes each before answering (group commit).
  HEARTBEAT_FLUSH_MS: z.coerce.number().int().min(0).max(10_000).default(1000),
  // Legacy name: when set without RAW_RETENTION_DAYS it is the raw retention; when both are set it may only
  // narrow the ingestion window (see `ingestionDays` below).
  METRICS_RETENTION_DAYS: positiveInt.max(3650).optional(),
  RAW_RETENTION_DAYS: positiveInt.max(3650).optional(),
  ROLLUP_5M_RETENTION_DAYS: positiveInt.max(3650).default(90),
  ROLLUP_1H_RETENTION_DAYS: positiveInt.max(36500).default(730),
  SCALING_EVENTS_RETENTION_DAYS: positiveInt.max(36500).default(365),
  AUDIT_RETENTION_DAYS: positiveInt.max(36500).default(365),
  JOBS_ENABLED: z.enum(["true", "false", "1", "0"]).default("true").transform((v) =>
    v === "true" || v === "1"
  ),
  ROLLUP_INTERVAL_S: z.coerce.number().int().min(5).max(3600).default(60),
  RETENTION_INTERVAL_S: z.coerce.number().int().min(10).max(86_400).default(3600),
  // Bearer token GET /metrics asks for; unset: /metrics is open (keep it on an internal network).
  METRICS_TOKEN: z.string().min(16, "at least 16 characters").optional(),
  MAX_BATCH_SAMPLES: z.coerce.number().int().min(1).max(10_000).default(1000),
  MAX_WAITING_PULLS: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
  // Per client address and replica: a fleet behind one NAT enrolls 600 agents a minute (the clients retry
  // after Retry-After beyond that); a flood from one address is stopped.
  REGISTER_RATE_PER_MIN: z.coerce.number().int().min(1).max(1_000_000).default(600),
  RETENTION_BATCH_ROWS: z.coerce.number().int().min(100).max(100_000).default(5000),
  MAX_BODY_BYTES: positiveInt.default(1_048_576),
  CONFIG_POLL_MS: z.coerce.number().int().min(50).max(10_000).default(500),
  SESSION_TTL_HOURS: positiveInt.max(24 * 90).default(12),
  MAX_CONFIG_WAITS_PER_NODE: positiveInt.max(1000).default(4),
  MAX_POOLS_PER_NODE: positiveInt.max(10_000).default(50),
  SHUTDOWN_GRACE_S: z.coerce.number().int().min(0).max(600).default(30),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  TRUST_PROXY: z.enum(["true", "false", "1", "0"]).default("false").transform((v) =>
    v === "true" || v === "1"
  ),
});

export type Settings =
  & Omit<z.infer<typeof settingsSchema>, "METRICS_RETENTION_DAYS" | "RAW_RETENTION_DAYS">
  & {
    /** Raw samples are kept this many days (RAW_RETENTION_DAYS, else METRICS_RETENTION_DAYS, else 7). */
    RAW_RETENTION_DAYS: number;
    /** Samples older than this many days are refused at ingestion: never more than the raw retention, since an
     * older sample would be deleted by the next retention run before its hour could be rolled up again. */
    METRICS_RETENTION_DAYS: number;
    /** Connection details resolved from DATABASE_URL or the MYSQL_* variables. */
    database: DatabaseSettings;
  };

export interface DatabaseSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid settings:\n  ${problems.join("\n  ")}`);
    this.name = "SettingsError";
  }
}

/** Parses settings from a plain record (the environment). Throws SettingsError naming each bad variable. */
export function parseSettings(env: Record<string, string | undefined>): Settings {
  // Empty strings count as unset, as docker compose passes `VAR=` for blanks.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([key, value]) =>
      key in settingsSchema.shape && value !== undefined && value !== ""
    ),
  );
  const parsed = settingsSchema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join(".")}: ${issue.message}`);
    throw new SettingsError(problems);
  }
  const values = parsed.data;
  let database: DatabaseSettings = {
    host: values.MYSQL_HOST,
    port: values.MYSQL_PORT,
    user: values.MYSQL_USER,
    password: values.MYSQL_PASSWORD,
    database: values.MYSQL_DB,
  };
  if (values.DATABASE_URL) {
    const fromUrl = parseDatabaseUrl(values.DATABASE_URL);
    if (typeof fromUrl === "string") problems.push(`DATABASE_URL: ${fromUrl}`);
    else database = fromUrl;
  }
  if (values.ENVIRONMENT === "production") {
    if (values.SECRET_KEY === DEFAULT_SECRET_KEY) {
      problems.push(
        "SECRET_KEY: the default key is refused in production; set a random value of 32+ characters",
      );
    } else if (values.SECRET_KEY.length < MIN_PRODUCTION_SECRET_LENGTH) {
      problems.push(`SECRET_KEY: must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters in production`);
    }
  }
  if (values.OFFLINE_AFTER_S <= values.HEARTBEAT_INTERVAL_S) {
    problems.push("OFFLINE_AFTER_S: must be greater than HEARTBEAT_INTERVAL_S");
  }
  const rawDays = values.RAW_RETENTION_DAYS ?? values.METRICS_RETENTION_DAYS ?? DEFAULT_RAW_RETENTION_DAYS;
  const ingestionDays = values.METRICS_RETENTION_DAYS ?? rawDays;
  if (ingestionDays > rawDays) {
    problems.push(
      `METRICS_RETENTION_DAYS: samples older than RAW_RETENTION_DAYS (${rawDays}) are deleted, so they cannot be accepted; set it to ${rawDays} or less`,
    );
  }
  for (const name of ["ROLLUP_5M_RETENTION_DAYS", "ROLLUP_1H_RETENTION_DAYS"] as const) {
    if (values[name] < rawDays) {
      problems.push(`${name}: must be at least RAW_RETENTION_DAYS (${rawDays}): rollups outlive raw samples`);
    }
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return { ...values, RAW_RETENTION_DAYS: rawDays, METRICS_RETENTION_DAYS: ingestionDays, database };
}

function parseDatabaseUrl(raw: string): DatabaseSettings | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "not a URL (expected mysql://user:password@host:3306/database)";
  }
  if (url.protocol !== "mysql:" && url.protocol !== "mariadb:") {
    return `scheme must be mysql:// (got ${url.protocol}//)`;
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) {
    return "needs a database name (letters, digits and _) after the host";
  }
  const portNumber = url.port ? Number(url.port) : 3306;
  return {
    host: url.hostname || "127.0.0.1",
    port: portNumber,
    user: decodeURIComponent(url.username) || "root",
    password: decodeURIComponent(url.password),
    database,
  };
}

/** Reads KEY=VALUE lines of a .env file; quotes are stripped, comments and blanks skipped. */
export function parseDotEnv(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    let value = match[2].trim();
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) {
      value = value.slice(1, -1);
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    result[match[1]] = value;
  }
  return result;
}

/** Settings of this process: the real environment wins over the .env file. */
export function loadSettings(envFile = ".env"): Settings {
  let fileValues: Record<string, string> = {};
  try {
    fileValues = parseDotEnv(Deno.readTextFileSync(envFile));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) && !(error instanceof Deno.errors.NotCapable)) throw error;
  }
  // An empty variable counts as unset (parseSettings), so it must not hide the file's value either.
  const environment = Object.entries(Deno.env.toObject()).filter(([, value]) => value !== "");
  return parseSettings({ ...fileValues, ...Object.fromEntries(environment) });
}
