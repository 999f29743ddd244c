// What hostile requests cost the server (issue 13, items 2 and 3): response size, time and RSS growth of
// each payload, in process (app.request, no sockets) on a throwaway database. Prints figures, never
// pass/fail (tests/hostile_input_test.ts holds the rules).
//
//   deno run -A bench/hostile.ts [--kb 60]
import { parseArgs } from "node:util";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { createApiKey } from "../core/apiKeys.ts";
import { createTestApp } from "../tests/helpers/app.ts";

const args = parseArgs({ args: Deno.args, options: { kb: { type: "string" } } });
const kb = Number(args.values.kb ?? 60);

const ctx = await createTestApp("bench_hostile");
const setup = { kind: "system", name: "bench" } as const;
const { token: enrollment } = await createEnrollmentToken(ctx.deps, { principal: setup }, { name: "bench" });
const { key: operatorKey } = await createApiKey(ctx.deps, { principal: setup }, {
  name: "bench-op",
  role: "operator",
});
const registered = await ctx.call("POST", "/api/v1/register", {
  json: { enrollment_token: enrollment, name: "bench-node", hostname: "h" },
});
const node = await registered.json() as { node_id: string; node_token: string };

/** `count` copies of `{}` in a JSON array: kb kilobytes of them. */
const emptyObjects = (bytes: number) => Array.from({ length: Math.floor(bytes / 3) }, () => ({}));
const pools = emptyObjects(kb * 1024);
const deepJson = (depth: number) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return { pools: [], deep: value };
};
const billionLaughs = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...["b", "c", "d", "e", "f", "g", "h", "i"].map((name, i) =>
    `${name}: &${name} [${Array(9).fill(`*${"abcdefgh"[i]}`).join(",")}]`
  ),
].join("\n");
const manyAliases = `x: &x lol\nitems:\n${Array.from({ length: 5000 }, () => "  - *x").join("\n")}\n`;

const cases: [string, () => Promise<Response>][] = [
  [
    `register, no token, ${kb} KB of {} pools`,
    () => ctx.call("POST", "/api/v1/register", { json: { name: "x", hostname: "h", pools } }),
  ],
  [`register, made-up token, config with ${kb} KB of {} pools`, () =>
    ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: "ace_made_up", name: "x", hostname: "h", config: { pools } },
    })],
  [`register, enrollment token, ${kb} KB of {} pools`, () =>
    ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: enrollment, name: "x", hostname: "h", pools },
    })],
  [
    `register, enrollment token, config with ${kb} KB of {} pools`,
    () =>
      ctx.call("POST", "/api/v1/register", {
        json: { enrollment_token: enrollment, name: "x", hostname: "h", config: { pools } },
      }),
  ],
  [
    `operator config upload, ${kb} KB of {} pools`,
    () =>
      ctx.call("POST", `/api/v1/nodes/${node.node_id}/configs`, {
        token: operatorKey,
        json: { config: { pools } },
      }),
  ],
  ["register, billion-laughs YAML config", () =>
    ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: enrollment, name: "x", hostname: "h", config: billionLaughs },
    })],
  ["register, 5,000 aliases of one scalar", () =>
    ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: enrollment, name: "x", hostname: "h", config: manyAliases },
    })],
  ["register, JSON config nested 5,000 deep", () =>
    ctx.call("POST", "/api/v1/register", {
      json: { enrollment_token: enrollment, name: "x", hostname: "h", config: deepJson(5000) },
    })],
  ["heartbeat, 60 KB random token (x200)", async () => {
    let last: Response | undefined;
    for (let i = 0; i < 200; i++) {
      await last?.body?.cancel();
      const junk = `acn_${crypto.randomUUID().repeat(1700)}`.slice(0, 60_000);
      last = await ctx.call("POST", `/api/v1/nodes/${node.node_id}/heartbeat`, { token: junk, json: {} });
    }
    return last!;
  }],
];

console.log(`| payload | status | response bytes | ms | RSS growth MB |`);
console.log(`| --- | --: | --: | --: | --: |`);
for (const [label, run] of cases) {
  const rssBefore = Deno.memoryUsage().rss;
  const started = performance.now();
  const res = await run();
  const body = await res.text();
  const ms = performance.now() - started;
  const rss = (Deno.memoryUsage().rss - rssBefore) / 1048576;
  console.log(
    `| ${label} | ${res.status} | ${body.length.toLocaleString("en")} | ${ms.toFixed(0)} | ${
      rss.toFixed(1)
    } |`,
  );
}
const unhandled = ctx.logger.lines.filter((line) => JSON.stringify(line).includes("unhandled")).length;
console.log(`unhandled errors logged: ${unhandled}`);
await ctx.close();
