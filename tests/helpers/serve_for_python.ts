// A throwaway service for the Python client's tests: a fresh database, a real HTTP server (see
// server.ts) and an enrollment token. Prints {"url", "token", "base_url"} as one JSON line, then answers
// JSON-line commands on stdin (one JSON answer line each) so the tests can read and steer the server:
//   {"cmd": "node", "name": "..."}              -> the node row (or null)
//   {"cmd": "samples", "node_id": "..."}        -> number of metric_samples rows of the node
//   {"cmd": "events", "node_id": "..."}         -> scaling_events rows of the node
//   {"cmd": "config_versions", "node_id": "..."}-> [{version, source, hash, body, yaml}]
//   {"cmd": "set_config", "node_id", "config"}  -> {version, hash}
//   {"cmd": "revoke_node_token", "node_id"}     -> the node's token stops working (401)
//   {"cmd": "reenrollment_token", "node_id"}    -> an operator's one-time re-enrollment token for the node
//   {"cmd": "token_hash", "node_id"}            -> the node's stored token hash
//   {"cmd": "token_uses"}                       -> total enrollment token uses
//   {"cmd": "token", "max_uses"?}               -> a new enrollment token
//   {"cmd": "outage"} / {"cmd": "recover"}      -> refuse connections / listen again on the same port
// Answers: {"ok": true, "result": ...} or {"ok": false, "error": "..."}.
// Cleans up (drops the database) when stdin closes or on SIGTERM/SIGINT.
//
// Run: deno run -A tests/helpers/serve_for_python.ts
import { count, eq } from "drizzle-orm";
import { recordNodeAuthChange } from "../../db/nodeAuth.ts";
import { configVersions, enrollmentTokens, metricSamples, nodes, scalingEvents } from "../../db/schema.ts";
import { startTestServer } from "./server.ts";
import { createReenrollmentToken } from "../../core/enrollment.ts";

const server = await startTestServer("python", { env: { HEARTBEAT_INTERVAL_S: "1", LOG_LEVEL: "error" } });
const db = server.ctx.deps.db;
let closing: Promise<void> | undefined;
const shutdown = () => {
  closing ??= server.close().finally(() => Deno.exit(0));
  return closing;
};
for (const signal of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(signal, () => void shutdown());

type Command = Record<string, unknown> & { cmd: string };

async function handle(command: Command): Promise<unknown> {
  const nodeId = String(command.node_id ?? "");
  switch (command.cmd) {
    case "node": {
      const [row] = await db.select().from(nodes).where(eq(nodes.name, String(command.name)));
      if (!row) return null;
      return {
        id: row.id,
        name: row.name,
        hostname: row.hostname,
        agent_version: row.agentVersion,
        reported_status: row.reportedStatus,
        last_heartbeat_at: row.lastHeartbeatAt?.toISOString() ?? null,
        applied_hash: row.appliedHash,
        desired_hash: row.desiredHash,
        config_state: row.configState,
        config_error: row.configError,
      };
    }
    case "samples": {
      const [row] = await db.select({ n: count() }).from(metricSamples).where(
        eq(metricSamples.nodeId, nodeId),
      );
      return Number(row.n);
    }
    case "events": {
      const rows = await db.select().from(scalingEvents).where(eq(scalingEvents.nodeId, nodeId));
      return rows.map((r) => ({ direction: r.direction, from_count: r.fromCount, to_count: r.toCount }));
    }
    case "config_versions": {
      const rows = await db.select().from(configVersions).where(eq(configVersions.nodeId, nodeId));
      return rows.map((r) => ({
        version: r.version,
        source: r.source,
        hash: r.hash,
        body: r.body,
        yaml: r.yamlText,
      }));
    }
    case "set_config":
      return await server.setConfig(nodeId, command.config);
    case "revoke_node_token":
      await db.update(nodes).set({ tokenHash: "0".repeat(64) }).where(eq(nodes.id, nodeId));
      // As the service's own token changes do: recorded for other replicas, forgotten here at once.
      await recordNodeAuthChange(db, nodeId, new Date());
      server.ctx.services.nodeAuth.forget(nodeId);
      return true;
    case "reenrollment_token":
      return (await createReenrollmentToken(server.ctx.deps, {
        principal: { kind: "system", name: "python-test" },
      }, { node: nodeId })).token;
    case "token_hash": {
      const [row] = await db.select({ hash: nodes.tokenHash }).from(nodes).where(eq(nodes.id, nodeId));
      return row?.hash ?? null;
    }
    case "token_uses": {
      const rows = await db.select({ uses: enrollmentTokens.uses }).from(enrollmentTokens);
      return rows.reduce((sum, row) => sum + row.uses, 0);
    }
    case "token":
      return await server.enrollmentToken({ maxUses: command.max_uses as number | undefined });
    case "outage":
      server.outage();
      return true;
    case "recover":
      await server.recover();
      return true;
    default:
      throw new Error(`unknown command ${JSON.stringify(command.cmd)}`);
  }
}

const encoder = new TextEncoder();
const write = (value: unknown) => Deno.stdout.write(encoder.encode(JSON.stringify(value) + "\n"));

await write({ url: server.apiUrl, base_url: server.baseUrl, token: await server.enrollmentToken() });

let pending = "";
const decoder = new TextDecoder();
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  let newline: number;
  while ((newline = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, newline).trim();
    pending = pending.slice(newline + 1);
    if (line === "") continue;
    try {
      await write({ ok: true, result: await handle(JSON.parse(line) as Command) });
    } catch (error) {
      await write({ ok: false, error: error instanceof Error ? error.message : String(error) });
    }
  }
}
await shutdown();
