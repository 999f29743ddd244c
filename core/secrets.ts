// Secrets (node tokens, enrollment tokens, API keys, session ids) are random strings shown once;
// only their keyed hash (HMAC-SHA256 with SECRET_KEY) is stored, so a database leak reveals none.
// They are 32 random bytes, so a fast keyed hash is the right one (a slow one is for passwords).
import { createHash, createHmac } from "node:crypto";

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(
    bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** HMAC-SHA256(secretKey, value) as 64 hex characters. Computed synchronously (node:crypto): WebCrypto's
 * asynchronous round trip cost a registration more than the hash itself. */
export function keyedHash(secretKey: string, value: string): Promise<string> {
  return Promise.resolve(createHmac("sha256", secretKey).update(value, "utf8").digest("hex"));
}

/** SHA-256 of a string as 64 hex characters (config hashes; not for secrets). */
export function sha256Hex(value: string): Promise<string> {
  return Promise.resolve(createHash("sha256").update(value, "utf8").digest("hex"));
}

/** A new random secret: `<prefix>_` + 32 random bytes in base64url (43 characters). */
export function newSecret(prefix: string, bytes = 32): string {
  return `${prefix}_${toBase64Url(crypto.getRandomValues(new Uint8Array(bytes)))}`;
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Characters of the random part newSecret() makes (32 bytes in base64url). */
const SECRET_BODY = /^[A-Za-z0-9_-]{43}$/;

/** True when `value` looks like a secret newSecret(prefix) made: checked before hashing anything a client
 * sent, so a 60 KB "token" costs no HMAC, no cache entry and no query. */
export function secretShaped(prefix: string, value: unknown): value is string {
  return typeof value === "string" && value.length === prefix.length + 44 && value.startsWith(`${prefix}_`) &&
    SECRET_BODY.test(value.slice(prefix.length + 1));
}

/** Prefixes that tell one kind of secret from another at a glance (and in logs, where only it shows). */
export const SECRET_PREFIX = {
  nodeToken: "acn",
  enrollmentToken: "ace",
  apiKey: "ack",
  session: "acs",
} as const;
