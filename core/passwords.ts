// Password hashing: PBKDF2-SHA256 through WebCrypto (no native dependency), 600,000 iterations as OWASP
// recommended in 2023, a 16-byte salt per user. Stored as `pbkdf2-sha256$<iter>$<salt b64>$<hash b64>`
// so the iteration count can be raised later without breaking stored hashes.
import { constantTimeEqual } from "./secrets.ts";

export const PBKDF2_ITERATIONS = 600_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;
const SCHEME = "pbkdf2-sha256";

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const material = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as BufferSource, iterations },
    material,
    HASH_BITS,
  );
  return new Uint8Array(bits);
}

/** Hashes a password for storage. */
export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, iterations);
  return `${SCHEME}$${iterations}$${toBase64(salt)}$${toBase64(hash)}`;
}

/** True when `password` matches `stored`; compares in constant time. A malformed `stored` never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 4 || parts[0] !== SCHEME || !/^\d{1,9}$/.test(parts[1])) return false;
  const iterations = Number(parts[1]);
  if (iterations < 1) return false;
  let salt: Uint8Array;
  try {
    salt = fromBase64(parts[2]);
  } catch {
    return false;
  }
  const hash = await derive(password, salt, iterations);
  return constantTimeEqual(toBase64(hash), parts[3]);
}

let dummyHash: Promise<string> | undefined;

/** A hash of nothing anyone knows: verifying against it makes an unknown username cost as much time as
 * a known one, so response time does not tell which usernames exist. */
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(crypto.randomUUID());
  return dummyHash;
}
