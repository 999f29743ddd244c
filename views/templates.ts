// Every template of the console, imported as text (so `deno compile` embeds it) and registered with Eta by
// name: "@layout", "@pages/<file>", "@partials/<file>". To add a template, add one import and one entry.
import layout from "./layout.eta" with { type: "text" };
import pageAccountPassword from "./pages/account-password.eta" with { type: "text" };
import pageAdminApiKeys from "./pages/admin-api-keys.eta" with { type: "text" };
import pageAdminEnrollmentTokens from "./pages/admin-enrollment-tokens.eta" with { type: "text" };
import pageAdminUsers from "./pages/admin-users.eta" with { type: "text" };
import pageAudit from "./pages/audit.eta" with { type: "text" };
import pageEvents from "./pages/events.eta" with { type: "text" };
import pageSecret from "./pages/secret.eta" with { type: "text" };
import partialAdminTabs from "./partials/admin-tabs.eta" with { type: "text" };
import partialAuditResults from "./partials/audit-results.eta" with { type: "text" };
import partialEventResults from "./partials/event-results.eta" with { type: "text" };
import pageDashboard from "./pages/dashboard.eta" with { type: "text" };
import pageError from "./pages/error.eta" with { type: "text" };
import pageLogin from "./pages/login.eta" with { type: "text" };
import pageNodeChartTable from "./pages/node-chart-table.eta" with { type: "text" };
import pageNodeConfig from "./pages/node-config.eta" with { type: "text" };
import pageNode from "./pages/node.eta" with { type: "text" };
import pageNodeDecommission from "./pages/node-decommission.eta" with { type: "text" };
import pageNodeToken from "./pages/node-token.eta" with { type: "text" };
import pageNodes from "./pages/nodes.eta" with { type: "text" };
import pagePools from "./pages/pools.eta" with { type: "text" };
import pageSetup from "./pages/setup.eta" with { type: "text" };
import pageRollout from "./pages/rollout.eta" with { type: "text" };
import pageRollouts from "./pages/rollouts.eta" with { type: "text" };
import partialRolloutLive from "./partials/rollout-live.eta" with { type: "text" };
import partialRolloutPreview from "./partials/rollout-preview.eta" with { type: "text" };
import partialRolloutReplay from "./partials/rollout-replay.eta" with { type: "text" };
import partialBadge from "./partials/badge.eta" with { type: "text" };
import partialChart from "./partials/chart.eta" with { type: "text" };
import partialChartTable from "./partials/chart-table.eta" with { type: "text" };
import partialReplay from "./partials/replay.eta" with { type: "text" };
import partialReplayResults from "./partials/replay-results.eta" with { type: "text" };
import partialConfigDiff from "./partials/config-diff.eta" with { type: "text" };
import partialConfigStatus from "./partials/config-status.eta" with { type: "text" };
import partialDashboardLive from "./partials/dashboard-live.eta" with { type: "text" };
import partialDiffTable from "./partials/diff-table.eta" with { type: "text" };
import partialErrorAlert from "./partials/error-alert.eta" with { type: "text" };
import partialFieldError from "./partials/field-error.eta" with { type: "text" };
import partialHttpsNotice from "./partials/https-notice.eta" with { type: "text" };
import partialNodeCharts from "./partials/node-charts.eta" with { type: "text" };
import partialNodeEvents from "./partials/node-events.eta" with { type: "text" };
import partialNodeResults from "./partials/node-results.eta" with { type: "text" };
import partialNodeStatus from "./partials/node-status.eta" with { type: "text" };
import partialPoolResults from "./partials/pool-results.eta" with { type: "text" };

export const TEMPLATES: Record<string, string> = {
  "@layout": layout,
  "@pages/account-password": pageAccountPassword,
  "@pages/admin-api-keys": pageAdminApiKeys,
  "@pages/admin-enrollment-tokens": pageAdminEnrollmentTokens,
  "@pages/admin-users": pageAdminUsers,
  "@pages/audit": pageAudit,
  "@pages/events": pageEvents,
  "@pages/secret": pageSecret,
  "@partials/admin-tabs": partialAdminTabs,
  "@partials/audit-results": partialAuditResults,
  "@partials/event-results": partialEventResults,
  "@pages/dashboard": pageDashboard,
  "@pages/error": pageError,
  "@pages/login": pageLogin,
  "@pages/node-chart-table": pageNodeChartTable,
  "@pages/node-config": pageNodeConfig,
  "@pages/node": pageNode,
  "@pages/node-decommission": pageNodeDecommission,
  "@pages/node-token": pageNodeToken,
  "@pages/nodes": pageNodes,
  "@pages/pools": pagePools,
  "@pages/setup": pageSetup,
  "@pages/rollout": pageRollout,
  "@pages/rollouts": pageRollouts,
  "@partials/rollout-live": partialRolloutLive,
  "@partials/rollout-preview": partialRolloutPreview,
  "@partials/rollout-replay": partialRolloutReplay,
  "@partials/badge": partialBadge,
  "@partials/chart": partialChart,
  "@partials/chart-table": partialChartTable,
  "@partials/replay": partialReplay,
  "@partials/replay-results": partialReplayResults,
  "@partials/config-diff": partialConfigDiff,
  "@partials/config-status": partialConfigStatus,
  "@partials/dashboard-live": partialDashboardLive,
  "@partials/diff-table": partialDiffTable,
  "@partials/error-alert": partialErrorAlert,
  "@partials/field-error": partialFieldError,
  "@partials/https-notice": partialHttpsNotice,
  "@partials/node-charts": partialNodeCharts,
  "@partials/node-events": partialNodeEvents,
  "@partials/node-results": partialNodeResults,
  "@partials/node-status": partialNodeStatus,
  "@partials/pool-results": partialPoolResults,
};
