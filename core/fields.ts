// Field rules: one zod schema per rule, imported by the API routes, the CLI, the services and the console's
// forms alike, so changing a rule is a one-line change here. Plain zod without OpenAPI: routes document a
// rule with .meta({ description, example, param }) (not .openapi(), which schemas made before
// @hono/zod-openapi loads do not have).
import { z } from "zod";
import { describeDetails, validationFailed, zodIssuesToDetails } from "./errors.ts";

/** The first problem `schema` finds with `value` ("must be ..."), or undefined when it passes. */
export function problemWith(schema: z.ZodType, value: unknown): string | undefined {
  const result = schema.safeParse(value);
  return result.success ? undefined : result.error.issues[0]?.message;
}

/** `value` parsed by `schema`, or the 422 naming each field, as the API's own validation would answer. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = zodIssuesToDetails(result.error.issues);
  throw validationFailed(`invalid ${what}: ${describeDetails(details)}`, details);
}

// ------------------------------------------------------------------------------------------------ people

/** The one spelling of a username that is stored and compared: NFKC, trimmed, lower-cased. Applied
 * at creation and at every look-up (login, CLI), so `ADMIN`, `admin ` and full-width `ａｄｍｉｎ` all
 * mean `admin` on purpose, and a new name that would collide with a taken one is refused. */
export function normalizeUsername(raw: string): string {
  return raw.normalize("NFKC").trim().toLowerCase().normalize("NFKC");
}
/** What a username must be once normalised. */
export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
export const USERNAME_RULE = "1..64 characters: letters, digits and . _ @ - (starting with a letter or " +
  "digit); case, surrounding spaces and full-width forms do not count";
/** A new account's username, as typed: judged (and output) in its normalised spelling. */
export const username = z.string().max(256, `must be ${USERNAME_RULE}`).transform(normalizeUsername)
  .pipe(z.string().regex(USERNAME_PATTERN, `must be ${USERNAME_RULE}`));
