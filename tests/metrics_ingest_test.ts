// POST /api/v1/nodes/{id}/metrics: storing batches, duplicates, scaling events, pool latest values, and
// every refusal (bad samples, time window, size limits, node-token errors) writing nothing.
import assert from "node:assert/strict";
import { parseZonedTimestamp } from "../core/fields.ts";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { setNodeDecommissioned } from "../db/agents.ts";
import { createTestApp, json } from "./helpers/app.ts";
import type { ErrorBody } from "./helpers/assertions.ts";

const POOL_A = "ocid1.instancepool.oc1.iad.aaaaaaaapoola";
const POOL_B = "ocid1.instancepool.oc1.iad.aaaaaaaapoolb";

interface Registered {
  node_id: string;
  node_token: string;
}

const sample = (overrides: Record<string, unknown> = {}) => ({
  instance_pool_id: POOL_A,
  ts: "2026-06-01T11:00:00Z",
  cpu_util: 50,
  memory_util: 40,
  instance_count: 3,
  ...overrides,
});

Deno.test("metrics ingestion", async (t) => {
  const ctx = await createTestApp("metrics_ingest");
  const count = async (table: string, where = "1 = 1", params: unknown[] = []) => {
    const [rows] = await ctx.database.pool.query(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params);
    return Number((rows as { n: number }[])[0].n);
  };
  const snapshot = async () => ({
    samples: await count("metric_samples"),
    events: await count("scaling_events"),
    pools: await count("instance_pools"),
  });
  const pool = async (nodeId: string, ocid: string) => {
    const [rows] = await ctx.database.pool.query(
      "SELECT current_size, last_metrics_at, last_cpu_util, last_memory_util FROM instance_pools WHERE node_id = ? AND pool_ocid = ?",
      [nodeId, ocid],
    );
    return (rows as Record<string, unknown>[])[0];
  };
  try {
    const { token } = await createEnrollmentToken(ctx.deps, { principal: { kind: "system", name: "t" } }, {
      name: "m",
    });
    const agents: Registered[] = [];
    for (const name of ["m-1", "m-2"]) {
      const res = await ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: token, name, hostname: "h", pools: [{ instance_pool_id: POOL_A }] },
      });
      agents.push(await json<Registered>(res));
    }
    const [one, two] = agents;
    const push = (samples: unknown, tokenValue = one.node_token, id = one.node_id) =>
      ctx.call("POST", `/api/v1/nodes/${id}/metrics`, { json: { samples }, token: tokenValue });

    const batch = [
      sample({ ts: "2026-06-01T11:00:00Z", cpu_util: 10, instance_count: 2 }),
      sample({
        ts: "2026-06-01T11:01:00.250+00:00",
        cpu_util: 90,
        instance_count: 3,
        scaling_event: true,
        scaling_direction: "UP",
        from_count: 2,
        to_count: 3,
        reason: "cpu above 75",
      }),
      sample({ ts: "2026-06-01T11:00:30.123456+00:00", cpu_util: 20 }), // Python isoformat, out of order
      sample({ instance_pool_id: POOL_B, ts: "2026-06-01T13:00:00+02:00", cpu_util: 33, memory_util: 44 }),
    ];

    await t.step(
      "a batch is stored: accepted = n; events; unknown pools created; latest per pool",
      async () => {
        const res = await push(batch);
        assert.equal(res.status, 200);
        assert.deepEqual(await json(res), { accepted: 4, duplicates: 0 });
        assert.equal(await count("metric_samples", "node_id = ?", [one.node_id]), 4);
        assert.equal(await count("scaling_events", "node_id = ? AND direction = 'UP'", [one.node_id]), 1);
        const a = await pool(one.node_id, POOL_A);
        assert.deepEqual(a.last_metrics_at, new Date("2026-06-01T11:01:00.250Z"));
        assert.equal(a.last_cpu_util, 90);
        assert.equal(a.current_size, 3);
        const b = await pool(one.node_id, POOL_B);
        assert.deepEqual(b.last_metrics_at, new Date("2026-06-01T11:00:00Z"), "+02:00 converted to UTC");
        assert.equal(b.last_memory_util, 44);
        const [rows] = await ctx.database.pool.query(
          "SELECT ts FROM metric_samples WHERE node_id = ? AND cpu_util = 20",
          [one.node_id],
        );
        assert.deepEqual((rows as { ts: Date }[])[0].ts, new Date("2026-06-01T11:00:30.123Z"));
      },
    );

    await t.step("the same batch again: all duplicates, nothing doubled (events included)", async () => {
      const before = await snapshot();
      const res = await push(batch);
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), { accepted: 0, duplicates: 4 });
      assert.deepEqual(await snapshot(), before);
      const partial = await push([batch[0], sample({ ts: "2026-06-01T11:02:00Z" })]);
      assert.deepEqual(await json(partial), { accepted: 1, duplicates: 1 });
    });

    await t.step("older samples do not move a pool's latest values back", async () => {
      const res = await push([sample({ ts: "2026-06-01T10:00:00Z", cpu_util: 1, instance_count: 9 })]);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const a = await pool(one.node_id, POOL_A);
      assert.deepEqual(a.last_metrics_at, new Date("2026-06-01T11:02:00Z"));
      assert.equal(a.current_size, 3);
    });

    await t.step("another node's samples for the same pool OCID are its own", async () => {
      const res = await push([batch[0]], two.node_token, two.node_id);
      assert.deepEqual(await json(res), { accepted: 1, duplicates: 0 });
    });

    await t.step("bad samples: 422 naming samples.<i>.<field>, nothing written", async () => {
      const before = await snapshot();
      const cases: [unknown[], string][] = [
        [[sample({ cpu_util: 101 })], "samples.0.cpu_util"],
        [[sample(), sample({ memory_util: -0.1 })], "samples.1.memory_util"],
        [[sample({ cpu_util: "50" })], "samples.0.cpu_util"],
        [[sample({ instance_count: 1.5 })], "samples.0.instance_count"],
        [[sample({ instance_count: -1 })], "samples.0.instance_count"],
        [[sample({ scaling_direction: "UP" })], "samples.0.scaling_direction"],
        [[sample({ scaling_event: true })], "samples.0.scaling_direction"],
        [[sample({ scaling_event: true, scaling_direction: "SIDEWAYS" })], "samples.0.scaling_direction"],
        [[sample({ ts: "2026-06-01T11:00:00" })], "samples.0.ts"],
        [[sample({ ts: "yesterday" })], "samples.0.ts"],
        [[sample({ ts: "2026-02-30T11:00:00Z" })], "samples.0.ts"],
        [[sample({ instance_pool_id: "pool-a" })], "samples.0.instance_pool_id"],
        [[sample({ colour: "red" })], "samples.0.colour"],
        [
          [{ ts: "2026-06-01T11:00:00Z", cpu_util: 1, memory_util: 1, instance_count: 1 }],
          "samples.0.instance_pool_id",
        ],
        [[], "samples"],
      ];
      for (const [samples, field] of cases) {
        const res = await push(samples);
        assert.equal(res.status, 422, field);
        const error = (await json<ErrorBody>(res)).error;
        assert.equal(error.code, "validation_failed");
        assert.ok(
          error.details?.some((d) => d.field === field),
          `${field}: ${JSON.stringify(error.details)}`,
        );
      }
      // More than MAX_BATCH_SAMPLES (default 1,000): 413, and the clients halve their batches.
      const tooMany = await push(
        Array.from(
          { length: 1001 },
          (_, i) => sample({ ts: new Date(Date.UTC(2026, 5, 1, 10, 0, i)).toISOString() }),
        ),
      );
      assert.equal(tooMany.status, 413);
      const tooManyError = (await json<ErrorBody>(tooMany)).error;
      assert.equal(tooManyError.code, "batch_too_large");
      assert.equal(tooManyError.details?.[0].field, "samples");
      const notArray = await ctx.call("POST", `/api/v1/nodes/${one.node_id}/metrics`, {
        json: { samples: "many" },
        token: one.node_token,
      });
      assert.equal(notArray.status, 422);
      await notArray.body?.cancel();
      const extra = await ctx.call("POST", `/api/v1/nodes/${one.node_id}/metrics`, {
        json: { samples: [sample({ ts: "2026-06-01T11:59:00Z" })], node: "x" },
        token: one.node_token,
      });
      assert.equal(extra.status, 422);
      await extra.body?.cancel();
      assert.deepEqual(await snapshot(), before);
    });

    await t.step(
      "time window: > 5 min ahead or older than retention -> samples.<i>.ts; edges accepted",
      async () => {
        const before = await snapshot();
        // The clock stands at 2026-06-01T12:00:00Z; raw samples are kept (and accepted) 7 days.
        const ahead = await push([
          sample({ ts: "2026-06-01T11:50:00Z" }),
          sample({ ts: "2026-06-01T12:05:01Z" }),
        ]);
        assert.equal(ahead.status, 422);
        const aheadError = (await json<ErrorBody>(ahead)).error;
        assert.ok(aheadError.details?.some((d) => d.field === "samples.1.ts" && /future/.test(d.message)));
        const old = await push([sample({ ts: "2026-05-25T11:59:59Z" })]);
        assert.equal(old.status, 422);
        const oldError = (await json<ErrorBody>(old)).error;
        assert.ok(oldError.details?.some((d) => d.field === "samples.0.ts" && /retention/.test(d.message)));
        assert.deepEqual(await snapshot(), before, "nothing of a refused batch is written");
        const edges = await push([
          sample({ ts: "2026-06-01T12:05:00Z" }),
          sample({ ts: "2026-05-25T12:00:00Z" }),
        ]);
        assert.deepEqual(await json(edges), { accepted: 2, duplicates: 0 });
      },
    );

    await t.step("1,000 samples are accepted in one batch", async () => {
      const samples = Array.from(
        { length: 1000 },
        (_, i) => sample({ ts: new Date(Date.UTC(2026, 4, 31, 0, 0, i)).toISOString() }),
      );
      const res = await push(samples);
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), { accepted: 1000, duplicates: 0 });
    });

    await t.step("a body over MAX_BODY_BYTES: 413, nothing written", async () => {
      const before = await snapshot();
      const huge = JSON.stringify({
        samples: [sample({ reason: "x".repeat(ctx.deps.settings.MAX_BODY_BYTES) })],
      });
      const res = await ctx.call("POST", `/api/v1/nodes/${one.node_id}/metrics`, {
        body: huge,
        headers: { "content-type": "application/json" },
        token: one.node_token,
      });
      assert.equal(res.status, 413);
      assert.equal((await json<ErrorBody>(res)).error.code, "payload_too_large");
      assert.deepEqual(await snapshot(), before);
    });

    await t.step("node-token refusals: 401, 403, 404, 410; nothing written", async () => {
      const before = await snapshot();
      const good = [sample({ ts: "2026-06-01T11:30:00Z" })];
      const cases: [Response, number, string][] = [
        [
          await ctx.call("POST", `/api/v1/nodes/${one.node_id}/metrics`, { json: { samples: good } }),
          401,
          "unauthorized",
        ],
        [await push(good, "acn_wrong"), 401, "unauthorized"],
        [await push(good, two.node_token), 403, "forbidden"],
        [await push(good, one.node_token, "00000000-0000-0000-0000-000000000000"), 404, "not_found"],
      ];
      await setNodeDecommissioned(ctx.deps.db, two.node_id, ctx.clock.now());
      // Written straight to the database: this replica forgets the node's token as the service would (other
      // replicas at their next poll).
      ctx.services.nodeAuth.forget(two.node_id);
      cases.push([await push(good, two.node_token, two.node_id), 410, "node_decommissioned"]);
      for (const [res, status, code] of cases) {
        assert.equal(res.status, status);
        assert.equal((await json<ErrorBody>(res)).error.code, code);
      }
      assert.deepEqual(await snapshot(), before);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("parseZonedTimestamp: the agents' form (...Z) reads as the same time written +00:00", () => {
  // Every date of a leap and a common year at odd hours, and impossible ones (day 0, Feb 29-31, hour 24,
  // minute or second 60): read by position ("Z") and by the general path ("+00:00"), the answers agree.
  let read = 0;
  for (const year of ["2026", "2028", "1900", "2000", "0999"]) {
    for (let month = 0; month <= 13; month++) {
      for (let day = 0; day <= 32; day++) {
        const [h, m, s] = [(month * 7 + day) % 25, (day * 13) % 61, (month * 11 + day) % 61];
        const text = `${year}-${pad2(month)}-${pad2(day)}T${pad2(h)}:${pad2(m)}:${pad2(s)}.${
          String((day * 37) % 1000).padStart(3, "0")
        }`;
        const fast = parseZonedTimestamp(`${text}Z`);
        assert.deepEqual(fast, parseZonedTimestamp(`${text}+00:00`), text);
        if (fast) read++;
      }
    }
  }
  assert.ok(read > 1000, `${read} valid times read`);
  for (const odd of ["2026-06-01T12:00:00.00aZ", "2026-06-01T12:00:00,000Z", "2026-06-01t12:00:00.000Z"]) {
    assert.deepEqual(parseZonedTimestamp(odd), parseZonedTimestamp(odd.replace("Z", "+00:00")), odd);
  }
});

const pad2 = (n: number) => String(n).padStart(2, "0");

Deno.test("parseZonedTimestamp: zones, fractions, calendar", () => {
  assert.deepEqual(parseZonedTimestamp("2026-06-01T12:00:00Z"), {
    ms: Date.UTC(2026, 5, 1, 12),
    utc: "2026-06-01 12:00:00.000",
  });
  assert.equal(parseZonedTimestamp("2026-06-01T12:00:00.987654+00:00")?.utc, "2026-06-01 12:00:00.987");
  assert.equal(parseZonedTimestamp("2026-06-01T01:30:00.5-05:30")?.utc, "2026-06-01 07:00:00.500");
  assert.equal(parseZonedTimestamp("2026-06-01T01:00:00+0200")?.utc, "2026-05-31 23:00:00.000");
  assert.equal(parseZonedTimestamp("2026-06-01 12:00Z")?.utc, "2026-06-01 12:00:00.000");
  assert.equal(parseZonedTimestamp("2028-02-29T00:00:00Z")?.utc, "2028-02-29 00:00:00.000");
  for (
    const bad of [
      "2026-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-06-01T24:00:00Z",
      "2026-06-01T12:00:00",
      "2026-06-01",
      "2026-13-01T00:00:00Z",
      "2026-06-01T12:00:00+25:00",
      "1712345678",
    ]
  ) {
    assert.equal(parseZonedTimestamp(bad), undefined, bad);
  }
});
