// The config.yaml schema, canonical JSON and hash: pure functions, no database.
import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  canonicalJson,
  configHash,
  normalizeConfigText,
  parseConfigInput,
  prefixDetails,
  sameBody,
  toYaml,
} from "../core/configDocument.ts";
import type { ErrorDetail } from "../core/errors.ts";
import { testPool } from "./helpers/configs.ts";

const POOL_OCID = "ocid1.instancepool.oc1.iad.aaaaaaaaexamplepool0001";
const COMPARTMENT_OCID = "ocid1.compartment.oc1..aaaaaaaaexamplecompartment";

const validPool = (overrides: Record<string, unknown> = {}) =>
  testPool(POOL_OCID, { compartment_id: COMPARTMENT_OCID, ...overrides });

const VALID_YAML = `# the autoscaler's own file
pools:
  - instance_pool_id: ${POOL_OCID}
    compartment_id: ${COMPARTMENT_OCID}
    region: us-ashburn-1
    monitoring_method: oci          # or prometheus, with prometheus_url
    cpu_threshold: {min: 30, max: 75}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
    scheduler_max_instances: 3
    schedules: [{start_time: "05:30", end_time: "05:50"}]
`;

/** Parses, expecting a refusal; returns the details. */
function refused(input: unknown): ErrorDetail[] {
  const result = parseConfigInput(input);
  assert.equal(result.ok, false, `expected a refusal for ${JSON.stringify(input)}`);
  return result.ok ? [] : result.details;
}

function refusedPool(overrides: Record<string, unknown>, extraPools: Record<string, unknown>[] = []) {
  return refused({ pools: [validPool(overrides), ...extraPools] });
}

function fields(details: ErrorDetail[]): string[] {
  return details.map((d) => d.field ?? "");
}

Deno.test("config document: valid inputs", async (t) => {
  await t.step("the DESIGN example as YAML text parses to the same body as the object", () => {
    const fromYaml = parseConfigInput(VALID_YAML);
    const fromObject = parseConfigInput({ pools: [validPool()] });
    assert.ok(fromYaml.ok && fromObject.ok);
    assert.deepEqual(fromYaml.body, fromObject.body);
    // Unquoted 05:30 is a string in YAML 1.2 (not sexagesimal 330).
    const pool = (fromYaml.body.pools as Record<string, unknown>[])[0];
    assert.deepEqual(pool.schedules, [{ start_time: "05:30", end_time: "05:50" }]);
  });

  await t.step("optional fields may be left out; the body is stored as written (no defaults added)", () => {
    const minimal = validPool();
    delete minimal.monitoring_method;
    delete minimal.scheduler_max_instances;
    delete minimal.schedules;
    const result = parseConfigInput({ pools: [minimal] });
    assert.ok(result.ok);
    assert.equal("monitoring_method" in (result.body.pools as Record<string, unknown>[])[0], false);
  });

  await t.step("prometheus with a URL, tenancy as root compartment, other regions and realms", () => {
    const result = parseConfigInput({
      pools: [
        validPool({ monitoring_method: "prometheus", prometheus_url: "https://prom.example:9090/api" }),
        validPool({
          instance_pool_id: "ocid1.instancepool.oc2.eu-frankfurt-1.bbbbbbbb2",
          compartment_id: "ocid1.tenancy.oc1..aaaaaaaatenancy",
          region: "us-gov-ashburn-1",
        }),
      ],
    });
    assert.ok(result.ok, JSON.stringify(result));
  });

  await t.step("edge values: 0 and 100, min == max limits, scheduler at the bounds", () => {
    const result = parseConfigInput({
      pools: [validPool({
        cpu_threshold: { min: 0, max: 100 },
        scaling_limits: { min: 0, max: 0 },
        scheduler_max_instances: 0,
        schedules: [{ start_time: "00:00", end_time: "23:59" }],
      })],
    });
    assert.ok(result.ok, JSON.stringify(result));
  });

  await t.step("unknown keys survive at every level, from YAML and from JSON", () => {
    const yamlText = `log_level: debug
pools:
  - instance_pool_id: ${POOL_OCID}
    compartment_id: ${COMPARTMENT_OCID}
    region: us-ashburn-1
    cpu_threshold: {min: 30, max: 75, smoothing: 3}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10, cooldown_s: 120}
    schedules: [{start_time: "05:30", end_time: "05:50", days: [mon, tue]}]
    future_option: {nested: [1, 2]}
`;
    const fromYaml = parseConfigInput(yamlText);
    assert.ok(fromYaml.ok, JSON.stringify(fromYaml));
    const pool = (fromYaml.body.pools as Record<string, Record<string, unknown>>[])[0];
    assert.equal(fromYaml.body.log_level, "debug");
    assert.deepEqual(pool.future_option, { nested: [1, 2] });
    assert.equal(pool.cpu_threshold.smoothing, 3);
    assert.equal(pool.scaling_limits.cooldown_s, 120);
    assert.deepEqual((pool.schedules as unknown as Record<string, unknown>[])[0].days, ["mon", "tue"]);
    const fromJson = parseConfigInput(JSON.parse(JSON.stringify(fromYaml.body)));
    assert.ok(fromJson.ok);
    assert.deepEqual(fromJson.body, fromYaml.body);
    // And back through YAML text.
    assert.deepEqual(parse(toYaml(fromYaml.body)), fromYaml.body);
  });
});

