/** Types and helpers shared by the agent and director machines. */

import type { InheritedContext, TaskEnvelope, WireErrorBody } from "@cadre/protocol";
import { fromWire, TimeoutError, toCadreError } from "@cadre/protocol";
import { fromPromise } from "xstate";

/** The task an actor is working on and which delivery of it this is. */
export interface ActiveTask {
  task: TaskEnvelope;
  attempt: number;
}

/** How an attempt ended, as handed to `report`. */
export type AgentOutcome = { status: "completed"; output: unknown } | { status: "failed"; error: WireErrorBody };

/** Input of both machines. */
export interface ActorMachineInput {
  actorId: string;
  kindName: string;
  /** Time limit of one attempt, from receiving the task until its outcome is known. */
  attemptTimeoutMs: number;
  /** What a replacement of a quarantined actor inherits from it. */
  inherited?: InheritedContext;
}

/** Context both machines keep about the actor itself. */
export interface ActorIdentity {
  /** Tasks this actor (and the one it replaced) took, latest first, at most 50. */
  history: string[];
  /** The quarantined actor this one replaced, if any. */
  inheritedFrom: string | null;
}

/** The identity context a machine starts with. */
export function identityFrom(input: ActorMachineInput): ActorIdentity {
  return { history: input.inherited?.history ?? [], inheritedFrom: input.inherited?.fromActorId ?? null };
}

/** History with a task taken. */
export const withTask = (history: string[], taskId: string): string[] => [taskId, ...history].slice(0, 50);

/**
 * The host gives a running actor a failed actor's context (`host.actor` adopt, a transfer):
 * from then on it is that actor's replacement, as if it had been spawned with the context.
 * Handled in every state: the task in flight is not touched.
 */
export type AdoptEvent = { type: "ADOPT"; context: InheritedContext };

/**
 * The identity after adopting a context. The adopted history is kept whole (it is what was
 * transferred, at most 50); the actor's own tasks, more recent, come first in what room is left;
 * each task once.
 */
export function adopted(identity: ActorIdentity, context: InheritedContext): ActorIdentity {
  const theirs = [...new Set(context.history)].slice(0, 50);
  const own = identity.history.filter((id) => !theirs.includes(id));
  return { history: [...own.slice(0, 50 - theirs.length), ...theirs], inheritedFrom: context.fromActorId };
}

/**
 * Quarantine: an idle actor told QUARANTINE takes no tasks until RELEASE. The host sends it
 * only when the actor is idle, and never dispatches to a quarantined actor.
 */
export type QuarantineEvent = { type: "QUARANTINE" } | { type: "RELEASE" };

/**
 * The host stops the attempt in flight (its workflow was cancelled, or paused with `now`): the
 * running effect is stopped, which aborts its signal, nothing is reported, and the actor is
 * idle again. The host settles the task's message itself. Ignored once the outcome is known
 * (`reporting`, `failed`): that attempt's report is already on its way.
 */
export type StopEvent = { type: "STOP" };

/** Input of the `report` actor. */
export interface ReportInput extends ActiveTask {
  outcome: AgentOutcome;
}

/** The event that hands an idle actor a task. */
export type TaskEvent = { type: "TASK"; task: TaskEnvelope; attempt: number };

/**
 * Default for every effect: the machines are pure and the host supplies the effects with
 * `machine.provide({ actors })`; forgetting one must fail loudly, not hang.
 */
export function notProvided<TOutput, TInput>(name: string) {
  return fromPromise<TOutput, TInput>(async () => {
    throw new Error(`actor "${name}" is not provided; supply it with machine.provide({ actors: { ${name} } })`);
  });
}

/** The current task, which every working state has by construction. */
export function active(current: ActiveTask | null): ActiveTask {
  if (!current) throw new Error("no current task in a working state (machine invariant broken)");
  return current;
}

/** Input of `report`: the current task and its (necessarily known) outcome. */
export function reportInput(current: ActiveTask | null, outcome: AgentOutcome | null): ReportInput {
  if (!outcome) throw new Error("no outcome in a reporting state (machine invariant broken)");
  return { ...active(current), outcome };
}

/** Anything an effect threw, as the failed outcome it becomes. */
export function failedOutcome(err: unknown): AgentOutcome {
  return { status: "failed", error: toCadreError(err).toWire() };
}

/** The outcome of an attempt that ran out of time. */
export function timeoutOutcome(current: ActiveTask | null, ms: number): AgentOutcome {
  const what = current ? `task ${current.task.taskId} attempt ${current.attempt}` : "task";
  return { status: "failed", error: new TimeoutError(what, ms).toWire() };
}

/**
 * Whether a failed attempt's error may succeed if tried again: the sender's judgement when the
 * error carries one (`retryable` on the wire), else what its code says.
 */
export function isRetryableError(error: WireErrorBody): boolean {
  return error.retryable ?? fromWire(error).retryable;
}
