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
    throw new ProtocolError(`cannot send "${type}": ${issuesText(parsed.error.issues)}`, {
      type,
      issues: formatIssues(parsed.error.issues),
    });
  }
  return packr.pack({
    v: PROTOCOL_VERSION,
    type,
    sender: opts.sender,
    cid: opts.cid ?? "",
    ts: opts.ts ?? Date.now(),
    body: parsed.data,
  });
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
      `frame is not valid msgpack (${(err as Error).message})`,
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
  const env = raw as Record<string, unknown>;
  if (env.v !== PROTOCOL_VERSION) throw new ProtocolVersionMismatchError(PROTOCOL_VERSION, env.v);
  const type = env.type;
  if (typeof type !== "string" || !Object.hasOwn(messages, type)) {
    throw new ProtocolError(`unknown message type ${JSON.stringify(type)}`, { type: String(type) });
  }
  if (typeof env.sender !== "string" || typeof env.cid !== "string" || typeof env.ts !== "number") {
    throw new ProtocolError(`"${type}" envelope lacks sender, cid or ts`, { type });
  }
  const schema = messages[type as MessageType];
  const parsed = schema.safeParse(env.body);
  if (!parsed.success) {
    throw new ProtocolError(`"${type}" body is invalid: ${issuesText(parsed.error.issues)}`, {
      type,
      issues: formatIssues(parsed.error.issues),
    });
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

function issuesText(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return formatIssues(issues)
    .map((i) => `${i.path || "(root)"}: ${i.message}`)
    .join("; ");
}
