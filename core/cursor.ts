// Opaque pagination cursors: base64url of a small JSON array. Opaque to clients; validated on the way in so a
// tampered or foreign cursor is a 422 naming "cursor", never a SQL error.
import { AppError } from "./errors.ts";

export function encodeCursor(parts: unknown[]): string {
  const bytes = new TextEncoder().encode(JSON.stringify(parts));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function invalidCursor(reason: string): AppError {
  return new AppError(422, "validation_failed", `invalid query: cursor: ${reason}`, [
    { field: "cursor", message: reason, location: "query" },
  ]);
}

/** Decodes a cursor into its JSON array; throws 422 naming "cursor" when it is not one of ours. */
export function decodeCursor(cursor: string): unknown[] {
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error("not base64url");
    const base64 = cursor.replaceAll("-", "+").replaceAll("_", "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    const parts = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (ch) => ch.charCodeAt(0))));
    if (!Array.isArray(parts)) throw new Error("not an array");
    return parts;
  } catch {
    throw invalidCursor("not a cursor this server issued");
  }
}

/** Parses an ISO timestamp from a cursor, or throws the cursor error. */
export function cursorDate(value: unknown): Date {
  if (typeof value !== "string") throw invalidCursor("not a cursor this server issued");
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw invalidCursor("not a cursor this server issued");
  return date;
}
