/**
 * The msgpackr codec. A frame is a msgpack map `{ v, type, sender, cid, ts, body }`; `decode`
 * checks the size, the version and the type, then parses the body with the type's schema, so
 * nothing unparsed gets past the boundary. Every failure is a typed error.
 */

import { Packr } from "msgpackr";
import { type CadreError, formatIssues, fromWire, ProtocolError, ProtocolVersionMismatchError } from "./errors.js";
import { type Body, type BodyInput, type MessageType, messages } from "./operations.js";

/** Protocol version carried by every frame. */
export const PROTOCOL_VERSION = 1;

/** Largest frame `decode` accepts. @default 1 MiB (nats-server's default max_payload). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/**
 * Deepest nesting of arrays and maps in a frame. A frame is a JSON value in msgpack clothing:
 * every service stores, logs and prints what it receives with JSON.stringify, which overflows
 * the stack at a few thousand levels (msgpackr itself decodes about 5,000), and a throw in a NATS
 * subscription callback ends the connection's reader (the service stays up, deaf). 128 is
 * serde_json's default limit; Cadre's own messages nest a few dozen levels at most.
 */
export const MAX_FRAME_DEPTH = 128;

/**
 * Most array elements and map entries in a frame, all levels together. A schema reports one
 * issue per bad element: a 1 MiB frame of a million nils in a list of names took every receiver
 * a second and ~700 MB of memory to refuse (the resident size stayed). 100,000 is ten times the
 * largest list a Cadre message holds (10,000 held or parked tasks).
 */
export const MAX_FRAME_ITEMS = 100_000;

