// The autoscaler's config.yaml: one zod schema for the rules, the text as written for people and agents (its
// sha256 is the config hash), canonical JSON to compare meanings.
// Unknown keys pass through untouched at every level (newer agents add settings this server does not know),
// and the stored body is the document as given: defaults (monitoring_method: oci) are meaning, not rewrites.
import { z } from "zod";
import {
  Document,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parse,
  parseDocument,
  Parser,
  Scalar,
  visit,
} from "yaml";
import type { ErrorDetail } from "./errors.ts";
import * as fields from "./fields.ts";
import { sha256Hex } from "./secrets.ts";

// us-ashburn-1, eu-frankfurt-1, us-gov-ashburn-1, ...
const REGION = /^[a-z]{2,3}(?:-[a-z]+)+-\d+$/;
const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** Bounds checked before any schema work, so a hostile document costs little: pools per document, nesting
 * depth, and values in all (a YAML alias counts each time it is used). */
export const MAX_CONFIG_POOLS = 200;
/** YAML text: parsing costs about 50 µs a line here (the yaml library), so the text is bounded before it. A
 * config of 200 pools with comments fits in a few thousand lines. */
export const MAX_CONFIG_TEXT_LENGTH = 256_000;
export const MAX_CONFIG_YAML_LINES = 10_000;
export const MAX_CONFIG_DEPTH = 32;
export const MAX_CONFIG_VALUES = 100_000;
/** Aliases a YAML document may use (*name); YAML's own limit is checked only after the whole parse. */
const MAX_YAML_ALIASES = 100;
const ALIAS_LIKE = /(?:^|[\s[{,])\*[^\s,[\]{}]/g;

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

/** A valid config: the body (JSON), its config.yaml text, and how it came (YAML text or a JSON object). */
export type ParsedConfig =
  | { ok: true; body: Record<string, unknown>; text: string; from: "yaml" | "json" }
  | { ok: false; details: ErrorDetail[] };

/** Where a problem sits in the YAML text, 1-based (absent for JSON input). */
interface TextPosition {
  line: number;
  column: number;
}

type Issue = { path: readonly PropertyKey[]; message: string; code: string };

/** The text as stored and delivered: LF line ends (browsers post CRLF), no BOM, one final newline. */
export function normalizeConfigText(text: string): string {
  const lf = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  return lf.endsWith("\n") ? lf : `${lf}\n`;
}

/** Validates a config given as YAML text or as an already-parsed object. Details name the dotted path
 * inside the document ("pools.0.cpu_threshold.min"; "" for the document itself; see prefixDetails) and,
 * for YAML text, the line and column of that field (of its nearest written parent when it is missing). */
export function parseConfigInput(input: unknown): ParsedConfig {
  if (typeof input !== "string") {
    const problems = checkDocument(input);
    if (problems.length > 0) return { ok: false, details: problems.map((issue) => toDetail(issue)) };
    return {
      ok: true,
      body: input as Record<string, unknown>,
      text: toYaml(input as Record<string, unknown>),
      from: "json",
    };
  }
  if (input.length > MAX_CONFIG_TEXT_LENGTH) {
    return {
      ok: false,
      details: [{
        field: "",
        message: `at most ${MAX_CONFIG_TEXT_LENGTH} characters of YAML`,
        code: "too_big",
      }],
    };
  }
  const text = normalizeConfigText(input);
  // An upper bound of the aliases (*name), counted in the text so 5,000 of them cost no parse.
  if ((text.match(ALIAS_LIKE)?.length ?? 0) > MAX_YAML_ALIASES) {
    return { ok: false, details: [tooManyAliases()] };
  }
  if (lineCount(text) > MAX_CONFIG_YAML_LINES) {
    return {
      ok: false,
      details: [{ field: "", message: `at most ${MAX_CONFIG_YAML_LINES} lines of YAML`, code: "too_big" }],
    };
  }
  const lineCounter = new LineCounter();
  let document: Document.Parsed;
  try {
    document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  } catch (error) {
    // The parser recurses: a document nested thousands deep overflows the stack.
    return { ok: false, details: [yamlRefused(error)] };
  }
  if (document.errors.length > 0) {
    // The parser notices an unclosed {…} or […] only where the next line starts; the operator's mistake is
    // where it opened.
    let opened: number | undefined;
    try {
      opened = unclosedFlowCollection(text);
    } catch {
      opened = undefined; // nested too deep to walk: report where the parser saw it
    }
    return {
      ok: false,
      details: document.errors.map((error) => {
        const at = error.linePos?.[0];
        const start = opened !== undefined && error.pos[0] >= opened ? lineCounter.linePos(opened) : at;
        return {
          field: "",
          message: `YAML syntax: ${error.message.split("\n")[0]}`,
          code: "yaml_syntax",
          line: start?.line,
          column: start?.col,
        };
      }),
    };
  }
  let value: unknown;
  try {
    if (countAliases(document) > MAX_YAML_ALIASES) {
      return { ok: false, details: [tooManyAliases()] };
    }
    value = document.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    // Alias bombs ("excessive alias count"), nesting deeper than the stack, and the like.
    return { ok: false, details: [yamlRefused(error)] };
  }
  const problems = checkDocument(value);
  if (problems.length > 0) {
    return {
      ok: false,
      details: problems.map((issue) => toDetail(issue, positionOf(document, lineCounter, issue.path))),
    };
  }
  return { ok: true, body: value as Record<string, unknown>, text, from: "yaml" };
}

function lineCount(text: string): number {
  let lines = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) lines++;
  return lines;
}

function tooManyAliases(): ErrorDetail {
  return { field: "", message: `YAML: more than ${MAX_YAML_ALIASES} aliases (*name)`, code: "yaml_aliases" };
}

function yamlRefused(error: unknown): ErrorDetail {
  const tooDeep = error instanceof RangeError;
  return {
    field: "",
    message: tooDeep
      ? `YAML: nested too deeply (at most ${MAX_CONFIG_DEPTH} levels)`
      : `YAML: ${(error as Error).message.split("\n")[0].slice(0, 200)}`,
    code: tooDeep ? "too_deep" : "yaml_syntax",
  };
}

/** Alias nodes in the parsed document, counted without recursion (and without resolving them). */
function countAliases(document: Document.Parsed): number {
  let aliases = 0;
  const stack: unknown[] = [document.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isAlias(node)) {
      if (++aliases > MAX_YAML_ALIASES) return aliases;
    } else if (isMap(node) || isSeq(node)) {
      for (const item of node.items as unknown[]) {
        if (isPair(item)) stack.push(item.key, item.value);
        else stack.push(item);
      }
    }
  }
  return aliases;
}

