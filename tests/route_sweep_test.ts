// A sweep over every route with inputs nobody should send: each JSON API operation in /openapi.json and each
// console page and form, with bad path ids, malformed or hostile bodies and query strings, as admin, viewer,
// node and nobody. No answer may be a 5xx; every API refusal is the one JSON error shape; and the sweep
// writes nothing an admin would see (users, keys, tokens, nodes, configs, rollouts keep their counts).
// The targeted behaviour of each route is in its own test; this catches the input nobody thought of (it
// found the console's revoke forms answering 500 to a path id that was not a number).
import assert from "node:assert/strict";
import { createTestApp } from "./helpers/app.ts";
import { createApiKeyWithRole, sessionWithRole } from "./helpers/auth.ts";
import { countRows, type ErrorBody } from "./helpers/assertions.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";

const BAD_BODIES: (string | undefined)[] = [
  undefined,
  "",
  "{",
  "[]",
  "null",
  "123",
  '"x"',
  "{}",
  '{"a":1}',
  JSON.stringify({ name: "x".repeat(5000) }),
  JSON.stringify({ name: null, labels: "x", pools: {}, config: 5, ts: "9999-99-99", version: -1 }),
  JSON.stringify({ samples: [{ ts: "2026-06-01T12:00:00Z", cpu_util: 1e308 }] }),
  '{"__proto__":{"role":"admin"},"constructor":{"prototype":{"x":1}}}',
  JSON.stringify({
    ids: [1, 1],
    node_ids: ["a", "a"],
    text: "\u0000\ud800",
    yaml: "a: [",
    patch: { a: null },
  }),
];
const BAD_QUERIES = [
  "",
  "?limit=-1&since=abc&wait=999&page=0&cursor=%ff&sort=x&order=up&status=x&range=99y&from=2026-13-45&to=x",
  "?limit=99999999999999999999&page=99999999999999999999&q=" + "x".repeat(3000) + "&label=a:b:c",
  "?status=online&status=offline&page=1&page=2&q=%00",
];
const BAD_FORMS = [
  "",
  "a=1",
  "name=" + "x".repeat(10000),
  "name=%00%ff&role=root&expires_in_days=-5&max_uses=1e99&username=&password=x&labels=a:b&key=&value=" +
  "&text=a%3A%20%5B&version=-1&from_version=x&to_version=y&mode=zz&patch=%7B&wave_size=0&bake_s=-1&canary=abc" +
  "&action=zz&display_name=%00&node=x&node=y",
  "%%%%",
  "nodes=" + "a,".repeat(3000),
];
/** Page and form routes of the console (routes/ui); ":id" is replaced by each bad id and a real node id. */
const PAGES = [
  "/",
  "/account/password",
  "/admin/api-keys",
  "/admin/enrollment-tokens",
  "/admin/users",
  "/audit",
  "/events",
  "/login",
  "/nodes",
  "/nodes/:id",
  "/nodes/:id/charts/cpu",
  "/nodes/:id/charts/:id",
  "/nodes/:id/config",
  "/nodes/:id/decommission",
  "/pools",
  "/rollouts",
  "/rollouts/:id",
  "/setup",
];
const FORMS = [
  "/account/password",
  "/admin/api-keys",
  "/admin/api-keys/:id/revoke",
  "/admin/enrollment-tokens",
  "/admin/enrollment-tokens/:id/revoke",
  "/admin/users",
  "/admin/users/:id",
  "/nodes/:id/config",
  "/nodes/:id/config/replay",
  "/nodes/:id/config/rollback",
  "/nodes/:id/decommission",
  "/nodes/:id/display-name",
  "/nodes/:id/labels",
  "/nodes/:id/reenrollment-token",
  "/nodes/labels",
  "/rollouts",
  "/rollouts/:id/pause",
  "/rollouts/:id/resume",
  "/rollouts/:id/abort",
];

const WATCHED_TABLES = [
  "users",
  "api_keys",
  "enrollment_tokens",
  "nodes",
  "config_versions",
  "rollouts",
  "instance_pools",
  "metric_samples",
];

