// Registrations group-committed, as write-through heartbeats are (core/heartbeats.ts): a fleet enrolling at
// once sends many registrations, and each used to be a transaction of its own (11 queries, each about half a
// millisecond of the server's CPU in drizzle and mysql2). Now the first registration to arrive is written at
// once, and those that arrive while a batch is being written wait for it and go together in the next: two
// reads (names taken, enrollment tokens) and ONE transaction of multi-row statements (config versions,
// nodes, pools, each token's uses, audit entries), however many registrations. Each caller then gets its
// own answer, the same as it would have got alone.
//
// Only plain new nodes go in a batch: a name that is not taken (and not already in the batch), with an
// enrollment token that is usable, not a re-enrollment token, and has uses left for it, and pools within
// MAX_POOLS_PER_NODE. Every other registration (a known name, a rotation, a refusal of any kind), and every
// registration of a batch whose transaction failed (a name another replica took meanwhile, a token revoked
// or used up meanwhile, a deadlock, a database error), is handed back after the batch committed or rolled
// back and is registered on its own (core/agents.ts), with the precise answer and error it had before. So a
// name registered twice in one batch behaves as two registrations one after the other (one wins, one 409),
// a bad registration never fails the others, and a token's last use goes to exactly one registration.
import {
  findEnrollmentTokensByHashes,
  type NewNodeWrite,
  readRegistrationState,
  writeNewNodes,
} from "../db/agents.ts";
import { createPool, type Pool } from "../db/client.ts";
import type { EnrollmentTokenRow } from "../db/enrollment.ts";
import { auditRow } from "./audit.ts";
import { firstConfigVersion } from "./configs.ts";
import type { CoreDeps } from "./deps.ts";
import { enrollmentTokenState } from "./enrollment.ts";
import {
  newNodeRow,
  poolLimitProblems,
  registeredPools,
  type RegisterOutcome,
  type Registration,
  registrationAudits,
} from "./agents.ts";
import type { NodePrincipal } from "./principal.ts";
import { keyedHash, SECRET_PREFIX, secretShaped } from "./secrets.ts";

/** Registrations per transaction at most. */
const MAX_BATCH = 200;

export interface RegistrationBatcher {
  /** Registers a plain new node with the registrations around it: its outcome once committed, or undefined
   * when it must be registered on its own (see above), once its batch is done. */
  submit(registration: Registration): Promise<RegisterOutcome | undefined>;
  /** The enrollment token of this keyed hash, read with the other lookups that arrive meanwhile (the
   * credential check every registration runs first): one query at a time, each started after its callers
   * arrived, so none of them sees an older row than a query of its own would have. */
  findEnrollmentToken(tokenHash: string): Promise<EnrollmentTokenRow | undefined>;
  stats(): {
    /** Registrations submitted, registered in batches, and handed back to register on their own. */
    submitted: number;
    batched: number;
    handed_back: number;
    batches: number;
    largest_batch: number;
    /** Batches whose transaction failed (all of their registrations were handed back). */
    failed_batches: number;
  };
  /** Closes the batches' connection; registrations after it go one at a time. */
  close(): Promise<void>;
}

interface Waiting {
  registration: Registration;
  resolve(outcome: RegisterOutcome | undefined): void;
}

/** One registration a batch takes. */
interface Planned {
  waiting: Waiting;
  nodeId: string;
  token: EnrollmentTokenRow;
  /** Its use among the batch's uses of that token (0, 1, ...). */
  useIndex: number;
}

