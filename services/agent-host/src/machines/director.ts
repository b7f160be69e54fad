/**
 * The director machine: like the agent, one task at a time, but the work is split into plan,
 * delegate, wait for the children, aggregate. Children finish asynchronously and their notices
 * arrive as CHILD_DONE events, possibly before the delegate call has even returned.
 */

import type { SubtaskSpec, WireErrorBody } from "@cadre/protocol";
import { InternalError } from "@cadre/protocol";
import { assign, setup } from "xstate";
import type { ChildOutcome } from "../behaviours/types.js";
import {
  type ActiveTask,
  type ActorIdentity,
  type ActorMachineInput,
  type AdoptEvent,
  type AgentOutcome,
  active,
  adopted,
  failedOutcome,
  identityFrom,
  isRetryableError,
  notProvided,
  type QuarantineEvent,
  type ReportInput,
  reportInput,
  type StopEvent,
  type TaskEvent,
  timeoutOutcome,
  withTask,
} from "./shared.js";

/** Context of the director machine. */
export interface DirectorContext extends ActorMachineInput, ActorIdentity {
  current: ActiveTask | null;
  /** What `plan` asked for, in plan order. */
  subtasks: SubtaskSpec[];
  /** Task ids of the subtasks, in plan order; [] until `delegate` returns. */
  childIds: string[];
  /** Child outcomes received so far, by task id (the first notice per child wins). */
  children: Record<string, ChildOutcome>;
  outcome: AgentOutcome | null;
  completed: number;
  failed: number;
  /** Attempts stopped by the host (STOP). */
  stopped: number;
}

/** Events the director machine accepts. */
export type DirectorEvent =
  | TaskEvent
  | QuarantineEvent
  | StopEvent
  | AdoptEvent
  | { type: "CHILD_DONE"; child: ChildOutcome };

/** Input of the `delegate` actor. */
export interface DelegateInput extends ActiveTask {
  subtasks: SubtaskSpec[];
}

/** Input of the `aggregate` actor. */
export interface AggregateInput extends ActiveTask {
  /** The children's outcomes in plan order. */
  children: ChildOutcome[];
}

/** The first failed child in plan order, if any. */
function firstFailedChild(context: DirectorContext): ChildOutcome | undefined {
  for (const id of context.childIds) {
    const c = context.children[id];
    if (c?.status === "failed") return c;
  }
  return undefined;
}

/** The child's own error. */
function childError(child: ChildOutcome): WireErrorBody {
  return (
    child.error ??
    new InternalError(`subtask ${child.taskId} (${child.kind}) failed without an error`, {
      taskId: child.taskId,
    }).toWire()
  );
}

/**
 * The director's error when a child failed: the child's code, message and data, so the root
 * cause (e.g. a circular chain) reaches the top, with the child named as the `cause` in the
 * data with the child's own `retryable` judgement. The director's failure itself is never
 * retryable: the child's record is final, and a re-run of the same plan (the subtasks have
 * the same ids, delegation is idempotent) would meet the same failed child. So it is the
 * director's final result at once, not redelivered up to its attempts.
 */
export function childFailure(child: ChildOutcome): WireErrorBody {
  const cause = childError(child);
  const retryable = isRetryableError(cause);
  return {
    code: cause.code,
    message: cause.message,
    data: {
      ...cause.data,
      cause: { taskId: child.taskId, kind: child.kind, code: cause.code, message: cause.message, retryable },
    },
    retryable: false,
  };
}

/**
 * Runs delegating tasks one at a time: `idle` → `busy` (`planning` → `delegating` → `waiting`
 * → `aggregating`) → `reporting` (or `failed`) → `idle`. One `attemptTimeout` timer on `busy`
 * covers the whole attempt, including the time the children take.
 *
 * Provide `plan` (`fromPromise<SubtaskSpec[], ActiveTask>`), `delegate`
 * (`fromPromise<string[], DelegateInput>`: child task ids in plan order), `aggregate`
 * (`fromPromise<unknown, AggregateInput>`: the output) and `report`
 * (`fromPromise<void, ReportInput>`). Send `CHILD_DONE` for each child notice.
 */
