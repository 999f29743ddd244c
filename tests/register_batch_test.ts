// Registrations group-committed (core/registrations.ts): many new nodes in one transaction, each answered as
// if it had registered alone; anything that is not a plain new node, and every registration of a batch that
// failed, registered one at a time after it.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import type { Principal } from "../core/principal.ts";
import { keyedHash } from "../core/secrets.ts";
import { writeRegistrationBatch } from "../db/agents.ts";
import { createPool } from "../db/client.ts";
import { createTestApp, json, type TestApp } from "./helpers/app.ts";
import { countIn, type ErrorBody } from "./helpers/assertions.ts";
import { enrollmentTokenUses } from "./helpers/fixtures.ts";
import { testConfig } from "./helpers/configs.ts";

const ADMIN: Principal = { kind: "system", name: "test" };
const pool = (i: number) => `ocid1.instancepool.oc1.iad.aaaaaaaabatch${String(i).padStart(4, "0")}`;

interface Registered {
  node_id: string;
  node_token: string;
  heartbeat_interval_s: number;
  config: { version: number; hash: string; body: Record<string, unknown> } | null;
}

const agent = (name: string, i: number, extra: Record<string, unknown> = {}) => ({
  name,
  hostname: `${name}.internal`,
  address: "10.0.0.1",
  agent_version: "2.0.0",
  labels: { fleet: "batch" },
  pools: [{ instance_pool_id: pool(i), current_size: 2, min_size: 1, max_size: 10 }],
  config: testConfig(pool(i)),
  ...extra,
});

/** What a node's registration wrote, without what differs by nature (ids, tokens, times). */
async function written(ctx: TestApp, nodeId: string) {
  const q = async (sql: string) =>
    ((await ctx.database.pool.query(sql, [nodeId]))[0] as Record<string, unknown>[]).map((row) => ({
      ...row,
    }));
  const [node] = await q("SELECT * FROM nodes WHERE id = ?");
  const versions = await q("SELECT * FROM config_versions WHERE node_id = ?");
  const pools = await q("SELECT * FROM instance_pools WHERE node_id = ?");
  // A registration's entries are the node's own: its config, the enrollment token's use, node.register.
  const audit = await q("SELECT * FROM audit_log WHERE actor_id = ? ORDER BY id");
  assert.equal(node.desired_version_id, versions[0]?.id ?? null, "the node's desired version is its own");
  const strip = (row: Record<string, unknown>, keys: string[]) =>
    Object.fromEntries(Object.entries(row).filter(([key]) => !keys.includes(key)));
  return {
    node: strip(node, [
      "id",
      "name",
      "hostname",
      "token_hash",
      "token_issued_at",
      "registered_at",
      "desired_version_id",
      "desired_hash",
      "desired_changed_at",
      "created_at",
      "updated_at",
    ]),
    versions: versions.map((v) => strip(v, ["id", "node_id", "author", "created_at"])),
    pools: pools.map((p) => strip(p, ["id", "node_id", "pool_ocid", "created_at", "updated_at"])),
    audit: audit.map((a) => {
      const details = JSON.parse(String(a.details));
      for (const key of ["name", "hostname", "node", "hash", "uses", "enrollment_token_id"]) {
        delete details[key];
      }
      return { ...strip(a, ["id", "at", "actor_id", "actor_name", "target_id", "details"]), details };
    }),
  };
}

