/**
 * What the simulation puts in place of NATS: a timer heap for the hosts' clocks (runtime's
 * `Clock` interface; the supervisor's own clock is runtime's `ManualClock`), an in-memory KV
 * bucket that counts its operations and keeps the bytes written, and a NATS connection that
 * delivers publishes after a network delay and answers requests with a responder it is given.
 *
 * Why a heap beside `ManualClock`: `ManualClock.advance` scans every pending timer per timer it
 * fires, which is right for a test's handful of timers; 10^3 hosts each with a heartbeat timer
 * and messages in flight would make that ~10^10 steps for a few simulated minutes. The
 * supervisor's clock keeps only its own few timers (the detector's check loop, the prune).
 */

import type { Clock, ManualClock } from "@cadre/runtime";
import type { KV } from "@nats-io/kv";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Timers of every simulated host, in time order; time itself is the supervisor's clock. */
export class Scheduler {
  private readonly heap: Timer[] = [];
  private seq = 0;

  constructor(readonly clock: ManualClock) {}

  /** Runs `fn` at simulated time `at` (not before the current time). */
  at(at: number, fn: () => void): Timer {
    const t: Timer = { at: Math.max(at, this.clock.now()), seq: ++this.seq, fn, cancelled: false };
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Timer, h[p] as Timer)) break;
      [h[i], h[p]] = [h[p] as Timer, h[i] as Timer];
      i = p;
    }
    return t;
  }

  /**
   * Runs every host timer due up to `end`, in order; before each, the supervisor's clock moves
   * to its time (firing the supervisor's own timers due by then).
   */
  runUntil(end: number): void {
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > end) break;
      this.pop();
      if (next.cancelled) continue;
      this.clock.advance(next.at - this.clock.now());
      next.fn();
    }
    if (end > this.clock.now()) this.clock.advance(end - this.clock.now());
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as Timer;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as Timer, h[m] as Timer)) m = l;
      if (r < h.length && before(h[r] as Timer, h[m] as Timer)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Timer, h[i] as Timer];
      i = m;
    }
  }

  /** A host's clock: the shared time, its timers late by `lagMs()` (its event loop's own delay). */
  hostClock(lagMs: () => number): Clock {
    return {
      now: () => this.clock.now(),
      setTimeout: (fn, ms) => this.at(this.clock.now() + ms + lagMs(), fn),
      clearTimeout: (h) => {
        if (h) (h as Timer).cancelled = true;
      },
    };
  }
}

const before = (a: Timer, b: Timer): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/** Operations a {@link MemoryKv} served and what it holds. */
export interface KvCounts {
  gets: number;
  puts: number;
  deletes: number;
}

/** A KV bucket in memory with the parts of nats.js's `KV` that Cadre's stores use. */
export class MemoryKv {
  readonly bucket: string;
  readonly counts: KvCounts = { gets: 0, puts: 0, deletes: 0 };
  private readonly entries = new Map<string, { value: Uint8Array; revision: number }>();
  private revision = 0;

  constructor(bucket: string) {
    this.bucket = bucket;
  }

  /** As the `KV` the stores take. */
  asKv(): KV {
    return this as unknown as KV;
  }

  async get(key: string): Promise<{ key: string; value: Uint8Array; revision: number; operation: "PUT" } | null> {
    this.counts.gets++;
    const e = this.entries.get(key);
    return e ? { key, value: e.value, revision: e.revision, operation: "PUT" } : null;
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    this.counts.puts++;
    this.entries.set(key, { value, revision: ++this.revision });
    return this.revision;
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    if (this.entries.has(key)) throw new Error("wrong last sequence: key exists");
    return this.put(key, value);
  }

  async update(key: string, value: Uint8Array, expected: number): Promise<number> {
    if (this.entries.get(key)?.revision !== expected) throw new Error("wrong last sequence");
    return this.put(key, value);
  }

  async delete(key: string): Promise<void> {
    this.counts.deletes++;
    this.entries.delete(key);
  }

  /** Keys matching a NATS-style filter (`team.*`), as nats.js lists them. */
  async keys(filter = ">"): Promise<AsyncIterable<string>> {
    const matching = [...this.entries.keys()].filter((k) => subjectMatches(filter, k));
    return (async function* () {
      yield* matching;
    })();
  }

  /** Keys under `prefix` and the bytes of their values. */
  sizes(prefix: string): { keys: number; bytes: number; keyBytes: number } {
    let keys = 0;
    let bytes = 0;
    let keyBytes = 0;
    for (const [k, e] of this.entries) {
      if (!k.startsWith(prefix)) continue;
      keys++;
      bytes += e.value.byteLength;
      keyBytes += k.length;
    }
    return { keys, bytes, keyBytes };
  }
}

/** A subscription's callback, as nats.js calls it. */
type Callback = (err: Error | null, m: { subject: string; data: Uint8Array }) => void;

/** Whether a subject matches a NATS pattern (`*` one token, `>` the rest). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/**
 * The parts of a NATS connection the followed and placing code uses: `subscribe` with a
 * callback, `publish` (delivered after `delayMs()` on the scheduler, or at once without one),
 * and `request`, answered by `responder` synchronously. `onDeliver` wraps every delivery (the
 * simulation times the supervisor's heartbeat handling there).
 */
export class FakeNats {
  readonly info = { max_payload: 1024 * 1024 };
  private readonly subs: { pattern: string; cb: Callback }[] = [];

  constructor(
    private readonly o: {
      scheduler?: Scheduler;
      delayMs?: () => number;
      responder?: (subject: string, data: Uint8Array) => Uint8Array;
      onDeliver?: (subject: string, data: Uint8Array, deliver: () => void) => void;
    } = {},
  ) {}

  subscribe(pattern: string, opts: { callback: Callback }): { unsubscribe(): void } {
    const sub = { pattern, cb: opts.callback };
    this.subs.push(sub);
    return { unsubscribe: () => this.subs.splice(this.subs.indexOf(sub), 1) };
  }

  publish(subject: string, data: Uint8Array): void {
    const deliver = () => {
      for (const s of this.subs) if (subjectMatches(s.pattern, subject)) s.cb(null, { subject, data });
    };
    const run = () => (this.o.onDeliver ? this.o.onDeliver(subject, data, deliver) : deliver());
    const { scheduler, delayMs } = this.o;
    if (scheduler && delayMs) scheduler.at(scheduler.clock.now() + delayMs(), run);
    else run();
  }

  async request(subject: string, data: Uint8Array): Promise<{ subject: string; data: Uint8Array }> {
    if (!this.o.responder) throw Object.assign(new Error("no responders"), { name: "NoRespondersError" });
    return { subject, data: this.o.responder(subject, data) };
  }
}
