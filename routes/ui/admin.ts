// Administration pages: /admin/users, /admin/api-keys, /admin/enrollment-tokens (admin role), and
// /account/password (anyone logged in). The same core services and audit as the JSON API; a secret is
// shown once in the answer to its POST (never in a URL or cookie; every page is Cache-Control: no-store).
import type { Context } from "hono";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createApiKey, listApiKeys, revokeApiKey } from "../../core/apiKeys.ts";
import { createEnrollmentToken, listEnrollmentTokens, revokeEnrollmentToken } from "../../core/enrollment.ts";
import { AppError } from "../../core/errors.ts";
import { type Role, ROLES } from "../../core/principal.ts";
import { changeOwnPassword, createUser, listUsers, updateUser } from "../../core/users.ts";
import type { AppEnv } from "../env.ts";
import { detailsByField, rowIdParam } from "./forms.ts";
import type { Ui } from "./render.ts";
import { field, type FormFields, formValues, postedForm, requirePageRole } from "./session.ts";

/** Lifetimes offered for enrollment tokens (seconds; "" never expires) and API keys (days). */
const TOKEN_LIFETIMES = [["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"], [
  "2592000",
  "30 days",
], ["", "Never"]] as const;
const KEY_LIFETIMES = [["30", "30 days"], ["90", "90 days"], ["365", "1 year"], ["", "Never"]] as const;

/** A form shown again after a refused POST: the messages by field, what was typed, and the 422. */
interface FormAgain {
  errors?: Record<string, string>;
  values?: FormFields;
  status?: 422;
}

/** An optional whole number typed in a form: "" -> null, else the number (the service judges its range). */
function optionalInt(text: string): number | null {
  return text.trim() === "" ? null : Number(text.trim());
}

/** Runs a form's action: [null, its result]; refused with a 422 or 409, [the messages by field, undefined] to
 * render the form again with. Anything else propagates to the error pages. */
async function tryForm<T>(
  action: () => Promise<T>,
): Promise<[null, T] | [Record<string, string>, undefined]> {
  try {
    return [null, await action()];
  } catch (error) {
    if (error instanceof AppError && (error.status === 422 || error.status === 409)) {
      const errors = detailsByField(error.details);
      if (Object.keys(errors).length === 0) errors._form = error.message;
      return [errors, undefined];
    }
    throw error;
  }
}

