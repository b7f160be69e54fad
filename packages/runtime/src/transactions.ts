/**
 * Multi-key transactions over one JetStream KV bucket, for a server (2.9) that has no atomic
 * batch write. The protocol is the one Percolator and client-side KV transactions use: intents
 * on the keys, one commit record whose compare-and-set is the commit point, and readers that
 * resolve what a dead writer left behind.
 *
 * Every key holds an {@link Envelope}: its committed value `v` (null when deleted), the id of the
 * transaction that wrote it (`by`), and while a transaction is under way an intent `tx` with the
 * value it wants to write. A transaction over several keys:
 *
 *   1. reads every key (resolving intents it meets) and calls `fn` with the values;
 *   2. creates its record `_txn.<id>` as `pending`, with a deadline;
 *   3. prepares each key it writes, in key order, by compare-and-set from the revision it read
 *      to the old value plus its intent; a key changed since the read aborts it (and it retries);
 *   4. checks that the keys it only read have not changed;
 *   5. commits by compare-and-set of the record from `pending` to `committed` - the one atomic
 *      step: before it the transaction did not happen, after it every key has its new value;
 *   6. resolves each intent into a plain value (`by` = its id), all at once.
 *
 * A reader that meets an intent reads the record: committed, the new value (and it resolves the
 * key); aborted or missing, the old one (and it removes the intent); pending, the old one - unless
 * the deadline passed, when it aborts the transaction by compare-and-set on the record first.
 * Commit and abort race on the same record revision, so exactly one of them happens: a writer
 * killed at any point leaves every key old or every key new. A writer that meets a live intent
 * waits for it (it retries with backoff) rather than overwrite it.
 *
 * What a reader sees: read committed. {@link TxStore.get} never returns an uncommitted value,
 * and a transaction's values appear on all its keys at its commit point. {@link TxStore.read}
 * returns several keys as one snapshot (it reads twice and retries until nothing moved), so it
 * never sees one key of a transaction new and another old.
 *
 * The bucket's stream is mirrored into a log stream (see infrastructure.ts); {@link readLog}
 * turns it back into committed transactions. {@link TxStore.checkpoint} keeps the values under
 * a prefix as of a log position; {@link TxStore.rollback} restores a checkpoint and replays the
 * log after it, skipping the transactions named.
 */

import { randomUUID } from "node:crypto";
import { ConcurrentModificationError, NotFoundError, ProtocolError, UnavailableError } from "@cadre/protocol";
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { z } from "zod";
import { retry } from "./backoff.js";
import type { Breaker } from "./breaker.js";
import { type Clock, systemClock } from "./clock.js";
import type { CadreMetrics } from "./metrics.js";
import { bucketOf, type CorruptionReport, listKeys, StateStore, verifyChecksum } from "./state-store.js";

/** What a data key holds. */
export interface Envelope<T> {
  /** The committed value; null when the key was deleted (or is only being created). */
  v: T | null;
  /** The transaction that wrote `v` ("" before any). */
  by: string;
  /** An intent of a transaction under way: the value it will have once `id` commits. */
  tx?: { id: string; next: T | null } | undefined;
}

/** The schema of a data key's {@link Envelope} around values of `schema`. */
function envelopeOf<T>(schema: z.ZodType<T>): z.ZodType<Envelope<T>> {
  return z.object({
    v: schema.nullable(),
    by: z.string(),
    tx: z.object({ id: z.string(), next: schema.nullable() }).optional(),
  }) as unknown as z.ZodType<Envelope<T>>;
}

/** The commit record of a multi-key transaction, at `_txn.<id>` in the same bucket. */
export const TxnRecordSchema = z.object({
  state: z.enum(["pending", "committed", "aborted"]),
  keys: z.array(z.string()),
  writer: z.string(),
  startedAt: z.number(),
  /** After this (wall clock) anyone may abort it while it is still pending. */
  deadline: z.number(),
});
export type TxnRecord = z.infer<typeof TxnRecordSchema>;

const TXN_PREFIX = "_txn.";
const txnKey = (id: string): string => `${TXN_PREFIX}${id}`;
/** Keys with a part starting with "_" are Cadre's own: transaction records, checkpoints. */
const RESERVED = /(^|\.)_/;
/** A checkpoint of the keys under `prefix`, at log position `position`. */
const checkpointKey = (prefix: string, position: number): string => `${prefix}_ckpt.${position}`;

