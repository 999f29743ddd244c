// A waiting config pull over HTTP (the agents' fast path takes it: routes/agentFastPath.ts): its answer, when
// it comes, still carries what the middleware gives every answer, and is counted once, when it is answered.
import assert from "node:assert/strict";
import { createEnrollmentToken } from "../core/enrollment.ts";
import { json } from "./helpers/app.ts";
import { startTestServer } from "./helpers/server.ts";

const POOL = "ocid1.instancepool.oc1.iad.aaaaaaaaparkedpull";
const config = (max: number) => ({
  pools: [{
    instance_pool_id: POOL,
    compartment_id: "ocid1.compartment.oc1..aaaaaaaacompartment",
    region: "us-ashburn-1",
    cpu_threshold: { min: 30, max: 75 },
    ram_threshold: { min: 20, max: 75 },
    scaling_limits: { min: 1, max },
    scheduler_max_instances: 3,
  }],
});

Deno.test("parked config pull: woken by a change, answered with the middleware's headers", async () => {
  const server = await startTestServer("parked_pull");
  try {
    const { token } = await createEnrollmentToken(server.ctx.deps, {
      principal: { kind: "system", name: "t" },
    }, {
      name: "parked",
    });
    const res = await fetch(`${server.baseUrl}/api/v1/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ enrollment_token: token, name: "parked-1", hostname: "h", config: config(10) }),
    });
    const node = await json<{ node_id: string; node_token: string; config: { hash: string } }>(res);
    const pull = fetch(`${server.baseUrl}/api/v1/nodes/${node.node_id}/config?wait=30`, {
      headers: {
        authorization: `Bearer ${node.node_token}`,
        "if-none-match": `"${node.config.hash}"`,
        "x-request-id": "parked-42",
      },
    });
    while (server.ctx.services.configWatcher.waiting === 0) await new Promise((r) => setTimeout(r, 20));
    const changed = await server.setConfig(node.node_id, config(12));
    const answer = await pull;
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get("etag"), `"${changed.hash}"`);
    assert.equal(answer.headers.get("cache-control"), "no-cache");
    assert.equal(answer.headers.get("x-request-id"), "parked-42");
    assert.equal(answer.headers.get("x-content-type-options"), "nosniff");
    assert.equal((await json<{ hash: string }>(answer)).hash, changed.hash);
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    assert.match(
      metrics,
      /autoscaler_central_http_requests_total\{method="GET",route="\/api\/v1\/nodes\/:id\/config",status="200"\} 1/,
    );
    assert.doesNotMatch(metrics, /status="202"/, "the placeholder is never counted");
  } finally {
    await server.close();
  }
});
