// What a mysql2 error means, in one place: drivers put the MySQL code on the error or, through Drizzle,
// on its cause.

function mysqlCode(error: unknown): string | undefined {
  return (error as { code?: string })?.code ?? (error as { cause?: { code?: string } })?.cause?.code;
}

/** A unique index refused the row. */
export function isDuplicateKey(error: unknown): boolean {
  return mysqlCode(error) === "ER_DUP_ENTRY";
}

/** A write lost a race (unique key or deadlock) and is worth running again. */
export function isRetryableWrite(error: unknown): boolean {
  const code = mysqlCode(error);
  return code === "ER_DUP_ENTRY" || code === "ER_LOCK_DEADLOCK";
}

const DB_DOWN_CODES = new Set([
  // Bounded waits (db/client.ts): a query or a connection did not come in time (a stalled network).
  "DB_TIMEOUT",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "ENOTFOUND",
  "PROTOCOL_CONNECTION_LOST",
  "ER_CON_COUNT_ERROR",
  "EPIPE",
  "ECONNRESET",
]);

/** The database cannot be reached (or takes no more connections): a 503, not a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = mysqlCode(error);
  return code !== undefined && DB_DOWN_CODES.has(code);
}