/** The values under a prefix as of a log position, kept in the bucket (checksummed like any value). */
export interface Checkpoint<T> {
  position: number;
  at: number;
  values: Record<string, T | null>;
}

/** The values a transaction writes: a value, null to delete, undefined (or absent) to leave. */
export type Writes<T> = Record<string, T | null | undefined>;

/** Where a test can stop a writer (to kill it there). */
export type TxnFaultPoint = "prepared" | "committed";

export interface TxStoreOptions {
  /** Names the writer in its records (a host id). */
  writer: string;
  /** How long a transaction may stay pending before others may abort it. @default 5000 */
  txnTimeoutMs?: number;
  clock?: Clock;
  onCorruption?: (report: CorruptionReport) => void;
  /** The `state_update` breaker the writes go through. */
  breaker?: Breaker;
  /**
   * The process's metrics. `cadre_transactions_aborted_total` counts each transaction record this
   * store turns from pending to aborted: its own transaction failing before its commit point (a
   * key changed, an error), or another writer's found past its deadline. A record is aborted
   * once, by whoever wins its compare-and-set, so summed over processes each abort counts once.
   * Every compare-and-set its keys and records lose counts in `cadre_state_conflicts_total` (the
   * StateStores below record it; this file does no compare-and-set of its own). Absent, nothing
   * is recorded.
   */
  metrics?: CadreMetrics;
  /** Test hook: awaited after each key is prepared and after the commit point. */
  fault?: (point: TxnFaultPoint, detail: { txid: string; key?: string }) => Promise<void>;
}

/** The outcome of a transaction. */
export interface Committed {
  /** "" when `fn` wrote nothing. */
  txid: string;
  keys: string[];
}

/** A key read with its revision; `env` undefined when the key was never written. */
interface Read<T> {
  key: string;
  revision: number;
  env: Envelope<T> | undefined;
  /** The undecided transaction whose intent is on the key (its old value is in `env`). */
  pending?: string;
}

/** A key that holds a live intent: the transaction is still deciding. */
class IntentPendingError extends ConcurrentModificationError {}

/** One committed update, as the log holds it. */
export interface LogEntry<T> {
  /** Log (stream) sequence of the write that made it visible: the commit record or the key. */
  seq: number;
  txid: string;
  writes: Record<string, T | null>;
}

/** What {@link TxStore.rollback} did. */
export interface RollbackReport {
  txid: string;
  /** Keys whose value changed. */
  keys: string[];
  /** Transactions after the checkpoint that were replayed, and those skipped on request. */
  replayed: string[];
  skipped: string[];
  /** Log entries that failed their checksum or schema and were left out, by sequence. */
  invalid: number[];
  /** Keys that were damaged with no good revision left: reset before the transaction wrote them. */
  cleared: string[];
  /** Each key read back after the rollback against the value it was to have. */
  verified: { keys: number; mismatched: string[] };
}

/** A transactional view of one KV bucket whose values have schema `schema`. */
export class TxStore<T> {
  private readonly keys: StateStore<Envelope<T>>;
  private readonly records: StateStore<TxnRecord>;
  private readonly checkpoints: StateStore<Checkpoint<T>>;
  private readonly clock: Clock;
  private readonly timeoutMs: number;

  constructor(
    readonly kv: KV,
    private readonly schema: z.ZodType<T>,
    private readonly opts: TxStoreOptions,
    readonly name = "state",
  ) {
    const envelope = envelopeOf(schema);
    const storeOpts = {
      ...(opts.onCorruption ? { onCorruption: opts.onCorruption } : {}),
      ...(opts.breaker ? { breaker: opts.breaker } : {}),
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    };
    this.keys = new StateStore(kv, envelope, name, storeOpts);
    this.records = new StateStore(kv, TxnRecordSchema, "transaction record", storeOpts);
    const checkpoint = z.object({
      position: z.number().int(),
      at: z.number(),
      values: z.record(z.string(), schema.nullable()),
    }) as unknown as z.ZodType<Checkpoint<T>>;
    this.checkpoints = new StateStore(kv, checkpoint, "state checkpoint", storeOpts);
    this.clock = opts.clock ?? systemClock;
    this.timeoutMs = opts.txnTimeoutMs ?? 5000;
  }

