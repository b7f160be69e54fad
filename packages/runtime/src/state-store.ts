/**
 * A typed state store over a JetStream KV bucket with optimistic locking. Values are JSON (so
 * operators can read them with `nats kv get`) and parsed with their zod schema on every read.
 * `update` is a compare-and-set on the key's revision; `modify` retries it with exponential
 * backoff and jitter until it commits.
 */

import { crc32 } from "node:zlib";
import { ConcurrentModificationError, formatIssues, ProtocolError, StateLimitError } from "@cadre/protocol";
import type { KV } from "@nats-io/kv";
import type { z } from "zod";
import { type RetryOptions, retry } from "./backoff.js";
import type { Breaker } from "./breaker.js";
import type { CadreMetrics } from "./metrics.js";

/** The bucket's name (the KV interface does not declare it; every implementation has it). */
export const bucketOf = (kv: KV): string => (kv as unknown as { bucket: string }).bucket;

/** A value and the revision it was read at. */
export interface Versioned<T> {
  value: T;
  revision: number;
}

const WRONG_LAST_SEQUENCE = 10071;
const enc = new TextEncoder();
const dec = new TextDecoder();

function isWrongRevision(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; api_error?: { err_code?: number } };
  return (
    e?.code === WRONG_LAST_SEQUENCE ||
    e?.api_error?.err_code === WRONG_LAST_SEQUENCE ||
    (typeof e?.message === "string" && e.message.includes("wrong last sequence"))
  );
}

/**
 * The keys of a bucket (matching `filter`), each once. nats.js lists keys with an ordered
 * consumer that delivers the last message per subject, and a key written while the listing
 * runs is delivered again: iterating `kv.keys()` directly can see a key twice.
 */
export async function listKeys(kv: KV, filter?: string): Promise<string[]> {
  const keys = new Set<string>();
  for await (const k of await kv.keys(filter)) keys.add(k);
  return [...keys];
}

/** A value that failed its checksum (or its schema) and what was done about it. */
export interface CorruptionReport {
  key: string;
  /** The damaged revision. */
  revision: number;
  reason: string;
  /** The revision written back from the key's history, or null when none was good. */
  restoredFrom: number | null;
  restoredAs: number | null;
}

/** The field every stored value carries: CRC32 of the value's JSON without it. */
const CHECKSUM = "_crc";

/** A stored value's JSON without its checksum field, or DAMAGED when the checksum fails. */
const DAMAGED: unique symbol = Symbol("damaged");
function withoutChecksum(raw: unknown): unknown {
  // Values written before checksums (or by other tools) have none and are taken as they are.
  if (!raw || typeof raw !== "object" || !(CHECKSUM in raw)) return raw;
  const { [CHECKSUM]: sum, ...rest } = raw as Record<string, unknown>;
  return crc32(JSON.stringify(rest)) === sum ? rest : DAMAGED;
}

/**
 * The JSON of a stored value without its checksum; undefined when it is not JSON or fails its
 * checksum. Values without one (written before checksums, or by other tools) pass as they are.
 */
export function verifyChecksum(bytes: Uint8Array): unknown {
  try {
    const raw = withoutChecksum(JSON.parse(dec.decode(bytes)));
    return raw === DAMAGED ? undefined : raw;
  } catch {
    return undefined;
  }
}

export interface StateStoreOptions {
  /** Told of every damaged value met on a read (restored or not). */
  onCorruption?: (report: CorruptionReport) => void;
  /** The `state_update` breaker every write goes through (reads do not). */
  breaker?: Breaker;
  /**
   * The process's metrics: every compare-and-set (or create) this store loses counts in
   * `cadre_state_conflicts_total{service}`, `service` being `metrics.service`, whether the
   * caller retries it (as {@link StateStore.modify} does) or not. Absent, nothing is recorded.
   */
  metrics?: CadreMetrics;
  /**
   * Keep the newest value this store read or wrote of up to so many keys, and answer reads of
   * them without a round trip. Only for a bucket whose keys this process alone writes (the
   * active supervisor's task and workflow records): a write by anyone else is found out at this
   * store's next compare-and-set, which then fails, forgets the key and is retried on a fresh
   * read; a value changed behind its back is seen at that read too. Values from the cache are
   * shared: treat them as read-only. Absent or 0: no cache.
   */
  cacheEntries?: number;
}