/** A username presented at login: any name up to 256 (it is looked up, not created). */
export const presentedUsername = z.string().min(1).max(256);

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;
/** The password policy, counted in characters (code points), so "é" or an emoji is one. */
export const newPassword = z.string()
  .refine((v) => [...v].length >= PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
  .refine((v) => [...v].length <= PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`)
  .refine((v) => v.trim().length > 0, "must not be only whitespace")
  .meta({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH });
/** A password presented to be checked (login, current password): bounded so PBKDF2 never hashes megabytes. */
export const presentedPassword = z.string().min(1).max(1024);

// ------------------------------------------------------------------------------------------------- nodes

/** A node's id (a UUID today; any 1..64 string is looked up). */
export const nodeId = z.string().min(1).max(64);
export const NODE_NAME_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** The unique name an agent registers under. */
export const nodeName = z.string().regex(NODE_NAME_PATTERN, "1..128 of A-Z a-z 0-9 . _ -");
/** A random id an agent makes for one registration and sends again when it retries it (its answer lost). */
export const registrationId = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, "16..64 of A-Z a-z 0-9 _ -");
/** The operator's name for a node; null clears it. Shown wherever the node is named, so one line of
 * printable text: no control characters (tabs, line breaks, escapes). */
export const DISPLAY_NAME_MAX = 255;
export const DISPLAY_NAME_RULE = `1..${DISPLAY_NAME_MAX} characters on one line, no control characters`;
export const displayName = z.string().trim().min(1, `must be ${DISPLAY_NAME_RULE}`)
  .max(DISPLAY_NAME_MAX, `must be ${DISPLAY_NAME_RULE}`)
  // Ranges, not \p{Cc}: the pattern goes into /openapi.json, and clients compile it without the u flag.
  // deno-lint-ignore no-control-regex
  .regex(/^[^\u0000-\u001F\u007F-\u009F]*$/, `must be ${DISPLAY_NAME_RULE}`);

export const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
export const LABEL_KEY_RULE = "label keys are 1..63 of A-Z a-z 0-9 . _ / - (starting with a letter or digit)";
export const LABEL_VALUE_MAX = 255;
export const MAX_LABELS = 64;
export const labelKey = z.string().regex(LABEL_KEY, LABEL_KEY_RULE);
export const labelValue = z.string().max(LABEL_VALUE_MAX, `must be at most ${LABEL_VALUE_MAX} characters`);
/** A node's labels: at most MAX_LABELS key -> value pairs. */
export const labels = z.record(
  labelKey,
  labelValue,
  { error: (issue) => (issue.code === "invalid_key" ? LABEL_KEY_RULE : undefined) },
).refine((value) => Object.keys(value).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`);

/** A pool's OCID as a lookup key (paths, filters): any 1..255 string, so an unknown one is a 404. */
export const poolId = z.string().min(1).max(255);

// ------------------------------------------------------------------------------------------------ config

/** A config hash as agents send it (any case); stored and compared in lowercase. */
export const configHash = z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters")
  .transform((hash) => hash.toLowerCase());

// ocid1.<resource type>.<realm>.[region][.future use].<unique id>; region may be empty (ocid1.compartment.oc1..x).
const ocidPattern = (resourceTypes: string[]) =>
  new RegExp(
    `^ocid1\\.(?:${resourceTypes.join("|")})\\.[a-z][a-z0-9]*\\.[a-z0-9-]*(?:\\.[a-z0-9-]+)?\\.[a-z0-9]+$`,
  );
const MAX_OCID_LENGTH = 255;
export const instancePoolOcid = z.string().max(MAX_OCID_LENGTH).regex(
  ocidPattern(["instancepool"]),
  "must be an instance pool OCID (ocid1.instancepool.<realm>.<region>.<unique id>)",
);
// The root compartment is the tenancy, so a tenancy OCID is a valid compartment_id.
export const compartmentOcid = z.string().max(MAX_OCID_LENGTH).regex(
  ocidPattern(["compartment", "tenancy"]),
  "must be a compartment OCID (ocid1.compartment.<realm>..<unique id>)",
);

// ------------------------------------------------------------------------------------------------- times

/** A time given by a person or a script (query ranges): strict ISO 8601 with a zone. */
export const zonedTime = z.iso.datetime({ offset: true, message: "must be an ISO 8601 time with a zone" });

/** The times agents stamp samples with: ISO 8601 with a zone, also with a space for T and Python's
 * microseconds. The calendar (no February 30) is parseZonedTimestamp's to check. */
export const ZONED_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)$/;
export const zonedTimestamp = z.string().max(64).regex(
  ZONED_TIMESTAMP,
  "must be an ISO 8601 time with a zone, e.g. 2026-06-01T12:00:00Z",
);

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** A date that exists (no February 30) at a time of day that does, in years 1000 and later. */
function isCalendarTime(y: number, mo: number, d: number, h: number, mi: number, s: number): boolean {
  const leap = mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 1 : 0;
  return y >= 1000 && mo >= 1 && mo <= 12 && d >= 1 && d <= DAYS_IN_MONTH[mo - 1] + leap && h <= 23 &&
    mi <= 59 && s <= 59;
}

