// Issue 13.5: SIGTERM while a metrics upload's body is still arriving. The real server runs as a
// subprocess; the upload goes over a raw TCP connection so its body can be sent in two halves around the
// signal. The batch must be stored (the body finished within the grace period), or be answered 503 with
// Connection: close; never 400 "malformed JSON" (the clients drop batches answered 400).
import assert from "node:assert/strict";
import { systemClock } from "../core/clock.ts";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { createLogger } from "../core/logger.ts";
import { createTestDatabase } from "./helpers/app.ts";
import { databaseEnv, freePort, spawnServe, untilReady } from "./helpers/cli.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readAll(conn: Deno.Conn, timeoutMs: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  const deadline = Date.now() + timeoutMs;
  const buffer = new Uint8Array(65536);
  while (Date.now() < deadline) {
    const n = await Promise.race([conn.read(buffer), sleep(deadline - Date.now()).then(() => -1)]);
    if (n === null || n === -1) break;
    chunks.push(buffer.slice(0, n as number));
    const text = new TextDecoder().decode(concat(chunks));
    // A complete response: head and a body of Content-Length bytes.
    const length = /content-length:\s*(\d+)/i.exec(text)?.[1];
    const headEnd = text.indexOf("\r\n\r\n");
    if (length !== undefined && headEnd !== -1 && text.length >= headEnd + 4 + Number(length)) break;
  }
  return new TextDecoder().decode(concat(chunks));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

for (
  const [graceS, expected] of [
    ["10", "stored: the body finished within the grace period"],
    ["0", "503 with Connection: close: no grace left to finish the body"],
  ] as const
) {
  Deno.test(`shutdown: a metrics body still arriving at SIGTERM (grace ${graceS} s) is ${expected}`, async () => {
    await slowBodyAtShutdown(graceS, graceS === "0" ? 503 : 200);
  });
}

async function slowBodyAtShutdown(graceS: string, expectedStatus: 200 | 503): Promise<void> {
  const database = await createTestDatabase("shutdown");
  const { token: enrollment } = await createEnrollmentToken(
    {
      db: database.db,
      pool: database.pool,
      settings: database.settings,
      clock: systemClock,
      logger: createLogger("error", () => {}),
    },
    { principal: { kind: "system", name: "test" } },
    { name: "shutdown" },
  );
  const port = freePort();
  const { child, stdout, stderr } = spawnServe(
    port,
    { ...databaseEnv(database.name), SHUTDOWN_GRACE_S: graceS, LOG_LEVEL: "info" },
    ["--unstable-no-legacy-abort"],
  );
  let stopped = false;
  try {
    const up = await untilReady(port);
    assert.ok(up, "service did not become ready");
    const registered = await fetch(`http://127.0.0.1:${port}/api/v1/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ enrollment_token: enrollment, name: "slow-body", hostname: "h" }),
    });
    assert.equal(registered.status, 201);
    const node = await registered.json() as { node_id: string; node_token: string };

    const samples = Array.from({ length: 200 }, (_, i) => ({
      instance_pool_id: "ocid1.instancepool.oc1.iad.aaaaaaaashutdown",
      ts: new Date(Date.now() - 60_000 + i * 10).toISOString(),
      cpu_util: 50,
      memory_util: 40,
      instance_count: 2,
    }));
    const body = new TextEncoder().encode(JSON.stringify({ samples }));
    const head = `POST /api/v1/nodes/${node.node_id}/metrics HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Authorization: Bearer ${node.node_token}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(head));
    await conn.write(body.slice(0, body.length >> 1));
    await sleep(300); // the request is in the handler, reading its body
    child.kill("SIGTERM");
    stopped = true;
    await sleep(700); // the server is shutting down while the body is still arriving
    try {
      await conn.write(body.slice(body.length >> 1));
    } catch {
      // the server may have answered and closed already (503): read what it said
    }
    const answer = await readAll(conn, 8_000);
    conn.close();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
    const [rows] = await database.pool.query(
      "SELECT COUNT(*) AS n FROM metric_samples WHERE node_id = ?",
      [node.node_id],
    );
    const stored = Number((rows as { n: number }[])[0].n);
    assert.equal(status, expectedStatus, answer.slice(0, 400));
    if (status === 200) {
      assert.equal(stored, 200, "answered 200: every sample stored");
    } else {
      assert.match(answer, /connection: close/i);
      assert.match(answer, /shutting_down/);
      assert.equal(stored, 0);
    }
  } finally {
    if (!stopped) child.kill("SIGTERM");
    const status = await child.status;
    const log = await stdout;
    await stderr;
    await database.drop();
    assert.equal(status.code, 0);
    if (expectedStatus === 503) assert.match(log, /request body unreadable at shutdown: answered 503/);
  }
}
