import assert from "node:assert/strict";
import { createTestApp, json } from "./helpers/app.ts";
import { createApiKeyWithRole } from "./helpers/auth.ts";
import { auditEntries, countNodeRows, insertNode, newNodeToken, poolOcid } from "./helpers/fixtures.ts";
import type { ErrorBody } from "./helpers/assertions.ts";

type Version = {
  version: number;
  hash: string;
  body: Record<string, unknown>;
  source: string;
  author: string;
  comment: string | null;
  rolled_back_from: number | null;
  created_at: string;
  yaml: string;
};

function document(cpuMax: number) {
  return {
    pools: [{
      instance_pool_id: poolOcid("cfg1"),
      compartment_id: "ocid1.compartment.oc1..aaaa",
      region: "us-ashburn-1",
      cpu_threshold: { min: 30, max: cpuMax },
      ram_threshold: { min: 20, max: 75 },
      scaling_limits: { min: 1, max: 10 },
    }],
  };
}

const YAML_V2 = `pools:
  - instance_pool_id: ${poolOcid("cfg1")}
    compartment_id: ocid1.compartment.oc1..aaaa
    region: us-ashburn-1
    cpu_threshold: {min: 30, max: 80}
    ram_threshold: {min: 20, max: 75}
    scaling_limits: {min: 1, max: 10}
`;

