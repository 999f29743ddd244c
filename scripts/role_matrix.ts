// The role matrix, read from the routes themselves: every operation's `x-min-role` (set by access() in
// routes/guards.ts). `deno run -A scripts/role_matrix.ts` prints it as a Markdown table for the README;
// tests/role_matrix_test.ts checks the live app against the same rows.
import { ROLES } from "../core/principal.ts";
import { ACCESS_LEVELS, type AccessLevel, MIN_ROLE_EXTENSION } from "../routes/guards.ts";

export const HTTP_METHODS = ["get", "put", "post", "delete", "patch", "head", "options"] as const;

export interface MatrixRow {
  method: string;
  /** OpenAPI path, with {param} placeholders. */
  path: string;
  /** undefined when the operation does not declare one (an error for /api routes). */
  access: AccessLevel | undefined;
  summary: string;
}

interface OpenApiDocument {
  paths?: Record<string, Record<string, unknown>>;
}

/** One row per operation of an OpenAPI document, sorted by path then method. */
export function roleMatrix(document: OpenApiDocument): MatrixRow[] {
  const rows: MatrixRow[] = [];
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of HTTP_METHODS) {
      const operation = item[method] as Record<string, unknown> | undefined;
      if (!operation) continue;
      const declared = operation[MIN_ROLE_EXTENSION];
      rows.push({
        method: method.toUpperCase(),
        path,
        access: (ACCESS_LEVELS as readonly unknown[]).includes(declared)
          ? declared as AccessLevel
          : undefined,
        summary: String(operation.summary ?? ""),
      });
    }
  }
  return rows.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
}

/** What a caller of each kind should get: "allowed", 401 or 403. */
export function expectedOutcome(
  access: AccessLevel,
  caller: "anonymous" | typeof ROLES[number],
): "allowed" | 401 | 403 {
  if (access === "public") return "allowed";
  if (caller === "anonymous") return 401;
  // Node routes accept only node tokens, register only enrollment (or node) tokens: an API key is neither.
  if (access === "node" || access === "enrollment") return 401;
  return ROLES.indexOf(caller) >= ROLES.indexOf(access) ? "allowed" : 403;
}

/** The matrix as a Markdown table (only /api routes; /healthz and the docs are public). */
export function roleMatrixMarkdown(rows: MatrixRow[]): string {
  const mark = (access: AccessLevel | undefined, caller: "anonymous" | typeof ROLES[number]) => {
    if (!access) return "?";
    return expectedOutcome(access, caller) === "allowed" ? "yes" : "";
  };
  const lines = [
    "| Method | Path | Needs | anonymous | viewer | operator | admin |",
    "| --- | --- | --- | :-: | :-: | :-: | :-: |",
  ];
  for (const row of rows.filter((r) => r.path.startsWith("/api/"))) {
    const needs = row.access === "node"
      ? "node token"
      : row.access === "enrollment"
      ? "enrollment token"
      : row.access ?? "UNDECLARED";
    lines.push(
      `| ${row.method} | \`${row.path}\` | ${needs} | ${mark(row.access, "anonymous")} | ${
        mark(row.access, "viewer")
      } | ${mark(row.access, "operator")} | ${mark(row.access, "admin")} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  // Builds the app only to read its OpenAPI document: the pool is created but never queried.
  const { createApp } = await import("../app.ts");
  const { parseSettings } = await import("../config.ts");
  const { systemClock } = await import("../core/clock.ts");
  const { createLogger } = await import("../core/logger.ts");
  const { createDatabase } = await import("../db/client.ts");
  const settings = parseSettings({ ENVIRONMENT: "development", LOG_LEVEL: "error" });
  const handle = createDatabase(settings.database, 1);
  const logger = createLogger("error", () => {});
  const { app, close } = createApp({ ...handle, settings, clock: systemClock, logger });
  try {
    const document = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "x", version: "0" } });
    console.log(roleMatrixMarkdown(roleMatrix(document as OpenApiDocument)));
  } finally {
    await close();
    await handle.pool.end();
  }
}
