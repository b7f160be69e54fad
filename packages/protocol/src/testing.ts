/**
 * Helpers for tests across the workspace (`@cadre/protocol/testing`): catching the typed error
 * a call must throw, a valid task envelope to vary, and frames a bad client would send.
 */

import { pack } from "msgpackr";
import { PROTOCOL_VERSION } from "./codec.js";
import { CadreError } from "./errors.js";
import { type TaskEnvelope, TaskEnvelopeSchema } from "./messages.js";

function asCadreError(err: unknown): CadreError {
  if (err instanceof CadreError) return err;
  throw new Error(`expected a CadreError, got ${String(err)}`, { cause: err });
}

/** Runs `fn`, which must throw a CadreError, and returns that error for inspection. */
export function thrown(fn: () => unknown): CadreError {
  try {
    fn();
  } catch (err) {
    return asCadreError(err);
  }
  throw new Error("expected the call to throw");
}

/** Awaits `p`, which must reject with a CadreError, and returns that error for inspection. */
export async function rejection(p: Promise<unknown>): Promise<CadreError> {
  try {
    await p;
  } catch (err) {
    return asCadreError(err);
  }
  throw new Error("expected the promise to reject");
}

/**
 * A valid task envelope: by default the first subtask `w1-r-0` of workflow `w1`, of kind
 * `backend-engineer`, delegated by an `engineering-director`. Fields given replace the defaults.
 */
export function taskEnvelope(fields: Partial<TaskEnvelope> = {}): TaskEnvelope {
  const taskId = fields.taskId ?? "w1-r-0";
  return TaskEnvelopeSchema.parse({
    taskId,
    workflowId: "w1",
    teamId: "software-team-0123456789",
    kind: "backend-engineer",
    parentTaskId: "w1-r",
    chain: ["engineering-director", "backend-engineer"],
    depth: 1,
    idempotencyKey: taskId,
    input: { feature: "login" },
    ...fields,
  });
}

/**
 * A frame packed by hand, bypassing `encode`'s checks, as a broken or hostile client would send
 * it: the envelope `{ v, type, sender, cid, ts, body }` with `body` as given.
 */
export function unsafeFrame(type: string, body: unknown, sender = "intruder"): Uint8Array {
  return pack({ v: PROTOCOL_VERSION, type, sender, cid: "", ts: Date.now(), body });
}