export const directorMachine = setup({
  types: {} as { context: DirectorContext; input: ActorMachineInput; events: DirectorEvent },
  actors: {
    plan: notProvided<SubtaskSpec[], ActiveTask>("plan"),
    delegate: notProvided<string[], DelegateInput>("delegate"),
    aggregate: notProvided<unknown, AggregateInput>("aggregate"),
    report: notProvided<void, ReportInput>("report"),
  },
  delays: {
    attemptTimeout: ({ context }) => context.attemptTimeoutMs,
  },
  guards: {
    isNewChild: ({ context, event }) => event.type === "CHILD_DONE" && !(event.child.taskId in context.children),
    isNewExpectedChild: ({ context, event }) =>
      event.type === "CHILD_DONE" &&
      context.childIds.includes(event.child.taskId) &&
      !(event.child.taskId in context.children),
    anyChildFailed: ({ context }) => firstFailedChild(context) !== undefined,
    allChildrenDone: ({ context }) => context.childIds.every((id) => id in context.children),
  },
  actions: {
    recordChild: assign({
      children: ({ context, event }) =>
        event.type === "CHILD_DONE" ? { ...context.children, [event.child.taskId]: event.child } : context.children,
    }),
    failWithError: assign({ outcome: (_, params: { error: unknown }) => failedOutcome(params.error) }),
    countCompleted: assign({ completed: ({ context }) => context.completed + 1 }),
    countFailed: assign({ failed: ({ context }) => context.failed + 1 }),
    countStopped: assign({ stopped: ({ context }) => context.stopped + 1 }),
    clearTask: assign({ current: null, subtasks: [], childIds: [], children: {}, outcome: null }),
  },
}).createMachine({
  id: "director",
  context: ({ input }) => ({
    actorId: input.actorId,
    kindName: input.kindName,
    attemptTimeoutMs: input.attemptTimeoutMs,
    current: null,
    subtasks: [],
    childIds: [],
    children: {},
    outcome: null,
    completed: 0,
    failed: 0,
    stopped: 0,
    ...identityFrom(input),
  }),
  on: { ADOPT: { actions: assign(({ context, event }) => adopted(context, event.context)) } },
  initial: "idle",
  states: {
    idle: {
      on: {
        TASK: {
          target: "busy",
          actions: assign({
            current: ({ event }) => ({ task: event.task, attempt: event.attempt }),
            subtasks: [],
            childIds: [],
            children: {},
            outcome: null,
            history: ({ context, event }) => withTask(context.history, event.task.taskId),
          }),
        },
        QUARANTINE: "quarantined",
      },
    },
    // Its responses broke the kind's schema: no tasks until an operator releases it.
    quarantined: {
      on: { RELEASE: "idle" },
    },
    // TASK is deliberately not handled outside idle (see the agent machine).
    busy: {
      initial: "planning",
      // Leaving `busy` stops whichever effect is running, which aborts its signal; STOP also
      // stops waiting for the children (they keep running: delegation is idempotent).
      on: { STOP: { target: "idle", actions: ["countStopped", "clearTask"] } },
      after: {
        attemptTimeout: {
          target: "failed",
          actions: assign({ outcome: ({ context }) => timeoutOutcome(context.current, context.attemptTimeoutMs) }),
        },
      },
      states: {
        planning: {
          invoke: {
            src: "plan",
            input: ({ context }) => active(context.current),
            onDone: [
              {
                guard: ({ event }) => event.output.length === 0,
                target: "aggregating",
                actions: assign({ subtasks: ({ event }) => event.output }),
              },
              { target: "delegating", actions: assign({ subtasks: ({ event }) => event.output }) },
            ],
            onError: {
              target: "#director.failed",
              actions: { type: "failWithError", params: ({ event }) => ({ error: event.error }) },
            },
          },
        },
        delegating: {
          invoke: {
            src: "delegate",
            input: ({ context }) => ({ ...active(context.current), subtasks: context.subtasks }),
            onDone: {
              target: "waiting",
              // Notices recorded early for ids that turn out not to be ours are dropped here.
              actions: assign({
                childIds: ({ event }) => event.output,
                children: ({ context, event }) =>
                  Object.fromEntries(Object.entries(context.children).filter(([id]) => event.output.includes(id))),
              }),
            },
            onError: {
              target: "#director.failed",
              actions: { type: "failWithError", params: ({ event }) => ({ error: event.error }) },
            },
          },
          // Children can finish before the delegate reply reaches us; their ids are not known
          // yet, so keep every notice and sort them out when the ids arrive.
          on: { CHILD_DONE: { guard: "isNewChild", actions: "recordChild" } },
        },
        waiting: {
          always: [
            {
              guard: "anyChildFailed",
              target: "#director.failed",
              actions: assign({
                outcome: ({ context }): AgentOutcome => {
                  const child = firstFailedChild(context);
                  return child
                    ? { status: "failed", error: childFailure(child) }
                    : failedOutcome(new Error("no failed child"));
                },
              }),
            },
            { guard: "allChildrenDone", target: "aggregating" },
          ],
          on: { CHILD_DONE: { guard: "isNewExpectedChild", actions: "recordChild" } },
        },
        aggregating: {
          invoke: {
            src: "aggregate",
            input: ({ context }) => ({
              ...active(context.current),
              children: context.childIds.flatMap((id) => {
                const c = context.children[id];
                return c ? [c] : [];
              }),
            }),
            onDone: {
              target: "#director.reporting",
              actions: assign({
                outcome: ({ event }): AgentOutcome => ({ status: "completed", output: event.output }),
              }),
            },
            onError: {
              target: "#director.failed",
              actions: { type: "failWithError", params: ({ event }) => ({ error: event.error }) },
            },
          },
        },
      },
    },
    reporting: {
      invoke: {
        src: "report",
        input: ({ context }) => reportInput(context.current, context.outcome),
        // The host's report retries on its own; if it still fails the actor must not wedge.
        onDone: { target: "idle", actions: ["countCompleted", "clearTask"] },
        onError: { target: "idle", actions: ["countCompleted", "clearTask"] },
      },
    },
    failed: {
      invoke: {
        src: "report",
        input: ({ context }) => reportInput(context.current, context.outcome),
        onDone: { target: "idle", actions: ["countFailed", "clearTask"] },
        onError: { target: "idle", actions: ["countFailed", "clearTask"] },
      },
    },
  },
});
