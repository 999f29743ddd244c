// Credentials for tests: users, API keys and logged-in sessions, made through the real services.
import { createApiKey } from "../../core/apiKeys.ts";
import type { Principal, Role } from "../../core/principal.ts";
import { createUser } from "../../core/users.ts";
import { json, type TestApp } from "./app.ts";

/** The actor recorded in the audit log for fixtures made by tests. */
export const TEST_SETUP: Principal = { kind: "system", name: "test-setup" };

let counter = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export interface TestUser {
  id: number;
  username: string;
  password: string;
  role: Role;
}

/** Creates a user with `role` (and a random 20+ character password). */
export async function createUserWithRole(ctx: TestApp, role: Role, username?: string): Promise<TestUser> {
  const name = username ?? unique(role);
  const password = `pw-${crypto.randomUUID()}`;
  const user = await createUser(ctx.deps, { principal: TEST_SETUP }, { username: name, password, role });
  return { id: user.id, username: user.username, password, role };
}

export interface TestApiKey {
  id: number;
  /** The `ack_...` secret: pass as `ctx.call(method, path, { token })`. */
  token: string;
  role: Role;
}

/** Creates an API key with `role`. */
export async function createApiKeyWithRole(
  ctx: TestApp,
  role: Role,
  options: { name?: string; expiresInDays?: number } = {},
): Promise<TestApiKey> {
  const { key, apiKey } = await createApiKey(ctx.deps, { principal: TEST_SETUP }, {
    name: options.name ?? unique(`${role}-key`),
    role,
    expires_in_days: options.expiresInDays,
  });
  return { id: apiKey.id, token: key, role };
}

export interface TestSession {
  /** `acs_session=<value>`: send as the Cookie header. */
  cookie: string;
  csrfToken: string;
  /** Cookie + X-CSRF-Token, ready for `ctx.call(..., { headers })` on any method. */
  headers: Record<string, string>;
}

/** Logs in through POST /api/v1/auth/login; fails the test when the login is refused. */
export async function loginAs(ctx: TestApp, username: string, password: string): Promise<TestSession> {
  const res = await ctx.call("POST", "/api/v1/auth/login", { json: { username, password } });
  const body = await json<{ csrf_token: string; error?: unknown }>(res);
  if (res.status !== 200) {
    throw new Error(`login as ${username} failed: ${res.status} ${JSON.stringify(body)}`);
  }
  const setCookie = res.headers.get("set-cookie") ?? "";
  const match = /acs_session=([^;]+)/.exec(setCookie);
  if (!match) throw new Error(`login as ${username}: no acs_session cookie in ${setCookie}`);
  const cookie = `acs_session=${match[1]}`;
  return { cookie, csrfToken: body.csrf_token, headers: { cookie, "x-csrf-token": body.csrf_token } };
}

/** A new user of the role, logged in. */
export async function sessionWithRole(ctx: TestApp, role: Role): Promise<TestSession> {
  const user = await createUserWithRole(ctx, role);
  return await loginAs(ctx, user.username, user.password);
}