Deno.test("register in batches", async (t) => {
  const ctx = await createTestApp("register_batch", { env: { MAX_POOLS_PER_NODE: "3" } });
  const count = (table: string, where?: string, params?: unknown[]) => countIn(ctx, table, where, params);
  const usesOf = (id: number) => enrollmentTokenUses(ctx, id);
  const { token: fleet, view: fleetView } = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
    name: "fleet",
  });
  const register = (app: TestApp, body: Record<string, unknown>, token = fleet) =>
    app.call("POST", "/api/v1/register", { json: { enrollment_token: token, ...body } });

  try {
    await t.step(
      "16 at once: all 201, fewer transactions than registrations, each its own answer",
      async () => {
        const before = ctx.services.registrations.stats();
        const names = Array.from({ length: 16 }, (_, i) => `batch-${i}`);
        const responses = await Promise.all(names.map((name, i) => register(ctx, agent(name, i))));
        assert.deepEqual(responses.map((r) => r.status), names.map(() => 201));
        const bodies = await Promise.all(responses.map((r) => json<Registered>(r)));
        const after = ctx.services.registrations.stats();
        assert.equal(after.batched - before.batched, 16);
        assert.ok(after.batches - before.batches < 16, "registrations shared transactions");
        assert.ok(after.largest_batch > 1);
        assert.equal(new Set(bodies.map((b) => b.node_id)).size, 16);
        for (const [i, body] of bodies.entries()) {
          assert.deepEqual(Object.keys(body).sort(), [
            "config",
            "heartbeat_interval_s",
            "node_id",
            "node_token",
          ]);
          assert.equal(body.heartbeat_interval_s, 30);
          assert.equal(body.config?.version, 1);
          assert.deepEqual(body.config?.body, testConfig(pool(i)));
          const [rows] = await ctx.database.pool.query(
            "SELECT n.name, n.token_hash, n.desired_hash, v.hash FROM nodes n JOIN config_versions v ON v.id = n.desired_version_id WHERE n.id = ?",
            [body.node_id],
          );
          const row = (rows as Record<string, string>[])[0];
          assert.equal(row.name, names[i]);
          assert.equal(row.token_hash, await keyedHash(ctx.deps.settings.SECRET_KEY, body.node_token));
          assert.equal(row.desired_hash, body.config?.hash);
          assert.equal(row.hash, body.config?.hash);
          // The token it got works, and the config it pulls is the one it brought.
          const hb = await ctx.call("POST", `/api/v1/nodes/${body.node_id}/heartbeat`, {
            token: body.node_token,
            json: { status: "ok" },
          });
          assert.equal(hb.status, 200);
          assert.equal(
            (await json<{ desired_config_hash: string }>(hb)).desired_config_hash,
            body.config?.hash,
          );
        }
        assert.equal(await usesOf(fleetView.id), 16);
        // One use audited per registration, each with the count that use left, as one at a time would.
        const [uses] = await ctx.database.pool.query(
          "SELECT details FROM audit_log WHERE action = 'enrollment_token.use' ORDER BY id",
        );
        assert.deepEqual(
          (uses as { details: string }[]).map((row) => JSON.parse(row.details).uses),
          Array.from({ length: 16 }, (_, i) => i + 1),
        );
        assert.equal(await count("audit_log", "action = 'node.register'"), 16);
        assert.equal(await count("audit_log", "action = 'config.create'"), 16);
      },
    );

    await t.step("what a batch writes is what a registration on its own writes", async () => {
      const services = ctx.services as { registrations?: unknown };
      const batcher = services.registrations;
      let alone: Registered;
      try {
        services.registrations = undefined; // one transaction per registration, as before batches
        const res = await register(ctx, agent("alone-1", 900));
        assert.equal(res.status, 201);
        alone = await json<Registered>(res);
      } finally {
        services.registrations = batcher;
      }
      const [res] = await Promise.all([
        register(ctx, agent("batched-1", 900)),
        register(ctx, agent("batched-2", 901)),
      ]);
      assert.equal(res.status, 201);
      const batched = await json<Registered>(res);
      assert.deepEqual(await written(ctx, batched.node_id), await written(ctx, alone.node_id));
      // Without a config, too.
      const bare = { config: undefined, pools: undefined, labels: undefined, address: undefined };
      const [noConfig] = await Promise.all([
        register(ctx, agent("bare-batched", 902, bare)),
        register(ctx, agent("bare-other", 903, bare)),
      ]);
      const noConfigBody = await json<Registered>(noConfig);
      assert.equal(noConfigBody.config, null);
      services.registrations = undefined;
      const aloneBare = await json<Registered>(await register(ctx, agent("bare-alone", 904, bare)));
      services.registrations = batcher;
      assert.deepEqual(await written(ctx, noConfigBody.node_id), await written(ctx, aloneBare.node_id));
    });

    await t.step(
      "one batch with a repeated name and bad registrations: each answered as if alone",
      async () => {
        const nodesBefore = await count("nodes");
        const usesBefore = await usesOf(fleetView.id);
        const responses = await Promise.all([
          register(ctx, agent("twice", 10)),
          register(ctx, agent("twice", 11)),
          register(ctx, agent("fine-1", 12)),
          // Beyond MAX_POOLS_PER_NODE (3): 422 naming the pool, nothing written.
          register(
            ctx,
            agent("too-many-pools", 13, { pools: [1, 2, 3, 4].map((p) => ({ instance_pool_id: pool(p) })) }),
          ),
          // A name that exists: 409.
          register(ctx, agent("batch-0", 14)),
          register(ctx, agent("fine-2", 15)),
          register(ctx, agent("Twice", 16)), // the name column ignores case
        ]);
        const statuses = responses.map((r) => r.status);
        // "twice", "twice" and "Twice": whichever came first is registered, the others are 409.
        assert.deepEqual([statuses[0], statuses[1], statuses[6]].sort(), [201, 409, 409]);
        assert.deepEqual(statuses.slice(2, 6), [201, 422, 409, 201]);
        const errors = await Promise.all(
          responses.filter((r) => r.status >= 400).map((r) => json<ErrorBody>(r)),
        );
        assert.deepEqual(errors.map((e) => e.error.code).sort(), [
          "node_name_taken",
          "node_name_taken",
          "node_name_taken",
          "validation_failed",
        ]);
        const tooMany = errors.find((e) => e.error.code === "validation_failed")!;
        assert.equal(tooMany.error.details?.[0]?.field, "pools.3.instance_pool_id");
        for (const res of responses.filter((r) => r.status === 201)) await res.body?.cancel();
        assert.equal(await count("nodes"), nodesBefore + 3);
        assert.equal(await usesOf(fleetView.id), usesBefore + 3);
        assert.equal(await count("nodes", "name = 'twice'"), 1);
        assert.equal(
          await count("audit_log", "action = 'node.register' AND JSON_VALUE(details, '$.name') = 'twice'"),
          1,
        );
      },
    );

    await t.step("a token with one use left admits exactly one of 16 at once", async () => {
      const once = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, { name: "last", max_uses: 2 });
      const first = await register(ctx, agent("last-0", 20), once.token);
      assert.equal(first.status, 201);
      await first.body?.cancel();
      const nodesBefore = await count("nodes");
      const responses = await Promise.all(
        Array.from({ length: 16 }, (_, i) => register(ctx, agent(`last-${i + 1}`, 21 + i), once.token)),
      );
      const statuses = responses.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses ${statuses}`);
      assert.equal(statuses.filter((s) => s === 401).length, 15);
      for (const res of responses) {
        if (res.status === 401) {
          assert.equal((await json<ErrorBody>(res)).error.code, "enrollment_token_exhausted");
        } else await res.body?.cancel();
      }
      assert.equal(await count("nodes"), nodesBefore + 1);
      assert.equal(await usesOf(once.view.id), 2);
    });

    await t.step("text with quotes, backslashes and semicolons is stored as sent", async () => {
      const hostname = `a'; DROP TABLE nodes; -- \\ "x" \\'`;
      const responses = await Promise.all([
        register(ctx, agent("quoted-1", 50, { hostname, agent_version: "v\\'1;" })),
        register(ctx, agent("quoted-2", 51, { hostname })),
      ]);
      assert.deepEqual(responses.map((r) => r.status), [201, 201]);
      for (const res of responses) await res.body?.cancel();
      const [rows] = await ctx.database.pool.query(
        "SELECT hostname, agent_version FROM nodes WHERE name IN ('quoted-1', 'quoted-2') ORDER BY name",
      );
      assert.deepEqual((rows as Record<string, unknown>[]).map((row) => ({ ...row })), [
        { hostname, agent_version: "v\\'1;" },
        { hostname, agent_version: "2.0.0" },
      ]);
    });

    await t.step(
      "a batch that fails writes nothing: the token's uses and the rows all rolled back",
      async () => {
        const writer = createPool(ctx.database.settings.database, 1, { multipleStatements: true });
        try {
          const two = await createEnrollmentToken(ctx.deps, { principal: ADMIN }, {
            name: "two",
            max_uses: 2,
          });
          const now = ctx.clock.now();
          const hash = await keyedHash(ctx.deps.settings.SECRET_KEY, two.token);
          const seen: { taken: string[]; uses: number[] }[] = [];
          // A plan that writes `name` whatever it read (count 0: writes nothing).
          const write = (name: string, count: number) =>
            writeRegistrationBatch(writer, [name], [hash], (state) => {
              seen.push({ taken: [...state.taken], uses: [...state.tokens.values()].map((row) => row.uses) });
              if (count === 0) return Promise.resolve(undefined);
              return Promise.resolve({
                writes: [{
                  node: {
                    id: crypto.randomUUID(),
                    name,
                    hostname: "h",
                    labels: {},
                    tokenHash: "0".repeat(64),
                    registeredAt: now,
                    createdAt: now,
                    updatedAt: now,
                  },
                  config: undefined,
                  pools: [],
                }],
                tokenUses: [{ id: two.view.id, count }],
                audits: [],
                now,
              });
            });
          const before = { nodes: await count("nodes"), audit: await count("audit_log") };
          assert.equal(await write("rolled-back-1", 0), false);
          // The uses are counted first, then the node: a name taken makes the whole of it roll back.
          await assert.rejects(
            write("batch-1", 1),
            (error: { code?: string }) => error.code === "ER_DUP_ENTRY",
          );
          assert.equal(await usesOf(two.view.id), 0);
          assert.deepEqual({ nodes: await count("nodes"), audit: await count("audit_log") }, before);
          assert.equal(await write("written-1", 2), true);
          assert.equal(await usesOf(two.view.id), 2);
          assert.equal(await count("nodes", "name = 'written-1'"), 1);
          assert.deepEqual(seen, [
            { taken: [], uses: [0] },
            { taken: ["batch-1"], uses: [0] },
            { taken: [], uses: [0] },
          ]);
        } finally {
          await writer.end();
        }
      },
    );

    await t.step(
      "two replicas registering the same names at once: one node each, one 201 and one 409",
      async () => {
        const second = await ctx.replica();
        const names = Array.from({ length: 8 }, (_, i) => `shared-${i}`);
        const responses = await Promise.all(
          names.flatMap((
            name,
            i,
          ) => [register(ctx, agent(name, 40 + i)), register(second, agent(name, 40 + i))]),
        );
        for (let i = 0; i < names.length; i++) {
          const pair = [responses[2 * i].status, responses[2 * i + 1].status].sort();
          assert.deepEqual(pair, [201, 409], `${names[i]}: ${pair}`);
        }
        for (const res of responses) await res.body?.cancel();
        assert.equal(await count("nodes", "name LIKE 'shared-%'"), 8);
        assert.equal(
          await count(
            "audit_log",
            "action = 'node.register' AND JSON_VALUE(details, '$.name') LIKE 'shared-%'",
          ),
          8,
        );
      },
    );
  } finally {
    await ctx.close();
  }
});
