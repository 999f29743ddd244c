// Health, readiness, static files and the API docs (Swagger UI at /docs, ReDoc at /redoc).
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../core/deps.ts";
import { checkReadiness } from "../core/health.ts";
import { notFound } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { findAsset } from "../static/assets.ts";
import { assetVersion } from "./ui/assets.ts";
import type { AppEnv } from "./env.ts";
import { contentSecurityPolicy, STRICT_CSP } from "./securityHeaders.ts";
import { jsonResponse } from "./api/schemas.ts";

const HealthSchema = z.object({ status: z.literal("ok"), version: z.string() }).openapi("Health");
const ReadinessSchema = z.object({
  status: z.enum(["ready", "not_ready"]),
  checks: z.object({
    database: z.enum(["ok", "unreachable"]),
    migrations: z.enum(["ok", "pending", "unknown"]),
  }),
  detail: z.string().optional(),
}).openapi("Readiness");

const healthzRoute = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["system"],
  summary: "Liveness: the process is up (touches nothing else)",
  responses: { 200: jsonResponse(HealthSchema, "Up") },
});

const readyzRoute = createRoute({
  method: "get",
  path: "/readyz",
  tags: ["system"],
  summary: "Readiness: the database answers and migrations are at head",
  responses: {
    200: jsonResponse(ReadinessSchema, "Ready"),
    503: jsonResponse(ReadinessSchema, "Not ready"),
  },
});

const docsPage = (title: string, body: string, head = "") =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
${head}
</head>
<body>
${body}
</body>
</html>
`;

const SWAGGER_HTML = docsPage(
  "Autoscaler Central API",
  `<div id="swagger-ui"></div>
<script src="/static/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script>`,
  `<link rel="stylesheet" href="/static/swagger-ui.css">`,
);

const REDOC_HTML = docsPage(
  "Autoscaler Central API (ReDoc)",
  `<div id="redoc"></div>
<script src="/static/redoc.standalone.js"></script>
<script src="/static/docs-init.js"></script>`,
);

// Strong validators for the embedded files, computed once per process.
const assetTags = new Map<string, Promise<string>>();
function assetTag(name: string, body: string): Promise<string> {
  let tag = assetTags.get(name);
  if (!tag) {
    tag = crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)).then((digest) =>
      `"${
        Array.from(new Uint8Array(digest).slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("")
      }-${VERSION}"`
    );
    assetTags.set(name, tag);
  }
  return tag;
}

export function registerSystemRoutes(app: OpenAPIHono<AppEnv>, deps: Pick<CoreDeps, "pool">): void {
  app.openapi(healthzRoute, (c) => c.json({ status: "ok" as const, version: VERSION }, 200));

  app.openapi(readyzRoute, async (c) => {
    const readiness = await checkReadiness(deps);
    const body = {
      status: readiness.ready ? "ready" as const : "not_ready" as const,
      checks: readiness.checks,
      ...(readiness.detail ? { detail: readiness.detail } : {}),
    };
    return readiness.ready ? c.json(body, 200) : c.json(body, 503);
  });

  // The docs run third-party bundles that inject inline styles (ReDoc's styled-components) and
  // ReDoc's search runs in a blob: worker; script-src stays strict (docs-init.js, no inline script).
  const docsCsp = contentSecurityPolicy({
    "style-src": [...STRICT_CSP["style-src"], "'unsafe-inline'"],
    "worker-src": [...STRICT_CSP["worker-src"], "blob:"],
  });
  app.get("/docs", docsCsp, (c) => c.html(SWAGGER_HTML));
  app.get("/redoc", docsCsp, (c) => c.html(REDOC_HTML));

  app.get("/static/:name", async (c) => {
    const name = c.req.param("name");
    const asset = await findAsset(name);
    if (!asset) throw notFound(`static file ${name}`);
    const etag = await assetTag(name, asset.body);
    // A URL with the current content hash (the console's links) never changes meaning: cache it for good.
    const immutable = c.req.query("v") === assetVersion(name, asset.body);
    const headers = {
      ETag: etag,
      "Cache-Control": immutable ? "public, max-age=31536000, immutable" : "public, max-age=3600",
      "Content-Type": asset.contentType,
      "X-Content-Type-Options": "nosniff",
    };
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers);
    return c.body(asset.body, 200, headers);
  });
}
