// core/batchedLoad.ts: the reads that arrive together share one, in the order they came, and a failed read
// fails only its own callers.
import assert from "node:assert/strict";
import { batchedLoader } from "../core/batchedLoad.ts";

/** A read whose calls are recorded and answered when the test says. */
function controlledRead() {
  const calls: { keys: string[]; answer(found: Map<string, number>): void; fail(error: Error): void }[] = [];
  const read = (keys: string[]) =>
    new Promise<Map<string, number>>((resolve, reject) =>
      calls.push({ keys, answer: resolve, fail: reject })
    );
  return { calls, read };
}
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("batched loader", async (t) => {
  await t.step(
    "keys asked for while a read runs share the next read; each caller gets its own value",
    async () => {
      const { calls, read } = controlledRead();
      let reads = 0;
      const load = batchedLoader(read, 10, () => reads++);
      const first = load("a");
      const waiting = [load("b"), load("c"), load("b")];
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].keys, ["a"]);
      calls[0].answer(new Map([["a", 1]]));
      assert.equal(await first, 1);
      await tick();
      assert.equal(calls.length, 2);
      assert.deepEqual(calls[1].keys, ["b", "c"]);
      calls[1].answer(new Map([["b", 2]]));
      assert.deepEqual(await Promise.all(waiting), [2, undefined, 2]);
      assert.equal(reads, 2);
    },
  );

  await t.step("no more than maxBatch keys in one read; the rest go in the next", async () => {
    const { calls, read } = controlledRead();
    const load = batchedLoader(read, 2);
    const blocker = load("x");
    const rest = ["k1", "k2", "k3"].map((key) => load(key));
    calls[0].answer(new Map());
    await blocker;
    await tick();
    assert.deepEqual(calls[1].keys, ["k1", "k2"]);
    calls[1].answer(new Map([["k1", 1], ["k2", 2]]));
    await tick();
    assert.deepEqual(calls[2].keys, ["k3"]);
    calls[2].answer(new Map([["k3", 3]]));
    assert.deepEqual(await Promise.all(rest), [1, 2, 3]);
  });

  await t.step("a failed read rejects its own callers only; the next read goes ahead", async () => {
    const { calls, read } = controlledRead();
    const load = batchedLoader(read, 10);
    const failing = load("a");
    const later = load("b");
    calls[0].fail(new Error("database away"));
    await assert.rejects(failing, /database away/);
    await tick();
    assert.deepEqual(calls[1].keys, ["b"]);
    calls[1].answer(new Map([["b", 7]]));
    assert.equal(await later, 7);
  });

  await t.step("a read that throws at once fails its callers and does not block the next", async () => {
    let calls = 0;
    const load = batchedLoader<number>((keys) => {
      calls++;
      if (calls === 1) throw new Error("bad statement");
      return Promise.resolve(new Map(keys.map((key) => [key, key.length])));
    }, 10);
    await assert.rejects(load("a"), /bad statement/);
    assert.equal(await load("abc"), 3);
  });
});
