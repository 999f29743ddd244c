// The services both the JSON API and the pages call. Built once per app from its dependencies.
import type { CoreDeps } from "./deps.ts";
import { type ConfigWatcher, createConfigWatcher } from "./configWatcher.ts";
import { createHeartbeatWriter, type HeartbeatWriter } from "./heartbeats.ts";
import { createNodeAuthCache, type NodeAuthCache } from "./nodeAuthCache.ts";
import { createJobRunner, type JobRunner } from "./jobs.ts";
import { createPoolLimiter, type PoolLimiter } from "./poolLimit.ts";
import { standardJobs } from "./housekeeping.ts";
import { rolloutJob } from "./rollouts.ts";
import { createRateLimiter, type RateLimiter } from "./limits.ts";
import { createRegistrationBatcher, type RegistrationBatcher } from "./registrations.ts";

export interface Services {
  /** Long-poll engine for agents' config pulls (core/configWatcher.ts). */
  configWatcher: ConfigWatcher;
  /** Heartbeats kept in memory, the latest per node, written every HEARTBEAT_FLUSH_MS (core/heartbeats.ts). */
  heartbeats: HeartbeatWriter;
  /** Node tokens checked from memory, forgotten by every replica within a poll (core/nodeAuthCache.ts). */
  nodeAuth: NodeAuthCache;
  /** MAX_POOLS_PER_NODE, with the pools known to exist remembered (core/poolLimit.ts). */
  pools: PoolLimiter;
  /** Rollups, retention and pruning (core/housekeeping.ts), staged rollouts (core/rollouts.ts); main.ts starts its timers, tests tick it. */
  jobs: JobRunner;
  /** Registrations per client address and minute (REGISTER_RATE_PER_MIN). */
  registrationLimiter: RateLimiter;
  /** New nodes registered together, many in one transaction (core/registrations.ts). */
  registrations: RegistrationBatcher;
  /** Stops background work this app started. */
  close(): Promise<void>;
}

export function createServices(deps: CoreDeps): Services {
  const nodeAuth = createNodeAuthCache(deps);
  const configWatcher = createConfigWatcher(deps, nodeAuth);
  nodeAuth.onFirstEntry = () => configWatcher.ensurePolling();
  const heartbeats = createHeartbeatWriter(deps, { nodeAuth });
  const jobs = createJobRunner(deps, [...standardJobs(deps.settings), rolloutJob({ configWatcher })], {
    observe: (job, outcome, seconds) => deps.telemetry?.jobRun(job, outcome, seconds, deps.clock.now()),
  });
  const registrations = createRegistrationBatcher(deps);
  const registrationLimiter = createRateLimiter({
    limit: deps.settings.REGISTER_RATE_PER_MIN,
    windowMs: 60_000,
    clock: deps.clock,
  });
  return {
    configWatcher,
    heartbeats,
    nodeAuth,
    pools: createPoolLimiter(deps),
    jobs,
    registrationLimiter,
    registrations,
    close: async () => {
      // Waiting pulls first (they answer at once), then a job step in progress, then pending heartbeats.
      const watcherClosed = configWatcher.close();
      await jobs.close();
      await watcherClosed;
      await heartbeats.close();
      await registrations.close();
    },
  };
}
