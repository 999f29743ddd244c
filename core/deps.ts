// What every service is given: no module-level singletons, so each test builds its own.
import type { Settings } from "../config.ts";
import type { Database, Pool } from "../db/client.ts";
import type { Clock } from "./clock.ts";
import type { Logger } from "./logger.ts";
import type { Telemetry } from "./telemetry.ts";

export interface CoreDeps {
  db: Database;
  pool: Pool;
  settings: Settings;
  clock: Clock;
  logger: Logger;
  /** Counters for GET /metrics; createApp supplies one when absent (CLI commands run without). */
  telemetry?: Telemetry;
}
