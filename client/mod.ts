// The client autoscalers embed (Deno and Node 20+; fetch only). See README "Autoscaler integration".
export {
  CentralManagementClient,
  CentralRequestError,
  type ClientEventMap,
  type ClientOptions,
  type ClientStats,
  type MetricSample,
  normalizeApiUrl,
  type PoolInfo,
  type ReceivedConfig,
  validateSample,
} from "./client.ts";
export { type ClientRuntime, type ClientStore, defaultRuntime, fileSystemStore } from "./store.ts";
export { toYaml } from "./yaml.ts";