export function createRegistrationBatcher(
  deps: Pick<CoreDeps, "pool" | "settings" | "clock" | "logger">,
): RegistrationBatcher {
  let queue: Waiting[] = [];
  let writing = false;
  // The batches' own connection: it takes a transaction's statements in two round trips (see writeNewNodes),
  // which the shared pool's connections, made for one statement at a time, do not.
  let writer: Pool | undefined;
  let closed = false;
  const writerPool = () =>
    writer ??= createPool(deps.settings.database, 2, {
      queryTimeoutMs: deps.settings.DB_QUERY_TIMEOUT_MS,
      multipleStatements: true,
    });
  const counters = {
    submitted: 0,
    batched: 0,
    handed_back: 0,
    batches: 0,
    largest_batch: 0,
    failed_batches: 0,
  };

  async function drain(): Promise<void> {
    writing = true;
    try {
      while (queue.length > 0) {
        const taken = queue.slice(0, MAX_BATCH);
        queue = queue.slice(MAX_BATCH);
        await runBatch(taken);
      }
    } finally {
      writing = false;
    }
  }

  /** Writes what it can of `items` in one transaction; resolves every item, never throws. */
  async function runBatch(items: Waiting[]): Promise<void> {
    let handBack: Waiting[] = [];
    try {
      const planned = await plan(items, handBack);
      if (planned.length > 0) await write(planned);
    } catch (error) {
      // Nothing was written and nobody answered: each of them again on its own, which answers with the
      // precise error (or succeeds).
      counters.failed_batches++;
      deps.logger.debug("registration batch failed; its registrations go one at a time", {
        registrations: items.length,
        error,
      });
      handBack = items;
    } finally {
      // Settled in arrival order after the commit (or the rollback).
      counters.handed_back += handBack.length;
      for (const waiting of handBack) waiting.resolve(undefined);
    }
  }

  /** Which of `items` the batch takes; the others go to `handBack`. */
  async function plan(items: Waiting[], handBack: Waiting[]): Promise<Planned[]> {
    const hashes = new Map<string, string>();
    for (const { registration: { input } } of items) {
      const token = input.enrollment_token;
      if (secretShaped(SECRET_PREFIX.enrollmentToken, token) && !hashes.has(token)) {
        hashes.set(token, await keyedHash(deps.settings.SECRET_KEY, token));
      }
    }
    // The tokens as the credential checks of these registrations just read them (a token row may be a
    // moment old: its UPDATE below decides, and a row that is no longer usable fails the batch, whose
    // registrations then go one at a time); those not read there, read now.
    const tokens = new Map<string, EnrollmentTokenRow>();
    const unread: string[] = [];
    for (const hash of new Set(hashes.values())) {
      const row = lastRead.get(hash);
      if (row) tokens.set(hash, row);
      else unread.push(hash);
    }
    const { taken, tokens: read } = await readRegistrationState(
      deps.pool,
      [...new Set(items.map((item) => item.registration.input.name))],
      unread,
    );
    for (const [hash, row] of read) tokens.set(hash, row);
    const now = deps.clock.now();
    const usesLeft = new Map<number, number>();
    const usesTaken = new Map<number, number>();
    const planned: Planned[] = [];
    for (const waiting of items) {
      const { input } = waiting.registration;
      const hash = input.enrollment_token ? hashes.get(input.enrollment_token) : undefined;
      const token = hash === undefined ? undefined : tokens.get(hash);
      const name = input.name.toLowerCase();
      const left = token && (usesLeft.get(token.id) ??
        (token.maxUses === null ? Number.POSITIVE_INFINITY : token.maxUses - token.uses));
      if (
        !token || !left || left <= 0 || token.nodeId !== null ||
        enrollmentTokenState(token, now) !== "active" ||
        taken.has(name) ||
        poolLimitProblems([], input.pools ?? [], deps.settings.MAX_POOLS_PER_NODE).length > 0
      ) {
        handBack.push(waiting);
        continue;
      }
      taken.add(name);
      usesLeft.set(token.id, left - 1);
      const useIndex = usesTaken.get(token.id) ?? 0;
      usesTaken.set(token.id, useIndex + 1);
      planned.push({ waiting, nodeId: crypto.randomUUID(), token, useIndex });
    }
    return planned;
  }

  async function write(planned: Planned[]): Promise<void> {
    const now = deps.clock.now();
    const writes: NewNodeWrite[] = [];
    const outcomes: RegisterOutcome[] = [];
    const firstConfigs: (Awaited<ReturnType<typeof firstConfigVersion>> | undefined)[] = [];
    for (const { waiting: { registration }, nodeId } of planned) {
      const principal: NodePrincipal = { kind: "node", nodeId, nodeName: registration.input.name };
      const first = registration.config &&
        await firstConfigVersion({ principal, address: registration.address }, nodeId, {
          body: registration.config.body,
          text: registration.config.text,
          source: "agent",
          comment: "brought by the agent at registration",
        }, now);
      firstConfigs.push(first);
      writes.push({
        node: newNodeRow(nodeId, registration, now),
        config: first?.row,
        pools: registeredPools(registration.input),
      });
      outcomes.push({
        created: true,
        nodeId,
        configCreated: first !== undefined,
        config: first ? { version: 1, hash: first.hash, body: first.row.body } : null,
      });
    }
    const tokenUses = new Map<number, number>();
    for (const { token } of planned) tokenUses.set(token.id, (tokenUses.get(token.id) ?? 0) + 1);
    await writeNewNodes(
      writerPool(),
      writes,
      [...tokenUses].map(([id, count]) => ({ id, count })),
      (usesAfter) =>
        planned.flatMap(({ waiting: { registration }, nodeId, token, useIndex }, i) => {
          const uses = usesAfter.get(token.id)! - tokenUses.get(token.id)! + useIndex + 1;
          return registrationAudits({
            principal: { kind: "node", nodeId, nodeName: registration.input.name },
            registration,
            known: false,
            proof: { ownToken: false },
            configVersion: firstConfigs[i] ? 1 : null,
            configAudit: firstConfigs[i]?.audit,
            enrollment: { ...token, uses, lastUsedAt: now },
          }).map((entry) => auditRow(entry, now));
        }),
      now,
    );
    counters.batches++;
    counters.batched += planned.length;
    counters.largest_batch = Math.max(counters.largest_batch, planned.length);
    planned.forEach(({ waiting }, i) => waiting.resolve(outcomes[i]));
  }

  /** Token lookups waiting for the next read, by hash. */
  let lookups = new Map<
    string,
    { resolve(row: EnrollmentTokenRow | undefined): void; reject(e: unknown): void }[]
  >();
  let reading = false;
  /** The rows the last lookup read (what plan() starts from). */
  let lastRead = new Map<string, EnrollmentTokenRow>();
  async function readTokens(): Promise<void> {
    reading = true;
    try {
      while (lookups.size > 0) {
        const taken = lookups;
        lookups = new Map();
        try {
          const rows = await findEnrollmentTokensByHashes(deps.pool, [...taken.keys()]);
          lastRead = rows;
          for (const [hash, waiting] of taken) for (const w of waiting) w.resolve(rows.get(hash));
        } catch (error) {
          for (const waiting of taken.values()) for (const w of waiting) w.reject(error);
        }
      }
    } finally {
      reading = false;
    }
  }

  return {
    findEnrollmentToken(tokenHash) {
      return new Promise((resolve, reject) => {
        const waiting = lookups.get(tokenHash);
        if (waiting) waiting.push({ resolve, reject });
        else lookups.set(tokenHash, [{ resolve, reject }]);
        if (!reading) void readTokens();
      });
    },
    submit(registration) {
      if (closed) return Promise.resolve(undefined);
      counters.submitted++;
      return new Promise<RegisterOutcome | undefined>((resolve) => {
        queue.push({ registration, resolve });
        if (!writing) void drain();
      });
    },
    stats: () => ({ ...counters }),
    close: async () => {
      closed = true;
      // What is being written finishes first (its registrations answered, or handed back to the shared pool).
      while (writing) await new Promise((resolve) => setTimeout(resolve, 5));
      await writer?.end();
      writer = undefined;
    },
  };
}
