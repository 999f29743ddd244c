// The request log: the agents' hot routes summarized at info, every error and every other route a line.
import assert from "node:assert/strict";
import { createMemoryLogger } from "../core/logger.ts";
import { createRequestLog, type RequestLogEntry } from "../core/requestLog.ts";

const entry = (route: string, status: number, duration_ms: number): RequestLogEntry => ({
  request_id: crypto.randomUUID(),
  method: "POST",
  route,
  path: route.replace(":id", "n1"),
  status,
  duration_ms,
  address: "10.0.0.1",
});

Deno.test("request log: hot routes summarized, errors and other routes one line each", () => {
  const logger = createMemoryLogger("info");
  const log = createRequestLog(logger, { summarize: true });
  for (let i = 0; i < 100; i++) log.record(entry("/api/v1/nodes/:id/heartbeat", 200, i % 2 ? 1 : 3));
  log.record(entry("/api/v1/nodes/:id/heartbeat", 401, 0.5));
  log.record(entry("/api/v1/nodes/:id/metrics", 422, 2));
  log.record(entry("/api/v1/nodes/:id/metrics", 200, 10));
  log.record(entry("/readyz", 200, 1));
  assert.deepEqual(logger.lines.map((l) => [l.msg, l.path, l.status]), [
    ["request", "/api/v1/nodes/n1/heartbeat", 401],
    ["request", "/api/v1/nodes/n1/metrics", 422],
    ["request", "/readyz", 200],
  ]);
  log.close();
  const summary = logger.lines.at(-1)!;
  assert.equal(summary.msg, "requests summary");
  assert.deepEqual(summary.routes, {
    "POST /api/v1/nodes/:id/heartbeat 200": { count: 100, mean_ms: 2, max_ms: 3 },
    "POST /api/v1/nodes/:id/metrics 200": { count: 1, mean_ms: 10, max_ms: 10 },
  });
  log.close();
  assert.equal(logger.lines.filter((l) => l.msg === "requests summary").length, 1, "nothing new: no line");
});

Deno.test("request log: without summarizing (LOG_LEVEL=debug) every request is a line", () => {
  const logger = createMemoryLogger("debug");
  const log = createRequestLog(logger, { summarize: false });
  log.record(entry("/api/v1/nodes/:id/heartbeat", 200, 1));
  log.close();
  assert.deepEqual(logger.lines.map((l) => l.msg), ["request"]);
});
