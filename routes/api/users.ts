// Operator accounts (admin only): list, create, read, change role / disabled, reset password.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import { errorResponses } from "../errors.ts";
import * as fields from "../../core/fields.ts";
import { ROLES } from "../../core/principal.ts";
import { createUser, getUser, listUsers, setPassword, updateUser } from "../../core/users.ts";
import type { AppEnv } from "../env.ts";
import { requireActor, requireRole } from "../guards.ts";
import { IntIdParams, isoTime, jsonBody, jsonResponse, routesFor } from "./schemas.ts";

export const UserSchema = z.object({
  id: z.number().int(),
  username: z.string(),
  role: z.enum(ROLES),
  disabled: z.boolean(),
  last_login_at: isoTime.nullable(),
  password_changed_at: isoTime,
  created_at: isoTime,
  updated_at: isoTime,
}).openapi("User");

const CreateUserBody = z.strictObject({
  username: fields.username,
  password: fields.newPassword,
  role: z.enum(ROLES),
}).openapi("CreateUser");

const UpdateUserBody = z.strictObject({
  role: z.enum(ROLES).optional(),
  disabled: z.boolean().optional(),
}).refine((b) => b.role !== undefined || b.disabled !== undefined, {
  message: "give role and/or disabled",
  path: ["role"],
}).openapi("UpdateUser");

const PasswordBody = z.strictObject({ password: fields.newPassword }).openapi("SetPassword");

const route = routesFor("users");

const listRoute = route("get", "/api/v1/users", "admin", {
  summary: "List operator accounts",
  responses: {
    200: jsonResponse(z.object({ users: z.array(UserSchema) }), "Users"),
    ...errorResponses(401, 403),
  },
});

const createUserRoute = route("post", "/api/v1/users", "admin", {
  summary: "Create an account (password policy: 12..256 characters)",
  request: { body: jsonBody(CreateUserBody) },
  responses: { 201: jsonResponse(UserSchema, "Created"), ...errorResponses(401, 403, 409, 422) },
});

const getRoute = route("get", "/api/v1/users/{id}", "admin", {
  summary: "One account",
  request: { params: IntIdParams },
  responses: { 200: jsonResponse(UserSchema, "The user"), ...errorResponses(401, 403, 404, 422) },
});

const updateRoute = route("patch", "/api/v1/users/{id}", "admin", {
  summary: "Change role and/or disabled (disabling ends the user's sessions; the last admin stays)",
  request: { params: IntIdParams, body: jsonBody(UpdateUserBody) },
  responses: { 200: jsonResponse(UserSchema, "Updated"), ...errorResponses(401, 403, 404, 409, 422) },
});

const passwordRoute = route("post", "/api/v1/users/{id}/password", "admin", {
  summary: "Reset a user's password (ends their sessions)",
  request: { params: IntIdParams, body: jsonBody(PasswordBody) },
  responses: { 200: jsonResponse(UserSchema, "Password changed"), ...errorResponses(401, 403, 404, 422) },
});

export function registerUserRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps): void {
  app.openapi(listRoute, async (c) => {
    requireRole(c, "admin");
    return c.json({ users: await listUsers(deps) }, 200);
  });

  app.openapi(createUserRoute, async (c) => {
    const user = await createUser(deps, requireActor(c, "admin"), c.req.valid("json"));
    return c.json(user, 201);
  });

  app.openapi(getRoute, async (c) => {
    requireRole(c, "admin");
    return c.json(await getUser(deps, c.req.valid("param").id), 200);
  });

  app.openapi(updateRoute, async (c) => {
    const { id } = c.req.valid("param");
    const user = await updateUser(deps, requireActor(c, "admin"), id, c.req.valid("json"));
    return c.json(user, 200);
  });

  app.openapi(passwordRoute, async (c) => {
    const { id } = c.req.valid("param");
    const user = await setPassword(deps, requireActor(c, "admin"), id, c.req.valid("json").password);
    return c.json(user, 200);
  });
}