  /** The committed value of a key (undefined when absent or deleted). */
  async get(key: string): Promise<T | undefined> {
    const r = await this.resolve(key, false);
    return r.env?.v ?? undefined;
  }

  /**
   * Several keys as one snapshot: no transaction is seen half applied. Reads every key twice;
   * if a revision moved, or an undecided transaction decided, in between, it reads again. Each
   * value held from its first read to its second, so all held together between the passes.
   */
  async read(keys: readonly string[]): Promise<Map<string, T | undefined>> {
    return retry(
      async () => {
        const first = await Promise.all(keys.map((k) => this.resolve(k, false)));
        const second = await Promise.all(keys.map((k) => this.resolve(k, false)));
        first.forEach((r, i) => {
          const again = second[i];
          if (again?.revision !== r.revision || again.pending !== r.pending) {
            throw new ConcurrentModificationError(r.key, r.revision);
          }
        });
        return new Map(first.map((r) => [r.key, r.env?.v ?? undefined]));
      },
      { maxAttempts: 100, baseMs: 2, maxMs: 250, isRetryable: (e) => e instanceof ConcurrentModificationError },
    );
  }

  /**
   * Reads `keys`, calls `fn` with their values and writes what it returns, all or nothing.
   * `fn` may run several times (after a conflict) so it must be pure. Keys it returns must be
   * among `keys`. Retries conflicts with backoff; other errors propagate.
   */
  async transact(
    keys: readonly string[],
    fn: (current: Map<string, T | undefined>) => Writes<T>,
    opts: { maxAttempts?: number } = {},
  ): Promise<Committed> {
    for (const k of keys) {
      if (RESERVED.test(k)) {
        throw new ProtocolError(
          `state key "${k}": a part starting with "_" is reserved for transaction records and checkpoints`,
        );
      }
    }
    return retry(() => this.attempt([...new Set(keys)], fn), {
      maxAttempts: opts.maxAttempts ?? 100,
      baseMs: 2,
      maxMs: 250,
      isRetryable: (e) => e instanceof ConcurrentModificationError,
    });
  }

  private async attempt(keys: string[], fn: (current: Map<string, T | undefined>) => Writes<T>): Promise<Committed> {
    const reads = new Map((await Promise.all(keys.map((k) => this.resolve(k, true)))).map((r) => [r.key, r]));
    const writes = fn(new Map([...reads].map(([k, r]) => [k, r.env?.v ?? undefined])));
    const changed = Object.keys(writes)
      .filter((k) => writes[k] !== undefined)
      .sort();
    for (const k of changed) {
      if (!reads.has(k)) throw new ProtocolError(`transaction writes "${k}", which is not among the keys it read`);
    }
    if (changed.length === 0) return { txid: "", keys: [] };
    const txid = randomUUID();
    const readOnly = keys.filter((k) => !changed.includes(k));

    // One key and nothing else to check: its compare-and-set is already atomic.
    if (changed.length === 1 && readOnly.length === 0) {
      const k = changed[0] as string;
      await this.write(reads.get(k) as Read<T>, { v: writes[k] ?? null, by: txid });
      return { txid, keys: changed };
    }

    const now = this.clock.now();
    const record: TxnRecord = {
      state: "pending",
      keys: changed,
      writer: this.opts.writer,
      startedAt: now,
      deadline: now + this.timeoutMs,
    };
    const recordRev = await this.records.create(txnKey(txid), record);
    const prepared: Read<T>[] = [];
    try {
      for (const k of changed) {
        const read = reads.get(k) as Read<T>;
        const intent: Envelope<T> = {
          v: read.env?.v ?? null,
          by: read.env?.by ?? "",
          tx: { id: txid, next: writes[k] ?? null },
        };
        prepared.push({ key: k, revision: await this.write(read, intent), env: intent });
        await this.opts.fault?.("prepared", { txid, key: k });
      }
      for (const again of await Promise.all(readOnly.map((k) => this.resolve(k, true)))) {
        if (again.revision !== reads.get(again.key)?.revision) {
          throw new ConcurrentModificationError(again.key, again.revision);
        }
      }
      await this.records.update(txnKey(txid), { ...record, state: "committed" }, recordRev);
    } catch (err) {
      // Aborted, unless the commit reached the server and only its answer was lost.
      if ((await this.abort(txid, prepared)) !== "committed") throw err;
    }
    await this.opts.fault?.("committed", { txid });
    // Committed: resolving the intents is tidying up (readers would do it), so all at once.
    await Promise.all(prepared.map((p) => this.settle(p, { v: p.env?.tx?.next ?? null, by: txid })));
    return { txid, keys: changed };
  }

