// Hono environment shared by every route module.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Principal } from "../core/principal.ts";
import { AppError, describeDetails, zodIssuesToDetails } from "../core/errors.ts";

export type AppEnv = {
  Variables: {
    requestId: string;
    clientAddress: string;
    principal?: Principal;
    /** The error code of the answer, when it is an error (counted by /metrics for 413, 429, 503). */
    errorCode?: string;
    /** The session's CSRF token, set for cookie sessions on pages (forms and hx-headers embed it). */
    csrfToken?: string;
  };
};

const LOCATIONS: Record<string, string> = {
  json: "body",
  form: "body",
  query: "query",
  param: "path",
  header: "header",
  cookie: "cookie",
};

/** An OpenAPIHono whose validation failures become the API's 422 error naming each field. */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const location = LOCATIONS[result.target] ?? result.target;
      const details = zodIssuesToDetails(result.error.issues).map((d) => ({
        ...d,
        field: d.field ?? location,
        location,
      }));
      throw new AppError(
        422,
        "validation_failed",
        `invalid ${location}: ${describeDetails(details)}`,
        details,
      );
    },
  });
}
