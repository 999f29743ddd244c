// The services both the JSON API and the pages call. Built once per app from its dependencies.
import type { CoreDeps } from "./deps.ts";

export interface Services {
  /** Stops background work this app started. */
  close(): Promise<void>;
}

export function createServices(_deps: CoreDeps): Services {
  return {
    close: async () => {},
  };
}