export class StateStore<T> {
  private readonly onCorruption: (report: CorruptionReport) => void;
  /** The newest value and revision of recently used keys, oldest first (see cacheEntries). */
  private readonly cache = new Map<string, Versioned<T>>();
  /** Which keys are cached now (see setCaching). */
  private cacheable: (key: string) => boolean = () => true;

  constructor(
    readonly kv: KV,
    private readonly schema: z.ZodType<T>,
    private readonly name = "state",
    private readonly opts: StateStoreOptions = {},
  ) {
    this.onCorruption = opts.onCorruption ?? (() => {});
  }

  /**
   * Reads a key; undefined when absent or deleted. A value that fails its checksum or its schema
   * (bytes changed behind Cadre's back) is replaced by the newest good revision in the key's
   * history, written back by compare-and-set, and reported; with no good revision left the
   * read fails with PROTOCOL_ERROR.
   */
  async get(key: string): Promise<Versioned<T> | undefined> {
    const cached = this.cacheable(key) ? this.cache.get(key) : undefined;
    if (cached) {
      this.remember(key, cached);
      return cached;
    }
    const e = await this.kv.get(key);
    if (e?.operation !== "PUT" || e.value.length === 0) return undefined;
    let read: Versioned<T>;
    try {
      read = { value: this.parse(key, e.value), revision: e.revision };
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return this.restore(key, e.revision, err);
    }
    this.remember(key, read);
    return read;
  }

  /** Forgets every cached value (a supervisor that becomes active, or stops being). */
  forgetAll(): void {
    this.cache.clear();
  }

  /**
   * Turns the cache (cacheEntries) on or off, or on for the keys `on` accepts; what it no longer
   * accepts is forgotten. On only for keys this process alone writes (a supervisor's records of
   * the workflows in the partitions it holds).
   */
  setCaching(on: boolean | ((key: string) => boolean)): void {
    this.cacheable = typeof on === "function" ? on : () => on;
    for (const key of [...this.cache.keys()]) if (!this.cacheable(key)) this.cache.delete(key);
  }

  /** Forgets one key's cached value (it was deleted, or is no longer this process's to write). */
  forget(key: string): void {
    this.cache.delete(key);
  }

  private remember(key: string, v: Versioned<T>): void {
    const max = this.opts.cacheEntries ?? 0;
    if (max <= 0 || !this.cacheable(key)) return;
    // A read that was overtaken by a write (its answer older than what the write stored) keeps the newer.
    const newer = this.cache.get(key);
    if (newer && newer.revision > v.revision) return;
    this.cache.delete(key);
    this.cache.set(key, v);
    if (this.cache.size > max) this.cache.delete(this.cache.keys().next().value as string);
  }

  private async restore(key: string, revision: number, damage: ProtocolError): Promise<Versioned<T>> {
    let good: { value: T; bytes: Uint8Array; revision: number } | undefined;
    const history = await this.kv.history({ key });
    const entries: { revision: number; value: Uint8Array; operation: string }[] = [];
    for await (const h of history) entries.push(h);
    for (const h of entries.sort((a, b) => b.revision - a.revision)) {
      if (h.revision >= revision || h.operation !== "PUT") continue;
      try {
        good = { value: this.parse(key, h.value), bytes: h.value, revision: h.revision };
        break;
      } catch {
        // Damaged too: look further back.
      }
    }
    const report = { key, revision, reason: damage.message, restoredFrom: good?.revision ?? null, restoredAs: null };
    if (!good) {
      this.onCorruption(report);
      throw damage;
    }
    const restoredAs = await this.update(key, good.value, revision);
    this.onCorruption({ ...report, restoredAs });
    return { value: good.value, revision: restoredAs };
  }

  /** Writes a new key; ConcurrentModificationError if it exists. */
  async create(key: string, value: T): Promise<number> {
    const { bytes, data } = this.encode(value);
    return this.written(
      key,
      data,
      this.write(key, 0, () => this.kv.create(key, bytes)),
    );
  }

  /** Compare-and-set: writes only if the key is still at `expectedRevision`. */
  async update(key: string, value: T, expectedRevision: number): Promise<number> {
    const { bytes, data } = this.encode(value);
    return this.written(
      key,
      data,
      this.write(key, expectedRevision, () => this.kv.update(key, bytes, expectedRevision)),
    );
  }

  /** Unconditional write (for values with a single writer, such as a host's own record). */
  async put(key: string, value: T): Promise<number> {
    const { bytes, data } = this.encode(value);
    return this.written(
      key,
      data,
      this.write(key, null, () => this.kv.put(key, bytes)),
    );
  }

