/**
 * The contract between an actor's state machine and the code that does its work. A behaviour
 * is built once per actor from its kind and then called for every task the actor receives.
 */

import type { SubtaskSpec, TaskEnvelope, Usage, WireErrorBody } from "@cadre/protocol";
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
  /**
   * Delegates one subtask as child number `index` of the task and waits for its outcome; for
   * behaviours that delegate while they run (an llm director), absent for the others. The same
   * index gives the same child id, so a retried attempt finds the children it created before.
   */
  delegate?(subtask: SubtaskSpec, index: number): Promise<ChildOutcome>;
  /** Adds what a model call used to the task's usage (reported with its result). */
  addUsage?(usage: Usage): void;
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
   * Absent: the behaviour delegates while it runs, through `ctx.delegate` (an llm director),
   * and its actor runs the agent machine (one `run` per task).
   */
  plan?(ctx: BehaviourContext): SubtaskSpec[];
  /**
   * Produces the output. For a director, `children` are its completed subtasks' outcomes in
   * plan order. Throws a CadreError on failure.
   */
  run(ctx: BehaviourContext, children: ChildOutcome[]): Promise<unknown>;
}
