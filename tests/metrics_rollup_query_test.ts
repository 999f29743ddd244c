// The series query picks the table that fits the step (raw, 5-minute or 1-hour rollups) and answers the
// same as raw samples would wherever both exist; after raw retention the rollups still answer.
import assert from "node:assert/strict";
import { JOB_NAMES } from "../core/housekeeping.ts";
import { type SeriesPoint, toPoints } from "../core/metricsQuery.ts";
import { seriesRows } from "../db/metricsQuery.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import { insertNode, insertPool, insertSamples, poolOcid, type SampleSpec } from "./helpers/fixtures.ts";

const NOW = "2026-06-04T12:00:00Z";

Deno.test("series: the table that fits the step, in agreement with raw samples", async (t) => {
  const ctx = await createTestApp("metrics_rollup_query", { start: NOW });
  try {
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
    const nodeId = await insertNode(ctx);
    const ocid = poolOcid("rollq");
    const poolId = await insertPool(ctx, nodeId, ocid);
    // Three days up to now, a sample every 110 s with varied values.
    const samples: SampleSpec[] = [];
    const end = Date.parse(NOW);
    for (let ts = end - 3 * 86_400_000, i = 0; ts <= end; ts += 110_000, i++) {
      const x = (i * 7919) % 997;
      samples.push({
        ts: new Date(ts),
        cpu: x / 9.97,
        memory: (x * 13 % 997) / 9.97,
        instances: 1 + (x % 7),
      });
    }
    await insertSamples(ctx, nodeId, poolId, samples);
    // A run advances at most 48 hours; the second continues from its watermark.
    assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
    ctx.clock.advance(60_000);
    assert.equal(await ctx.services.jobs.tick(JOB_NAMES.rollups), "ran");
    ctx.clock.set(NOW);

    const series = async (query: string) => {
      const response = await ctx.call("GET", `/api/v1/nodes/${nodeId}/metrics/${ocid}?${query}`, {
        token: viewer,
      });
      assert.equal(response.status, 200, await response.clone().text());
      return await json<{ source: string; step_s: number; from: string; to: string; points: SeriesPoint[] }>(
        response,
      );
    };
    /** The same series computed from raw samples only, shaped as the API shapes it. */
    const fromRaw = async (from: string, to: string, stepS: number): Promise<SeriesPoint[]> => {
      const rows = await seriesRows(ctx.deps.db, "raw", {
        nodeId,
        poolId,
        from: new Date(from),
        to: new Date(to),
        stepS,
      });
      return toPoints(rows, stepS);
    };
    const agrees = async (query: string, source: string) => {
      const body = await series(query);
      assert.equal(body.source, source, query);
      assert.ok(body.points.length > 3, query);
      assert.deepEqual(body.points, await fromRaw(body.from, body.to, body.step_s), query);
      return body;
    };

    await t.step(
      "5-minute steps come from the 5-minute rollups, edges and the unsettled tail from raw",
      async () => {
        // Unaligned edges; the range runs to now, past the rollup watermark (11:55).
        await agrees("from=2026-06-04T02:02:30Z&to=2026-06-04T12:00:00Z&step=5m", "rollup_5m");
        await agrees("from=2026-06-03T00:00:00Z&to=2026-06-03T06:07:00Z&step=15m", "rollup_5m");
      },
    );

    await t.step("whole-hour steps come from the 1-hour rollups", async () => {
      await agrees("from=2026-06-01T13:20:00Z&to=2026-06-04T12:00:00Z&step=1h", "rollup_1h");
      await agrees("hours=72&step=6h", "rollup_1h");
      const daily = await agrees("from=2026-06-01T00:00:00Z&to=2026-06-04T11:30:00Z&step=1d", "rollup_1h");
      assert.equal(daily.points.length, 4);
    });

    await t.step("other steps read raw samples", async () => {
      await agrees("hours=2&step=90", "raw");
      await agrees("hours=2", "raw"); // default step 60 s
    });

    await t.step("after raw retention the rollups still answer, and raw-only steps are refused", async () => {
      const before = await series("from=2026-06-02T00:00:00Z&to=2026-06-03T00:00:00Z&step=1h");
      const before5m = await series("from=2026-06-02T03:00:00Z&to=2026-06-02T05:00:00Z&step=5m");
      ctx.clock.set("2026-06-11T12:00:00Z"); // raw samples before 2026-06-04 12:00 go (7 days)
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.retention), "ran");
      const [left] = await ctx.deps.pool.query("SELECT COUNT(*) AS n FROM metric_samples WHERE ts < ?", [
        new Date("2026-06-04T11:00:00Z"),
      ]);
      assert.equal(Number((left as { n: number }[])[0].n), 0);
      assert.deepEqual(await series("from=2026-06-02T00:00:00Z&to=2026-06-03T00:00:00Z&step=1h"), before);
      assert.deepEqual(
        await series("from=2026-06-02T03:00:00Z&to=2026-06-02T05:00:00Z&step=5m"),
        before5m,
      );
      const refused = await ctx.call(
        "GET",
        `/api/v1/nodes/${nodeId}/metrics/${ocid}?from=2026-06-02T03:00:00Z&to=2026-06-02T05:00:00Z&step=60`,
        { token: viewer },
      );
      assert.equal(refused.status, 422);
      const error = (await json<{ error: { details: { field: string }[] } }>(refused)).error;
      assert.equal(error.details[0].field, "step");
      // Without a step, such a range gets one the rollups serve.
      const defaulted = await series("from=2026-06-02T03:00:00Z&to=2026-06-02T05:00:00Z");
      assert.equal(defaulted.step_s, 300);
      assert.equal(defaulted.source, "rollup_5m");
    });
  } finally {
    await ctx.close();
  }
});
