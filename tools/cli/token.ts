// `autoscaler-central token create|list|revoke`: enrollment tokens from the command line, for the first
// agents before anyone has logged in to the UI. The token is printed once; only its hash is kept.
import {
  createEnrollmentToken,
  createReenrollmentToken,
  listEnrollmentTokens,
  REENROLLMENT_MAX_EXPIRES_S,
  revokeEnrollmentToken,
} from "../../core/enrollment.ts";
import type { AppError } from "../../core/errors.ts";
import { actionOf, CLI_PRINCIPAL, type CommandTools, printTable, withDatabase } from "./run.ts";
import { flagOptions } from "./flags.ts";

export const TOKEN_USAGE = "token create [--name N] [--expires 7d|12h|30m|never] [--max-uses N] | " +
  "token create --node ID|NAME [--expires 1d] | token list [--all] | token revoke --id N";

export const TOKEN_OPTIONS = flagOptions("name expires max-uses id node", "all");

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };
const DEFAULT_EXPIRES = "7d";
const REENROLLMENT_DEFAULT_EXPIRES = "1d";

/** "7d" | "12h" | "30m" | "never" -> seconds (null = never); undefined when malformed. */
export function parseExpires(raw: string): number | null | undefined {
  if (raw === "never") return null;
  const match = /^(\d{1,6})([smhdw])$/.exec(raw.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2]];
  return seconds >= 1 && seconds <= 10 * 365 * 86_400 ? seconds : undefined;
}

export type TokenCommandTools = CommandTools;

export async function tokenCommand(
  values: Record<string, string | boolean | undefined>,
  positionals: string[],
  tools: TokenCommandTools,
): Promise<number> {
  const out = tools.out ?? ((line: string) => console.log(line));
  const action = actionOf("token", ["create", "list", "revoke"] as const, positionals, tools.usageError);

  // Check every argument before touching the database.
  let expiresInS: number | null = null;
  let maxUses: number | null = null;
  let id = 0;
  const node = typeof values.node === "string" ? values.node.trim() : undefined;
  if (values.node !== undefined && action !== "create") {
    throw tools.usageError("--node goes with token create");
  }
  if (action === "create") {
    const rawExpires = typeof values.expires === "string"
      ? values.expires
      : node !== undefined
      ? REENROLLMENT_DEFAULT_EXPIRES
      : DEFAULT_EXPIRES;
    const parsed = parseExpires(rawExpires);
    if (parsed === undefined) {
      throw tools.usageError(`--expires must be like 7d, 12h, 30m or never (got "${rawExpires}")`);
    }
    expiresInS = parsed;
    if (node !== undefined) {
      if (node === "" || node.length > 128) throw tools.usageError("--node needs a node id or name");
      if (values["max-uses"] !== undefined || values.name !== undefined) {
        throw tools.usageError(
          "a re-enrollment token (--node) has no --name or --max-uses: it is single-use",
        );
      }
      if (parsed === null || parsed < 60 || parsed > REENROLLMENT_MAX_EXPIRES_S) {
        throw tools.usageError("--expires with --node must be between 1m and 30d");
      }
    }
    if (typeof values["max-uses"] === "string") {
      const raw = values["max-uses"];
      if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > 1_000_000) {
        throw tools.usageError(`--max-uses must be a whole number 1..1000000 (got "${raw}")`);
      }
      maxUses = Number(raw);
    }
    if (typeof values.name === "string" && (values.name.trim() === "" || values.name.length > 128)) {
      throw tools.usageError("--name must be 1 to 128 characters");
    }
  }
  if (action === "revoke") {
    const raw = values.id;
    if (typeof raw !== "string") throw tools.usageError("revoke needs --id N (see token list)");
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) {
      throw tools.usageError(`--id must be a token id, a whole number from 1 (see token list; got "${raw}")`);
    }
    id = Number(raw);
  }

  // A missing node or a token revoked already: said, exit 1.
  const refused = (error: AppError) => error.status === 404 || error.status === 409;
  return await withDatabase("token", tools.connect, refused, async (deps) => {
    if (action === "create" && node !== undefined) {
      const created = await createReenrollmentToken(deps, { principal: CLI_PRINCIPAL }, {
        node,
        expires_in_s: expiresInS,
      });
      out(created.token);
      out(`id: ${created.view.id}`);
      out(`node: ${created.node.name} (${created.node.id})`);
      out(`expires: ${created.view.expires_at}`);
      out(
        `Single use, shown only once: give it to the agent of ${created.node.name} as its enrollment token ` +
          "(CENTRAL_ENROLLMENT_TOKEN); it registers under that name once and gets a new node token.",
      );
      return 0;
    }
    if (action === "create") {
      const name = typeof values.name === "string" ? values.name.trim() : "cli";
      const { token, view } = await createEnrollmentToken(deps, { principal: CLI_PRINCIPAL }, {
        name,
        expires_in_s: expiresInS,
        max_uses: maxUses,
      });
      out(token);
      out(`id: ${view.id}`);
      out(`name: ${view.name}`);
      out(`expires: ${view.expires_at ?? "never"}`);
      out(`max uses: ${view.max_uses ?? "unlimited"}`);
      out("This token is shown only once; agents pass it as enrollment_token to POST /api/v1/register.");
      return 0;
    }
    if (action === "list") {
      const views = await listEnrollmentTokens(deps, { includeRevoked: values.all === true });
      if (views.length === 0) {
        out("no enrollment tokens");
        return 0;
      }
      printTable(
        out,
        ["id", "name", "prefix", "state", "uses", "expires", "created_by", "node"],
        views.map((v) => [
          String(v.id),
          v.name,
          v.prefix,
          v.state,
          `${v.uses}/${v.max_uses ?? "unlimited"}`,
          v.expires_at ?? "never",
          v.created_by,
          v.node_id ?? "",
        ]),
      );
      return 0;
    }
    const view = await revokeEnrollmentToken(deps, { principal: CLI_PRINCIPAL }, id);
    out(`revoked enrollment token ${view.id} (${view.name})`);
    return 0;
  });
}
