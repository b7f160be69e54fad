/**
 * Helpers for tests across the workspace (`@cadre/protocol/testing`): catching the typed error
 * a call must throw, a valid task envelope to vary, and frames a bad client would send.
 */

import { pack } from "msgpackr";
import { PROTOCOL_VERSION } from "./codec.js";
import {
  BehaviourFailedError,
  BudgetExceededError,
  CadreError,
  CircularDelegationError,
  ConcurrentModificationError,
  DeadlockVictimError,
  DelegationDepthExceededError,
  HookFailedError,
  InternalError,
  InvalidAgentResponseError,
  InvalidConfigError,
  NotFoundError,
  PermissionDeniedError,
  ProtocolError,
  ProtocolVersionMismatchError,
  ResourceExhaustedError,
  StateLimitError,
  ThrottledError,
  TimeoutError,
  UnavailableError,
} from "./errors.js";
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

/** One instance of every error class of this package, with representative data (round-trip tests). */
export const errorSamples: readonly CadreError[] = [
  new ProtocolError("frame is not valid msgpack (Unexpected end of MessagePack data)", { size: 12 }),
  new ProtocolVersionMismatchError(1, 2),
  new ConcurrentModificationError("workflow.w1abc", 7),
  new StateLimitError("cadre_state", "w1abc.summary", "the bucket is full (max_state_size_mb 100)"),
  new CircularDelegationError(["a", "b", "c", "a"]),
  new DelegationDepthExceededError(["k0", "k1", "k2", "k3", "k4", "k5", "k6"], 6, 5),
  new ResourceExhaustedError("agents of orchestrator engineering-director", 10, 10),
  new InvalidAgentResponseError("backend-engineer", [{ path: "summary", message: "expected string" }]),
  new BehaviourFailedError("command exited with status 2", { exitCode: 2, stderr: "boom" }),
  new BudgetExceededError({
    budget: "workflow w1abc",
    dimension: "requests",
    limit: 6,
    spent: 5,
    reserved: 1,
    requested: 1,
  }),
  new TimeoutError("task w1abc-r-0", 30_000),
  new DeadlockVictimError("w1-r-1", ["w1-r-1", "w1-r-0"], "pool-x"),
  new HookFailedError("audit", "beforeTask", "timeout", "no answer within 5000 ms"),
  new InvalidConfigError("team file", [{ path: "root", message: 'root kind "x" is not declared under kinds' }]),
  new NotFoundError("workflow", "w1abc"),
  new ThrottledError(5, 1_700_000_060_000, "active_agents_count 46 over 45"),
  new UnavailableError("no supervisor answered on cadre.v1.sup.submit", { subject: "cadre.v1.sup.submit" }),
  new PermissionDeniedError("this identity may not call sup.submit", { operation: "sup.submit", roles: ["operator"] }),
  new InternalError("unexpected state", { where: "placement" }),
];
