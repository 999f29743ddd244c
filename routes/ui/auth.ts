// /login, /logout and the first-run /setup page.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { AppError } from "../../core/errors.ts";
import { login, logout } from "../../core/sessions.ts";
import { completeSetup, isSetupNeeded } from "../../core/setup.ts";
import type { AppEnv } from "../env.ts";
import {
  clearSessionCookie,
  presentedSessionCookie,
  refuseForeignOrigin,
  sessionCookieWouldBeDropped,
  setSessionCookie,
} from "../auth.ts";
import { detailsByField } from "./forms.ts";
import type { Ui } from "./render.ts";
import { field, postedForm, readForm, safeNext } from "./session.ts";

interface LoginForm {
  next: string;
  values: { username: string };
  errors: Record<string, string>;
  formError: string | null;
}

interface SetupForm {
  values: { code: string; username: string };
  errors: Record<string, string>;
  formError: null;
}

export function registerAuthPages(app: OpenAPIHono<AppEnv>, ui: Ui): void {
  const { deps } = ui;
  // Both pages log in, so both say when a production login over plain HTTP would not hold.
  const loginPage = (c: Context<AppEnv>, form: LoginForm, status?: 401 | 422 | 429) =>
    ui.render(c, {
      page: "@pages/login",
      title: "Log in",
      status,
      data: { ...form, needsHttps: sessionCookieWouldBeDropped(c, deps.settings) },
    });
  const setupPage = (c: Context<AppEnv>, form: SetupForm, status?: 422) =>
    ui.render(c, {
      page: "@pages/setup",
      title: "First-run setup",
      status,
      data: { ...form, needsHttps: sessionCookieWouldBeDropped(c, deps.settings) },
    });

  app.get("/login", async (c) => {
    if (await isSetupNeeded(deps)) return c.redirect("/setup", 303);
    const next = safeNext(c.req.query("next"));
    if (c.get("principal")) return c.redirect(next, 303);
    return loginPage(c, { next, values: { username: "" }, errors: {}, formError: null });
  });

  app.post("/login", async (c) => {
    // No CSRF token before a session exists: the Origin check keeps another site from logging a browser
    // into an account of its choosing (SameSite=Lax does not stop a top-level form post).
    refuseForeignOrigin(c, deps.settings);
    const form = await readForm(c);
    const username = field(form, "username").trim();
    const password = field(form, "password");
    const next = safeNext(field(form, "next"));
    const again = (status: 401 | 422 | 429, errors: Record<string, string>, formError: string | null) =>
      loginPage(c, { next, values: { username }, errors, formError }, status);
    const missing: Record<string, string> = {};
    if (!username) missing.username = "enter your username";
    if (!password) missing.password = "enter your password";
    if (Object.keys(missing).length) return again(422, missing, null);
    try {
      const result = await login(deps, {
        username,
        password,
        address: c.get("clientAddress"),
        userAgent: c.req.header("user-agent"),
        currentSessionToken: presentedSessionCookie(c),
      });
      setSessionCookie(c, deps.settings, result.sessionToken);
      return c.redirect(next, 303);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.status === 429) {
        const response = again(429, {}, error.message);
        for (const [k, v] of Object.entries(error.headers ?? {})) response.headers.set(k, v);
        return response;
      }
      if (error.status === 401) {
        return again(
          401,
          {},
          error.code === "account_disabled" ? "This account is disabled." : "Wrong username or password.",
        );
      }
      throw error;
    }
  });

  app.post("/logout", async (c) => {
    const { actor } = await postedForm(c, deps, "viewer");
    await logout(deps, actor);
    clearSessionCookie(c, deps.settings);
    return c.redirect("/login", 303);
  });

  app.get("/setup", async (c) => {
    if (!(await isSetupNeeded(deps))) return c.redirect("/login", 303);
    return setupPage(c, { values: { code: "", username: "admin" }, errors: {}, formError: null });
  });

  app.post("/setup", async (c) => {
    refuseForeignOrigin(c, deps.settings);
    if (!(await isSetupNeeded(deps))) return c.redirect("/login", 303);
    const form = await readForm(c);
    const values = { code: field(form, "code").trim(), username: field(form, "username").trim() };
    const password = field(form, "password");
    try {
      await completeSetup(deps, {
        code: values.code,
        username: values.username,
        password,
        password_confirm: field(form, "password_confirm"),
        address: c.get("clientAddress"),
      });
    } catch (error) {
      if (error instanceof AppError && error.status === 422) {
        return setupPage(c, { values, errors: detailsByField(error.details), formError: null }, 422);
      }
      if (error instanceof AppError && error.status === 409) return c.redirect("/login", 303);
      throw error;
    }
    const session = await login(deps, {
      username: values.username,
      password,
      address: c.get("clientAddress"),
      userAgent: c.req.header("user-agent"),
      currentSessionToken: presentedSessionCookie(c),
    });
    setSessionCookie(c, deps.settings, session.sessionToken);
    ui.flash(c, "ok", `Welcome, ${values.username}. You are the admin of this Autoscaler Central.`);
    return c.redirect("/", 303);
  });
}
