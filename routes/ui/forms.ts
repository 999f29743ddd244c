// Form errors for templates: the AppError details of a refused input, keyed by field name, so each
// message is shown next to its field (the same details the API returns as JSON).
import type { ErrorDetail } from "../../core/errors.ts";

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
