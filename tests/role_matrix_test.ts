// Every route in the OpenAPI document, called anonymously and with viewer, operator and admin API keys,
// must answer as its `x-min-role` says: 401 anonymous, 403 role too low, neither when the role suffices.
// Routes other modules add are covered automatically; an /api route without x-min-role fails the test.
import assert from "node:assert/strict";
import { ROLES } from "../core/principal.ts";
import { expectedOutcome, roleMatrix, roleMatrixMarkdown } from "../scripts/role_matrix.ts";
import { createTestApp } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";

interface Parameter {
  name: string;
  in: string;
  schema?: { type?: string; format?: string };
}

// Ids that exist nowhere, so an allowed DELETE or PATCH finds nothing to change.
function placeholder(parameter: Parameter | undefined): string {
  if (parameter?.schema?.type === "integer" || parameter?.schema?.type === "number") return "999999";
  return "00000000-0000-4000-8000-000000000000";
}

Deno.test("role matrix: every route answers by its x-min-role", async (t) => {
  const ctx = await createTestApp("role_matrix");
  try {
    const document = ctx.app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "t", version: "0" } });
    const rows = roleMatrix(document as Parameters<typeof roleMatrix>[0]);
    const keys = {
      viewer: (await createApiKeyWithRole(ctx, "viewer")).token,
      operator: (await createApiKeyWithRole(ctx, "operator")).token,
      admin: (await createApiKeyWithRole(ctx, "admin")).token,
    };

    await t.step("every /api route declares x-min-role", () => {
      const undeclared = rows.filter((r) => r.path.startsWith("/api/") && !r.access);
      assert.deepEqual(
        undeclared.map((r) => `${r.method} ${r.path}`),
        [],
        "add ...access(level) to these createRoute() calls (see routes/guards.ts)",
      );
      assert.ok(rows.filter((r) => r.path.startsWith("/api/")).length >= 10, "expected the API routes");
    });

    await t.step("the Markdown matrix names every /api route", () => {
      const markdown = roleMatrixMarkdown(rows);
      for (const row of rows.filter((r) => r.path.startsWith("/api/"))) {
        assert.ok(markdown.includes(`| ${row.method} | \`${row.path}\` |`), `${row.method} ${row.path}`);
      }
    });

    for (const row of rows) {
      // Routes outside /api (health, docs) carry no x-min-role: they are public.
      const access = row.access ?? (row.path.startsWith("/api/") ? undefined : "public");
      if (!access) continue; // reported by the first step
      await t.step(`${row.method} ${row.path} (${access})`, async () => {
        const operation = (document.paths?.[row.path] as Record<string, { parameters?: Parameter[] }>)[
          row.method.toLowerCase()
        ];
        const path = row.path.replace(
          /\{([^}]+)\}/g,
          (_, name: string) =>
            placeholder(operation.parameters?.find((p) => p.in === "path" && p.name === name)),
        );
        const hasBody = Boolean((operation as { requestBody?: unknown }).requestBody);
        for (const caller of ["anonymous", ...ROLES] as const) {
          const res = await ctx.call(row.method, path, {
            token: caller === "anonymous" ? undefined : keys[caller],
            ...(hasBody ? { json: {} } : {}),
          });
          await res.body?.cancel();
          const expected = expectedOutcome(access, caller);
          const what = `${row.method} ${path} as ${caller}: got ${res.status}`;
          if (expected === "allowed") {
            assert.ok(res.status !== 401 && res.status !== 403, `${what}, expected neither 401 nor 403`);
            assert.ok(res.status < 500, `${what}, expected no server error`);
          } else {
            assert.equal(res.status, expected, what);
          }
        }
      });
    }

    await t.step("the keys still work after the walk (no allowed call revoked them)", async () => {
      for (const role of ROLES) {
        const res = await ctx.call("GET", "/api/v1/auth/me", { token: keys[role] });
        assert.equal(res.status, 200);
        await res.body?.cancel();
      }
    });
  } finally {
    await ctx.close();
  }
});
