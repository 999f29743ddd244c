// Registrations group-committed, as write-through heartbeats are (core/heartbeats.ts): a fleet enrolling at
// once sends many registrations, and each used to be a transaction of its own (11 queries, each about half a
// millisecond of the server's CPU in drizzle and mysql2). Now the first registration to arrive is written at
// once, and those that arrive while a batch is being written wait for it and go together in the next: ONE
// transaction in two round trips on a connection of the batches' own (db/agents.ts writeRegistrationBatch):
// the names taken and the enrollment tokens (locked), then multi-row statements (each token's uses, config
// versions, nodes, pools, audit entries) and the commit, however many registrations. Each caller then gets
// its own answer, the same as it would have got alone. The credential check every registration runs first
// reads its token with the other checks waiting at that moment (findEnrollmentToken).
//
// Only plain new nodes go in a batch: a name that is not taken (and not already in the batch), with an
// enrollment token that is usable, not a re-enrollment token, and has uses left for it, and pools within
// MAX_POOLS_PER_NODE. Every other registration (a known name, a rotation, a refusal of any kind), and every
// registration of a batch whose transaction failed (a name another replica took meanwhile, a deadlock, a
// database error), is handed back after the batch committed or rolled
// back and is registered on its own (core/agents.ts), with the precise answer and error it had before. So a
// name registered twice in one batch behaves as two registrations one after the other (one wins, one 409),
// a bad registration never fails the others, and a token's last use goes to exactly one registration.
import {
  findEnrollmentTokensByHashes,
  type NewNodeWrite,
  type RegistrationBatchState,
  type RegistrationBatchWrite,
  writeRegistrationBatch,
} from "../db/agents.ts";
import type { AuditRow } from "../db/audit.ts";
import { createPool, type Pool } from "../db/client.ts";
import type { EnrollmentTokenRow } from "../db/enrollment.ts";
import { auditRow } from "./audit.ts";
import { batchedLoader } from "./batchedLoad.ts";
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
/** Roughly the bytes of a batch's statements at most (configs are up to 256 KB each): well under MySQL's
 * smallest default max_allowed_packet (16 MB on MariaDB), so a batch of large configs is never refused. */
const MAX_BATCH_BYTES = 4_000_000;

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
  // The batches' own connection: it takes a transaction's statements in two round trips (see
  // writeRegistrationBatch),
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
        let count = 0;
        for (let bytes = 0; count < queue.length && count < MAX_BATCH; count++) {
          bytes += 2_000 + 2 * (queue[count].registration.config?.text.length ?? 0);
          if (bytes > MAX_BATCH_BYTES && count > 0) break;
        }
        const taken = queue.slice(0, count);
        queue = queue.slice(count);
        await runBatch(taken);
      }
    } finally {
      writing = false;
    }
  }

  /** Writes what it can of `items` in one transaction; resolves every item, never throws. */
  async function runBatch(items: Waiting[]): Promise<void> {
    let handBack: Waiting[] = [];
    let planned: Planned[] = [];
    let outcomes: RegisterOutcome[] = [];
    try {
      const hashes = new Map<string, string>();
      for (const { registration: { input } } of items) {
        const token = input.enrollment_token;
        if (secretShaped(SECRET_PREFIX.enrollmentToken, token) && !hashes.has(token)) {
          hashes.set(token, await keyedHash(deps.settings.SECRET_KEY, token));
        }
      }
      const committed = await writeRegistrationBatch(
        writerPool(),
        [...new Set(items.map((item) => item.registration.input.name))],
        [...new Set(hashes.values())],
        async (state) => {
          handBack = [];
          planned = choose(items, hashes, state, handBack);
          if (planned.length === 0) return undefined;
          const built = await build(planned);
          outcomes = built.outcomes;
          return built.batch;
        },
      );
      if (committed) {
        counters.batches++;
        counters.batched += planned.length;
        counters.largest_batch = Math.max(counters.largest_batch, planned.length);
        planned.forEach(({ waiting }, i) => waiting.resolve(outcomes[i]));
      }
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

  /** Which of `items` the batch takes, from what its transaction read (`state`: the names taken, the tokens
   * locked); the others go to `handBack`. */
  function choose(
    items: Waiting[],
    hashes: Map<string, string>,
    { taken, tokens }: RegistrationBatchState,
    handBack: Waiting[],
  ): Planned[] {
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

  /** The rows of the registrations a batch takes, and each one's answer. */
  async function build(
    planned: Planned[],
  ): Promise<{ batch: RegistrationBatchWrite; outcomes: RegisterOutcome[] }> {
    const now = deps.clock.now();
    const writes: NewNodeWrite[] = [];
    const outcomes: RegisterOutcome[] = [];
    const audits: AuditRow[] = [];
    const tokenUses = new Map<number, number>();
    for (const { waiting: { registration }, nodeId, token, useIndex } of planned) {
      const principal: NodePrincipal = { kind: "node", nodeId, nodeName: registration.input.name };
      const first = registration.config &&
        await firstConfigVersion({ principal, address: registration.address }, nodeId, {
          body: registration.config.body,
          text: registration.config.text,
          source: "agent",
          comment: "brought by the agent at registration",
        }, now);
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
      tokenUses.set(token.id, (tokenUses.get(token.id) ?? 0) + 1);
      // The token's row is locked by the batch's transaction: this use leaves it at uses + useIndex + 1.
      const entries = registrationAudits({
        principal,
        registration,
        known: false,
        proof: { ownToken: false },
        configVersion: first ? 1 : null,
        configAudit: first?.audit,
        enrollment: { ...token, uses: token.uses + useIndex + 1, lastUsedAt: now },
      });
      for (const entry of entries) audits.push(auditRow(entry, now));
    }
    return {
      batch: { writes, tokenUses: [...tokenUses].map(([id, count]) => ({ id, count })), audits, now },
      outcomes,
    };
  }

  /** Token lookups: those that arrive while one is read go together in the next. */
  const readToken = batchedLoader((hashes) => findEnrollmentTokensByHashes(deps.pool, hashes), MAX_BATCH);

  return {
    findEnrollmentToken: readToken,
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
