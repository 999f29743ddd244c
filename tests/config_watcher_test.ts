// The long-poll engine on its own (core/configWatcher.ts), on a real database: waits end at their deadline
// through the one shared ticker, each exactly once, whatever ends them first.
import assert from "node:assert/strict";
import { ManualClock } from "../core/clock.ts";
import {
  createConfigWatcher,
  MARK_LAG_MS,
  OVERLAP_MS,
  TICK_MS,
  type WaitOutcome,
} from "../core/configWatcher.ts";
import { createMemoryLogger } from "../core/logger.ts";
import { createTestApp, createTestDatabase } from "./helpers/app.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);

Deno.test("config watcher: deadlines, cancels, wake-ups and shutdown", async (t) => {
  const database = await createTestDatabase("config_watcher");
  const deps = {
    db: database.db,
    settings: database.settings,
    clock: new ManualClock(new Date("2026-11-28T12:00:00Z")),
    logger: createMemoryLogger(),
  };
  const watcher = createConfigWatcher(deps);
  /** Every outcome a waiter's listener received, in order. */
  const record = (outcomes: WaitOutcome[], waiter: { listen(l: (o: WaitOutcome) => void): void }) =>
    waiter.listen((outcome) => outcomes.push(outcome));
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  try {
    await t.step("a wait ends at its deadline, once, and nothing is left waiting", async () => {
      const outcomes: WaitOutcome[] = [];
      const started = performance.now();
      const ended = new Promise<number>((resolve) =>
        watcher.watch("node-1", [HASH_A], 300).listen((outcome) => {
          outcomes.push(outcome);
          resolve(performance.now() - started);
        })
      );
      assert.equal(watcher.waiting, 1);
      const elapsed = await ended;
      assert.ok(elapsed >= 300, `ended after ${elapsed} ms, before its deadline`);
      // Late by a tick at most, on a quiet host; the bound is loose for a loaded one.
      assert.ok(elapsed < 300 + 2_000, `ended ${elapsed} ms after it began`);
      await sleep(2 * TICK_MS);
      assert.deepEqual(outcomes, ["timeout"]);
      assert.equal(watcher.waiting, 0);
    });

    await t.step("waits with different deadlines end in deadline order", async () => {
      const order: number[] = [];
      const all = [300, 100, 200].map((ms) =>
        new Promise<void>((resolve) =>
          watcher.watch(`node-${ms}`, [HASH_A], ms).listen(() => {
            order.push(ms);
            resolve();
          })
        )
      );
      await Promise.all(all);
      assert.deepEqual(order, [100, 200, 300]);
    });

    await t.step("a cancelled wait ends at once as cancelled and its deadline adds nothing", async () => {
      const outcomes: WaitOutcome[] = [];
      const waiter = watcher.watch("node-2", [HASH_A], 200);
      record(outcomes, waiter);
      waiter.cancel();
      assert.deepEqual(outcomes, ["cancelled"]);
      assert.equal(watcher.waiting, 0);
      await sleep(200 + 3 * TICK_MS);
      assert.deepEqual(outcomes, ["cancelled"]);
    });

    await t.step("a hang-up (the abort event) cancels the wait", () => {
      const outcomes: WaitOutcome[] = [];
      const controller = new AbortController();
      const waiter = watcher.watch("node-3", [HASH_A], 10_000);
      controller.signal.addEventListener("abort", waiter, { once: true });
      record(outcomes, waiter);
      controller.abort();
      assert.deepEqual(outcomes, ["cancelled"]);
      assert.equal(watcher.waiting, 0);
    });

    await t.step("a listener that comes after the end hears the outcome at once", () => {
      const waiter = watcher.watch("node-4", [HASH_A], 10_000);
      waiter.cancel();
      const outcomes: WaitOutcome[] = [];
      record(outcomes, waiter);
      assert.deepEqual(outcomes, ["cancelled"]);
    });

    await t.step("notify wakes the node's waits that lack the new hash, not those that have it", () => {
      const behind: WaitOutcome[] = [];
      const current: WaitOutcome[] = [];
      record(behind, watcher.watch("node-5", [HASH_A], 10_000));
      const upToDate = watcher.watch("node-5", [HASH_B], 10_000);
      record(current, upToDate);
      watcher.notify("node-5", HASH_B);
      assert.deepEqual(behind, ["changed"]);
      assert.deepEqual(current, []);
      assert.equal(watcher.waiting, 1);
      upToDate.cancel();
      assert.deepEqual(current, ["cancelled"]);
    });

    await t.step("a node's extra waits replace its oldest", () => {
      const limit = deps.settings.MAX_CONFIG_WAITS_PER_NODE;
      const outcomes: WaitOutcome[][] = [];
      const waiters = Array.from({ length: limit + 1 }, () => {
        const mine: WaitOutcome[] = [];
        outcomes.push(mine);
        const waiter = watcher.watch("node-6", [HASH_A], 10_000);
        record(mine, waiter);
        return waiter;
      });
      assert.deepEqual(outcomes[0], ["replaced"]);
      assert.ok(outcomes.slice(1).every((o) => o.length === 0));
      assert.equal(watcher.waiting, limit);
      for (const waiter of waiters) waiter.cancel();
      assert.equal(watcher.waiting, 0);
      assert.equal(watcher.stats().replaced, 1);
    });

    await t.step("a wait that replaced the only other one still ends at its deadline", async () => {
      // One wait per node allowed, and nothing else waiting: replacing the old wait leaves none for a moment.
      const single = createConfigWatcher({
        ...deps,
        settings: { ...deps.settings, MAX_CONFIG_WAITS_PER_NODE: 1 },
      });
      try {
        const first: WaitOutcome[] = [];
        record(first, single.watch("node-10", [HASH_A], 10_000));
        // Raced with a bound, so a lost deadline fails here instead of hanging the suite.
        let bound: ReturnType<typeof setTimeout> | undefined;
        const second = await Promise.race([
          new Promise<WaitOutcome>((resolve) => single.watch("node-10", [HASH_A], 200).listen(resolve)),
          new Promise<string>((resolve) => bound = setTimeout(() => resolve("never ended"), 3_000)),
        ]);
        clearTimeout(bound);
        assert.deepEqual(first, ["replaced"]);
        assert.equal(second, "timeout");
        assert.equal(single.waiting, 0);
      } finally {
        await single.close();
      }
    });

    await t.step(
      "shutdown ends every wait as closed; a wait asked for afterwards is over at once",
      async () => {
        const outcomes: WaitOutcome[] = [];
        record(outcomes, watcher.watch("node-7", [HASH_A], 10_000));
        record(outcomes, watcher.watch("node-8", [HASH_A], 10_000));
        await watcher.close();
        assert.deepEqual(outcomes, ["closed", "closed"]);
        assert.equal(watcher.waiting, 0);
        const late: WaitOutcome[] = [];
        record(late, watcher.watch("node-9", [HASH_A], 10_000));
        assert.deepEqual(late, ["closed"]);
        assert.equal(watcher.waiting, 0);
      },
    );
  } finally {
    await watcher.close();
    await database.drop();
  }
});

