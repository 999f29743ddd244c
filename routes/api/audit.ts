// GET /api/v1/audit: the audit log, newest first, for operators and admins. Viewers may not read it: it
// names people, their addresses and failed logins, which read-only dashboards do not need.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, listAudit } from "../../core/auditQuery.ts";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import type { AppEnv } from "../env.ts";
import { requireRole } from "../guards.ts";
import * as fields from "../../core/fields.ts";
import { jsonResponse, routesFor } from "./schemas.ts";

const AuditQuerySchema = z.object({
  actor: z.string().min(1).max(128).optional().openapi({ description: "Actor name, e.g. alice or key:ci" }),
  action: z.string().min(1).max(64).optional().openapi({
    description: 'Exact action ("user.create") or a prefix ending in * ("auth.*")',
  }),
  target_type: z.string().min(1).max(32).optional(),
  target_id: z.string().min(1).max(64).optional(),
  from: fields.zonedTime.optional().meta({ example: "2026-06-01T00:00:00Z" }),
  to: fields.zonedTime.optional().meta({ example: "2026-06-02T00:00:00Z" }),
  limit: z.coerce.number().int().min(1).max(AUDIT_MAX_LIMIT).optional().openapi({
    example: AUDIT_DEFAULT_LIMIT,
  }),
  cursor: z.string().min(1).max(200).optional().openapi({ description: "next_cursor of the previous page" }),
}).refine((q) => !q.from || !q.to || Date.parse(q.from) <= Date.parse(q.to), {
  message: "must not be after to",
  path: ["from"],
});

const AuditEntrySchema = z.object({
  id: z.number().int(),
  at: z.string().openapi({ format: "date-time" }),
  actor: z.object({
    type: z.string().openapi({ description: "user | api_key | node | system" }),
    id: z.string().nullable(),
    name: z.string(),
  }),
  action: z.string(),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
  address: z.string().nullable(),
}).openapi("AuditEntry");

const AuditPageSchema = z.object({
  entries: z.array(AuditEntrySchema),
  next_cursor: z.string().nullable(),
}).openapi("AuditPage");

const route = routesFor("audit");

const auditRoute = route("get", "/api/v1/audit", "operator", {
  summary: "The audit log, newest first (operator and admin)",
  request: { query: AuditQuerySchema },
  responses: { 200: jsonResponse(AuditPageSchema, "One page"), ...errorResponses(401, 403, 422) },
});

export function registerAuditRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(auditRoute, async (c) => {
    requireRole(c, "operator");
    const q = c.req.valid("query");
    return c.json(
      await listAudit(deps, {
        actor: q.actor,
        action: q.action,
        targetType: q.target_type,
        targetId: q.target_id,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        limit: q.limit,
        cursor: q.cursor,
      }),
      200,
    );
  });
}