/** A decoded message. */
export interface Message<T extends MessageType = MessageType> {
  v: number;
  type: T;
  /** Who sent it (a service or host id). */
  sender: string;
  /** Correlation id: ties a reply, event or result to what caused it. */
  cid: string;
  /** Sender's clock, epoch milliseconds. */
  ts: number;
  body: Body<T>;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Encoding options. */
export interface EncodeOptions {
  sender: string;
  /** @default "" */
  cid?: string;
  /** @default Date.now() */
  ts?: number;
}

/** Encodes a message. The body is parsed with its schema first: a bad body never leaves. */
export function encode<T extends MessageType>(type: T, body: BodyInput<T>, opts: EncodeOptions): Uint8Array {
  const parsed = messages[type].safeParse(body);
  if (!parsed.success) {
    throw invalid(`cannot send "${type}"`, type, parsed.error.issues);
  }
  const envelope = {
    v: PROTOCOL_VERSION,
    type,
    sender: opts.sender,
    cid: opts.cid ?? "",
    ts: opts.ts ?? Date.now(),
    body: parsed.data,
  };
  const bad = notJson(envelope);
  if (bad) throw new ProtocolError(`cannot send "${type}": ${bad.reason} at ${bad.path}`, { type, path: bad.path });
  return packr.pack(envelope);
}

/** Decodes and validates a frame of any known type. */
export function decode(bytes: Uint8Array, maxBytes = MAX_FRAME_BYTES): Message {
  if (bytes.byteLength > maxBytes) {
    throw new ProtocolError(`frame of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}`, {
      size: bytes.byteLength,
      limit: maxBytes,
    });
  }
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (err) {
    throw new ProtocolError(
      `frame is not valid msgpack (${clip((err as Error).message)})`,
      { size: bytes.byteLength },
      { cause: err },
    );
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    const received = raw === null ? "null" : Array.isArray(raw) ? "array" : typeof raw;
    throw new ProtocolError(
      `frame is not a message envelope (expected a map with v, type and body, received ${received})`,
      { size: bytes.byteLength, received },
    );
  }
  // What JSON cannot hold never gets past the boundary: every receiver would throw on it later.
  const bad = notJson(raw);
  if (bad) {
    throw new ProtocolError(`frame is not a JSON value: ${bad.reason} at ${bad.path}`, {
      size: bytes.byteLength,
      path: bad.path,
    });
  }
  const env = raw as Record<string, unknown>;
  if (env.v !== PROTOCOL_VERSION) throw new ProtocolVersionMismatchError(PROTOCOL_VERSION, env.v);
  const type = env.type;
  if (typeof type !== "string" || !Object.hasOwn(messages, type)) {
    throw new ProtocolError(`unknown message type ${clip(JSON.stringify(type) ?? String(type))}`, {
      type: clip(String(type)),
    });
  }
  if (typeof env.sender !== "string" || typeof env.cid !== "string" || typeof env.ts !== "number") {
    throw new ProtocolError(`"${type}" envelope lacks sender, cid or ts`, { type });
  }
  const schema = messages[type as MessageType];
  const parsed = schema.safeParse(env.body);
  if (!parsed.success) {
    throw invalid(`"${type}" body is invalid`, type, parsed.error.issues);
  }
  return {
    v: PROTOCOL_VERSION,
    type: type as MessageType,
    sender: env.sender,
    cid: env.cid,
    ts: env.ts,
    body: parsed.data,
  };
}

/**
 * Decodes a frame that must be of `type`. An `error` frame is rebuilt and thrown as its typed
 * error, so a reply decodes to the answer or throws what the other side threw.
 */
export function decodeAs<T extends MessageType>(bytes: Uint8Array, type: T, maxBytes = MAX_FRAME_BYTES): Message<T> {
  const msg = decode(bytes, maxBytes);
  if (msg.type === "error" && type !== "error") {
    throw fromWire((msg as Message<"error">).body.error) as CadreError;
  }
  if (msg.type !== type) {
    throw new ProtocolError(`expected a "${type}" message, received "${msg.type}"`, {
      expected: type,
      received: msg.type,
    });
  }
  return msg as Message<T>;
}

/**
 * Why a value is not one JSON can carry, with where (a dotted path), or undefined when it is:
 * a bigint (msgpackr reads every msgpack 64-bit integer as one; JSON.stringify throws on it),
 * arrays and maps nested deeper than {@link MAX_FRAME_DEPTH}, or more than
 * {@link MAX_FRAME_ITEMS} elements in all. Iterative: no input can overflow it.
 */
function notJson(root: unknown): { reason: string; path: string } | undefined {
  const stack: [value: unknown, depth: number, path: string][] = [[root, 0, "(root)"]];
  let items = 0;
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [v, depth, path] = top;
    if (typeof v === "bigint") {
      return { reason: "a 64-bit integer (msgpack uint64/int64, which JSON has no number for)", path: shortPath(path) };
    }
    if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || v instanceof Date) continue;
    if (depth >= MAX_FRAME_DEPTH) {
      return { reason: `arrays or maps nested deeper than ${MAX_FRAME_DEPTH} levels`, path: shortPath(path) };
    }
    const keys = Array.isArray(v) ? undefined : Object.keys(v);
    const values = keys ? keys.map((k) => (v as Record<string, unknown>)[k]) : (v as unknown[]);
    items += values.length;
    if (items > MAX_FRAME_ITEMS) {
      return { reason: `more than ${MAX_FRAME_ITEMS} array elements and map entries`, path: shortPath(path) };
    }
    values.forEach((x, i) => {
      if (typeof x === "bigint" || (x !== null && typeof x === "object")) {
        const k = keys ? keys[i] : i;
        stack.push([x, depth + 1, depth === 0 ? String(k) : `${path}.${k}`]);
      }
    });
  }
  return undefined;
}

/** A path as an error shows it: keys can be 64 KiB and paths 128 levels, the reply must stay small. */
const shortPath = (path: string): string =>
  path.length > 120 ? `${path.slice(0, 120)}... (${path.length} characters)` : path;

/**
 * What an error echoes of its input, at most: msgpackr's messages include what it read so far,
 * and a type, or a custom issue, can quote a 64 KiB string; every receiver logs the error.
 */
const clip = (text: string): string =>
  text.length > 200 ? `${text.slice(0, 200)}... (${text.length} characters)` : text;

/** Issues an error lists at most: zod reports one per bad element, and a 1 MiB frame has a million. */
const MAX_ISSUES = 20;

/**
 * The error for a body that breaks its schema, naming its first {@link MAX_ISSUES} issues (and
 * how many more there are): unbounded, one frame of a million bad elements made a 68 MB message
 * that every receiver then logged, holding a service for seconds per frame.
 */
function invalid(
  what: string,
  type: string,
  all: readonly { path: readonly PropertyKey[]; message: string }[],
): ProtocolError {
  const issues = formatIssues(all.slice(0, MAX_ISSUES)).map((i) => ({
    path: shortPath(i.path),
    message: clip(i.message),
  }));
  const more = all.length - issues.length;
  const text = issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ");
  return new ProtocolError(`${what}: ${text}${more > 0 ? `; and ${more} more` : ""}`, {
    type,
    issues,
    ...(more > 0 ? { moreIssues: more } : {}),
  });
}
