// Form errors for templates: the AppError details of a refused input, keyed by field name, so each
// message is shown next to its field (the same details the API returns as JSON).
import { type ErrorDetail, notFound } from "../../core/errors.ts";

export function detailsByField(
  details: ErrorDetail[] | undefined,
  fallbackField = "_form",
): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const detail of details ?? []) {
    const name = detail.field ?? fallbackField;
    errors[name] = errors[name] ? `${errors[name]}; ${detail.message}` : detail.message;
  }
  return errors;
}

/** A numeric row id from the path (users, API keys, enrollment tokens, rollouts): anything but 1..2^31-1 in
 * plain digits is a page that does not exist (404), never a query with NaN in it. */
export function rowIdParam(raw: string | undefined, what: string): number {
  const id = /^[1-9]\d{0,9}$/.test(raw ?? "") ? Number(raw) : NaN;
  if (!(id <= 2_147_483_647)) throw notFound(what);
  return id;
}
