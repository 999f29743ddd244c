// The autoscaler's config.yaml: one zod schema for the rules, canonical JSON for the hash, YAML for people.
// Unknown keys pass through untouched at every level (newer agents add settings this server does not know),
// and the stored body is the document as given: defaults (monitoring_method: oci) are meaning, not rewrites.
import { z } from "zod";
import { parseDocument, stringify } from "yaml";
import type { ErrorDetail } from "./errors.ts";
import * as fields from "./fields.ts";
import { sha256Hex } from "./secrets.ts";

// us-ashburn-1, eu-frankfurt-1, us-gov-ashburn-1, ...
const REGION = /^[a-z]{2,3}(?:-[a-z]+)+-\d+$/;
const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;

const percentage = z.number().min(0, "must be at least 0").max(100, "must be at most 100");

const threshold = z.looseObject({ min: percentage, max: percentage }).superRefine((value, ctx) => {
  if (value.min >= value.max) {
    ctx.addIssue({ code: "custom", path: ["min"], message: `must be below max (${value.max})` });
  }
});

const instanceCount = z.number().int("must be a whole number").min(0, "must be at least 0");

const scalingLimits = z.looseObject({ min: instanceCount, max: instanceCount }).superRefine((value, ctx) => {
  if (value.min > value.max) {
    ctx.addIssue({ code: "custom", path: ["min"], message: `must not exceed max (${value.max})` });
  }
});

const clockTime = z.string().regex(HH_MM, "must be a time HH:MM (00:00 to 23:59)");

const schedule = z.looseObject({ start_time: clockTime, end_time: clockTime }).superRefine((value, ctx) => {
  // HH:MM strings compare in time order.
  if (value.start_time >= value.end_time) {
    ctx.addIssue({
      code: "custom",
      path: ["start_time"],
      message: `must be before end_time (${value.end_time})`,
    });
  }
});

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL");

export const poolConfigSchema = z.looseObject({
  instance_pool_id: fields.instancePoolOcid,
  compartment_id: fields.compartmentOcid,
  region: z.string().regex(REGION, "must be an OCI region identifier like us-ashburn-1"),
  monitoring_method: z.enum(["oci", "prometheus"]).optional(),
  prometheus_url: httpUrl.optional(),
  cpu_threshold: threshold,
  ram_threshold: threshold,
  scaling_limits: scalingLimits,
  scheduler_max_instances: instanceCount.optional(),
  schedules: z.array(schedule).optional(),
}).superRefine((pool, ctx) => {
  if (pool.monitoring_method === "prometheus" && pool.prometheus_url === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["prometheus_url"],
      message: "is required when monitoring_method is prometheus",
    });
  }
  const limits = pool.scaling_limits;
  const scheduled = pool.scheduler_max_instances;
  if (scheduled !== undefined && (scheduled < limits.min || scheduled > limits.max)) {
    ctx.addIssue({
      code: "custom",
      path: ["scheduler_max_instances"],
      message: `must be within scaling_limits (${limits.min}..${limits.max})`,
    });
  }
});

export const configDocumentSchema = z.looseObject({
  pools: z.array(poolConfigSchema).min(1, "needs at least one pool"),
}).superRefine((document, ctx) => {
  const seen = new Map<string, number>();
  document.pools.forEach((pool, index) => {
    const first = seen.get(pool.instance_pool_id);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["pools", index, "instance_pool_id"],
        message: `duplicates pools.${first}.instance_pool_id`,
      });
    } else {
      seen.set(pool.instance_pool_id, index);
    }
  });
});

export type ConfigDocument = z.infer<typeof configDocumentSchema>;

export type ParsedConfig =
  | { ok: true; body: Record<string, unknown> }
  | { ok: false; details: ErrorDetail[] };

/** Validates a config given as YAML text or as an already-parsed object. Details name the dotted path
 * inside the document ("pools.0.cpu_threshold.min"; "" for the document itself); see prefixDetails. */
export function parseConfigInput(input: unknown): ParsedConfig {
  let value: unknown = input;
  if (typeof input === "string") {
    const document = parseDocument(input, { prettyErrors: true, uniqueKeys: true });
    if (document.errors.length > 0) {
      return {
        ok: false,
        details: document.errors.map((error) => ({
          field: "",
          message: `YAML syntax: ${error.message.split("\n")[0]}`,
          code: "yaml_syntax",
          line: error.linePos?.[0].line,
          column: error.linePos?.[0].col,
        })),
      };
    }
    value = document.toJS({ maxAliasCount: 100 });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return {
      ok: false,
      details: [{
        field: "",
        message: "must be a mapping (an object with a pools list)",
        code: "invalid_type",
      }],
    };
  }
  const notJson = nonJsonValues(value, []);
  if (notJson.length > 0) return { ok: false, details: notJson };
  const parsed = configDocumentSchema.safeParse(value);
  if (!parsed.success) {
    return {
      ok: false,
      details: parsed.error.issues.map((issue) => ({
        field: issue.path.map(String).join("."),
        message: issue.message,
        code: issue.code,
      })),
    };
  }
  // The input, not parsed.data: the body is stored as written (see the header comment).
  return { ok: true, body: value as Record<string, unknown> };
}

/** Details with their field moved under `prefix` ("config" + "pools.0.region" -> "config.pools.0.region"). */
export function prefixDetails(details: ErrorDetail[], prefix: string): ErrorDetail[] {
  return details.map((detail) => ({
    ...detail,
    field: detail.field ? `${prefix}.${detail.field}` : prefix,
  }));
}

// YAML can express values JSON cannot (.inf, .nan); they would change meaning when stored, so refuse them.
function nonJsonValues(value: unknown, path: string[]): ErrorDetail[] {
  if (typeof value === "number") {
    return Number.isFinite(value)
      ? []
      : [{ field: path.join("."), message: "must be a finite number", code: "invalid_type" }];
  }
  if (value === null || typeof value === "string" || typeof value === "boolean") return [];
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => nonJsonValues(item, [...path, String(index)]));
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, item]) =>
      nonJsonValues(item, [...path, key])
    );
  }
  return [{ field: path.join("."), message: "is not a JSON value", code: "invalid_type" }];
}

/** JSON with object keys sorted at every level: equal documents give equal text whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The config hash: sha256 hex of the canonical JSON (what ETag, heartbeat and ack carry). */
export function configHash(body: Record<string, unknown>): Promise<string> {
  return sha256Hex(canonicalJson(body));
}

/** The body as config.yaml text, keys in the order they were written. */
export function toYaml(body: Record<string, unknown>): string {
  return stringify(body, { lineWidth: 0 });
}
