// One error type for the whole service: a status, a stable code and the fields at fault. How it becomes a
// response (JSON for the API, HTML for pages) is routes/errors.ts's business.
import type { z } from "zod";

export interface ErrorDetail {
  /** Dotted path of the offending field, e.g. "samples.3.cpu_util" or "query.wait". */
  field?: string;
  message: string;
  /** 1-based line and column in the YAML text the field came from (config documents). */
  line?: number;
  column?: number;
  [extra: string]: unknown;
}

/** The most details an error carries (one shared cap): a hostile body with 100,000 mistakes gets a
 * short answer; the message still says how many there were. */
export const MAX_ERROR_DETAILS = 100;

export class AppError extends Error {
  readonly details?: ErrorDetail[];
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 410 | 413 | 415 | 422 | 429 | 500 | 503,
    readonly code: string,
    message: string,
    details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
    this.details = details && details.length > MAX_ERROR_DETAILS
      ? details.slice(0, MAX_ERROR_DETAILS)
      : details;
  }
}

export const validationFailed = (message: string, details: ErrorDetail[]) =>
  new AppError(422, "validation_failed", message, details);
export const badRequest = (message: string, details?: ErrorDetail[]) =>
  new AppError(400, "bad_request", message, details);
export const unauthorized = (message = "authentication required") =>
  new AppError(401, "unauthorized", message);
export const forbidden = (message = "not allowed") => new AppError(403, "forbidden", message);
export const notFound = (what: string) => new AppError(404, "not_found", `${what} not found`);
export const conflict = (message: string, details?: ErrorDetail[]) =>
  new AppError(409, "conflict", message, details);
export const unavailable = (message: string) => new AppError(503, "unavailable", message);

/** zod issues -> details naming each field by its dotted path (prefixed with where it came from). */
export function zodIssuesToDetails(issues: readonly z.core.$ZodIssue[], prefix?: string): ErrorDetail[] {
  return issues.flatMap((issue): ErrorDetail[] => {
    const path = issue.path.map(String);
    const fieldOf = (parts: string[]) =>
      [prefix, ...parts].filter((part) => part !== undefined && part !== "").join(".") || prefix || undefined;
    // A strict object names each key it does not know, so the detail points at the misspelt field itself.
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        field: fieldOf([...path, key]),
        message: "unknown field (misspelt?)",
        code: issue.code,
      }));
    }
    return [{ field: fieldOf(path), message: issue.message, code: issue.code }];
  });
}

/** Summary line naming the fields, so the message alone tells what to fix. */
export function describeDetails(details: ErrorDetail[]): string {
  const head = details.slice(0, 3).map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).join("; ");
  return details.length > 3 ? `${head}; and ${details.length - 3} more` : head;
}
