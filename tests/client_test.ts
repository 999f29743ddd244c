// The TypeScript client against the real service over HTTP: registration, heartbeats, metrics exactly
// once, config delivery and acks, restart without re-registering, an outage with nothing lost, a revoked
// node token, refused samples, a full buffer, and bad arguments.
import assert from "node:assert/strict";
import { and, count, eq } from "drizzle-orm";
import { CentralManagementClient, type ClientOptions, normalizeApiUrl, toYaml } from "../client/mod.ts";
import { recordNodeAuthChange } from "../db/nodeAuth.ts";
import { configVersions, enrollmentTokens, metricSamples, nodes, scalingEvents } from "../db/schema.ts";
import { parse as parseYaml } from "yaml";
import { createReenrollmentToken } from "../core/enrollment.ts";
import { eventually, startTestServer, type TestServer } from "./helpers/server.ts";

const POOL_A = "ocid1.instancepool.oc1.iad.aaaaclienttesta";
const POOL_B = "ocid1.instancepool.oc1.iad.aaaaclienttestb";

function configDocument(cpuMax = 75, pool = POOL_A): Record<string, unknown> {
  return {
    pools: [{
      instance_pool_id: pool,
      compartment_id: "ocid1.compartment.oc1..aaaaclienttest",
      region: "us-ashburn-1",
      monitoring_method: "oci",
      cpu_threshold: { min: 30, max: cpuMax },
      ram_threshold: { min: 20, max: 75 },
      scaling_limits: { min: 1, max: 10 },
      scheduler_max_instances: 3,
      schedules: [{ start_time: "05:30", end_time: "05:50" }],
    }],
  };
}

/** Fast intervals so the whole file runs in seconds. */
function fastOptions(server: TestServer, dir: string, extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    centralApiUrl: server.apiUrl,
    localConfigPath: `${dir}/config.yaml`,
    hostname: "client-test.example.internal",
    agentVersion: "test-1.0",
    heartbeatIntervalMs: 150,
    flushIntervalMs: 50,
    retryBaseMs: 50,
    retryMaxMs: 300,
    configWaitS: 2,
    requestTimeoutMs: 3_000,
    ...extra,
  };
}

async function nodeRow(server: TestServer, name: string) {
  const rows = await server.ctx.deps.db.select().from(nodes).where(eq(nodes.name, name));
  return rows[0];
}

async function sampleCount(server: TestServer, nodeId: string): Promise<number> {
  const [row] = await server.ctx.deps.db.select({ n: count() }).from(metricSamples)
    .where(eq(metricSamples.nodeId, nodeId));
  return Number(row.n);
}

async function tokenUses(server: TestServer): Promise<number> {
  const rows = await server.ctx.deps.db.select({ uses: enrollmentTokens.uses }).from(enrollmentTokens);
  return rows.reduce((sum, row) => sum + row.uses, 0);
}

