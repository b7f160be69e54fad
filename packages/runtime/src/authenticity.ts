/**
 * Authentic results. A host signs each result with its nkey (Ed25519, Node's own crypto): that
 * proves which host decided it. It also proves it held the task at that epoch: the supervisor
 * derives a token per task and epoch from a key only it has, sends it in the task message's
 * header (never in the task record, which hosts may read), and a result, a TASK_STARTED and a
 * heartbeat's held entry carry an HMAC keyed with that token. Only a host a delivery of that
 * epoch reached knows the token, so no other host, however permitted, can decide the task.
 */

import { createHash, createHmac, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TaskResult } from "@cadre/protocol";
import { nkeys } from "@nats-io/nats-core";

/** JSON with object keys sorted, so a value signs the same whatever order its keys arrive in. */
function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(",")}}`;
}

/** The bytes a host signs for a result: every field but `offline`, `sig` and `proof`, canonically. */
export function resultDigest(r: TaskResult): Buffer {
  const { offline: _o, sig: _s, proof: _p, ...fields } = r;
  return createHash("sha256")
    .update(`cadre-result:v1\n${canonicalJson(fields)}`)
    .digest();
}

/** Signs results with an identity's nkey. */
export interface ResultSigner {
  readonly publicKey: string;
  sign(r: TaskResult): string;
}

/** The seed in a seed file or a `.creds` file. */
function seedOf(file: string): string | undefined {
  const text = readFileSync(file, "utf8");
  const m = /-----BEGIN USER NKEY SEED-----\s*(SU[A-Z2-7]{56})/.exec(text);
  const seed = m?.[1] ?? text.trim();
  return /^SU[A-Z2-7]{56}$/.test(seed) ? seed : undefined;
}

/** RFC 4648 base32 (no padding), as nkeys are written. */
function base32(text: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new TypeError("not base32");
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

// DER wrappers of a raw Ed25519 key, so Node's own (native) Ed25519 signs and verifies: the
// nkeys library's pure-JS one took milliseconds per result under load.
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/** An nkey user seed (`SU...`: 2 prefix bytes, the 32-byte Ed25519 seed, a checksum) as a key. */
function privateKeyOf(seed: string): KeyObject {
  const raw = base32(seed).subarray(2, 34);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: "der", type: "pkcs8" });
}

const publicKeys = new Map<string, KeyObject>();
/** An nkey user public key (`U...`: 1 prefix byte, the 32-byte key, a checksum) as a key. */
function publicKeyOf(publicKey: string): KeyObject {
  let k = publicKeys.get(publicKey);
  if (!k) {
    const raw = base32(publicKey).subarray(1, 33);
    k = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: "der", type: "spki" });
    if (publicKeys.size > 10_000) publicKeys.clear();
    publicKeys.set(publicKey, k);
  }
  return k;
}

/** A signer from the identity in a credentials file; undefined when there is none (anonymous). */
export function resultSigner(credentials: string | undefined): ResultSigner | undefined {
  if (!credentials) return undefined;
  const seed = seedOf(credentials);
  if (!seed) return undefined;
  const key = privateKeyOf(seed);
  return {
    publicKey: nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey(),
    sign: (r) => sign(null, resultDigest(r), key).toString("base64url"),
  };
}

/** Whether `r.sig` is the signature of the key `publicKey` over the result. */
export function verifyResult(r: TaskResult, publicKey: string): boolean {
  if (!r.sig) return false;
  try {
    return verify(null, resultDigest(r), publicKeyOf(publicKey), Buffer.from(r.sig, "base64url"));
  } catch {
    return false;
  }
}

/**
 * The JetStream message id of a result. Signed, it ends with part of the signature, which only
 * the signing host can produce: a forger publishing first under a predictable id can no longer
 * make JetStream drop the genuine result as its duplicate.
 */
export function signedResultMessageId(base: string, r: TaskResult): string {
  return r.sig ? `${base}:${r.sig.slice(0, 22)}` : base;
}

/**
 * The key task tokens are derived with, from the supervisor's identity seed: an active
 * supervisor and its standby (one identity) derive the same tokens, and nothing is stored.
 * Rotating the supervisor's identity invalidates the tokens of tasks in flight.
 */
export function taskTokenKey(credentials: string | undefined): Buffer | undefined {
  const seed = credentials ? seedOf(credentials) : undefined;
  return seed ? createHmac("sha256", seed).update("cadre-task-token:v1").digest() : undefined;
}

const mac = (key: Buffer | string, text: string): string =>
  createHmac("sha256", key).update(text).digest("base64url").slice(0, 32);

/** The token of a task at an epoch (what its task message's header carries). */
export function taskToken(key: Buffer, taskId: string, epoch: number): string {
  return mac(key, `task\n${taskId}\n${epoch}`);
}

/** A result's proof of holding: the token's HMAC over the result's canonical form. */
export function resultProof(token: string, r: TaskResult): string {
  return mac(token, `result\n${resultDigest(r).toString("hex")}`);
}

/** A held entry's (and TASK_STARTED's) proof: the token's HMAC over task, epoch and host. */
export function heldProof(token: string, taskId: string, epoch: number, hostId: string): string {
  return mac(token, `held\n${taskId}\n${epoch}\n${hostId}`);
}

/** Compares two proofs in constant time. */
export function sameProof(a: string | undefined, b: string): boolean {
  if (a === undefined || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}