  /**
   * Marks a transaction aborted if it is still pending and settles the intents it placed by the
   * record's verdict. Returns the verdict.
   */
  private async abort(txid: string, prepared: Read<T>[]): Promise<TxnRecord["state"]> {
    // Whether the attempt that committed was ours: modify may run `fn` several times, and only
    // its last run wrote (an earlier one lost its compare-and-set).
    let marked = false;
    const after = await this.records.modify(txnKey(txid), (r) => {
      const next: TxnRecord | undefined = r && r.state === "pending" ? { ...r, state: "aborted" } : undefined;
      marked = next !== undefined;
      return next;
    });
    // Already decided by someone else (a reader past the deadline): theirs to count.
    if (marked) this.opts.metrics?.transactionsAborted.inc();
    const state = after?.value.state ?? "aborted";
    for (const p of prepared) {
      await this.settle(
        p,
        state === "committed" ? { v: p.env?.tx?.next ?? null, by: txid } : { v: p.env?.v ?? null, by: p.env?.by ?? "" },
      );
    }
    return state;
  }

  /** Replaces an intent by a plain value; someone else resolving it first is fine. */
  private async settle(at: Read<T>, env: Envelope<T>): Promise<void> {
    try {
      await this.keys.update(at.key, env, at.revision);
    } catch (err) {
      if (!(err instanceof ConcurrentModificationError)) throw err;
    }
  }

  private async write(read: Read<T>, env: Envelope<T>): Promise<number> {
    return read.revision === 0 ? this.keys.create(read.key, env) : this.keys.update(read.key, env, read.revision);
  }

  /**
   * Reads a key and settles any intent on it whose transaction has decided (or whose deadline
   * passed). A live intent: `strict` (writers, snapshots) throws IntentPendingError to retry;
   * otherwise the old value is returned.
   */
  private async resolve(key: string, strict: boolean): Promise<Read<T>> {
    for (;;) {
      const got = await this.keys.get(key);
      if (!got) return { key, revision: 0, env: undefined };
      const env = got.value;
      if (!env.tx) return { key, revision: got.revision, env };
      const rec = await this.records.get(txnKey(env.tx.id));
      const state = rec?.value.state ?? "aborted";
      if (state === "pending" && rec) {
        if (this.clock.now() <= rec.value.deadline) {
          if (strict) throw new IntentPendingError(key, got.revision);
          return { key, revision: got.revision, env: { v: env.v, by: env.by }, pending: env.tx.id };
        }
        try {
          await this.records.update(txnKey(env.tx.id), { ...rec.value, state: "aborted" }, rec.revision);
          this.opts.metrics?.transactionsAborted.inc();
        } catch (err) {
          if (!(err instanceof ConcurrentModificationError)) throw err;
        }
        continue; // read the record's verdict again
      }
      const clean: Envelope<T> = state === "committed" ? { v: env.tx.next, by: env.tx.id } : { v: env.v, by: env.by };
      await this.settle({ key, revision: got.revision, env }, clean);
    }
  }

  /** The latest stream sequence of the bucket (the log position now). */
  async position(js: JetStreamClient): Promise<number> {
    const jsm = await js.jetstreamManager();
    const info = await jsm.streams.info(`KV_${bucketOf(this.kv)}`);
    return info.state.last_seq;
  }

