// GET /metrics in Prometheus text format, read back with a real parser (parse-prometheus-text-format): the
// families move while an agent talks; limits answer 413/429 with Retry-After and are counted; the optional
// bearer token.
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { parse as parseYaml } from "yaml";
import { setNodeConfig } from "../core/configs.ts";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { JOB_NAMES } from "../core/housekeeping.ts";
import { createTelemetry } from "../core/telemetry.ts";
import type { Principal } from "../core/principal.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { testConfig } from "./helpers/configs.ts";

const ADMIN: Principal = { kind: "system", name: "test" };
const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaapromtest";

interface Family {
  name: string;
  type: string;
  help: string;
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
  }[];
}

interface Scrape extends Map<string, Family> {
  text: string;
}

/** Scrapes /metrics; the parser throws on any line that is not valid exposition format. */
async function scrape(ctx: TestApp, headers: Record<string, string> = {}): Promise<Scrape> {
  const response = await ctx.call("GET", "/metrics", { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text) as Family[];
  return Object.assign(new Map(families.map((f) => [f.name, f])), { text });
}

/** The value of the series of `family` whose labels include `labels` (0 when absent). */
function valueOf(families: Map<string, Family>, family: string, labels: Record<string, string> = {}): number {
  const found = families.get(family);
  assert.ok(found, `family ${family} is exported`);
  const series = found.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!series) return 0;
  return Number(series.value ?? series.count);
}

function sample(ts: string, cpu = 50) {
  return { instance_pool_id: POOL, ts, cpu_util: cpu, memory_util: 40, instance_count: 2 };
}