/** The digits of raw[start, start + count) as a number, or -1 when one of them is not a digit. */
function digitsAt(raw: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const digit = raw.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** "YYYY-MM-DDTHH:MM:SS.mmmZ", the form agents send (JavaScript's toISOString), read by position: the same
 * answer as the general path below, at a fraction of its cost (it runs once per sample). Undefined for any
 * other text, which the general path then reads. */
function canonicalTimestamp(raw: string): { ms: number; utc: string } | undefined {
  if (
    raw.length !== 24 || raw[23] !== "Z" || raw[10] !== "T" || raw[4] !== "-" || raw[7] !== "-" ||
    raw[13] !== ":" || raw[16] !== ":" || raw[19] !== "."
  ) {
    return undefined;
  }
  const y = digitsAt(raw, 0, 4), mo = digitsAt(raw, 5, 2), d = digitsAt(raw, 8, 2), h = digitsAt(raw, 11, 2);
  const mi = digitsAt(raw, 14, 2), s = digitsAt(raw, 17, 2), millis = digitsAt(raw, 20, 3);
  // digitsAt answers -1 for a non-digit, which no check below lets through.
  if (millis < 0 || h < 0 || mi < 0 || s < 0 || !isCalendarTime(y, mo, d, h, mi, s)) return undefined;
  return { ms: Date.UTC(y, mo - 1, d, h, mi, s, millis), utc: `${raw.slice(0, 10)} ${raw.slice(11, 23)}` };
}

/** An ISO 8601 timestamp WITH a zone ("2026-06-01T12:00:00Z", "...+02:00", Python's microseconds) as epoch
 * milliseconds and as UTC text "YYYY-MM-DD HH:MM:SS.mmm" (what a DATETIME(3) column stores; digits past the
 * millisecond are dropped); undefined when it is no such time (no zone, February 30, 25:00, ...). This runs
 * once per sample on the metrics hot path, so the common "...Z" form is turned into text without a Date. */
export function parseZonedTimestamp(raw: string): { ms: number; utc: string } | undefined {
  const canonical = canonicalTimestamp(raw);
  if (canonical) return canonical;
  const m = ZONED_TIMESTAMP.exec(raw);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second = "00", fraction = "", z, sign, zh, zm = "00"] = m;
  const y = Number(year), mo = Number(month), d = Number(day), h = Number(hour), mi = Number(minute);
  const s = Number(second);
  if (!isCalendarTime(y, mo, d, h, mi, s) || Number(zh ?? 0) > 23 || Number(zm) > 59) return undefined;
  const millis = (fraction + "000").slice(0, 3);
  const local = Date.UTC(y, mo - 1, d, h, mi, s, Number(millis));
  const offsetMin = z ? 0 : (sign === "-" ? -1 : 1) * (Number(zh) * 60 + Number(zm));
  if (offsetMin === 0) {
    return { ms: local, utc: `${year}-${month}-${day} ${hour}:${minute}:${pad(s)}.${millis}` };
  }
  const ms = local - offsetMin * 60_000;
  const t = new Date(ms);
  return {
    ms,
    utc: `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())} ${pad(t.getUTCHours())}:${
      pad(t.getUTCMinutes())
    }:${pad(t.getUTCSeconds())}.${pad(t.getUTCMilliseconds(), 3)}`,
  };
}

// ---------------------------------------------------------------------------------------------- rollouts

export const ROLLOUT_MAX_NODES = 2000;
export const ROLLOUT_WAVE_SIZE_MAX = 500;
export const ROLLOUT_BAKE_MIN_S = 10;
export const ROLLOUT_BAKE_MAX_S = 86_400;
export const ROLLOUT_MAX_SCALING_EVENTS = 1000;
/** Nodes in each wave after the canary. */
export const rolloutWaveSize = z.number().int("must be a whole number")
  .min(1, "must be at least 1").max(ROLLOUT_WAVE_SIZE_MAX, `must be at most ${ROLLOUT_WAVE_SIZE_MAX}`);
/** How long a wave's nodes must stay healthy after applying before the next wave goes out. */
export const rolloutBakeS = z.number().int("must be a whole number of seconds")
  .min(ROLLOUT_BAKE_MIN_S, `must be at least ${ROLLOUT_BAKE_MIN_S} seconds`)
  .max(ROLLOUT_BAKE_MAX_S, `must be at most ${ROLLOUT_BAKE_MAX_S} seconds (a day)`);
/** Scaling events a node may have during its bake (more is a storm). */
export const rolloutMaxScalingEvents = z.number().int("must be a whole number")
  .min(0, "must be at least 0").max(
    ROLLOUT_MAX_SCALING_EVENTS,
    `must be at most ${ROLLOUT_MAX_SCALING_EVENTS}`,
  );
/** The canary: a node count ("2", 2) or a share of the included nodes ("10%"). */
export const ROLLOUT_CANARY_RULE = "a node count of at least 1 (e.g. 2) or a percentage of 1..100 (e.g. 10%)";
export const rolloutCanary = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const text = String(value).trim();
  const match = /^(\d{1,4})(%?)$/.exec(text);
  const n = match ? Number(match[1]) : NaN;
  if (!match || n < 1 || (match[2] === "%" && n > 100) || (!match[2] && n > ROLLOUT_MAX_NODES)) {
    ctx.addIssue({ code: "custom", message: `must be ${ROLLOUT_CANARY_RULE}` });
    return z.NEVER;
  }
  return match[2] ? { percent: n } : { count: n };
});
export type RolloutCanary = { count: number } | { percent: number };
