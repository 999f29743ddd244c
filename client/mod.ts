// The client autoscalers embed (Deno and Node 20+; fetch only). See README "Autoscaler integration".
export {
  CentralManagementClient,
  type ClientEventMap,
  type ClientOptions,
  type ClientStats,
  normalizeApiUrl,
  type PoolInfo,
  type ReceivedConfig,
} from "./client.ts";
export { CentralRequestError } from "./http.ts";
export { type MetricSample, validateSample } from "./samples.ts";
export { type ClientRuntime, type ClientStore, defaultRuntime, fileSystemStore } from "./store.ts";
export { toYaml } from "./yaml.ts";