/** Offset of the first flow collection ({…} or […]) the text opens and never closes. */
function unclosedFlowCollection(text: string): number | undefined {
  let first: number | undefined;
  const walk = (token: unknown): void => {
    if (Array.isArray(token)) return token.forEach(walk);
    if (token === null || typeof token !== "object") return;
    const node = token as { type?: string; offset?: number; end?: { type?: string }[] };
    if (node.type === "flow-collection" && node.offset !== undefined) {
      const closed = node.end?.some((end) => end.type === "flow-map-end" || end.type === "flow-seq-end");
      if (!closed && (first === undefined || node.offset < first)) first = node.offset;
    }
    Object.values(token).forEach(walk);
  };
  for (const token of new Parser().parse(text)) walk(token);
  return first;
}

function toDetail(issue: Issue, position?: TextPosition): ErrorDetail {
  return {
    field: issue.path.map(String).join("."),
    message: issue.message,
    code: issue.code,
    ...(position ? { line: position.line, column: position.column } : {}),
  };
}

function checkDocument(value: unknown): Issue[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return [{ path: [], message: "must be a mapping (an object with a pools list)", code: "invalid_type" }];
  }
  const notJson = nonJsonValues(value);
  if (notJson.length > 0) return notJson;
  const pools = (value as Record<string, unknown>).pools;
  if (Array.isArray(pools) && pools.length > MAX_CONFIG_POOLS) {
    return [{ path: ["pools"], message: `at most ${MAX_CONFIG_POOLS} pools`, code: "too_big" }];
  }
  const parsed = configDocumentSchema.safeParse(value);
  // The input, not parsed.data, is what gets stored: the body as written (see the header comment).
  return parsed.success
    ? []
    : parsed.error.issues.map(({ path, message, code }) => ({ path, message, code }));
}

/** The line of `path` in the text: the key of the deepest mapping entry (or the sequence item) along the
 * path that the text has, so a missing field points at the entry that should hold it. */
