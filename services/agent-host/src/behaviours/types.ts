/**
 * The contract between an actor's state machine and the code that does its work. A behaviour
 * is built once per actor from its kind and then called for every task the actor receives.
 */

import type { SubtaskSpec, TaskEnvelope, WireErrorBody } from "@cadre/protocol";
import type { Clock, WorkflowState } from "@cadre/runtime";

/** What a behaviour sees of the task it is working on. */
export interface BehaviourContext {
  task: TaskEnvelope;
  /** Delivery count of this attempt (1 for the first); retries roll and report differently. */
  attempt: number;
  /** All waiting goes through this clock so tests can drive time. */
  clock: Clock;
  /** Aborted when the attempt is abandoned (timeout, shutdown); work must stop promptly. */
  signal: AbortSignal;
  /** The workflow's shared state (transactional; refused while the workflow is frozen). */
  state: WorkflowState;
}

/** The final state of one subtask, as a director receives it. */
export interface ChildOutcome {
  taskId: string;
  kind: string;
  status: "completed" | "failed";
  output?: unknown;
  error?: WireErrorBody;
}

/** How an actor of a kind plans and produces its output. */
export interface Behaviour {
  /**
   * Subtasks to delegate for this task (directors/leads); [] for agents. Pure and deterministic
   * for a given task, so a redelivered task asks for the same subtasks (and gets the same ids).
   */
  plan(ctx: BehaviourContext): SubtaskSpec[];
  /**
   * Produces the output. For a director, `children` are its completed subtasks' outcomes in
   * plan order. Throws a CadreError on failure.
   */
  run(ctx: BehaviourContext, children: ChildOutcome[]): Promise<unknown>;
}