  /**
   * Caches what a write stored; a write that failed (lost its compare-and-set, or else) forgets
   * the key. While the write is in flight the key is read from the bucket: the new value may be
   * there, and seen by others, before its acknowledgement reaches this process.
   */
  private async written(key: string, data: T, write: Promise<number>): Promise<number> {
    this.cache.delete(key);
    try {
      const revision = await write;
      this.remember(key, { value: data, revision });
      return revision;
    } catch (err) {
      this.cache.delete(key);
      throw err;
    }
  }

  /**
   * Runs a write through the breaker with its errors typed inside it, so the breaker sees a lost
   * compare-and-set as contention (not counted) and a timeout as a failure.
   */
  private write(key: string, expected: number | null, op: () => Promise<number>): Promise<number> {
    const typed = async () => {
      try {
        return await op();
      } catch (err) {
        if (
          expected !== null &&
          (isWrongRevision(err) || (expected === 0 && (err as Error).message?.includes("exists")))
        ) {
          const metrics = this.opts.metrics;
          metrics?.stateConflicts.inc({ service: metrics.service });
          throw new ConcurrentModificationError(key, expected, { cause: err });
        }
        throw this.limited(key, err);
      }
    };
    return this.opts.breaker ? this.opts.breaker.call(typed) : typed();
  }

  /**
   * The server refuses a write that would pass the bucket's size (`max_state_size_mb`) or the
   * size of one message: say so with a typed error instead of JetStream's bare text.
   */
  private limited(key: string, err: unknown): unknown {
    const message = String((err as Error)?.message ?? "").toLowerCase();
    if (message.includes("maximum bytes exceeded")) {
      return new StateLimitError(bucketOf(this.kv), key, "the bucket is full (its max_state_size_mb)", { cause: err });
    }
    if (message.includes("max_payload") || message.includes("maximum payload")) {
      return new StateLimitError(bucketOf(this.kv), key, "the value is larger than NATS accepts in one message", {
        cause: err,
      });
    }
    return err;
  }

  /**
   * Read-modify-write until it commits. `fn` gets the current value (undefined if absent) and
   * returns the new one, or undefined to leave the key unchanged. It may run several times, so
   * it must be pure. Returns what is stored afterwards.
   */
  async modify(
    key: string,
    fn: (current: T | undefined) => T | undefined,
    opts: RetryOptions = {},
  ): Promise<Versioned<T> | undefined> {
    return retry(
      async () => {
        const current = await this.get(key);
        const next = fn(current?.value);
        if (next === undefined) return current;
        const revision = current ? await this.update(key, next, current.revision) : await this.create(key, next);
        return { value: next, revision };
      },
      { maxAttempts: 100, baseMs: 2, maxMs: 250, ...opts },
    );
  }

  /** The bytes to store, and the value as a read would give it back (its schema's defaults applied). */
  private encode(value: T): { bytes: Uint8Array; data: T } {
    const r = this.schema.safeParse(value);
    if (!r.success) {
      throw new ProtocolError(`refusing to store an invalid ${this.name} value`, {
        issues: formatIssues(r.error.issues),
      });
    }
    const json = JSON.stringify(r.data);
    // The checksum is the value's last field, so readers that do not check it see plain JSON.
    const sum = crc32(json);
    const data = r.data;
    if (!json.startsWith("{")) return { bytes: enc.encode(json), data };
    const stored = json === "{}" ? `{"${CHECKSUM}":${sum}}` : `${json.slice(0, -1)},"${CHECKSUM}":${sum}}`;
    return { bytes: enc.encode(stored), data };
  }

  private parse(key: string, bytes: Uint8Array): T {
    let raw: unknown;
    try {
      raw = JSON.parse(dec.decode(bytes));
    } catch (err) {
      throw new ProtocolError(`${this.name} "${key}" is not JSON`, { key }, { cause: err });
    }
    const value = withoutChecksum(raw);
    if (value === DAMAGED) {
      throw new ProtocolError(`${this.name} "${key}" fails its checksum: its bytes were changed`, { key });
    }
    const r = this.schema.safeParse(value);
    if (!r.success) {
      throw new ProtocolError(`${this.name} "${key}" does not match its schema`, {
        key,
        issues: formatIssues(r.error.issues),
      });
    }
    return r.data;
  }
}

/** JSON text's value, or undefined when it is not JSON (for a schema's safeParse to refuse). */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