Deno.test("config document: every rule refuses with the field named", async (t) => {
  // One daily window as the pool's only schedule.
  const schedule = (start_time: string, end_time?: string) => ({
    schedules: [end_time === undefined ? { start_time } : { start_time, end_time }],
  });
  type Case = [string, () => ErrorDetail[], string];
  // A pool that differs from a valid one by `overrides`, refused naming `field` of pools.0.
  const poolCase = (name: string, overrides: Record<string, unknown>, field: string): Case => [
    name,
    () => refusedPool(overrides),
    `pools.0.${field}`,
  ];
  const cases: Case[] = [
    ["pools missing", () => refused({}), "pools"],
    ["pools empty", () => refused({ pools: [] }), "pools"],
    ["pools not a list", () => refused({ pools: { a: 1 } }), "pools"],
    poolCase("pool OCID malformed", { instance_pool_id: "ocid1.instancepool.oc1" }, "instance_pool_id"),
    poolCase(
      "pool OCID of another type",
      { instance_pool_id: "ocid1.instance.oc1.iad.aaaa" },
      "instance_pool_id",
    ),
    poolCase("pool OCID uppercase", { instance_pool_id: POOL_OCID.toUpperCase() }, "instance_pool_id"),
    poolCase("pool OCID missing", { instance_pool_id: undefined }, "instance_pool_id"),
    poolCase("compartment OCID malformed", { compartment_id: "compartment-1" }, "compartment_id"),
    poolCase("compartment OCID of a pool", { compartment_id: POOL_OCID }, "compartment_id"),
    poolCase("region malformed", { region: "Ashburn" }, "region"),
    poolCase("region missing", { region: undefined }, "region"),
    poolCase("monitoring_method unknown", { monitoring_method: "datadog" }, "monitoring_method"),
    poolCase("prometheus without URL", { monitoring_method: "prometheus" }, "prometheus_url"),
    poolCase(
      "prometheus with a non-http URL",
      { monitoring_method: "prometheus", prometheus_url: "ftp://x" },
      "prometheus_url",
    ),
    poolCase("prometheus with no URL at all", {
      monitoring_method: "prometheus",
      prometheus_url: "not a url",
    }, "prometheus_url"),
    poolCase("cpu min above 100", { cpu_threshold: { min: 101, max: 75 } }, "cpu_threshold.min"),
    poolCase("cpu max below 0", { cpu_threshold: { min: 10, max: -1 } }, "cpu_threshold.max"),
    poolCase("cpu min not below max", { cpu_threshold: { min: 75, max: 75 } }, "cpu_threshold.min"),
    poolCase("cpu min as a string", { cpu_threshold: { min: "30", max: 75 } }, "cpu_threshold.min"),
    poolCase("cpu threshold missing", { cpu_threshold: undefined }, "cpu_threshold"),
    poolCase("ram min above max", { ram_threshold: { min: 80, max: 75 } }, "ram_threshold.min"),
    poolCase("ram max missing", { ram_threshold: { min: 20 } }, "ram_threshold.max"),
    poolCase("limits min above max", { scaling_limits: { min: 5, max: 2 } }, "scaling_limits.min"),
    poolCase("limits negative", { scaling_limits: { min: -1, max: 2 } }, "scaling_limits.min"),
    poolCase("limits fractional", { scaling_limits: { min: 1, max: 2.5 } }, "scaling_limits.max"),
    poolCase("scheduler above limits", { scheduler_max_instances: 11 }, "scheduler_max_instances"),
    poolCase(
      "scheduler below limits",
      { scaling_limits: { min: 2, max: 10 }, scheduler_max_instances: 1 },
      "scheduler_max_instances",
    ),
    poolCase("scheduler fractional", { scheduler_max_instances: 2.5 }, "scheduler_max_instances"),
    poolCase("schedule time malformed", schedule("5:30", "05:50"), "schedules.0.start_time"),
    poolCase("schedule hour 24", schedule("05:30", "24:00"), "schedules.0.end_time"),
    poolCase("schedule start after end", schedule("06:00", "05:50"), "schedules.0.start_time"),
    poolCase("schedule start equal to end", schedule("05:50", "05:50"), "schedules.0.start_time"),
    poolCase("schedule end missing", schedule("05:30"), "schedules.0.end_time"),
    poolCase("schedules not a list", { schedules: "05:30-05:50" }, "schedules"),
    ["duplicate pool id", () => refusedPool({}, [validPool()]), "pools.1.instance_pool_id"],
    [
      "second pool bad",
      () =>
        refused({
          pools: [
            validPool(),
            validPool({ instance_pool_id: "ocid1.instancepool.oc1.iad.other", region: "x" }),
          ],
        }),
      "pools.1.region",
    ],
    ["document is a list", () => refused([validPool()]), ""],
    ["document is null", () => refused(null), ""],
    ["document is a number", () => refused(42), ""],
    ["YAML that is a scalar", () => refused("just text"), ""],
    ["YAML empty", () => refused(""), ""],
    ["YAML .inf in an unknown key", () => refused(VALID_YAML + "extra: .inf\n"), "extra"],
    [
      "YAML .nan as a threshold",
      () => refused(VALID_YAML.replace("{min: 30, max: 75}", "{min: .nan, max: 75}")),
      "pools.0.cpu_threshold.min",
    ],
  ];
  for (const [name, run, field] of cases) {
    await t.step(name, () => {
      const details = run();
      assert.ok(fields(details).includes(field), `expected field "${field}" in ${JSON.stringify(details)}`);
      for (const detail of details) assert.ok(detail.message.length > 0);
    });
  }

  await t.step("YAML syntax error names the line", () => {
    const details = refused("pools:\n  - a: [1\n  b: 2\n");
    assert.equal(details[0].field, "");
    assert.equal(details[0].code, "yaml_syntax");
    assert.equal(typeof details[0].line, "number");
    assert.match(details[0].message, /YAML syntax/);
  });

  await t.step("YAML duplicate key is refused", () => {
    const details = refused(VALID_YAML + "pools: []\n");
    assert.equal(details[0].code, "yaml_syntax");
  });

  await t.step("several problems are reported together", () => {
    const details = refusedPool({ region: "nowhere", monitoring_method: "bogus" });
    assert.deepEqual(fields(details).sort(), ["pools.0.monitoring_method", "pools.0.region"]);
  });

  await t.step("prefixDetails puts fields under the caller's prefix", () => {
    const details = prefixDetails(
      [{ field: "pools.0.region", message: "x" }, { field: "", message: "y" }],
      "config",
    );
    assert.deepEqual(fields(details), ["config.pools.0.region", "config"]);
  });
});

