// Runs the CLI as users run it: main.ts in a subprocess, its exit code and what it prints.
import { testSettings } from "./app.ts";

export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts <args>` in an empty temp cwd (so no stray .env is read); stdin is closed unless given. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<CliRun> {
  const cwd = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      cwd,
      env: { NO_COLOR: "1", ...options.env },
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const output = await child.output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

/** The MYSQL_* variables that point the CLI at a test database, plus any extra variables. */
export function databaseEnv(
  databaseName: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const db = testSettings(databaseName).database;
  return {
    MYSQL_HOST: db.host,
    MYSQL_PORT: String(db.port),
    MYSQL_USER: db.user,
    MYSQL_PASSWORD: db.password,
    MYSQL_DB: databaseName,
    ...extra,
  };
}
