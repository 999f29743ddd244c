// The operator console: server-rendered pages (Eta) that htmx makes faster, on the same core services as
// the JSON API. How to add a page or a fragment: see views/README.md.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { CoreDeps } from "../../core/deps.ts";
import type { Services } from "../../core/services.ts";
import type { AppEnv } from "../env.ts";
import { registerActivityPages } from "./activity.ts";
import { registerAdminPages } from "./admin.ts";
import { registerAuthPages } from "./auth.ts";
import { registerConfigPages } from "./configs.ts";
import { registerDashboardPages } from "./dashboard.ts";
import { registerNodeDetailPages } from "./nodeDetail.ts";
import { registerNodePages } from "./nodes.ts";
import { registerPoolPages } from "./pools.ts";
import { registerRolloutPages } from "./rollouts.ts";
import { createUi, type Ui } from "./render.ts";
import { pageSession } from "./session.ts";

/** Registers every page route; returns the Ui (app.ts renders HTML error pages with it). */
export function registerUiRoutes(app: OpenAPIHono<AppEnv>, deps: CoreDeps, services: Services): Ui {
  const ui = createUi(deps);
  app.use("*", pageSession(deps));
  registerAuthPages(app, ui);
  registerDashboardPages(app, ui);
  registerNodePages(app, ui);
  registerConfigPages(app, ui, services);
  registerNodeDetailPages(app, ui);
  registerPoolPages(app, ui);
  registerRolloutPages(app, ui, services);
  registerActivityPages(app, ui);
  registerAdminPages(app, ui);
  return ui;
}