Deno.test("config document: the text as written, and where a problem is", async (t) => {
  await t.step("YAML text is kept as written: comments, key order, quoting", () => {
    const parsed = parseConfigInput(VALID_YAML);
    assert.ok(parsed.ok);
    assert.equal(parsed.text, VALID_YAML);
    assert.equal(parsed.from, "yaml");
  });

  await t.step("line ends become LF, a BOM goes, one final newline is added", () => {
    assert.equal(normalizeConfigText("\uFEFFa: 1\r\nb: 2\rc: 3"), "a: 1\nb: 2\nc: 3\n");
    assert.equal(normalizeConfigText("a: 1\n"), "a: 1\n");
    const parsed = parseConfigInput(VALID_YAML.replaceAll("\n", "\r\n"));
    assert.ok(parsed.ok);
    assert.equal(parsed.text, VALID_YAML);
  });

  await t.step("an object is stored with a YAML rendering in its key order", () => {
    const parsed = parseConfigInput({ pools: [validPool()] });
    assert.ok(parsed.ok);
    assert.equal(parsed.from, "json");
    assert.equal(parsed.text, toYaml({ pools: [validPool()] }));
    assert.ok(parsed.text.indexOf("instance_pool_id") < parsed.text.indexOf("schedules"));
  });

  const lineOf = (text: string, needle: string, occurrence = 0) => {
    const lines = text.split("\n");
    const matching = lines.flatMap((line, index) => (line.includes(needle) ? [index + 1] : []));
    return matching[occurrence];
  };
  const detailFor = (details: ErrorDetail[], field: string) => {
    const detail = details.find((d) => d.field === field);
    assert.ok(detail, `no detail for ${field} in ${JSON.stringify(details)}`);
    return detail;
  };

  await t.step("a schema error names the field and its line and column", () => {
    const text = VALID_YAML.replace(
      "cpu_threshold: {min: 30, max: 75}",
      "cpu_threshold: {min: 30, max: 175}",
    );
    const detail = detailFor(refused(text), "pools.0.cpu_threshold.max");
    assert.equal(detail.line, lineOf(text, "cpu_threshold"));
    assert.equal(detail.column, text.split("\n")[detail.line! - 1].indexOf("max:") + 1);
  });

  await t.step("block style, the second pool, a schedule item: each on its own line", () => {
    const text = `pools:
  - instance_pool_id: ${POOL_OCID}
    compartment_id: ${COMPARTMENT_OCID}
    region: us-ashburn-1
    cpu_threshold: {min: 30, max: 75}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
  # the second pool
  - instance_pool_id: ${POOL_OCID.replace("0001", "0002")}
    compartment_id: ${COMPARTMENT_OCID}
    region: us-ashburn-1
    cpu_threshold:
      min: 30
      max: 75
    ram_threshold:
      min: 90   # above max
      max: 75
    scaling_limits: {min: 1, max: 10}
    schedules:
      - start_time: "05:30"
        end_time: "05:50"
      - start_time: "25:00"
        end_time: "26:00"
`;
    const details = refused(text);
    assert.equal(detailFor(details, "pools.1.ram_threshold.min").line, lineOf(text, "min: 90"));
    assert.equal(detailFor(details, "pools.1.ram_threshold.min").column, 7);
    assert.equal(detailFor(details, "pools.1.schedules.1.start_time").line, lineOf(text, "25:00"));
    assert.equal(detailFor(details, "pools.1.schedules.1.end_time").line, lineOf(text, "26:00"));
  });

  await t.step("a missing field points at the entry that should hold it", () => {
    const text = VALID_YAML.replace("    region: us-ashburn-1\n", "");
    const detail = detailFor(refused(text), "pools.0.region");
    assert.equal(detail.line, lineOf(text, "instance_pool_id"));
    const empty = detailFor(refused("# nothing yet\npools: []\n"), "pools");
    assert.equal(empty.line, 2);
  });

  await t.step("a document that is not a mapping, and a non-JSON value, have lines too", () => {
    const scalar = refused("# a comment\njust a string\n");
    assert.equal(scalar[0].field, "");
    assert.equal(scalar[0].line, 2);
    const nan = detailFor(
      refused(VALID_YAML.replace("{min: 30, max: 75}", "{min: .nan, max: 75}")),
      "pools.0.cpu_threshold.min",
    );
    assert.equal(nan.line, lineOf(VALID_YAML, "cpu_threshold"));
  });

  await t.step("a field reached through an alias points at the anchor", () => {
    const text = VALID_YAML.replace(
      "cpu_threshold: {min: 30, max: 75}",
      "cpu_threshold: &t {min: 80, max: 75}",
    )
      .replace("ram_threshold: {min: 20, max: 75}", "ram_threshold: *t");
    const details = refused(text);
    assert.equal(detailFor(details, "pools.0.cpu_threshold.min").line, lineOf(text, "&t"));
    assert.equal(detailFor(details, "pools.0.ram_threshold.min").line, lineOf(text, "&t"));
  });

  await t.step("an unclosed { or [ is reported where it opened, not where the parser noticed", () => {
    const text = VALID_YAML.replace("ram_threshold: {min: 20, max: 75}", "ram_threshold: {min: 20, max: 75");
    const [detail] = refused(text);
    assert.equal(detail.code, "yaml_syntax");
    assert.equal(detail.line, lineOf(text, "ram_threshold"));
    assert.equal(detail.column, text.split("\n")[detail.line! - 1].indexOf("{") + 1);
    const list = VALID_YAML.replace(
      'schedules: [{start_time: "05:30", end_time: "05:50"}]',
      "schedules: [1, 2",
    );
    assert.equal(refused(list)[0].line, lineOf(list, "schedules"));
  });

  await t.step("a syntax error gives its line and column; JSON input gives none", () => {
    const details = refused("pools:\n  - region: us-ashburn-1\n    cpu_threshold: {min: 30, max: 75\n");
    assert.equal(details[0].code, "yaml_syntax");
    assert.ok(details[0].line! >= 3, JSON.stringify(details));
    assert.equal(typeof details[0].column, "number");
    const json = detailFor(refusedPool({ region: "nowhere" }), "pools.0.region");
    assert.equal(json.line, undefined);
  });

  await t.step("too many aliases is refused, not expanded", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++) {
      bomb.push(
        `${"bcdefghij"[i]}: &${"bcdefghij"[i]} [${
          Array(10).fill(`*${i === 0 ? "a" : "bcdefghij"[i - 1]}`).join(", ")
        }]`,
      );
    }
    const details = refused(bomb.join("\n") + "\n");
    assert.equal(details[0].code, "yaml_syntax");
  });
});