Deno.test("route sweep: no bad input answers 5xx, API refusals keep their shape, nothing is written", async (t) => {
  const ctx = await createTestApp("route_sweep");
  try {
    const admin = await createApiKeyWithRole(ctx, "admin");
    const viewer = await createApiKeyWithRole(ctx, "viewer");
    const adminSession = await sessionWithRole(ctx, "admin");
    const viewerSession = await sessionWithRole(ctx, "viewer");
    const node = await createNodeWithToken(ctx, "sweep-node");
    const badIds = [node.nodeId, "abc", "-1", "0", "1e3", "99999999999999999999", "%00", "%C3%A4%00"];
    const withId = (path: string, id: string) =>
      path.replace(/\{(\w+)\}|:id/, id).replace(/\{(\w+)\}|:id/g, node.nodeId);
    const counts = async () => {
      const out: Record<string, number> = {};
      for (const table of WATCHED_TABLES) {
        out[table] = await countRows(ctx, `SELECT COUNT(*) AS n FROM ${table}`);
      }
      return out;
    };
    const before = await counts();

    await t.step("every operation in /openapi.json", async () => {
      const spec = await (await ctx.call("GET", "/openapi.json")).json() as {
        paths: Record<string, Record<string, unknown>>;
      };
      const problems: string[] = [];
      let requests = 0;
      for (const [path, operations] of Object.entries(spec.paths)) {
        for (const method of Object.keys(operations).map((m) => m.toUpperCase())) {
          if (!["GET", "POST", "PUT", "PATCH", "DELETE"].includes(method)) continue;
          const reads = method === "GET" || method === "DELETE";
          // Only reads and refusals: a DELETE or a valid write with an admin key would change things on
          // purpose, so writes go with bad bodies only and deletes with bad ids only.
          for (const id of path.includes("{") ? badIds.slice(reads && method === "DELETE" ? 1 : 0) : [""]) {
            const target = withId(path, id);
            for (const token of [admin.token, viewer.token, node.token, undefined]) {
              for (const body of reads ? [undefined] : BAD_BODIES) {
                for (const query of method === "GET" ? BAD_QUERIES : [""]) {
                  requests++;
                  const res = await ctx.call(method, target + query, {
                    token,
                    body,
                    headers: body === undefined ? {} : { "content-type": "application/json" },
                  });
                  const text = await res.text();
                  const where = `${res.status} ${method} ${target}${query.slice(0, 60)} body=${
                    body?.slice(0, 40)
                  }`;
                  if (res.status >= 500) problems.push(`${where}: ${text.slice(0, 200)}`);
                  else if (res.status >= 400) {
                    try {
                      const error = (JSON.parse(text) as ErrorBody).error;
                      if (!error?.code || !error.message) problems.push(`${where}: no error code/message`);
                    } catch {
                      problems.push(`${where}: not JSON: ${text.slice(0, 120)}`);
                    }
                  }
                }
              }
            }
          }
        }
      }
      assert.ok(requests > 5000, `swept ${requests} requests`);
      assert.deepEqual(problems.slice(0, 20), []);
    });

    await t.step("every console page and form", async () => {
      const problems: string[] = [];
      let requests = 0;
      for (const session of [adminSession, viewerSession, null]) {
        const cookie: Record<string, string> = session ? { cookie: session.cookie } : {};
        for (const path of PAGES) {
          for (const id of path.includes(":id") ? badIds : [""]) {
            for (const query of BAD_QUERIES) {
              for (const htmx of [{}, { "hx-request": "true" }] as Record<string, string>[]) {
                requests++;
                const res = await ctx.call("GET", withId(path, id) + query, {
                  headers: { accept: "text/html", ...cookie, ...htmx },
                });
                const text = await res.text();
                if (res.status >= 500) {
                  problems.push(
                    `${res.status} GET ${withId(path, id)}${query.slice(0, 60)}: ${text.slice(0, 120)}`,
                  );
                }
              }
            }
          }
        }
        for (const path of FORMS) {
          for (const id of path.includes(":id") ? badIds.slice(1) : [""]) {
            for (const form of BAD_FORMS) {
              requests++;
              const res = await ctx.call("POST", withId(path, id), {
                body: session ? `_csrf=${session.csrfToken}&${form}` : form,
                headers: {
                  "content-type": "application/x-www-form-urlencoded",
                  accept: "text/html",
                  ...cookie,
                },
              });
              const text = await res.text();
              if (res.status >= 500) {
                problems.push(
                  `${res.status} POST ${withId(path, id)} ${form.slice(0, 40)}: ${text.slice(0, 120)}`,
                );
              }
            }
          }
        }
      }
      assert.ok(requests > 2000, `swept ${requests} requests`);
      assert.deepEqual(problems.slice(0, 20), []);
    });

    await t.step("the sweep wrote nothing an operator would see", async () => {
      assert.deepEqual(await counts(), before);
    });
  } finally {
    await ctx.close();
  }
});
