// `autoscaler-central user create|passwd|disable|enable|list`: operator accounts from the command line.
// There is no default account: the first admin is made here. Passwords are never arguments (they would
// land in shell history and `ps`): they are typed at a prompt without echo, or piped on stdin.
import { AppError } from "../../core/errors.ts";
import * as fields from "../../core/fields.ts";
import { type Role, ROLES } from "../../core/principal.ts";
import {
  createUser,
  getUserByUsername,
  isRole,
  listUsers,
  setPassword,
  updateUser,
} from "../../core/users.ts";
import { actionOf, CLI_PRINCIPAL, type CommandTools, printTable, withDatabase } from "./run.ts";
import { flagOptions } from "./flags.ts";

export const USER_USAGE = "user create --username U --role admin|operator|viewer [--password-stdin] | " +
  "user passwd --username U [--password-stdin] | user disable|enable --username U | user list";

export const USER_OPTIONS = flagOptions("username role", "password-stdin");

const ACTIONS = ["create", "passwd", "disable", "enable", "list"] as const;

export interface UserCommandTools extends CommandTools {
  /** Reads the new password (tests inject one); defaults to a no-echo prompt or stdin. */
  readPassword?: (fromStdin: boolean) => Promise<string>;
}

export async function userCommand(
  values: Record<string, string | boolean | undefined>,
  positionals: string[],
  tools: UserCommandTools,
): Promise<number> {
  const out = tools.out ?? ((line: string) => console.log(line));
  const action = actionOf("user", ACTIONS, positionals, tools.usageError);

  // Every argument is checked before the database is touched or a password asked for.
  const username = typeof values.username === "string" ? values.username : undefined;
  if (action !== "list") {
    if (!username) throw tools.usageError(`${action} needs --username U`);
    const problem = fields.problemWith(fields.username, username);
    if (problem) throw tools.usageError(`--username ${problem}`);
  }
  let role: Role | undefined;
  if (action === "create") {
    if (typeof values.role !== "string") throw tools.usageError(`create needs --role (${ROLES.join(", ")})`);
    if (!isRole(values.role)) {
      throw tools.usageError(`--role must be one of ${ROLES.join(", ")} (got "${values.role}")`);
    }
    role = values.role;
  } else if (values.role !== undefined) {
    throw tools.usageError("--role is only for create (change roles in the UI or API)");
  }
  if (values["password-stdin"] && action !== "create" && action !== "passwd") {
    throw tools.usageError("--password-stdin is only for create and passwd");
  }

  let password: string | undefined;
  if (action === "create" || action === "passwd") {
    const read = tools.readPassword ?? readPassword;
    password = await read(values["password-stdin"] === true);
    const problem = fields.problemWith(fields.newPassword, password);
    if (problem) throw tools.usageError(`password ${problem}`);
  }

  // Refusals by the service (duplicate name, unknown user, last admin): message and exit 1.
  return await withDatabase("user", tools.connect, (error) => error.status < 500, async (deps) => {
    switch (action) {
      case "create": {
        const user = await createUser(deps, { principal: CLI_PRINCIPAL }, {
          username: username!,
          password: password!,
          role: role!,
        });
        out(`created user ${user.username} (id ${user.id}, role ${user.role})`);
        return 0;
      }
      case "passwd": {
        const user = await getUserByUsername(deps, username!);
        await setPassword(deps, { principal: CLI_PRINCIPAL }, user.id, password!);
        out(`password of ${user.username} changed; their sessions were ended`);
        return 0;
      }
      case "disable":
      case "enable": {
        const user = await getUserByUsername(deps, username!);
        await updateUser(deps, { principal: CLI_PRINCIPAL }, user.id, { disabled: action === "disable" });
        out(
          action === "disable"
            ? `disabled ${user.username}; their sessions were ended`
            : `enabled ${user.username}`,
        );
        return 0;
      }
      case "list": {
        const users = await listUsers(deps);
        if (users.length === 0) {
          out("no users (create the first admin with: user create --username U --role admin)");
          return 0;
        }
        const header = ["id", "username", "role", "state", "last_login"];
        const rows = users.map((u) => [
          String(u.id),
          u.username,
          u.role,
          u.disabled ? "disabled" : "enabled",
          u.last_login_at ?? "never",
        ]);
        printTable(out, header, rows);
        return 0;
      }
    }
  });
}

/** Reads a password: without echo (typed twice) from a terminal, else the first line of stdin. */
async function readPassword(fromStdin: boolean): Promise<string> {
  if (!fromStdin && Deno.stdin.isTerminal()) {
    const first = await promptHidden("Password: ");
    const second = await promptHidden("Repeat password: ");
    if (first !== second) throw new AppError(422, "validation_failed", "the passwords differ");
    return first;
  }
  const text = await new Response(Deno.stdin.readable).text();
  return text.split(/\r?\n/)[0] ?? "";
}

async function promptHidden(label: string): Promise<string> {
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(label));
  Deno.stdin.setRaw(true);
  const chars: string[] = [];
  const buffer = new Uint8Array(64);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const char of new TextDecoder().decode(buffer.subarray(0, n))) {
        if (char === "\r" || char === "\n") return chars.join("");
        if (char === "\u0003") throw new Error("cancelled");
        if (char === "\u007f" || char === "\b") chars.pop();
        else chars.push(char);
      }
    }
    return chars.join("");
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
}
