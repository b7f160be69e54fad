import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TaskResult } from "@cadre/protocol";
import { afterAll, describe, expect, it } from "vitest";
import {
  heldProof,
  resultProof,
  resultSigner,
  sameProof,
  signedResultMessageId,
  taskToken,
  taskTokenKey,
  verifyResult,
} from "./authenticity.js";
import { initSecurity } from "./security.js";

const dir = mkdtempSync(join(tmpdir(), "cadre-authenticity-"));
const files = initSecurity(dir, { hosts: ["host-1", "host-2"] });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const result: TaskResult = {
  taskId: "wf-1.t-1",
  workflowId: "wf-1",
  epoch: 2,
  attempt: 1,
  hostId: "host-1",
  actorId: "a-1",
  status: "completed",
  output: { b: 1, a: [1, 2] },
  startedAt: 1,
  finishedAt: 2,
};

describe("result signatures", () => {
  const host1 = resultSigner(files.credentials("host-1"));
  const host2 = resultSigner(files.credentials("host-2"));

  it("verify against the signing host's key only, over every field but offline, sig and proof", () => {
    if (!host1 || !host2) throw new Error("no signer");
    const sig = host1.sign(result);
    expect(verifyResult({ ...result, sig }, host1.publicKey)).toBe(true);
    expect(verifyResult({ ...result, sig, offline: true, proof: "x".repeat(32) }, host1.publicKey)).toBe(true);
    // Key order does not matter; a changed output or another key does.
    expect(verifyResult({ ...result, output: { a: [1, 2], b: 1 }, sig }, host1.publicKey)).toBe(true);
    expect(verifyResult({ ...result, output: { a: [1, 2], b: 2 }, sig }, host1.publicKey)).toBe(false);
    expect(verifyResult({ ...result, sig }, host2.publicKey)).toBe(false);
    expect(verifyResult(result, host1.publicKey)).toBe(false);
  });

  it("put part of the signature in the message id, which a forger cannot predict", () => {
    if (!host1) throw new Error("no signer");
    const sig = host1.sign(result);
    expect(signedResultMessageId("base", { ...result, sig })).toBe(`base:${sig.slice(0, 22)}`);
    expect(signedResultMessageId("base", result)).toBe("base");
  });

  it("need an identity with a seed", () => {
    expect(resultSigner(undefined)).toBeUndefined();
  });
});

describe("proofs of holding", () => {
  const key = taskTokenKey(files.credentials("supervisor"));
  if (!key) throw new Error("no task key");

  it("derive the same tokens from the same identity (an active supervisor and its standby)", () => {
    const again = taskTokenKey(files.credentials("supervisor"));
    expect(again && taskToken(again, "t", 1)).toBe(taskToken(key, "t", 1));
    const other = taskTokenKey(files.credentials("host-1"));
    expect(other && taskToken(other, "t", 1)).not.toBe(taskToken(key, "t", 1));
    expect(taskTokenKey(undefined)).toBeUndefined();
  });

  it("are bound to the task, its epoch and, for held entries, the host", () => {
    const token = taskToken(key, result.taskId, result.epoch);
    expect(taskToken(key, result.taskId, result.epoch + 1)).not.toBe(token);
    expect(taskToken(key, "wf-1.t-2", result.epoch)).not.toBe(token);
    const held = heldProof(token, result.taskId, result.epoch, "host-1");
    expect(held).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(sameProof(held, heldProof(token, result.taskId, result.epoch, "host-1"))).toBe(true);
    expect(sameProof(held, heldProof(token, result.taskId, result.epoch, "host-2"))).toBe(false);
    // A host without the token (it only knows the ids, from the task records) cannot make one.
    const guessed = heldProof(taskToken(Buffer.from("guess"), result.taskId, result.epoch), result.taskId, 2, "host-1");
    expect(sameProof(guessed, held)).toBe(false);
    expect(sameProof(undefined, held)).toBe(false);
  });

  it("bind a result's proof to its outcome", () => {
    const token = taskToken(key, result.taskId, result.epoch);
    const proof = resultProof(token, result);
    expect(sameProof(proof, resultProof(token, { ...result, sig: "s", offline: true }))).toBe(true);
    expect(sameProof(proof, resultProof(token, { ...result, output: { forged: true } }))).toBe(false);
    expect(sameProof(proof, resultProof(token, { ...result, hostId: "host-2" }))).toBe(false);
  });
});