Deno.test("config watcher: a poll reads a change again only while it is recent", async () => {
  const ctx = await createTestApp("config_watcher_mark", { env: { CONFIG_POLL_MS: "50" } });
  const watcher = createConfigWatcher({ ...ctx.deps, logger: createMemoryLogger() });
  const polled = async (more: number) => {
    const target = watcher.stats().polls + more;
    for (let i = 0; i < 400 && watcher.stats().polls < target; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(watcher.stats().polls >= target, `never saw ${more} more polls`);
    return watcher.stats().rows_read;
  };
  try {
    // A burst of changes (a rollout, a fleet enrolling), then nothing.
    for (let i = 0; i < 20; i++) {
      const node = await createNodeWithToken(ctx, `burst-${i}`);
      await ctx.database.pool.query(
        "UPDATE nodes SET desired_hash = ?, desired_changed_at = ? WHERE id = ?",
        [
          HASH_A,
          ctx.clock.now(),
          node.nodeId,
        ],
      );
    }
    // A wait elsewhere keeps the watcher polling.
    const keepPolling = watcher.watch("someone-else", [HASH_A], 60_000);
    const whileRecent = await polled(2);
    assert.ok(whileRecent >= 20, `the burst was read (${whileRecent} rows)`);
    assert.ok((await polled(2)) > whileRecent, "read again while inside the overlap");
    // Time moves on past the mark's lag and the overlap: one more poll may still look back that far, then
    // none does.
    ctx.clock.advance(MARK_LAG_MS + OVERLAP_MS + 1_000);
    const settled = await polled(2);
    assert.equal(await polled(3), settled, "the old burst is read again after it left the overlap");
    // A change committed late (stamped 20 s before its commit, within MARK_LAG_MS) is still read.
    const late = await createNodeWithToken(ctx, "late-commit");
    await ctx.database.pool.query("UPDATE nodes SET desired_hash = ?, desired_changed_at = ? WHERE id = ?", [
      HASH_A,
      new Date(ctx.clock.now().getTime() - 20_000),
      late.nodeId,
    ]);
    assert.ok((await polled(2)) > settled, "a change committed 20 s after its stamp was not read");
    keepPolling.cancel();
  } finally {
    await watcher.close();
    await ctx.close();
  }
});
