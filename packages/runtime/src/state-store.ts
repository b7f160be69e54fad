/**
 * A typed state store over a JetStream KV bucket with optimistic locking. Values are JSON (so
 * operators can read them with `nats kv get`) and parsed with their zod schema on every read.
 * `update` is a compare-and-set on the key's revision; `modify` retries it with exponential
 * backoff and jitter until it commits.
 */

import { ConcurrentModificationError, formatIssues, ProtocolError } from "@cadre/protocol";
import type { KV } from "@nats-io/kv";
import type { z } from "zod";
import { type RetryOptions, retry } from "./backoff.js";

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

/** Typed, revision-checked access to one KV bucket. */
export class StateStore<T> {
  constructor(
    readonly kv: KV,
    private readonly schema: z.ZodType<T>,
    private readonly name = "state",
  ) {}

  /** Reads a key; undefined when absent or deleted. */
  async get(key: string): Promise<Versioned<T> | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT" || e.value.length === 0) return undefined;
    return { value: this.parse(key, e.value), revision: e.revision };
  }

  /** Writes a new key; ConcurrentModificationError if it exists. */
  async create(key: string, value: T): Promise<number> {
    try {
      return await this.kv.create(key, this.encode(value));
    } catch (err) {
      if (isWrongRevision(err) || (err as Error).message?.includes("exists")) {
        throw new ConcurrentModificationError(key, 0, { cause: err });
      }
      throw err;
    }
  }

  /** Compare-and-set: writes only if the key is still at `expectedRevision`. */
  async update(key: string, value: T, expectedRevision: number): Promise<number> {
    try {
      return await this.kv.update(key, this.encode(value), expectedRevision);
    } catch (err) {
      if (isWrongRevision(err)) throw new ConcurrentModificationError(key, expectedRevision, { cause: err });
      throw err;
    }
  }

  /** Unconditional write (for values with a single writer, such as a host's own record). */
  async put(key: string, value: T): Promise<number> {
    return this.kv.put(key, this.encode(value));
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

  private encode(value: T): Uint8Array {
    const r = this.schema.safeParse(value);
    if (!r.success) {
      throw new ProtocolError(`refusing to store an invalid ${this.name} value`, {
        issues: formatIssues(r.error.issues),
      });
    }
    return enc.encode(JSON.stringify(r.data));
  }

  private parse(key: string, bytes: Uint8Array): T {
    let raw: unknown;
    try {
      raw = JSON.parse(dec.decode(bytes));
    } catch (err) {
      throw new ProtocolError(`${this.name} "${key}" is not JSON`, { key }, { cause: err });
    }
    const r = this.schema.safeParse(raw);
    if (!r.success) {
      throw new ProtocolError(`${this.name} "${key}" does not match its schema`, {
        key,
        issues: formatIssues(r.error.issues),
      });
    }
    return r.data;
  }
}