export function registerAdminPages(app: OpenAPIHono<AppEnv>, ui: Ui): void {
  /** The one answer that shows a new secret, with a link back to where it was made. */
  const secretPage = (
    c: Context<AppEnv>,
    title: string,
    data: { heading: string; secret: string; notes: string[]; backUrl: string; backText: string },
  ) => ui.render(c, { page: "@pages/secret", title, nav: "admin", data });

  // --- users -------------------------------------------------------------------------------------------
  const usersPage = async (
    c: Context<AppEnv>,
    extra: FormAgain = {},
  ) =>
    ui.render(c, {
      page: "@pages/admin-users",
      title: "Users",
      nav: "admin",
      status: extra.status,
      data: {
        users: await listUsers(ui.deps),
        roles: ROLES,
        me: c.get("principal"),
        errors: extra.errors ?? {},
        values: { username: "", role: "viewer", ...extra.values },
      },
    });

  app.get("/admin/users", (c) => {
    requirePageRole(c, "admin");
    return usersPage(c);
  });

  app.post("/admin/users", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "admin");
    const username = field(form, "username");
    const role = field(form, "role") as Role;
    const password = field(form, "password");
    const [errors] = await tryForm(async () => {
      if (password !== field(form, "password_confirm")) {
        throw new AppError(422, "validation_failed", "the passwords differ", [
          { field: "password_confirm", message: "does not match the password" },
        ]);
      }
      await createUser(ui.deps, actor, { username, role, password });
    });
    // The password is never echoed back into the form.
    if (errors) return usersPage(c, { errors, values: { username, role }, status: 422 });
    ui.flash(c, "ok", `User ${username.trim()} created with the ${role} role.`);
    return c.redirect("/admin/users", 303);
  });

  app.post("/admin/users/:id", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "admin");
    const id = rowIdParam(c.req.param("id"), "user");
    const action = field(form, "action");
    const input = action === "disable"
      ? { disabled: true }
      : action === "enable"
      ? { disabled: false }
      : { role: field(form, "role") as Role };
    try {
      const user = await updateUser(ui.deps, actor, id, input);
      ui.flash(
        c,
        "ok",
        action === "disable"
          ? `${user.username} is disabled; their sessions and API keys stopped working.`
          : action === "enable"
          ? `${user.username} is enabled again.`
          : `${user.username} now has the ${user.role} role.`,
      );
    } catch (error) {
      // A refused change (last admin, bad role) comes back as a message above the list, nothing changed.
      if (!(error instanceof AppError) || ![409, 422].includes(error.status)) throw error;
      ui.flash(c, "error", error.message);
    }
    return c.redirect("/admin/users", 303);
  });

  // --- API keys ------------------------------------------------------------------------------------------
  const keysPage = async (
    c: Context<AppEnv>,
    extra: FormAgain = {},
  ) =>
    ui.render(c, {
      page: "@pages/admin-api-keys",
      title: "API keys",
      nav: "admin",
      status: extra.status,
      data: {
        keys: await listApiKeys(ui.deps),
        roles: ROLES,
        lifetimes: KEY_LIFETIMES,
        errors: extra.errors ?? {},
        values: { name: "", role: "viewer", expires_in_days: "90", ...extra.values },
      },
    });

  app.get("/admin/api-keys", (c) => {
    requirePageRole(c, "admin");
    return keysPage(c);
  });

  app.post("/admin/api-keys", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "admin");
    const values = formValues(form, ["name", "role", "expires_in_days"]);
    const [errors, created] = await tryForm(() =>
      createApiKey(ui.deps, actor, {
        name: values.name,
        role: values.role as Role,
        expires_in_days: optionalInt(values.expires_in_days),
      })
    );
    if (errors) return keysPage(c, { errors, values, status: 422 });
    return secretPage(c, "New API key", {
      heading: `API key “${created.apiKey.name}”`,
      secret: created.key,
      notes: [
        `Role ${created.apiKey.role}; ${
          created.apiKey.expires_at ? `valid until ${created.apiKey.expires_at.slice(0, 10)}` : "no expiry"
        }.`,
        "Send it as Authorization: Bearer <key>. It answers for you: disabling your account revokes it.",
      ],
      backUrl: "/admin/api-keys",
      backText: "Back to API keys",
    });
  });

  app.post("/admin/api-keys/:id/revoke", async (c) => {
    const { actor } = await postedForm(c, ui.deps, "admin");
    const key = await revokeApiKey(ui.deps, actor, rowIdParam(c.req.param("id"), "API key"));
    ui.flash(c, "ok", `API key ${key.name} (${key.prefix}…) revoked: it stopped working.`);
    return c.redirect("/admin/api-keys", 303);
  });

  // --- enrollment tokens ----------------------------------------------------------------------------------
  const tokensPage = async (
    c: Context<AppEnv>,
    extra: FormAgain = {},
  ) => {
    const showRevoked = c.req.query("revoked") === "1";
    return ui.render(c, {
      page: "@pages/admin-enrollment-tokens",
      title: "Enrollment tokens",
      nav: "admin",
      status: extra.status,
      data: {
        tokens: await listEnrollmentTokens(ui.deps, { includeRevoked: showRevoked }),
        showRevoked,
        lifetimes: TOKEN_LIFETIMES,
        errors: extra.errors ?? {},
        values: { name: "", expires_in_s: "604800", max_uses: "", ...extra.values },
      },
    });
  };

  app.get("/admin/enrollment-tokens", (c) => {
    requirePageRole(c, "admin");
    return tokensPage(c);
  });

  app.post("/admin/enrollment-tokens", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "admin");
    const values = formValues(form, ["name", "expires_in_s", "max_uses"]);
    const [errors, created] = await tryForm(() =>
      createEnrollmentToken(ui.deps, actor, {
        name: values.name,
        expires_in_s: optionalInt(values.expires_in_s),
        max_uses: optionalInt(values.max_uses),
      })
    );
    if (errors) return tokensPage(c, { errors, values, status: 422 });
    const view = created.view;
    return secretPage(c, "New enrollment token", {
      heading: `Enrollment token “${view.name}”`,
      secret: created.token,
      notes: [
        `${view.max_uses === null ? "Unlimited registrations" : `${view.max_uses} registration(s)`}; ${
          view.expires_at ? `valid until ${view.expires_at.slice(0, 16).replace("T", " ")} UTC` : "no expiry"
        }.`,
        "Give it to new autoscalers as CENTRAL_ENROLLMENT_TOKEN (or enrollment_token): each registers once with it and gets a node token of its own.",
      ],
      backUrl: "/admin/enrollment-tokens",
      backText: "Back to enrollment tokens",
    });
  });

  app.post("/admin/enrollment-tokens/:id/revoke", async (c) => {
    const { actor } = await postedForm(c, ui.deps, "admin");
    try {
      const token = await revokeEnrollmentToken(
        ui.deps,
        actor,
        rowIdParam(c.req.param("id"), "enrollment token"),
      );
      ui.flash(c, "ok", `Enrollment token ${token.name} (${token.prefix}…) revoked.`);
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 409) throw error;
      ui.flash(c, "error", error.message);
    }
    return c.redirect("/admin/enrollment-tokens", 303);
  });

  // --- own password -----------------------------------------------------------------------------------------
  const passwordPage = (c: Context<AppEnv>, errors: Record<string, string> = {}, status?: 422) =>
    ui.render(c, { page: "@pages/account-password", title: "Change password", status, data: { errors } });

  app.get("/account/password", (c) => {
    requirePageRole(c, "viewer");
    return passwordPage(c);
  });

  app.post("/account/password", async (c) => {
    const { actor, form } = await postedForm(c, ui.deps, "viewer");
    const [errors] = await tryForm(async () => {
      if (field(form, "new_password") !== field(form, "new_password_confirm")) {
        throw new AppError(422, "validation_failed", "the new passwords differ", [
          { field: "new_password_confirm", message: "does not match the new password" },
        ]);
      }
      await changeOwnPassword(ui.deps, actor, {
        current_password: field(form, "current_password"),
        new_password: field(form, "new_password"),
      });
    });
    if (errors) return passwordPage(c, errors, 422);
    ui.flash(c, "ok", "Password changed. Your other sessions were ended.");
    return c.redirect("/account/password", 303);
  });
}