Deno.test("TypeScript client against the real service", async (t) => {
  const server = await startTestServer("client", { env: { HEARTBEAT_INTERVAL_S: "1" } });
  const dir = await Deno.makeTempDir({ prefix: "central-client-" });
  const errors: string[] = [];
  const clients: CentralManagementClient[] = [];
  const track = (client: CentralManagementClient) => {
    clients.push(client);
    client.on("error", ({ context, error }) => errors.push(`${context}: ${error.message}`));
    return client;
  };
  try {
    const token = await server.enrollmentToken();
    await Deno.writeTextFile(`${dir}/config.yaml`, toYaml(configDocument()));
    let client = track(
      new CentralManagementClient(fastOptions(server, dir, { enrollmentToken: token, nodeName: "agent-1" })),
    );
    let nodeId = "";
    /** A client of its own (its own directory, no config.yaml sent) through `viaFetch`, registered. */
    const registeredAgent = async (nodeName: string, viaFetch: typeof fetch) => {
      const agentDir = await Deno.makeTempDir({ prefix: `central-${nodeName}-` });
      const agent = track(
        new CentralManagementClient(fastOptions(server, agentDir, {
          enrollmentToken: token,
          nodeName,
          fetch: viaFetch,
          sendConfigAtRegistration: false,
        })),
      );
      await agent.start();
      await agent.whenRegistered();
      return { agent, agentDir };
    };

    await t.step(
      "registers, keeps its state file (0600), brings config.yaml as version 1, in sync",
      async () => {
        const registered: boolean[] = [];
        client.on("registered", (event) => registered.push(event.created));
        await client.start();
        await client.whenRegistered();
        nodeId = client.nodeId!;
        assert.deepEqual(registered, [true]);
        const state = JSON.parse(await Deno.readTextFile(`${dir}/config.yaml.central-state.json`));
        assert.equal(state.node_id, nodeId);
        assert.match(state.node_token, /^acn_/);
        assert.equal((await Deno.stat(`${dir}/config.yaml.central-state.json`)).mode! & 0o777, 0o600);
        const versions = await server.ctx.deps.db.select().from(configVersions).where(
          eq(configVersions.nodeId, nodeId),
        );
        assert.equal(versions.length, 1);
        assert.equal(versions[0].source, "agent");
        assert.deepEqual(versions[0].body, configDocument());
        // The agent's own file is kept as its text: what the console shows and what a rollback restores.
        assert.equal(versions[0].yamlText, await Deno.readTextFile(`${dir}/config.yaml`));
        const row = await eventually("config in sync", async () => {
          const node = await nodeRow(server, "agent-1");
          return node.configState === "in_sync" ? node : undefined;
        });
        assert.equal(row.appliedHash, versions[0].hash);
        assert.equal(client.appliedConfigHash, versions[0].hash);
      },
    );

    await t.step("heartbeats reach the server with status, agent version and pool counts", async () => {
      client.sendMetrics({ instancePoolId: POOL_A, cpuUtil: 40, memoryUtil: 30, instanceCount: 3 });
      const node = await eventually("a heartbeat with pool counts", async () => {
        const row = await nodeRow(server, "agent-1");
        return row.lastHeartbeatAt && client.stats.heartbeats >= 2 ? row : undefined;
      });
      await eventually("the sample sent", () => client.stats.sent === 1);
      assert.equal(node.reportedStatus, "ok");
      assert.equal(node.agentVersion, "test-1.0");
      assert.ok(node.lastHeartbeatAt!.getTime() > Date.now() - 60_000);
      // Version 1 came from this very file: it is not delivered back and rewritten.
      assert.equal(client.stats.configsApplied, 0);
      assert.equal(await Deno.readTextFile(`${dir}/config.yaml`), toYaml(configDocument()));
    });

    await t.step("metrics arrive exactly once, scaling events recorded", async () => {
      const before = await sampleCount(server, nodeId);
      for (let i = 0; i < 250; i++) {
        const ts = new Date(Date.now() - 10_000 + i);
        client.sendMetrics({
          instancePoolId: i % 2 === 0 ? POOL_A : POOL_B,
          cpuUtil: i % 100,
          memoryUtil: 50,
          instanceCount: 3,
          ts,
          ...(i === 10
            ? { scalingEvent: true, scalingDirection: "UP" as const, fromCount: 2, toCount: 3 }
            : {}),
        });
      }
      await eventually(
        "250 more samples stored",
        async () => (await sampleCount(server, nodeId)) === before + 250,
      );
      await eventually("client buffer empty", () => client.stats.buffered === 0);
      assert.equal(await sampleCount(server, nodeId), before + 250);
      assert.equal(client.stats.duplicates, 0);
      const events = await server.ctx.deps.db.select().from(scalingEvents).where(
        eq(scalingEvents.nodeId, nodeId),
      );
      assert.equal(events.length, 1);
      assert.equal(events[0].direction, "UP");
      assert.equal(events[0].fromCount, 2);
      assert.equal(events[0].toCount, 3);
    });

    await t.step(
      "a new config is written atomically (previous kept as .bak), callback run, acked in_sync",
      async () => {
        const seen: number[] = [];
        client.on("config", (event) => seen.push(event.version));
        const previous = await Deno.readTextFile(`${dir}/config.yaml`);
        const set = await server.setConfig(nodeId, configDocument(80));
        await eventually(
          "config.yaml rewritten",
          async () => (await Deno.readTextFile(`${dir}/config.yaml`)).includes("max: 80"),
        );
        assert.equal(await Deno.readTextFile(`${dir}/config.yaml.bak`), previous);
        const node = await eventually("in_sync on the new hash", async () => {
          const row = await nodeRow(server, "agent-1");
          return row.configState === "in_sync" && row.appliedHash === set.hash ? row : undefined;
        });
        assert.equal(node.appliedHash, set.hash);
        assert.deepEqual(seen, [set.version]);
        // The written YAML is the document: quoted where YAML would misread it ("05:30").
        const text = await Deno.readTextFile(`${dir}/config.yaml`);
        assert.match(text, /start_time: "05:30"/);
        assert.match(text, /instance_pool_id: ocid1\.instancepool\.oc1\.iad\.aaaaclienttesta/);
        const leftovers = [...Deno.readDirSync(dir)].filter((entry) => entry.name.endsWith(".tmp"));
        assert.deepEqual(leftovers, []);
      },
    );

    await t.step(
      "the operator's YAML lands in config.yaml byte for byte, a comment-only edit too; sha256 is the hash",
      async () => {
        const written = `# web tier: raised after the March incident
pools:
  - instance_pool_id: ${POOL_A}   # the main pool
    compartment_id: ocid1.compartment.oc1..aaaaclienttest
    region: us-ashburn-1
    cpu_threshold: {min: 30, max: 81}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
`;
        for (const text of [written, written.replace("March", "April")]) {
          const set = await server.setConfig(nodeId, text);
          await eventually("in_sync on the operator's text", async () => {
            const row = await nodeRow(server, "agent-1");
            return row.configState === "in_sync" && row.appliedHash === set.hash;
          });
          const onDisk = await Deno.readFile(`${dir}/config.yaml`);
          assert.equal(new TextDecoder().decode(onDisk), text);
          const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", onDisk));
          assert.equal(Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""), set.hash);
        }
      },
    );

    await t.step("an older server that sends only the body: the client renders it itself", async () => {
      const legacyDir = `${dir}/legacy`;
      await Deno.mkdir(legacyDir);
      // Stands in for a server from before the yaml field: the real answer without it.
      const withoutYaml: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        if (!String(input).includes("/config?") || response.status !== 200) return response;
        const { yaml: _dropped, ...answer } = await response.json();
        return new Response(JSON.stringify(answer), { status: 200, headers: response.headers });
      };
      const legacy = track(
        new CentralManagementClient(fastOptions(server, legacyDir, {
          enrollmentToken: token,
          nodeName: "agent-legacy",
          fetch: withoutYaml,
        })),
      );
      await legacy.start();
      await legacy.whenRegistered();
      const set = await server.setConfig(
        legacy.nodeId!,
        "# this comment cannot survive\n" + toYaml(configDocument(66)),
      );
      await eventually(
        "legacy in sync",
        async () => (await nodeRow(server, "agent-legacy")).appliedHash === set.hash,
      );
      const text = await Deno.readTextFile(`${legacyDir}/config.yaml`);
      assert.match(text, /^# Managed by Autoscaler Central: version 1, hash /);
      assert.doesNotMatch(text, /cannot survive/);
      assert.deepEqual(parseYaml(text), configDocument(66));
      await legacy.stop();
    });

    await t.step(
      "restart: same node id from the state file, no enrollment use, nothing re-registered",
      async () => {
        const usesBefore = await tokenUses(server);
        await client.stop();
        client = track(
          new CentralManagementClient(
            fastOptions(server, dir, { enrollmentToken: token, nodeName: "agent-1" }),
          ),
        );
        const registered: unknown[] = [];
        client.on("registered", (event) => registered.push(event));
        await client.start();
        assert.equal(client.nodeId, nodeId);
        client.sendMetrics({ instancePoolId: POOL_A, cpuUtil: 10, memoryUtil: 10, instanceCount: 1 });
        await eventually("sample after restart", () => client.stats.sent === 1);
        await eventually("heartbeat after restart", () => client.stats.heartbeats >= 1);
        assert.deepEqual(registered, []);
        assert.equal(await tokenUses(server), usesBefore);
        const row = await nodeRow(server, "agent-1");
        assert.equal(row.configState, "in_sync");
      },
    );

    await t.step("onConfig throwing acks failed with its message; the file write happened", async () => {
      await client.stop();
      client = track(
        new CentralManagementClient(fastOptions(server, dir, {
          enrollmentToken: token,
          nodeName: "agent-1",
          onConfig: (config) => {
            if ((config.body.pools as { cpu_threshold: { max: number } }[])[0].cpu_threshold.max === 90) {
              throw new Error("refusing max 90 in this test");
            }
          },
        })),
      );
      await client.start();
      const set = await server.setConfig(nodeId, configDocument(90));
      const node = await eventually("config failed", async () => {
        const row = await nodeRow(server, "agent-1");
        return row.configState === "failed" ? row : undefined;
      });
      assert.equal(node.configError, "refusing max 90 in this test");
      assert.notEqual(node.appliedHash, set.hash);
      assert.ok(errors.some((e) => e.includes("refusing max 90")));
      // The next good config is applied again.
      const good = await server.setConfig(nodeId, configDocument(70));
      await eventually("in sync again", async () => {
        const row = await nodeRow(server, "agent-1");
        return row.configState === "in_sync" && row.appliedHash === good.hash;
      });
    });

    await t.step("a new node whose first pushed config fails stays failed across heartbeats", async () => {
      const dir2 = `${dir}/second`;
      await Deno.mkdir(dir2);
      await Deno.writeTextFile(`${dir2}/config.yaml`, toYaml(configDocument()));
      const second = track(
        new CentralManagementClient(fastOptions(server, dir2, {
          enrollmentToken: token,
          nodeName: "agent-2",
          onConfig: () => {
            throw new Error("this agent refuses every pushed config");
          },
        })),
      );
      await second.start();
      await second.whenRegistered();
      await eventually(
        "agent-2 in sync on version 1",
        async () => (await nodeRow(server, "agent-2")).configState === "in_sync",
      );
      await server.setConfig(second.nodeId!, configDocument(60));
      await eventually(
        "agent-2 failed",
        async () => (await nodeRow(server, "agent-2")).configState === "failed",
      );
      const beats = second.stats.heartbeats;
      await eventually("three more heartbeats", () => second.stats.heartbeats >= beats + 3);
      const row = await nodeRow(server, "agent-2");
      assert.equal(row.configState, "failed");
      assert.equal(row.configError, "this agent refuses every pushed config");
      await second.stop();
    });

    await t.step("server down for a while, then back: every sample arrives once", async () => {
      const before = await sampleCount(server, nodeId);
      server.outage();
      for (let i = 0; i < 300; i++) {
        client.sendMetrics({
          instancePoolId: POOL_A,
          cpuUtil: 50,
          memoryUtil: 50,
          instanceCount: 2,
          ts: new Date(Date.now() - 20_000 + i),
        });
        if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await eventually("send failures seen", () => errors.some((e) => e.startsWith("metrics")));
      assert.equal(await sampleCount(server, nodeId), before);
      assert.equal(client.stats.buffered, 300);
      await server.recover();
      await eventually("all 300 stored", async () => (await sampleCount(server, nodeId)) === before + 300);
      await eventually("buffer drained", () => client.stats.buffered === 0);
      assert.equal(client.droppedSamples, 0);
    });

    await t.step(
      "a second agent with the same name: 409 logged, backs off, never takes the node over",
      async () => {
        const ownerHash = (await nodeRow(server, "agent-1")).tokenHash;
        const otherDir = await Deno.makeTempDir({ prefix: "central-client-twin-" });
        const twinErrors: string[] = [];
        const twin = new CentralManagementClient(
          fastOptions(server, otherDir, {
            enrollmentToken: token,
            nodeName: "agent-1",
            nameTakenRetryMs: 400,
            sendConfigAtRegistration: false,
          }),
        );
        clients.push(twin);
        twin.on("error", ({ context, error }) => twinErrors.push(`${context}: ${error.message}`));
        await twin.start();
        await eventually("twin refused", () => twin.stats.nameTaken >= 1);
        assert.ok(
          twinErrors.some((e) => /node_name_taken/.test(e) && /re-enrollment token/.test(e)),
          twinErrors.join("\n"),
        );
        const heartbeatsBefore = client.stats.heartbeats;
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        assert.ok(twin.stats.nameTaken <= 4, `retried ${twin.stats.nameTaken} times in ~1.4 s`);
        assert.equal(twin.nodeId, undefined);
        assert.equal((await nodeRow(server, "agent-1")).tokenHash, ownerHash, "owner's token untouched");
        assert.ok(client.stats.heartbeats > heartbeatsBefore, "the owner keeps heartbeating");
        await twin.stop({ deadlineMs: 500 });
        await Deno.remove(otherDir, { recursive: true });
      },
    );

    await t.step(
      "node token refused: 409 logged, then an operator's re-enrollment token brings it back",
      async () => {
        const usesBefore = await tokenUses(server);
        const oldState = JSON.parse(await Deno.readTextFile(`${dir}/config.yaml.central-state.json`));
        await server.ctx.deps.db.update(nodes).set({ tokenHash: "0".repeat(64) }).where(eq(nodes.id, nodeId));
        await recordNodeAuthChange(server.ctx.deps.db, nodeId, new Date()); // as the service's token changes do
        server.ctx.services.nodeAuth.forget(nodeId);
        const reenrolled = new Promise((resolve) => client.on("registered", resolve));
        const before = await sampleCount(server, nodeId);
        client.sendMetrics({ instancePoolId: POOL_A, cpuUtil: 20, memoryUtil: 20, instanceCount: 2 });
        await eventually("name clash reported", () => client.stats.nameTaken >= 1);
        assert.ok(errors.some((e) => /HTTP 401/.test(e)));
        assert.ok(errors.some((e) => /HTTP 409: node_name_taken/.test(e)), errors.join("\n"));
        const { token: reenrollment } = await createReenrollmentToken(server.ctx.deps, {
          principal: { kind: "system", name: "test" },
        }, { node: "agent-1" });
        client.setEnrollmentToken(reenrollment);
        const event = await reenrolled as { nodeId: string; created: boolean; reason: string };
        assert.equal(event.nodeId, nodeId);
        assert.equal(event.created, false);
        assert.equal(event.reason, "reenroll");
        await eventually(
          "sample after re-enrollment",
          async () => (await sampleCount(server, nodeId)) === before + 1,
        );
        const state = JSON.parse(await Deno.readTextFile(`${dir}/config.yaml.central-state.json`));
        assert.equal(state.node_id, nodeId);
        assert.notEqual(state.node_token, oldState.node_token);
        assert.equal(await tokenUses(server), usesBefore + 1, "only the re-enrollment token's one use");
      },
    );

    await t.step(
      "a batch answered 400 (body unreadable) or 503 shutting_down is sent again, never dropped",
      async () => {
        const answers = [
          { status: 400, error: { code: "bad_request", message: "Malformed JSON in request body" } },
          { status: 503, error: { code: "shutting_down", message: "this replica is shutting down" } },
        ];
        const faultyFetch: typeof fetch = (input, init) => {
          if (String(input).endsWith("/metrics") && answers.length > 0) {
            const { status, error } = answers.shift()!;
            return Promise.resolve(
              new Response(JSON.stringify({ error }), {
                status,
                headers: { "content-type": "application/json", connection: "close" },
              }),
            );
          }
          return fetch(input, init);
        };
        const { agent: flaky, agentDir: flakyDir } = await registeredAgent("agent-400", faultyFetch);
        flaky.sendMetrics({ instancePoolId: POOL_A, cpuUtil: 7, memoryUtil: 7, instanceCount: 1 });
        await eventually(
          "stored after two refusals",
          async () => (await sampleCount(server, flaky.nodeId!)) === 1,
        );
        assert.equal(answers.length, 0, "both refusals were met");
        assert.equal(flaky.droppedSamples, 0);
        await flaky.stop({ deadlineMs: 1000 });
        await Deno.remove(flakyDir, { recursive: true });
      },
    );

    await t.step("a registration whose answer is lost: the retry gets the node back, not 409", async () => {
      let lost = 0;
      // The server registers the node, then the connection drops before the agent reads the answer.
      const losingFetch: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        if (String(input).endsWith("/register") && lost === 0) {
          lost++;
          await response.body?.cancel();
          throw new TypeError("connection reset by peer");
        }
        return response;
      };
      const { agent, agentDir: lostDir } = await registeredAgent("agent-lost-answer", losingFetch);
      assert.equal(lost, 1, "the first answer was lost");
      const row = await nodeRow(server, "agent-lost-answer");
      assert.equal(agent.nodeId, row.id, "the node the lost answer was about");
      await eventually(
        "heartbeats with the new token",
        async () => (await nodeRow(server, "agent-lost-answer")).lastHeartbeatAt !== null,
      );
      await agent.stop({ deadlineMs: 1000 });
      await Deno.remove(lostDir, { recursive: true });
    });

    await t.step(
      "a sample the server refuses (422) is dropped and counted; the rest of its batch arrives",
      async () => {
        const before = await sampleCount(server, nodeId);
        const droppedBefore = client.droppedSamples;
        const dropped: unknown[] = [];
        client.on("dropped", (event) => dropped.push(event));
        client.sendMetrics({
          instancePoolId: POOL_B,
          cpuUtil: 1,
          memoryUtil: 1,
          instanceCount: 1,
          ts: new Date(Date.now() - 1000),
        });
        client.sendMetrics({
          instancePoolId: POOL_B,
          cpuUtil: 1,
          memoryUtil: 1,
          instanceCount: 1,
          ts: new Date(Date.now() + 3_600_000), // an hour ahead: refused
        });
        client.sendMetrics({
          instancePoolId: POOL_B,
          cpuUtil: 2,
          memoryUtil: 2,
          instanceCount: 1,
          ts: new Date(Date.now() - 999),
        });
        await eventually("two stored", async () => (await sampleCount(server, nodeId)) === before + 2);
        await eventually("buffer drained", () => client.stats.buffered === 0);
        assert.equal(client.droppedSamples, droppedBefore + 1);
        assert.deepEqual(dropped, [{ count: 1, reason: "rejected", total: droppedBefore + 1 }]);
        assert.ok(errors.some((e) => e.includes("samples.1.ts")));
      },
    );

    await t.step(
      "samples in the same millisecond for one pool are not collapsed into duplicates",
      async () => {
        const before = await sampleCount(server, nodeId);
        for (let i = 0; i < 20; i++) {
          client.sendMetrics({ instancePoolId: POOL_A, cpuUtil: i, memoryUtil: 1, instanceCount: 1 });
        }
        await eventually("20 stored", async () => (await sampleCount(server, nodeId)) === before + 20);
        await eventually("buffer drained", () => client.stats.buffered === 0);
        assert.equal(client.stats.duplicates, 0);
      },
    );

    await t.step("bad arguments throw at the call, naming the field", () => {
      const bad: [Record<string, unknown>, RegExp, ErrorConstructor][] = [
        [{ cpuUtil: 150 }, /cpuUtil must be within 0\.\.100/, RangeError],
        [{ memoryUtil: -1 }, /memoryUtil/, RangeError],
        [{ cpuUtil: "high" }, /cpuUtil must be a number/, TypeError],
        [{ instanceCount: -1 }, /instanceCount must be at least 0/, RangeError],
        [{ instanceCount: 1.5 }, /instanceCount must be a whole number/, TypeError],
        [{ scalingDirection: "UP" }, /scalingDirection is only allowed with scalingEvent/, TypeError],
        [{ scalingEvent: true }, /scalingDirection .* is required/, TypeError],
        [
          { scalingEvent: true, scalingDirection: "SIDEWAYS" },
          /scalingDirection must be "UP" or "DOWN"/,
          RangeError,
        ],
        [{ instancePoolId: "" }, /instancePoolId/, TypeError],
        [{ ts: "yesterday" }, /ts must be a valid date/, TypeError],
      ];
      const buffered = client.stats.buffered;
      for (const [override, message, kind] of bad) {
        const sample = { instancePoolId: POOL_A, cpuUtil: 10, memoryUtil: 10, instanceCount: 1, ...override };
        assert.throws(() => client.sendMetrics(sample as never), (error: Error) => {
          assert.ok(error instanceof kind, `${JSON.stringify(override)}: ${error.name}`);
          assert.match(error.message, message);
          return true;
        });
      }
      assert.equal(client.stats.buffered, buffered); // nothing queued
      assert.throws(
        () => new CentralManagementClient({ centralApiUrl: "not a url", localConfigPath: "x" }),
        /centralApiUrl/,
      );
      assert.throws(
        () =>
          new CentralManagementClient({
            centralApiUrl: server.apiUrl,
            localConfigPath: "x",
            nodeName: "bad name!",
          }),
        /nodeName/,
      );
      assert.throws(
        () =>
          new CentralManagementClient({ centralApiUrl: server.apiUrl, localConfigPath: "x", batchSize: 0 }),
        /batchSize must be at least 1/,
      );
    });

    await t.step(
      "full buffer during an outage: the oldest are dropped and counted, the newest arrive",
      async () => {
        await client.stop();
        const small = track(
          new CentralManagementClient(fastOptions(server, dir, {
            enrollmentToken: token,
            nodeName: "agent-1",
            bufferSize: 50,
            batchSize: 20,
          })),
        );
        await small.start();
        const before = await sampleCount(server, nodeId);
        server.outage();
        const base = Date.now() - 30_000;
        for (let i = 0; i < 80; i++) {
          small.sendMetrics({
            instancePoolId: POOL_B,
            cpuUtil: 5,
            memoryUtil: 5,
            instanceCount: 1,
            ts: new Date(base + i),
          });
        }
        assert.equal(small.droppedSamples, 30);
        assert.equal(small.stats.droppedOverflow, 30);
        assert.equal(small.stats.buffered, 50);
        await server.recover();
        await eventually("50 newest stored", async () => (await sampleCount(server, nodeId)) === before + 50);
        const [oldest] = await server.ctx.deps.db.select({ ts: metricSamples.ts }).from(metricSamples)
          .where(and(eq(metricSamples.nodeId, nodeId), eq(metricSamples.ts, new Date(base + 30))));
        assert.ok(oldest, "sample 30 (the oldest kept) is stored");
        await small.stop();
      },
    );

    await t.step("stop() flushes what is buffered within its deadline", async () => {
      const last = track(
        new CentralManagementClient(fastOptions(server, dir, {
          enrollmentToken: token,
          nodeName: "agent-1",
          flushIntervalMs: 60_000, // only stop() sends
        })),
      );
      await last.start();
      const before = await sampleCount(server, nodeId);
      for (let i = 0; i < 10; i++) {
        last.sendMetrics({
          instancePoolId: POOL_A,
          cpuUtil: 5,
          memoryUtil: 5,
          instanceCount: 1,
          ts: new Date(Date.now() - 5_000 + i),
        });
      }
      const stats = await last.stop({ deadlineMs: 3_000 });
      assert.equal(stats.buffered, 0);
      assert.equal(await sampleCount(server, nodeId), before + 10);
      // After stop, samples are counted as dropped rather than queued forever.
      last.sendMetrics({ instancePoolId: POOL_A, cpuUtil: 5, memoryUtil: 5, instanceCount: 1 });
      assert.equal(last.stats.droppedAfterStop, 1);
    });

    await t.step(
      "stop() with the server unreachable returns at its deadline, keeping the count",
      async () => {
        const stuck = track(
          new CentralManagementClient(
            fastOptions(server, dir, { enrollmentToken: token, nodeName: "agent-1" }),
          ),
        );
        await stuck.start();
        server.outage();
        stuck.sendMetrics({ instancePoolId: POOL_A, cpuUtil: 5, memoryUtil: 5, instanceCount: 1 });
        const began = performance.now();
        const stats = await stuck.stop({ deadlineMs: 500 });
        assert.ok(performance.now() - began < 5_000);
        assert.equal(stats.buffered, 1);
        await server.recover();
      },
    );
  } finally {
    for (const client of clients) await client.stop({ deadlineMs: 200 });
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client: the YAML it writes reads back as the same document", () => {
  const documents: Record<string, unknown>[] = [
    configDocument(),
    {
      pools: [{
        instance_pool_id: POOL_A,
        prometheus_url: "http://prom:9090",
        note: "line1\nline2 # not a comment",
      }],
      odd_keys: {
        "has space": 1,
        "05:30": "yes",
        "": "empty key",
        "-dash": -1.25,
        "null": null,
        "true": false,
      },
      unicode: "Zürich ✓",
      numbers_as_text: ["1", "1e3", "0x1F", "010", ".5", "+1", "1_000"],
      nested: [[["deep"]], [], {}],
    },
  ];
  for (const document of documents) assert.deepEqual(parseYaml(toYaml(document, ["a comment"])), document);
});

