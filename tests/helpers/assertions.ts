// Assertions the API tests share: the error shape of a refused request, and reading counts back.
import assert from "node:assert/strict";
import { json, type TestApp } from "./app.ts";

export type ErrorBody = {
  error: {
    code: string;
    message: string;
    details?: { field?: string; message: string; location?: string; line?: number; column?: number }[];
    request_id?: string;
  };
};

/** Asserts the status and error code (and, when given, that a detail names `field`); returns the body. */
export async function expectError(
  res: Response,
  status: number,
  code: string,
  field?: string,
): Promise<ErrorBody> {
  const body = await json<ErrorBody>(res);
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code);
  if (field !== undefined) {
    assert.ok(
      body.error.details?.some((d) => d.field === field),
      `field ${field} in ${JSON.stringify(body)}`,
    );
  }
  return body;
}

/** `method` on `${collection}/<id>` refuses ids that name nothing (404 not_found) and ids that are not
 * numbers (422 naming `id`). */
export async function expectIdsRefused(
  ctx: TestApp,
  method: string,
  collection: string,
  token: string,
): Promise<void> {
  await expectError(await ctx.call(method, `${collection}/999999`, { token }), 404, "not_found");
  await expectError(await ctx.call(method, `${collection}/abc`, { token }), 422, "validation_failed", "id");
}

/** GETs `path` with `token` and asserts it is refused with `status`; with `field`, as validation_failed with
 * a detail naming it. Returns the body. */
export async function expectGetRefused(
  ctx: TestApp,
  path: string,
  token: string,
  status: number,
  field?: string,
): Promise<ErrorBody> {
  const res = await ctx.call("GET", path, { token });
  const body = await json<ErrorBody>(res);
  assert.equal(res.status, status, `${path}: ${JSON.stringify(body)}`);
  if (field) {
    assert.equal(body.error.code, "validation_failed");
    assert.ok(body.error.details?.some((d) => d.field === field), `${path}: ${JSON.stringify(body)}`);
  }
  return body;
}

/** The `n` column of a `SELECT COUNT(*) AS n ...` run straight on the test database. */
export async function countRows(ctx: TestApp, sql: string, params: unknown[] = []): Promise<number> {
  const [rows] = await ctx.database.pool.query(sql, params);
  return Number((rows as { n: number }[])[0].n);
}

/** How many rows of `table` match `where` (all of them by default). */
export function countIn(
  ctx: TestApp,
  table: string,
  where = "1 = 1",
  params: unknown[] = [],
): Promise<number> {
  return countRows(ctx, `SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params);
}

/** How many audit entries of `action` there are, for one target and/or one actor when given. */
export function countAudit(
  ctx: TestApp,
  action: string,
  where: { target_id?: string | number; actor_name?: string } = {},
): Promise<number> {
  const conditions = ["action = ?"];
  const params: unknown[] = [action];
  if (where.target_id !== undefined) {
    conditions.push("target_id = ?");
    params.push(String(where.target_id));
  }
  if (where.actor_name !== undefined) {
    conditions.push("actor_name = ?");
    params.push(where.actor_name);
  }
  return countRows(ctx, `SELECT COUNT(*) AS n FROM audit_log WHERE ${conditions.join(" AND ")}`, params);
}