Deno.test("configs API", async (t) => {
  const ctx = await createTestApp("configs_api");
  try {
    const viewer = (await createApiKeyWithRole(ctx, "viewer")).token;
    const operator = (await createApiKeyWithRole(ctx, "operator")).token;
    const agent = await newNodeToken(ctx);
    const node = await insertNode(ctx, { name: "cfg-node", tokenHash: agent.tokenHash });
    const base = `/api/v1/nodes/${node}`;

    const post = (body: unknown, token = operator) =>
      ctx.call("POST", `${base}/configs`, { token, json: body });
    const expectError = async (res: Response, status: number, code: string, field?: string) => {
      const body = await json<ErrorBody>(res);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(body.error.code, code);
      if (field) assert.ok(body.error.details?.some((d) => d.field === field), JSON.stringify(body));
      return body;
    };
    const versionCount = async () => (await countNodeRows(ctx, node)).config_versions;
    const ack = async (hash: string) => {
      const res = await ctx.call("POST", `${base}/config/ack`, {
        token: agent.token,
        json: { hash, status: "applied" },
      });
      assert.equal(res.status, 200, await res.text());
    };

    await t.step("POST a JSON object: version 1, audited with the caller", async () => {
      const res = await post({ config: document(75), comment: "first" });
      assert.equal(res.status, 201);
      const v1 = await json<Version>(res);
      assert.equal(v1.version, 1);
      assert.equal(v1.source, "operator");
      assert.equal(v1.comment, "first");
      assert.match(v1.author, /^key:operator-key/);
      assert.match(v1.hash, /^[0-9a-f]{64}$/);
      assert.deepEqual(v1.body, document(75));
      const audit = await auditEntries(ctx, "config.create");
      assert.equal(audit.length, 1);
      assert.equal(audit[0].target_id, node);
      assert.equal(audit[0].details?.version, 1);
    });

    await t.step(
      "POST YAML: as a string in JSON, and as an application/yaml body with ?comment=",
      async () => {
        const res = await post({ config: YAML_V2 });
        assert.equal(res.status, 201);
        const v2 = await json<Version>(res);
        assert.equal(v2.version, 2);
        assert.deepEqual(v2.body, document(80));
        assert.equal(v2.yaml, YAML_V2);

        const yaml = YAML_V2.replace("max: 80", "max: 85");
        const raw = await ctx.call("POST", `${base}/configs?comment=from%20yaml`, {
          token: operator,
          body: yaml,
          headers: { "content-type": "application/yaml" },
        });
        assert.equal(raw.status, 201);
        const v3 = await json<Version>(raw);
        assert.equal(v3.version, 3);
        assert.equal(v3.comment, "from yaml");
        assert.deepEqual(v3.body, document(85));
      },
    );

    await t.step("the body that is already desired: 200 with that version, nothing written", async () => {
      const res = await post({ config: document(85) });
      assert.equal(res.status, 200);
      assert.equal((await json<Version>(res)).version, 3);
      assert.equal(await versionCount(), 3);
      assert.equal((await auditEntries(ctx, "config.create")).length, 3);
    });

    await t.step("invalid configs are 422 naming the field and write nothing", async () => {
      const cases: [unknown, string][] = [
        [{ config: document(10) }, "config.pools.0.cpu_threshold.min"], // min above max
        [{ config: { pools: [] } }, "config.pools"],
        [{ config: "pools: [unclosed" }, "config"],
        [{ config: "" }, "config"],
        [{ comment: "no config" }, "config"],
        [{ config: document(75), comment: "x".repeat(1001) }, "comment"],
        [{ config: 42 }, "config"],
      ];
      for (const [body, field] of cases) {
        await expectError(await post(body), 422, "validation_failed", field);
      }
      const yaml = await ctx.call("POST", `${base}/configs`, {
        token: operator,
        body: YAML_V2.replace("max: 80", "max: 180"),
        headers: { "content-type": "application/yaml" },
      });
      const refusal = await expectError(yaml, 422, "validation_failed", "config.pools.0.cpu_threshold.max");
      // Line 5 of YAML_V2 is "    cpu_threshold: {min: 30, max: 180}"; max sits at column 30.
      assert.deepEqual(
        refusal.error.details?.map(({ field, line, column }) => ({ field, line, column })),
        [{ field: "config.pools.0.cpu_threshold.max", line: 5, column: 30 }],
      );
      const syntax = await expectError(
        await post({ config: YAML_V2.replace("{min: 20, max: 75}", "{min: 20, max: 75") }),
        422,
        "validation_failed",
        "config",
      );
      assert.equal(syntax.error.details?.[0].line, 6); // where the { opened
      const text = await ctx.call("POST", `${base}/configs`, {
        token: operator,
        body: YAML_V2,
        headers: { "content-type": "text/plain" },
      });
      assert.equal(text.status, 415);
      await text.body?.cancel();
      assert.equal(await versionCount(), 3);
      assert.equal((await auditEntries(ctx, "config.create")).length, 3);
    });

    await t.step("viewer may read but not write; unknown node 404", async () => {
      await expectError(await post({ config: document(70) }, viewer), 403, "forbidden");
      const anonymous = await ctx.call("POST", `${base}/configs`, { json: { config: document(70) } });
      await expectError(anonymous, 401, "unauthorized");
      assert.equal(await versionCount(), 3);
      const missing = await ctx.call("POST", `/api/v1/nodes/${crypto.randomUUID()}/configs`, {
        token: operator,
        json: { config: document(70) },
      });
      await expectError(missing, 404, "not_found");
    });

    await t.step("list newest first with paging; one version; bad and unknown versions", async () => {
      const res = await ctx.call("GET", `${base}/configs?limit=2`, { token: viewer });
      assert.equal(res.status, 200);
      const page = await json<{ items: Version[]; next_before_version: number | null }>(res);
      assert.deepEqual(page.items.map((v) => v.version), [3, 2]);
      assert.equal(page.next_before_version, 2);
      const rest = await json<{ items: Version[]; next_before_version: number | null }>(
        await ctx.call("GET", `${base}/configs?limit=2&before_version=2`, { token: viewer }),
      );
      assert.deepEqual(rest.items.map((v) => v.version), [1]);
      assert.equal(rest.next_before_version, null);

      const one = await ctx.call("GET", `${base}/configs/2`, { token: viewer });
      assert.equal(one.status, 200);
      assert.deepEqual((await json<Version>(one)).body, document(80));

      await expectError(
        await ctx.call("GET", `${base}/configs?limit=0`, { token: viewer }),
        422,
        "validation_failed",
        "limit",
      );
      await expectError(
        await ctx.call("GET", `${base}/configs?limit=101`, { token: viewer }),
        422,
        "validation_failed",
        "limit",
      );
      await expectError(await ctx.call("GET", `${base}/configs/9`, { token: viewer }), 404, "not_found");
      await expectError(
        await ctx.call("GET", `${base}/configs/abc`, { token: viewer }),
        422,
        "validation_failed",
        "version",
      );
      await expectError(
        await ctx.call("GET", `${base}/configs/0`, { token: viewer }),
        422,
        "validation_failed",
        "version",
      );
      await expectError(
        await ctx.call("GET", `/api/v1/nodes/${crypto.randomUUID()}/configs`, { token: viewer }),
        404,
        "not_found",
      );
    });

    await t.step("diff between two versions; missing or unknown versions", async () => {
      const res = await ctx.call("GET", `${base}/configs/diff?from=1&to=2`, { token: viewer });
      assert.equal(res.status, 200);
      const body = await json<{ from: Version; to: Version; diff: string }>(res);
      assert.equal(body.from.version, 1);
      assert.equal(body.to.version, 2);
      // v1 came as JSON (stored as a block-style rendering), v2 as flow-style YAML text: the diff is of texts.
      assert.match(body.diff, /^-\s+max: 75$/m);
      assert.match(body.diff, /^\+\s+cpu_threshold: \{min: 30, max: 80\}$/m);
      await expectError(
        await ctx.call("GET", `${base}/configs/diff?from=1`, { token: viewer }),
        422,
        "validation_failed",
        "to",
      );
      await expectError(
        await ctx.call("GET", `${base}/configs/diff?from=1&to=x`, { token: viewer }),
        422,
        "validation_failed",
        "to",
      );
      await expectError(
        await ctx.call("GET", `${base}/configs/diff?from=1&to=7`, { token: viewer }),
        404,
        "not_found",
      );
    });

    await t.step("rollback: operator only, a new version with the old body", async () => {
      await expectError(
        await ctx.call("POST", `${base}/configs/1/rollback`, { token: viewer }),
        403,
        "forbidden",
      );
      await expectError(
        await ctx.call("POST", `${base}/configs/8/rollback`, { token: operator }),
        404,
        "not_found",
      );
      assert.equal(await versionCount(), 3);
      const res = await ctx.call("POST", `${base}/configs/1/rollback`, {
        token: operator,
        json: { comment: "back to 75" },
      });
      assert.equal(res.status, 201);
      const v4 = await json<Version>(res);
      assert.equal(v4.version, 4);
      assert.equal(v4.source, "rollback");
      assert.equal(v4.rolled_back_from, 1);
      assert.equal(v4.comment, "back to 75");
      assert.deepEqual(v4.body, document(75));
      const audit = await auditEntries(ctx, "config.rollback");
      assert.equal(audit.length, 1);
      // Rolling back to what is already desired creates nothing.
      const again = await ctx.call("POST", `${base}/configs/1/rollback`, { token: operator });
      assert.equal(again.status, 200);
      assert.equal((await json<Version>(again)).version, 4);
      assert.equal(await versionCount(), 4);
    });

    await t.step("config-status: desired vs applied, following the agent's ack", async () => {
      const res = await ctx.call("GET", `${base}/config-status`, { token: viewer });
      assert.equal(res.status, 200);
      const status = await json<{ desired: { version: number; hash: string }; state: string }>(res);
      assert.equal(status.desired.version, 4);
      assert.equal(status.state, "pending");
      const ack = await ctx.call("POST", `${base}/config/ack`, {
        token: agent.token,
        json: { hash: status.desired.hash, status: "failed", error: "pool not found" },
      });
      assert.equal(ack.status, 200, await ack.text());
      const after = await json(await ctx.call("GET", `${base}/config-status`, { token: viewer }));
      assert.equal(after.state, "failed");
      assert.equal(after.error, "pool not found");
      await expectError(
        await ctx.call("GET", `/api/v1/nodes/${crypto.randomUUID()}/config-status`, { token: viewer }),
        404,
        "not_found",
      );
    });

    await t.step("a new version reaches an agent waiting on its long-poll", async () => {
      const current = await json<Version>(await ctx.call("GET", `${base}/configs/4`, { token: viewer }));
      const waiting = ctx.call("GET", `${base}/config?wait=30`, {
        token: agent.token,
        headers: { "if-none-match": `"${current.hash}"` },
      });
      const created = await json<Version>(await post({ config: document(90), comment: "push" }));
      const pulled = await waiting;
      assert.equal(pulled.status, 200);
      const body = await json<{ version: number; hash: string }>(pulled);
      assert.equal(body.version, created.version);
      assert.equal(body.hash, created.hash);
    });

    await t.step(
      "the operator's text reaches the agent as written; a comment-only edit is a new version, acked",
      async () => {
        const commented = `# pool for the web tier (ticket OPS-42)\n${
          YAML_V2.replace("max: 80}", "max: 70}  # lowered after the load test")
        }`;
        const v1 = await post({ config: commented, comment: "annotated" });
        assert.equal(v1.status, 201);
        const annotated = await json<Version>(v1);
        assert.equal(annotated.yaml, commented);
        const before = await versionCount();

        // The same text again, or a JSON body with the same meaning: unchanged, the comments stay.
        const again = await post({ config: commented });
        assert.equal(again.status, 200);
        assert.equal((await json<Version>(again)).version, annotated.version);
        const reordered = document(70);
        reordered.pools[0] = Object.fromEntries(
          Object.entries(reordered.pools[0]).reverse(),
        ) as typeof reordered.pools[0];
        const viaJson = await post({ config: reordered });
        assert.equal(viaJson.status, 200);
        assert.equal((await json<Version>(viaJson)).yaml, commented);
        assert.equal(await versionCount(), before);

        // The agent gets the text byte for byte; the hash is its sha256.
        const pulled = await ctx.call("GET", `${base}/config`, { token: agent.token });
        const delivered = await json<{ hash: string; yaml: string; body: unknown }>(pulled);
        assert.equal(delivered.yaml, commented);
        assert.deepEqual(delivered.body, document(70));
        const digest = new Uint8Array(
          await crypto.subtle.digest("SHA-256", new TextEncoder().encode(commented)),
        );
        assert.equal(delivered.hash, Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
        await ack(delivered.hash);

        // Only a comment changes: same body, new version and hash, delivered to the agent and acked.
        const edited = commented.replace("ticket OPS-42", "ticket OPS-43");
        const v2 = await post({ config: edited, comment: "comment only" });
        assert.equal(v2.status, 201);
        const commentEdit = await json<Version>(v2);
        assert.equal(commentEdit.version, annotated.version + 1);
        assert.notEqual(commentEdit.hash, annotated.hash);
        assert.deepEqual(commentEdit.body, annotated.body);
        const status = await json<{ state: string }>(
          await ctx.call("GET", `${base}/config-status`, { token: viewer }),
        );
        assert.equal(status.state, "pending");
        const next = await ctx.call("GET", `${base}/config`, {
          token: agent.token,
          headers: { "if-none-match": `"${annotated.hash}"` },
        });
        assert.equal(next.status, 200);
        assert.equal((await json<{ yaml: string }>(next)).yaml, edited);
        await ack(commentEdit.hash);
        const synced = await json<{ state: string }>(
          await ctx.call("GET", `${base}/config-status`, { token: viewer }),
        );
        assert.equal(synced.state, "in_sync");

        // The diff shows the comment; a rollback brings the old text back, comments and all.
        const diff = await json<{ diff: string }>(
          await ctx.call("GET", `${base}/configs/diff?from=${annotated.version}&to=${commentEdit.version}`, {
            token: viewer,
          }),
        );
        assert.match(diff.diff, /^-# pool for the web tier \(ticket OPS-42\)$/m);
        assert.match(diff.diff, /^\+# pool for the web tier \(ticket OPS-43\)$/m);
        const back = await ctx.call("POST", `${base}/configs/${annotated.version}/rollback`, {
          token: operator,
          json: { comment: "old comment back" },
        });
        assert.equal(back.status, 201);
        const restored = await json<Version>(back);
        assert.equal(restored.yaml, commented);
        assert.equal(restored.hash, annotated.hash);
      },
    );

    await t.step("a decommissioned node's config can no longer change", async () => {
      const res = await ctx.call("POST", `${base}/decommission`, { token: operator });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const before = await versionCount();
      await expectError(await post({ config: document(60) }), 409, "node_decommissioned");
      await expectError(
        await ctx.call("POST", `${base}/configs/1/rollback`, { token: operator }),
        409,
        "node_decommissioned",
      );
      assert.equal(await versionCount(), before);
    });
  } finally {
    await ctx.close();
  }
});
