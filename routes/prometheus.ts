// GET /metrics: Prometheus text exposition of core/telemetry.ts. Open unless METRICS_TOKEN is set; then it
// wants `Authorization: Bearer <METRICS_TOKEN>` (Prometheus: `authorization: { credentials: ... }`).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { timingSafeEqual } from "node:crypto";
import type { CoreDeps } from "../core/deps.ts";
import { AppError } from "../core/errors.ts";
import type { Telemetry } from "../core/telemetry.ts";
import type { AppEnv } from "./env.ts";

export function registerMetricsEndpoint(
  app: OpenAPIHono<AppEnv>,
  deps: Pick<CoreDeps, "settings">,
  telemetry: Telemetry,
): void {
  const expected = deps.settings.METRICS_TOKEN
    ? new TextEncoder().encode(`Bearer ${deps.settings.METRICS_TOKEN}`)
    : undefined;
  app.get("/metrics", async (c) => {
    if (expected) {
      const given = new TextEncoder().encode(c.req.header("authorization") ?? "");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new AppError(
          401,
          "unauthorized",
          "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>",
          undefined,
          {
            "WWW-Authenticate": 'Bearer realm="metrics"',
          },
        );
      }
    }
    const body = await telemetry.metrics();
    return c.body(body, 200, {
      "Content-Type": telemetry.registry.contentType,
      "Cache-Control": "no-store",
    });
  });
}
