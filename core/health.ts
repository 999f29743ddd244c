// Readiness: the database answers and its schema is at the migrations this build carries.
import { migrationStatus } from "../db/migrate.ts";
import type { CoreDeps } from "./deps.ts";

export interface Readiness {
  ready: boolean;
  checks: { database: "ok" | "unreachable"; migrations: "ok" | "pending" | "unknown" };
  detail?: string;
}

export async function checkReadiness(deps: Pick<CoreDeps, "pool">, timeoutMs = 2_000): Promise<Readiness> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const status = await Promise.race([migrationStatus(deps.pool), timeout]);
    return {
      ready: status.atHead,
      checks: { database: "ok", migrations: status.atHead ? "ok" : "pending" },
      ...(status.atHead ? {} : { detail: `${status.applied} migration(s) applied; this build expects more` }),
    };
  } catch (error) {
    return {
      ready: false,
      checks: { database: "unreachable", migrations: "unknown" },
      detail: error instanceof Error ? error.message : String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}