function positionOf(
  document: Document.Parsed,
  lineCounter: LineCounter,
  path: readonly PropertyKey[],
): TextPosition | undefined {
  let node: unknown = document.contents;
  let offset = isNode(node) ? node.range?.[0] : undefined;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(document);
    if (isMap(node)) {
      const pair = node.items.find((item) =>
        String(isScalar(item.key) ? item.key.value : item.key) === String(segment)
      );
      if (!pair) break;
      offset = (isNode(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (!isNode(item)) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  if (offset === undefined) return undefined;
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/** Details with their field moved under `prefix` ("config" + "pools.0.region" -> "config.pools.0.region"). */
export function prefixDetails(details: ErrorDetail[], prefix: string): ErrorDetail[] {
  return details.map((detail) => ({
    ...detail,
    field: detail.field ? `${prefix}.${detail.field}` : prefix,
  }));
}

// YAML can express values JSON cannot (.inf, .nan); they would change meaning when stored, so refuse them.
// Walked without recursion and bounded in depth and size, so a document nested 20,000 deep or a YAML alias
// bomb is refused here, before anything else (schema, hash, storage) recurses into it.
function nonJsonValues(root: unknown): Issue[] {
  const issues: Issue[] = [];
  const stack: { value: unknown; path: PropertyKey[] }[] = [{ value: root, path: [] }];
  let seen = 0;
  while (stack.length > 0 && issues.length < 100) {
    const { value, path } = stack.pop()!;
    if (++seen > MAX_CONFIG_VALUES) {
      return [{ path: [], message: `more than ${MAX_CONFIG_VALUES} values`, code: "too_big" }];
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value)) {
        issues.push({ path, message: "must be a finite number", code: "invalid_type" });
      }
      continue;
    }
    if (value === null || typeof value === "string" || typeof value === "boolean") continue;
    const isObject = typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
    if (!Array.isArray(value) && !isObject) {
      issues.push({ path, message: "is not a JSON value", code: "invalid_type" });
      continue;
    }
    if (path.length >= MAX_CONFIG_DEPTH) {
      return [{
        path: path.slice(0, 3),
        message: `nested deeper than ${MAX_CONFIG_DEPTH} levels`,
        code: "too_deep",
      }];
    }
    const entries: [PropertyKey, unknown][] = Array.isArray(value)
      ? value.map((item, index) => [index, item])
      : Object.entries(value as Record<string, unknown>);
    for (let i = entries.length - 1; i >= 0; i--) {
      stack.push({ value: entries[i][1], path: [...path, entries[i][0]] });
    }
  }
  return issues;
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

/** The config hash (what ETag, heartbeat and ack carry): sha256 hex of the config.yaml text delivered to the
 * agent, so any change to that text, a comment included, is a new config the agent receives and acks, and
 * `sha256sum config.yaml` on the agent equals it. */
export function configHash(text: string): Promise<string> {
  return sha256Hex(text);
}

/** Whether two bodies mean the same document (key order aside). */
export function sameBody(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** The body as config.yaml text, keys in the order they were written. A string is written plain only when
 * YAML 1.2 and 1.1 readers (PyYAML, which the autoscalers use) both read it back as that string: "05:30",
 * "yes", "0o17" and "null" are quoted. */
export function toYaml(body: Record<string, unknown>): string {
  return plainYaml(body) ?? libraryYaml(body);
}

/** toYaml through the yaml library always (tests compare the direct writer with it). */
export function libraryYaml(body: Record<string, unknown>): string {
  const document = new Document(body);
  visit(document, {
    Scalar(_key, node) {
      if (typeof node.value === "string" && !readsBackAsItself(node.value)) node.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return document.toString({ lineWidth: 0 });
}

/** toYaml's text written directly, without building the library's document (most of a registration's CPU
 * was that): the same characters the library writes, for documents made only of maps, lists, numbers,
 * booleans, null, plain words and short quoted strings of printable ASCII (times like "05:30"). Anything
 * else (a string with spaces, quotes or other characters, an object used twice, a number with an exponent)
 * makes it return undefined, and the library writes the text. tests/config_yaml_text_test.ts holds the two
 * to the same text. */
export function plainYaml(body: Record<string, unknown>): string | undefined {
  const out: string[] = [];
  const seen = new Set<object>();
  const ok = Object.keys(body).length === 0 ? (out.push("{}\n"), true) : writeMap(body, "", "", out, seen);
  return ok ? out.join("") : undefined;
}

/** `first` starts the first line (a list item's "- "), `indent` the others. */
function writeMap(map: object, first: string, indent: string, out: string[], seen: Set<object>): boolean {
  if (seen.has(map)) return false;
  seen.add(map);
  let lead = first;
  for (const [key, value] of Object.entries(map)) {
    const k = plainScalar(key);
    if (k === undefined || key.length === 0 || key.length > 128) return false;
    if (!writeEntry(`${lead}${k}:`, value, `${indent}  `, out, seen)) return false;
    lead = indent;
  }
  return true;
}

function writeList(
  list: unknown[],
  first: string,
  indent: string,
  out: string[],
  seen: Set<object>,
): boolean {
  if (seen.has(list)) return false;
  seen.add(list);
  let lead = first;
  for (const item of list) {
    if (!writeItem(`${lead}-`, item, `${indent}  `, out, seen)) return false;
    lead = indent;
  }
  return true;
}

/** "key:" then its value: on the line, or below it indented. */
function writeEntry(head: string, value: unknown, inner: string, out: string[], seen: Set<object>): boolean {
  if (Array.isArray(value) && value.length > 0) {
    out.push(`${head}\n`);
    return writeList(value, inner, inner, out, seen);
  }
  if (isPlainObject(value) && Object.keys(value).length > 0) {
    out.push(`${head}\n`);
    return writeMap(value, inner, inner, out, seen);
  }
  const text = flowValue(value);
  if (text === undefined) return false;
  out.push(`${head} ${text}\n`);
  return true;
}

/** "-" then the item: a map or list starts on the same line. */
function writeItem(head: string, value: unknown, inner: string, out: string[], seen: Set<object>): boolean {
  if (Array.isArray(value) && value.length > 0) return writeList(value, `${head} `, inner, out, seen);
  if (isPlainObject(value) && Object.keys(value).length > 0) {
    return writeMap(value, `${head} `, inner, out, seen);
  }
  const text = flowValue(value);
  if (text === undefined) return false;
  out.push(`${head} ${text}\n`);
  return true;
}

function flowValue(value: unknown): string | undefined {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    const text = JSON.stringify(value);
    return Number.isFinite(value) && !Object.is(value, -0) && /^-?\d+(?:\.\d+)?$/.test(text)
      ? text
      : undefined;
  }
  if (typeof value === "string") return value.length > 1000 ? undefined : plainScalar(value);
  if (Array.isArray(value)) return value.length === 0 ? "[]" : undefined;
  if (isPlainObject(value)) return Object.keys(value).length === 0 ? "{}" : undefined;
  return undefined;
}

/** A string as toYaml writes it (plain, or double-quoted when it would not read back as itself), when that
 * needs no escape; undefined otherwise. */
function plainScalar(text: string): string | undefined {
  if (PLAIN_WORD.test(text) && !YAML_11_WORDS.test(text)) return text;
  if (!PRINTABLE_UNQUOTED.test(text) || readsBackAsItself(text)) return undefined;
  return `"${text}"`;
}

const PRINTABLE_UNQUOTED = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// Words and identifiers (OCIDs, regions, names) that every YAML reader takes as strings: a letter first, then
// letters, digits and . _ / -, and not one of YAML 1.1's booleans or null. They skip the two parses below,
// which were most of a registration's CPU.
const PLAIN_WORD = /^[A-Za-z][A-Za-z0-9._\/-]*$/;
const YAML_11_WORDS = /^(?:y|n|yes|no|true|false|on|off|null)$/i;

export function readsBackAsItself(text: string): boolean {
  if (PLAIN_WORD.test(text) && !YAML_11_WORDS.test(text)) return true;
  // Other short strings repeat across a fleet's configs ("05:30" in every schedule): their answer is kept.
  const known = text.length <= 64 ? readsBack.get(text) : undefined;
  if (known !== undefined) return known;
  let answer: boolean;
  try {
    answer = parse(text) === text && parse(text, { version: "1.1" }) === text;
  } catch {
    answer = false;
  }
  if (text.length <= 64) {
    if (readsBack.size >= 10_000) readsBack.clear();
    readsBack.set(text, answer);
  }
  return answer;
}
const readsBack = new Map<string, boolean>();
