// A real HTTP server over createTestApp, on a free loopback port, for clients that talk over the network
// (the TypeScript and Python clients, the simulator). An outage is played by a cuttable TCP proxy in
// front of it: outage() refuses connections and drops open ones, recover() listens again on the same
// port, and the service behind keeps its state.
//
// The service's clock follows real time here (clients stamp samples with their own clock, and the server
// refuses samples more than 5 minutes ahead of its clock).
import { createEnrollmentToken } from "../../core/enrollment.ts";
import { setNodeConfig } from "../../core/configs.ts";
import type { Principal } from "../../core/principal.ts";
import { createTestApp, type TestApp } from "./app.ts";
import { startTcpProxy } from "./tcpProxy.ts";

export interface TestServer {
  ctx: TestApp;
  /** http://127.0.0.1:<port> (through the proxy). */
  baseUrl: string;
  /** The API root as an agent is configured with it: <baseUrl>/api */
  apiUrl: string;
  port: number;
  /** Connections refused and open ones dropped, until recover(). */
  outage(): void;
  /** Listens again on the same port (retrying while the kernel still holds it). */
  recover(): Promise<void>;
  /** A fresh enrollment token (unlimited uses unless given). */
  enrollmentToken(options?: { maxUses?: number; name?: string }): Promise<string>;
  /** Sets a node's desired config as an operator would (YAML text or object). */
  setConfig(nodeId: string, config: unknown): Promise<{ version: number; hash: string }>;
  close(): Promise<void>;
}

export const TEST_OPERATOR: Principal = { kind: "system", name: "test-operator" };

export async function startTestServer(
  label: string,
  options: { env?: Record<string, string> } = {},
): Promise<TestServer> {
  const ctx = await createTestApp(label, { env: options.env, start: new Date().toISOString() });
  // deps.clock is ctx.clock: let it follow real time.
  ctx.clock.now = () => new Date();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, ctx.app.fetch);
  const proxy = startTcpProxy("127.0.0.1", server.addr.port);
  const baseUrl = `http://127.0.0.1:${proxy.port}`;
  let closed = false;
  return {
    ctx,
    baseUrl,
    apiUrl: `${baseUrl}/api`,
    port: proxy.port,
    outage: () => proxy.cut(),
    recover: async () => {
      for (let attempt = 1;; attempt++) {
        try {
          proxy.restore();
          return;
        } catch (error) {
          if (!(error instanceof Deno.errors.AddrInUse) || attempt >= 100) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    },
    enrollmentToken: async (tokenOptions = {}) => {
      const { token } = await createEnrollmentToken(ctx.deps, { principal: TEST_OPERATOR }, {
        name: tokenOptions.name ?? `test-${crypto.randomUUID().slice(0, 8)}`,
        max_uses: tokenOptions.maxUses ?? null,
      });
      return token;
    },
    setConfig: async (nodeId, config) => {
      const view = await setNodeConfig(ctx.deps, ctx.services, { principal: TEST_OPERATOR }, nodeId, {
        config,
        comment: "set by a test",
      });
      return { version: view.version, hash: view.hash };
    },
    close: async () => {
      if (closed) return;
      closed = true;
      // Release waiting config pulls first, so the server can drain.
      await ctx.services.close();
      await proxy.close();
      await server.shutdown();
      await ctx.close();
    },
  };
}

/** Polls `check` every 50 ms until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function eventually<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `timed out waiting for ${what} (last: ${last instanceof Error ? last.message : String(last)})`,
  );
}
