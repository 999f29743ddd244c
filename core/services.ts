// The services both the JSON API and the pages call. Built once per app from its dependencies.
import type { CoreDeps } from "./deps.ts";
import { type ConfigWatcher, createConfigWatcher } from "./configWatcher.ts";
import { createHeartbeatWriter, type HeartbeatWriter } from "./agents.ts";
import { createJobRunner, type JobRunner } from "./jobs.ts";
import { createPoolLimiter, type PoolLimiter } from "./poolLimit.ts";
import { standardJobs } from "./housekeeping.ts";

export interface Services {
  /** Long-poll engine for agents' config pulls (core/configWatcher.ts). */
  configWatcher: ConfigWatcher;
  /** Group commit of heartbeat writes (core/agents.ts). */
  heartbeats: HeartbeatWriter;
  /** MAX_POOLS_PER_NODE, with the pools known to exist remembered (core/poolLimit.ts). */
  pools: PoolLimiter;
  /** Rollups, retention and pruning (core/housekeeping.ts); main.ts starts its timers, tests tick it. */
  jobs: JobRunner;
  /** Stops background work this app started. */
  close(): Promise<void>;
}

export function createServices(deps: CoreDeps): Services {
  const configWatcher = createConfigWatcher(deps);
  const heartbeats = createHeartbeatWriter(deps);
  const jobs = createJobRunner(deps, standardJobs(deps.settings));
  return {
    configWatcher,
    heartbeats,
    pools: createPoolLimiter(deps),
    jobs,
    close: async () => {
      await jobs.close();
      await configWatcher.close();
      await heartbeats.close();
    },
  };
}
