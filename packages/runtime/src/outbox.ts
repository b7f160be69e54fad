/**
 * A durable local outbox: what a host cut off from NATS would have sent, kept on disk and
 * replayed in order when the connection returns.
 *
 * One append-only file. Each record is `[magic u32][length u32][crc32 u32][payload]`, the
 * payload a msgpack `{ seq, subject, key, data }`. `append` resolves only once the record is
 * fsync'd, so what it accepted survives a crash. On open the file is scanned: a torn last
 * record (short, or failing its checksum at the end of the file, which is what a crash mid-write
 * leaves) is cut off and reported; a bad record followed by good ones is corruption and
 * `open` refuses with OUTBOX_CORRUPT rather than drop records silently.
 *
 * Replay sends records in order at a bounded rate and records progress in a second small file
 * (the last sequence sent, fsync'd after each send), so a crash mid-replay resends at most the
 * record in flight; every record carries its idempotency key so the receiver can tell it was
 * already applied. When everything is sent the log is truncated.
 */

import { type FileHandle, mkdir, open as openFile, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import { CadreError, ProtocolError } from "@cadre/protocol";
import { pack, unpack } from "msgpackr";
import { type Clock, sleep, systemClock } from "./clock.js";
import type { CadreMetrics } from "./metrics.js";

const MAGIC = 0xcad0b0c5;
const HEADER = 12;

/** What goes in: one message to send later. */
export interface OutboxEntry {
  subject: string;
  /** Idempotency key: the receiver de-duplicates on it (for results, the result id). */
  key: string;
  data: Uint8Array;
}

/** A stored entry with its place in the log. */
export interface OutboxRecord extends OutboxEntry {
  seq: number;
}

/** The outbox is at its configured size. */
export class OutboxFullError extends CadreError {
  static readonly code = "OUTBOX_FULL";
  constructor(path: string, maxBytes: number, usedBytes: number, records: number) {
    super(
      OutboxFullError.code,
      `outbox ${path} is full (${usedBytes} of ${maxBytes} bytes, ${records} records); it empties when the ` +
        "connection to NATS returns, or raise host.outbox.maxBytes",
      { retryable: true, data: { path, maxBytes, usedBytes, records } },
    );
  }
}
CadreError.register(
  OutboxFullError,
  (w) =>
    new OutboxFullError(
      String(w.data?.path ?? ""),
      Number(w.data?.maxBytes ?? 0),
      Number(w.data?.usedBytes ?? 0),
      Number(w.data?.records ?? 0),
    ),
);

/** A record in the middle of the log fails its checksum: not a torn write, real corruption. */
export class OutboxCorruptError extends CadreError {
  static readonly code = "OUTBOX_CORRUPT";
  constructor(path: string, offset: number, reason: string) {
    super(
      OutboxCorruptError.code,
      `outbox ${path} is corrupt at byte ${offset} (${reason}) with good records after it; ` +
        "move the file aside to start empty, or repair it",
      { data: { path, offset, reason } },
    );
  }
}
CadreError.register(
  OutboxCorruptError,
  (w) => new OutboxCorruptError(String(w.data?.path ?? ""), Number(w.data?.offset ?? 0), String(w.data?.reason ?? "")),
);

export interface OutboxOptions {
  /** The log file; its directory is created. Progress is kept in `<path>.sent`. */
  path: string;
  maxBytes: number;
  /** @default true (tests may turn it off for speed; a crash could then lose accepted records) */
  fsync?: boolean;
  /**
   * The process's metrics: `cadre_outbox_depth` is the records waiting (set on open, on each
   * append and as each replayed record is sent, so a slow replay shows its progress), and
   * `cadre_outbox_replayed_total` counts each record replay sent, a replay stopped by a failed
   * send included. Absent, nothing is recorded.
   */
  metrics?: CadreMetrics;
}

/** The options once defaults are applied. */
type Settings = Required<Omit<OutboxOptions, "metrics">> & Pick<OutboxOptions, "metrics">;

export interface ReplayOptions {
  /** Records sent per second at most. */
  ratePerSecond: number;
  clock?: Clock;
  signal?: AbortSignal;
}

export class Outbox {
  private records: OutboxRecord[] = [];
  private bytes = 0;
  private nextSeq = 1;
  private sentSeq = 0;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly o: Settings,
    private fh: FileHandle,
    /** What opening found: records kept, bytes of a torn tail cut off. */
    readonly openReport: { records: number; tornBytes: number },
  ) {}

  /** Opens (or creates) the outbox, recovering from a torn last record. */
  static async open(opts: OutboxOptions): Promise<Outbox> {
    const o = { fsync: true, ...opts };
    await mkdir(dirname(o.path), { recursive: true });
    const fh = await openFile(o.path, "a+");
    const buf = await readFile(o.path);
    const { records, goodBytes } = scan(o.path, buf);
    const tornBytes = buf.length - goodBytes;
    if (tornBytes > 0) {
      await fh.truncate(goodBytes);
      if (o.fsync) await fh.sync();
    }
    const box = new Outbox(o, fh, { records: records.length, tornBytes });
    box.sentSeq = await readSent(`${o.path}.sent`);
    box.records = records.filter((r) => r.seq > box.sentSeq);
    box.bytes = goodBytes;
    box.nextSeq = (records.at(-1)?.seq ?? box.sentSeq) + 1;
    // What a restart found still waiting is the depth from the start.
    box.recordDepth();
    return box;
  }

  /** Records waiting to be sent, and the log's size on disk. */
  size(): { records: number; bytes: number } {
    return { records: this.records.length, bytes: this.bytes };
  }

  /** Appends and fsyncs; OUTBOX_FULL (nothing written) when it would pass `maxBytes`. */
  append(entry: OutboxEntry): Promise<number> {
    return this.serial(async () => {
      const seq = this.nextSeq;
      const payload = pack({ seq, subject: entry.subject, key: entry.key, data: entry.data });
      const rec = Buffer.alloc(HEADER + payload.length);
      rec.writeUInt32BE(MAGIC, 0);
      rec.writeUInt32BE(payload.length, 4);
      rec.writeUInt32BE(crc32(payload), 8);
      payload.copy(rec, HEADER);
      if (this.bytes + rec.length > this.o.maxBytes) {
        throw new OutboxFullError(this.o.path, this.o.maxBytes, this.bytes, this.records.length);
      }
      await this.fh.write(rec);
      if (this.o.fsync) await this.fh.sync();
      this.nextSeq++;
      this.bytes += rec.length;
      this.records.push({ ...entry, seq });
      this.recordDepth();
      return seq;
    });
  }

  /**
   * Sends every waiting record in order, at most `ratePerSecond`, and stops at the first
   * failure (the rest stay for the next replay). Returns how many were sent.
   */
  replay(send: (r: OutboxRecord) => Promise<void>, opts: ReplayOptions): Promise<number> {
    return this.serial(async () => {
      const clock = opts.clock ?? systemClock;
      const gap = 1000 / opts.ratePerSecond;
      let sent = 0;
      let next = clock.now();
      while (this.records.length > 0) {
        opts.signal?.throwIfAborted();
        const wait = next - clock.now();
        if (wait > 0) await sleep(clock, wait, opts.signal);
        next = Math.max(next, clock.now() - gap) + gap;
        const r = this.records[0] as OutboxRecord;
        await send(r);
        this.sentSeq = r.seq;
        await writeSent(`${this.o.path}.sent`, r.seq, this.o.fsync);
        this.records.shift();
        sent++;
        this.o.metrics?.outboxReplayed.inc();
        this.recordDepth();
      }
      if (this.bytes > 0) {
        // All sent: start the log afresh.
        await this.fh.truncate(0);
        if (this.o.fsync) await this.fh.sync();
        this.bytes = 0;
      }
      return sent;
    });
  }

  async close(): Promise<void> {
    await this.queue.catch(() => {});
    await this.fh.close();
  }

  /** `cadre_outbox_depth`: the records waiting now. */
  private recordDepth(): void {
    this.o.metrics?.outboxDepth.set(this.records.length);
  }

  /** Appends and replays run one at a time, in call order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

/** Reads the log: good records, and where the good part ends. */
function scan(path: string, buf: Buffer): { records: OutboxRecord[]; goodBytes: number } {
  const records: OutboxRecord[] = [];
  let off = 0;
  while (off < buf.length) {
    const bad = (reason: string) => {
      // Only a damaged tail is a torn write; anything good after it means corruption.
      if (findGoodRecordAfter(buf, off + 1)) throw new OutboxCorruptError(path, off, reason);
      return { records, goodBytes: off };
    };
    if (buf.length - off < HEADER) return bad("short header");
    if (buf.readUInt32BE(off) !== MAGIC) return bad("bad magic");
    const len = buf.readUInt32BE(off + 4);
    if (buf.length - off - HEADER < len) return bad("short payload");
    const payload = buf.subarray(off + HEADER, off + HEADER + len);
    if (crc32(payload) !== buf.readUInt32BE(off + 8)) return bad("checksum mismatch");
    let rec: OutboxRecord;
    try {
      rec = unpack(payload) as OutboxRecord;
    } catch (err) {
      throw new ProtocolError(`outbox ${path}: record at byte ${off} has a good checksum but does not decode`, {
        offset: off,
        cause: String(err),
      });
    }
    records.push({ seq: rec.seq, subject: rec.subject, key: rec.key, data: new Uint8Array(rec.data) });
    off += HEADER + len;
  }
  return { records, goodBytes: off };
}

/** Whether a complete, checksummed record starts anywhere from `from` on. */
function findGoodRecordAfter(buf: Buffer, from: number): boolean {
  for (let i = from; i + HEADER <= buf.length; i++) {
    if (buf.readUInt32BE(i) !== MAGIC) continue;
    const len = buf.readUInt32BE(i + 4);
    if (i + HEADER + len > buf.length) continue;
    if (crc32(buf.subarray(i + HEADER, i + HEADER + len)) === buf.readUInt32BE(i + 8)) return true;
  }
  return false;
}

async function readSent(path: string): Promise<number> {
  try {
    const n = Number((await readFile(path, "utf8")).trim());
    return Number.isInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** Written to a temporary file and renamed, so a crash leaves the old or the new value. */
async function writeSent(path: string, seq: number, fsync: boolean): Promise<void> {
  const tmp = join(dirname(path), `.${Date.now()}.sent.tmp`);
  await writeFile(tmp, String(seq), { flush: fsync });
  await rename(tmp, path);
}
