// Issue 13, items 2 and 3: requests that would cost the server without bound. Credentials are checked
// before anything else is parsed or computed, error details are capped, tokens of the wrong shape are
// refused before hashing, the token-hash cache is bounded, and hostile YAML/JSON gets 422 naming
// `config` (never 500). The figures (size, time, RSS) are printed by bench/hostile.ts.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { MAX_ERROR_DETAILS } from "../core/errors.ts";
import { newSecret, SECRET_PREFIX } from "../core/secrets.ts";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import type { ErrorBody } from "./helpers/assertions.ts";
import { testConfig } from "./helpers/configs.ts";

const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaahostile";
const emptyPools = (kb: number) => Array.from({ length: Math.floor((kb * 1024) / 3) }, () => ({}));

const BILLION_LAUGHS = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
  "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
  "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
  "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]",
  "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]",
  "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]",
].join("\n");
const MANY_ALIASES = `x: &x lol\nitems:\n${Array.from({ length: 5000 }, () => "  - *x").join("\n")}\n`;

function nested(depth: number): Record<string, unknown> {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return { pools: [], deep: value };
}
const NESTED_YAML = `pools: []\ndeep: ${"[".repeat(3000)}${"]".repeat(3000)}\n`;

Deno.test("hostile input", async (t) => {
  const ctx = await createTestApp("hostile_input");
  const setup = { kind: "system", name: "test" } as const;
  const { token: enrollment } = await createEnrollmentToken(ctx.deps, { principal: setup }, {
    name: "fleet",
  });
  const operator = await createApiKeyWithRole(ctx, "operator");
  const registered = await json<{ node_id: string; node_token: string }>(
    await ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: enrollment, name: "n1", hostname: "h" },
    }),
  );
  const unhandled = () =>
    ctx.logger.lines.filter((line) => JSON.stringify(line).includes("unhandled")).length;

  try {
    await t.step(
      "register with a made-up token and 60 KB of {} pools in its config: 401, small",
      async () => {
        const res = await ctx.call("POST", "/api/v1/register", {
          json: {
            enrollment_token: "ace_made_up",
            name: "x",
            hostname: "h",
            config: { pools: emptyPools(60) },
          },
        });
        assert.equal(res.status, 401);
        assert.ok((await res.text()).length < 1024);
      },
    );

    for (
      const [label, body] of [
        ["top-level pools", { pools: emptyPools(60) }],
        ["config pools", { config: { pools: emptyPools(60) } }],
        ["config pools as YAML", { config: `pools:\n${"  - {}\n".repeat(20_000)}` }],
      ] as const
    ) {
      await t.step(`register with a valid token, 60 KB of {} ${label}: 422, capped and small`, async () => {
        const res = await ctx.call("POST", "/api/v1/register", {
          json: { enrollment_token: enrollment, name: "x", hostname: "h", ...body },
        });
        assert.equal(res.status, 422);
        const text = await res.text();
        assert.ok(text.length < 32_000, `${text.length} bytes`);
        const error = (JSON.parse(text) as ErrorBody).error;
        assert.ok((error.details?.length ?? 0) <= MAX_ERROR_DETAILS);
        const field = label === "top-level pools"
          ? "pools"
          : label === "config pools"
          ? "config.pools"
          : "config"; // YAML: refused by its length before it is parsed
        assert.ok(error.details?.some((d) => d.field === field), JSON.stringify(error.details?.slice(0, 3)));
      });
    }

    await t.step("operator config upload, 60 KB of {} pools: 422, capped and small", async () => {
      const res = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/configs`, {
        token: operator.token,
        json: { config: { pools: emptyPools(60) } },
      });
      assert.equal(res.status, 422);
      const text = await res.text();
      assert.ok(text.length < 32_000, `${text.length} bytes`);
      const error = (JSON.parse(text) as ErrorBody).error;
      assert.ok(error.details?.some((d) => d.field === "config.pools"));
    });

    await t.step(
      "many problems in a config within the pool bound: details capped at the shared cap",
      async () => {
        const pools = Array.from({ length: 100 }, () => ({}));
        const res = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/configs`, {
          token: operator.token,
          json: { config: { pools } },
        });
        assert.equal(res.status, 422);
        const error = (await json<ErrorBody>(res)).error;
        assert.equal(error.details?.length, MAX_ERROR_DETAILS);
        assert.match(error.message, /and \d+ more/);
      },
    );

    await t.step(
      "metrics with a made-up (well-shaped) node token: 401 before the samples are read",
      async () => {
        const samples = Array.from({ length: 1000 }, () => ({ instance_pool_id: "bad", ts: "x" }));
        const res = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/metrics`, {
          token: newSecret(SECRET_PREFIX.nodeToken),
          json: { samples },
        });
        assert.equal(res.status, 401);
        assert.ok((await res.text()).length < 1024);
      },
    );

    await t.step("node tokens of the wrong shape: 401, never hashed nor cached", async () => {
      const before = ctx.services.nodeAuth.size;
      for (let i = 0; i < 20; i++) {
        const junk = `acn_${crypto.randomUUID().repeat(1700)}`.slice(0, 60_000);
        for (const path of ["heartbeat", "metrics", "config/ack"]) {
          const res = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/${path}`, {
            token: junk,
            json: {},
          });
          assert.equal(res.status, 401, path);
          await res.body?.cancel();
        }
      }
      assert.equal(ctx.services.nodeAuth.size, before);
      const ok = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/heartbeat`, {
        token: registered.node_token,
        json: {},
      });
      assert.equal(ok.status, 200);
    });

    await t.step("a made-up (well-shaped) node token is refused and never remembered", async () => {
      const before = ctx.services.nodeAuth.size;
      for (let i = 0; i < 5; i++) {
        const res = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/heartbeat`, {
          token: newSecret(SECRET_PREFIX.nodeToken),
          json: {},
        });
        assert.equal(res.status, 401);
        await res.body?.cancel();
      }
      assert.equal(ctx.services.nodeAuth.size, before);
    });

    const hostile: [string, unknown][] = [
      ["billion laughs", BILLION_LAUGHS],
      ["5,000 aliases of one scalar", MANY_ALIASES],
      ["JSON nested 2,500 deep", nested(2500)],
      ["JSON nested 20,000 deep", nested(20_000)],
      ["YAML nested 3,000 deep", NESTED_YAML],
    ];
    for (const [label, config] of hostile) {
      await t.step(`${label}: 422 naming config at register and at upload, no 500`, async () => {
        const before = unhandled();
        const atRegister = await ctx.call("POST", "/api/v1/register", {
          json: { enrollment_token: enrollment, name: "hostile", hostname: "h", config },
        });
        assert.equal(atRegister.status, 422);
        const registerError = (await json<ErrorBody>(atRegister)).error;
        assert.ok(registerError.details?.some((d) => d.field?.startsWith("config")), registerError.message);
        const atUpload = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/configs`, {
          token: operator.token,
          json: { config },
        });
        assert.equal(atUpload.status, 422);
        const uploadError = (await json<ErrorBody>(atUpload)).error;
        assert.ok(uploadError.details?.some((d) => d.field?.startsWith("config")), uploadError.message);
        assert.equal(unhandled(), before, "nothing reached the unhandled-error log");
      });
    }

    await t.step("a valid config still registers and uploads", async () => {
      const config = testConfig(POOL);
      const res = await ctx.call("POST", `/api/v1/nodes/${registered.node_id}/configs`, {
        token: operator.token,
        json: { config },
      });
      assert.equal(res.status, 201);
      await res.body?.cancel();
    });
  } finally {
    await ctx.close();
  }
});