Deno.test("GET /metrics: families move while an agent talks; limits are refused and counted", async (t) => {
  const ctx = await createTestApp("prometheus", {
    env: { MAX_BATCH_SAMPLES: "5", REGISTER_RATE_PER_MIN: "3", MAX_WAITING_PULLS: "1" },
  });
  try {
    const { token: enrollment } = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
      name: "prom",
    });
    const register = (name: string, nodeToken?: string) =>
      ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: enrollment, name, hostname: `${name}.test` },
        token: nodeToken,
      });

    await t.step("before any traffic every family is there, at zero", async () => {
      const families = await scrape(ctx);
      for (
        const name of [
          "autoscaler_central_heartbeats_total",
          "autoscaler_central_metric_samples_total",
          "autoscaler_central_registrations_total",
          "autoscaler_central_config_deliveries_total",
          "autoscaler_central_config_acks_total",
          "autoscaler_central_long_polls_waiting",
          "autoscaler_central_db_pool_connections",
          "autoscaler_central_db_errors_total",
          "autoscaler_central_nodes",
          "autoscaler_central_nodes_by_config_state",
        ]
      ) assert.ok(families.has(name), name);
      assert.equal(valueOf(families, "autoscaler_central_metric_samples_total", { outcome: "accepted" }), 0);
      assert.equal(valueOf(families, "autoscaler_central_nodes", { status: "online" }), 0);
      assert.ok(valueOf(families, "autoscaler_central_db_pool_connections", { state: "limit" }) > 0);
    });

    await t.step("an agent talks; limits refuse what is over them, with Retry-After", async () => {
      const first = await json<{ node_token: string }>(await register("prom-1"));
      const again = await register("prom-1", first.node_token); // re-registration: a new token
      assert.equal(again.status, 200);
      const { node_id: nodeId, node_token: token } = await json<{ node_id: string; node_token: string }>(
        again,
      );
      const path = `/api/v1/nodes/${nodeId}`;
      assert.equal(
        (await ctx.call("POST", `${path}/heartbeat`, { token, json: { status: "running" } })).status,
        200,
      );

      const now = ctx.clock.now().getTime();
      const at = (s: number) => new Date(now - s * 1000).toISOString();
      const batch = [sample(at(3)), sample(at(2)), sample(at(1))];
      assert.deepEqual(
        await json(await ctx.call("POST", `${path}/metrics`, { token, json: { samples: batch } })),
        {
          accepted: 3,
          duplicates: 0,
        },
      );
      assert.deepEqual(
        await json(await ctx.call("POST", `${path}/metrics`, { token, json: { samples: batch } })),
        {
          accepted: 0,
          duplicates: 3,
        },
      );
      const bad = await ctx.call("POST", `${path}/metrics`, {
        token,
        json: { samples: [sample(at(4)), { ...sample(at(5)), scaling_event: true }] }, // no direction
      });
      assert.equal(bad.status, 422);
      const tooMany = await ctx.call("POST", `${path}/metrics`, {
        token,
        json: { samples: [10, 9, 8, 7, 6, 5].map((s) => sample(at(s))) },
      });
      assert.equal(tooMany.status, 413);
      const tooManyError =
        (await json<{ error: { code: string; details: { field: string }[] } }>(tooMany)).error;
      assert.equal(tooManyError.code, "batch_too_large");
      assert.equal(tooManyError.details[0].field, "samples");

      const config = await setNodeConfig(ctx.deps, ctx.services, { principal: ADMIN }, nodeId, {
        config: testConfig(POOL),
      });
      assert.equal((await ctx.call("GET", `${path}/config?wait=0`, { token })).status, 200);
      const unchanged = { token, headers: { "if-none-match": `"${config.hash}"` } };
      assert.equal((await ctx.call("GET", `${path}/config?wait=0`, unchanged)).status, 304);
      const ack = await ctx.call("POST", `${path}/config/ack`, {
        token,
        json: { hash: config.hash, status: "applied" },
      });
      assert.equal(ack.status, 200);

      // MAX_WAITING_PULLS=1: a second waiting pull on this replica is turned away.
      const waiting = ctx.call("GET", `${path}/config?wait=1`, unchanged);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(valueOf(await scrape(ctx), "autoscaler_central_long_polls_waiting"), 1);
      const refusedPull = await ctx.call("GET", `${path}/config?wait=1`, unchanged);
      assert.equal(refusedPull.status, 429);
      assert.equal(refusedPull.headers.get("retry-after"), "5");
      assert.equal(
        (await json<{ error: { code: string } }>(refusedPull)).error.code,
        "too_many_waiting_pulls",
      );
      assert.equal((await waiting).status, 304);

      // REGISTER_RATE_PER_MIN=3 per address: the 4th registration of the minute waits.
      assert.equal((await register("prom-2")).status, 201);
      const limited = await register("prom-3");
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get("retry-after")) > 0);
      assert.equal(
        (await json<{ error: { code: string } }>(limited)).error.code,
        "registration_rate_limited",
      );
      ctx.clock.advance(60_000);
      assert.equal((await register("prom-3")).status, 201);
      assert.equal(await ctx.services.jobs.tick(JOB_NAMES.prune), "ran");
    });

    await t.step("the counters and gauges say what happened", async () => {
      const families = await scrape(ctx);
      const v = (family: string, labels: Record<string, string> = {}) =>
        valueOf(families, `autoscaler_central_${family}`, labels);
      // Family, the label its series differ by, and the expected value of each series.
      const counted: [string, string, Record<string, number>][] = [
        ["registrations_total", "outcome", { created: 3, reregistered: 1, refused: 1 }],
        ["metric_samples_total", "outcome", { accepted: 3, duplicate: 3, refused: 8 }],
        ["config_deliveries_total", "outcome", { config: 1, not_modified: 2 }],
        ["config_acks_total", "outcome", { applied: 1 }],
        ["refusals_total", "code", {
          batch_too_large: 1,
          too_many_waiting_pulls: 1,
          registration_rate_limited: 1,
        }],
      ];
      for (const [family, label, series] of counted) {
        for (const [value, expected] of Object.entries(series)) {
          assert.equal(v(family, { [label]: value }), expected, `${family}{${label}="${value}"}`);
        }
      }
      assert.equal(v("heartbeats_total"), 1);
      assert.equal(v("long_polls_waiting"), 0);
      const heartbeatRoute = { method: "POST", route: "/api/v1/nodes/:id/heartbeat", status: "200" };
      assert.equal(v("http_requests_total", heartbeatRoute), 1);
      assert.equal(v("http_requests_total", { route: "/api/v1/register", status: "429" }), 1);
      const latency = families.get("autoscaler_central_http_request_duration_seconds");
      assert.equal(latency?.type, "HISTOGRAM");
      assert.ok(latency?.metrics[0].buckets?.["+Inf"]);
      // The parser folds a labelled histogram's series together, so its per-route count is read from the line.
      assert.match(
        families.text,
        /^autoscaler_central_http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/nodes\/:id\/heartbeat",status="200"\} 1$/m,
      );
      assert.equal(v("nodes", { status: "online" }), 1);
      assert.equal(v("nodes", { status: "never_seen" }), 2);
      assert.equal(v("nodes_by_config_state", { state: "in_sync" }), 1);
      assert.equal(v("nodes_by_config_state", { state: "pending" }), 2);
      assert.equal(v("job_runs_total", { job_name: "prune", outcome: "ran" }), 1);
      assert.match(families.text, /^autoscaler_central_job_duration_seconds_count\{job_name="prune"\} 1$/m);
      // Unknown paths share one label value instead of one series each.
      await ctx.call("GET", "/no/such/path/123");
      assert.equal(
        valueOf(await scrape(ctx), "autoscaler_central_http_requests_total", { route: "unmatched" }),
        1,
      );
    });

    await t.step("deploy/alerts.yml and the Grafana dashboard ask only for what is exported", async () => {
      const families = await scrape(ctx);
      // Label names per series name (a histogram's _bucket, _sum and _count included), from the scrape.
      const labelsOf = new Map<string, Set<string>>();
      for (const line of families.text.split("\n")) {
        const series = /^(autoscaler_central_\w+)(?:\{(.*)\})? /.exec(line);
        if (!series) continue;
        const names = labelsOf.get(series[1]) ?? new Set<string>();
        for (const label of (series[2] ?? "").matchAll(/(\w+)="/g)) names.add(label[1]);
        labelsOf.set(series[1], names);
      }
      // Prometheus sets job and instance on every scraped series; a label of ours by either name is renamed
      // exported_job / exported_instance and the alerts and panels asking for it match nothing.
      for (const [name, labels] of labelsOf) {
        assert.ok(!labels.has("job") && !labels.has("instance"), `${name} has a label Prometheus overrides`);
      }
      const alerts = parseYaml(await Deno.readTextFile(new URL("../deploy/alerts.yml", import.meta.url))) as {
        groups: { rules: { alert: string; expr: string }[] }[];
      };
      const dashboard = JSON.parse(
        await Deno.readTextFile(new URL("../deploy/grafana-dashboard.json", import.meta.url)),
      ) as { panels: { targets?: { expr: string }[] }[] };
      const expressions = [
        ...alerts.groups.flatMap((group) => group.rules.map((rule) => rule.expr)),
        ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)),
      ];
      assert.ok(expressions.length > 15, `${expressions.length} expressions`);
      for (const expr of expressions) {
        for (const used of expr.matchAll(/(autoscaler_central_\w+)(?:\{([^}]*)\})?/g)) {
          const exported = labelsOf.get(used[1]);
          assert.ok(exported, `${used[1]} (in ${expr}) is not exported`);
          for (const label of (used[2] ?? "").matchAll(/(\w+)\s*(?:=|!=|=~|!~)/g)) {
            assert.ok(exported.has(label[1]), `${used[1]} has no label ${label[1]} (in ${expr})`);
          }
        }
        // Grouping labels must exist on the metric grouped (le belongs to histograms).
        const grouped = /by \(([^)]*)\)\s*\(?[^a-z]*(autoscaler_central_\w+)/.exec(expr);
        if (grouped) {
          const exported = labelsOf.get(grouped[2]) ?? new Set<string>();
          for (const label of grouped[1].split(",").map((l) => l.trim()).filter((l) => l && l !== "le")) {
            assert.ok(exported.has(label), `${grouped[2]} has no label ${label} to group by (in ${expr})`);
          }
        }
      }
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("GET /metrics with METRICS_TOKEN wants the bearer token", async () => {
  const secret = "metrics-token-0123456789";
  const ctx = await createTestApp("prometheus_token", { env: { METRICS_TOKEN: secret } });
  try {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong" },
      { authorization: `Basic ${secret}` },
    ];
    for (const headers of attempts) {
      const response = await ctx.call("GET", "/metrics", { headers });
      assert.equal(response.status, 401);
      assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="metrics"');
      assert.equal((await json<{ error: { code: string } }>(response)).error.code, "unauthorized");
    }
    const families = await scrape(ctx, { authorization: `Bearer ${secret}` });
    assert.ok(families.has("autoscaler_central_http_requests_total"));
  } finally {
    await ctx.close();
  }
});

Deno.test("GET /metrics still answers when the fleet query fails (the database is away)", async () => {
  const telemetry = createTelemetry({ clock: () => 0 });
  telemetry.sources.fleet = () =>
    Promise.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
  telemetry.heartbeat();
  const scrape = async () =>
    new Map((parsePrometheusTextFormat(await telemetry.metrics()) as Family[]).map((f) => [f.name, f]));
  assert.equal(valueOf(await scrape(), "autoscaler_central_heartbeats_total"), 1);
  // The failure is counted as it happens, after the counter was written out: the next scrape shows it.
  assert.equal(valueOf(await scrape(), "autoscaler_central_db_errors_total", { kind: "unavailable" }), 1);
});