Deno.test("config document: canonical JSON, hash and YAML", async (t) => {
  await t.step("canonical JSON sorts keys at every level and keeps array order", () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: "x" }, e: null }),
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1,"e":null}',
    );
    assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
    assert.equal(canonicalJson("é\n"), JSON.stringify("é\n"));
  });

  await t.step("hash is sha256 hex of the config.yaml text: a comment changes it", async () => {
    const a = await configHash(VALID_YAML);
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.equal(a, await configHash(VALID_YAML));
    assert.notEqual(a, await configHash(VALID_YAML.replace("# the autoscaler's own file", "# edited")));
    assert.equal(
      await configHash("{}"),
      "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", // sha256("{}")
    );
  });

  await t.step("sameBody compares meaning, whatever the key order", () => {
    const reordered = Object.fromEntries(Object.entries(validPool()).reverse());
    assert.ok(sameBody({ pools: [validPool()], x: 1 }, { x: 1, pools: [reordered] }));
    assert.ok(!sameBody({ pools: [validPool()] }, { pools: [validPool({ region: "eu-frankfurt-1" })] }));
  });

  await t.step("toYaml quotes what a YAML 1.1 or 1.2 reader would take for something else", () => {
    const tricky = {
      time: "05:30",
      yes: "yes",
      on: "on",
      n: "n",
      exponent: "1e3",
      octal12: "0o17",
      octal11: "0755",
      nothing: "null",
      tilde: "~",
      date: "2001-12-14",
      comment: "a # b",
      colon: "a: b",
      padded: " x ",
      lines: "one\ntwo",
      plain: "us-ashburn-1",
      url: "http://prometheus:9090/api",
    };
    const text = toYaml(tricky);
    assert.deepEqual(parse(text), tricky);
    assert.deepEqual(parse(text, { version: "1.1" }), tricky);
    assert.match(text, /^time: "05:30"$/m);
    assert.match(text, /^"n": "n"$/m);
    assert.match(text, /^plain: us-ashburn-1$/m);
  });

  await t.step("toYaml keeps the written key order and round-trips", () => {
    const body = { pools: [validPool()], zeta: true, alpha: "a" };
    const text = toYaml(body);
    assert.ok(text.indexOf("zeta") < text.indexOf("alpha"));
    assert.deepEqual(parse(text), body);
    const again = parseConfigInput(text);
    assert.ok(again.ok);
    assert.deepEqual(again.body, body);
  });
});