Deno.test("client: API URL normalization and the YAML it writes", () => {
  assert.equal(normalizeApiUrl("http://central:8000/api"), "http://central:8000/api/v1");
  assert.equal(normalizeApiUrl("http://central:8000/api/"), "http://central:8000/api/v1");
  assert.equal(normalizeApiUrl("http://central:8000/api/v1/"), "http://central:8000/api/v1");
  assert.equal(
    normalizeApiUrl("https://central.example/prefix/api"),
    "https://central.example/prefix/api/v1",
  );
  assert.equal(normalizeApiUrl("http://central:8000"), "http://central:8000/api/v1");
  assert.throws(() => normalizeApiUrl("ftp://x/api"), /centralApiUrl/);
  // The same document and expected text as client/python/test_client.py reads: both clients write it alike.
  const fixture = JSON.parse(
    Deno.readTextFileSync(new URL("../client/testdata/yaml_writer.json", import.meta.url)),
  ) as { document: Record<string, unknown>; text: string[] };
  assert.equal(toYaml(fixture.document), fixture.text.join("\n"));
});

function hasNode(): boolean {
  try {
    return new Deno.Command("node", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "client: the same code bundled to JavaScript runs on Node against the service",
  ignore: !hasNode(),
  fn: async () => {
    const server = await startTestServer("client_node");
    const dir = await Deno.makeTempDir({ prefix: "central-client-node-" });
    try {
      const bundle = await new Deno.Command(Deno.execPath(), {
        args: [
          "bundle",
          "--platform=browser",
          "--external",
          "node:*",
          "-o",
          `${dir}/client.js`,
          "client/mod.ts",
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(bundle.success, new TextDecoder().decode(bundle.stderr));
      await Deno.writeTextFile(`${dir}/config.yaml`, toYaml(configDocument(75, POOL_B)));
      await Deno.writeTextFile(
        `${dir}/agent.mjs`,
        `import { CentralManagementClient } from "./client.js";
const client = new CentralManagementClient({
  centralApiUrl: process.argv[2],
  localConfigPath: ${JSON.stringify(`${dir}/config.yaml`)},
  nodeName: "node-runtime-agent",
  flushIntervalMs: 50,
});
await client.start();
await client.whenRegistered();
for (let i = 0; i < 5; i++) {
  client.sendMetrics({ instancePoolId: ${
          JSON.stringify(POOL_B)
        }, cpuUtil: 10 * i, memoryUtil: 20, instanceCount: 2 });
}
const stats = await client.stop();
console.log(JSON.stringify({ nodeId: client.nodeId, sent: stats.sent, buffered: stats.buffered }));
`,
      );
      const run = await new Deno.Command("node", {
        args: [`${dir}/agent.mjs`, `${server.apiUrl}/`],
        env: { CENTRAL_ENROLLMENT_TOKEN: await server.enrollmentToken() }, // the token from the environment
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(run.stdout);
      assert.ok(run.success, new TextDecoder().decode(run.stderr));
      const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
      assert.deepEqual({ sent: result.sent, buffered: result.buffered }, { sent: 5, buffered: 0 });
      const row = await nodeRow(server, "node-runtime-agent");
      assert.equal(row.id, result.nodeId);
      assert.equal(await sampleCount(server, row.id), 5);
      const state = JSON.parse(await Deno.readTextFile(`${dir}/config.yaml.central-state.json`));
      assert.equal(state.node_id, row.id);
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