  /** The data keys under `prefix` (not records or checkpoints), sorted. */
  async keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${prefix}>`)) if (!RESERVED.test(k)) keys.push(k);
    return keys.sort();
  }

  /**
   * Takes a checkpoint of every key under `prefix` (which ends with "."): their values as of
   * one log position, stored under `<prefix>_ckpt.<position>`. Consistent: it reads the
   * position, then the keys; if any key was written after that position (or one appeared, or
   * a transaction on them is undecided) it starts again.
   */
  async checkpoint(js: JetStreamClient, prefix: string): Promise<Checkpoint<T>> {
    return retry(
      async () => {
        const position = await this.position(js);
        const keys = await this.keysUnder(prefix);
        const reads = await Promise.all(keys.map((k) => this.resolve(k, true)));
        const moved = reads.find((r) => r.revision > position);
        if (moved) throw new ConcurrentModificationError(moved.key, position);
        if ((await this.keysUnder(prefix)).join("\n") !== keys.join("\n")) {
          throw new ConcurrentModificationError(`${prefix}>`, position);
        }
        const ck: Checkpoint<T> = {
          position,
          at: this.clock.now(),
          values: Object.fromEntries(reads.map((r) => [r.key, r.env?.v ?? null])),
        };
        await this.checkpoints.put(checkpointKey(prefix, position), ck);
        return ck;
      },
      { maxAttempts: 50, baseMs: 5, maxMs: 250, isRetryable: (e) => e instanceof ConcurrentModificationError },
    );
  }

  /** The checkpoints kept under `prefix`, oldest first. */
  async checkpointsOf(prefix: string): Promise<number[]> {
    const out: number[] = [];
    for (const k of await listKeys(this.kv, `${prefix}_ckpt.>`)) out.push(Number(k.slice(`${prefix}_ckpt.`.length)));
    return out.sort((a, b) => a - b);
  }

  /**
   * Restores the keys under `prefix` to the checkpoint taken at `position` (its checksum
   * verified), then replays the committed transactions after it except those in `skip`,
   * verifying each value; the result is written as one transaction. Meant for an operator with
   * the workflow frozen: writes that commit meanwhile are not in the replay.
   */
  async rollback(
    js: JetStreamClient,
    logStream: string,
    prefix: string,
    position: number,
    skip: readonly string[] = [],
  ): Promise<RollbackReport> {
    const ck = (await this.checkpoints.get(checkpointKey(prefix, position)))?.value;
    if (!ck) throw new NotFoundError(`checkpoint of "${prefix}" at log position`, String(position));
    const jsm = await js.jetstreamManager();
    const first = (await jsm.streams.info(logStream)).state.first_seq;
    if (first > position + 1) {
      throw new NotFoundError(
        `state log entry (the log now starts at ${first}: it was trimmed, so checkpoint ${position} cannot be replayed) at position`,
        String(position + 1),
      );
    }
    const upTo = await this.position(js);
    const { entries, invalid } = await readLog(
      js,
      logStream,
      bucketOf(this.kv),
      this.schema,
      prefix,
      upTo,
      position + 1,
    );
    const target = new Map<string, T | null>(Object.entries(ck.values));
    const replayed: string[] = [];
    const skipped: string[] = [];
    for (const e of entries) {
      // A key created after the checkpoint is in the rollback too: absent, unless replayed.
      for (const k of Object.keys(e.writes)) if (!target.has(k)) target.set(k, null);
      if (skip.includes(e.txid)) {
        skipped.push(e.txid);
        continue;
      }
      replayed.push(e.txid);
      for (const [k, v] of Object.entries(e.writes)) target.set(k, v);
    }
    const unknown = skip.filter((id) => !skipped.includes(id));
    if (unknown.length > 0) {
      throw new NotFoundError(`transaction after log position ${position} under "${prefix}"`, unknown.join(", "));
    }
    const keys = [...target.keys()];
    const cleared = await this.clearDamaged(keys);
    const done = await this.transact(keys, (current) => {
      const w: Writes<T> = {};
      for (const k of keys) {
        const want = target.get(k) ?? null;
        if (JSON.stringify(current.get(k) ?? null) !== JSON.stringify(want)) w[k] = want;
      }
      return w;
    });
    // Read back, operation by operation: each key must now hold what the replay made of it.
    const after = await this.read(keys);
    const same = (k: string) => JSON.stringify(after.get(k) ?? null) === JSON.stringify(target.get(k) ?? null);
    const mismatched = keys.filter((k) => !same(k));
    return {
      txid: done.txid,
      keys: done.keys,
      replayed,
      skipped,
      invalid,
      cleared,
      verified: { keys: keys.length, mismatched },
    };
  }

  /**
   * Keys whose stored value fails its checksum or schema and have no good revision left in the
   * bucket's history (a read fails on them): each is reset to deleted by compare-and-set at the
   * damaged revision, so that a transaction can read and write it. Only for rollback, which
   * writes every such key's value from the checkpoint and the log next; the workflow is frozen,
   * and a rollback interrupted between the two leaves the key deleted, not damaged (running it
   * again finishes it).
   */
  private async clearDamaged(keys: readonly string[]): Promise<string[]> {
    const cleared: string[] = [];
    for (const k of keys) {
      const e = await this.kv.get(k);
      if (e?.operation !== "PUT" || e.value.length === 0) continue;
      try {
        await this.keys.get(k);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        await this.keys.update(k, { v: null, by: "" }, e.revision);
        cleared.push(k);
      }
    }
    return cleared;
  }
}

/**
 * Reads the log stream (a mirror of the bucket's stream) from `from` up to `upTo` and returns
 * the committed transactions that touched keys under `prefix`, in commit order. A multi-key transaction is one
 * entry at its commit record's sequence; the later writes that resolve its intents, and writes
 * that roll intents back, are not updates and are left out. A value that fails its checksum or
 * schema is left out and its sequence reported.
 */
export async function readLog<T>(
  js: JetStreamClient,
  logStream: string,
  bucket: string,
  schema: z.ZodType<T>,
  prefix: string,
  upTo: number,
  from = 1,
): Promise<{ entries: LogEntry<T>[]; invalid: number[] }> {
  const entries: LogEntry<T>[] = [];
  const invalid: number[] = [];
  if (upTo < from) return { entries, invalid };
  // The mirror copies asynchronously: wait until it holds everything up to `upTo`.
  const jsm = await js.jetstreamManager();
  const end = Date.now() + 10_000;
  while ((await jsm.streams.info(logStream)).state.last_seq < upTo) {
    if (Date.now() > end) {
      throw new UnavailableError(`the state log ${logStream} has not caught up with position ${upTo} in 10 s`, {
        stream: logStream,
        position: upTo,
      });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const envelope = envelopeOf(schema);
  const subjectPrefix = `$KV.${bucket}.`;
  const seen = new Set<string>();
  const intents = new Map<string, Map<string, T | null>>();
  const consumer = await js.consumers.get(logStream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: from,
  });
  const messages = await consumer.consume();
  try {
    for await (const m of messages) {
      const key = m.subject.slice(subjectPrefix.length);
      const ops = m.headers?.get("KV-Operation");
      if (m.data.length > 0 && !ops) {
        const raw = verifyChecksum(m.data);
        if (key.startsWith(TXN_PREFIX)) {
          const rec = raw === undefined ? undefined : TxnRecordSchema.safeParse(raw);
          const id = key.slice(TXN_PREFIX.length);
          if (rec?.success && rec.data.state === "committed" && !seen.has(id)) {
            seen.add(id);
            const writes = Object.fromEntries(
              [...(intents.get(id) ?? new Map<string, T | null>())].filter(([k]) => k.startsWith(prefix)),
            );
            if (Object.keys(writes).length > 0) entries.push({ seq: m.seq, txid: id, writes });
          }
        } else if (key.startsWith(prefix) && !RESERVED.test(key)) {
          const env = raw === undefined ? undefined : envelope.safeParse(raw);
          if (!env?.success) invalid.push(m.seq);
          else if (env.data.tx) {
            const byKey = intents.get(env.data.tx.id) ?? new Map<string, T | null>();
            byKey.set(key, env.data.tx.next);
            intents.set(env.data.tx.id, byKey);
          } else if (env.data.by && !seen.has(env.data.by)) {
            // A single-key transaction; resolutions and roll-backs carry an id already seen.
            seen.add(env.data.by);
            entries.push({ seq: m.seq, txid: env.data.by, writes: { [key]: env.data.v } });
          }
        }
      }
      if (m.seq >= upTo || m.info.pending === 0) break;
    }
  } finally {
    messages.stop();
  }
  return { entries, invalid };
}
