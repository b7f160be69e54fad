/**
 * The agent machine: one long-lived actor that takes one task at a time, works on it, reports
 * the outcome and goes back to idle. Effects (`work`, `report`) are invoked promise actors the
 * host provides, so the machine itself is pure and tested with a manual clock.
 */

import { assign, setup } from "xstate";
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
  notProvided,
  type QuarantineEvent,
  type ReportInput,
  reportInput,
  type StopEvent,
  type TaskEvent,
  timeoutOutcome,
  withTask,
} from "./shared.js";

/** Context of the agent machine. */
export interface AgentContext extends ActorMachineInput, ActorIdentity {
  current: ActiveTask | null;
  outcome: AgentOutcome | null;
  /** Attempts reported completed / failed since the actor started, and attempts stopped by the host. */
  completed: number;
  failed: number;
  stopped: number;
}

/** Events the agent machine accepts. */
export type AgentEvent = TaskEvent | QuarantineEvent | StopEvent | AdoptEvent;

/**
 * Runs tasks one at a time: `idle` → `working` → `reporting` (or `failed`) → `idle`; STOP
 * while `working` goes straight back to `idle`, reporting nothing.
 *
 * Provide `work` (`fromPromise<unknown, ActiveTask>`: the output; abort on its `signal`) and
 * `report` (`fromPromise<void, ReportInput>`). The attempt timeout is the `attemptTimeout`
 * delay, read from `context.attemptTimeoutMs`.
 */
export const agentMachine = setup({
  types: {} as { context: AgentContext; input: ActorMachineInput; events: AgentEvent },
  actors: {
    work: notProvided<unknown, ActiveTask>("work"),
    report: notProvided<void, ReportInput>("report"),
  },
  delays: {
    attemptTimeout: ({ context }) => context.attemptTimeoutMs,
  },
  actions: {
    countCompleted: assign({ completed: ({ context }) => context.completed + 1 }),
    countFailed: assign({ failed: ({ context }) => context.failed + 1 }),
    countStopped: assign({ stopped: ({ context }) => context.stopped + 1 }),
    clearTask: assign({ current: null, outcome: null }),
  },
}).createMachine({
  id: "agent",
  context: ({ input }) => ({
    actorId: input.actorId,
    kindName: input.kindName,
    attemptTimeoutMs: input.attemptTimeoutMs,
    current: null,
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
          target: "working",
          actions: assign({
            current: ({ event }) => ({ task: event.task, attempt: event.attempt }),
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
    // TASK is deliberately not handled outside idle: the host only dispatches to idle actors,
    // and a stray one must not replace the task in flight.
    working: {
      invoke: {
        src: "work",
        input: ({ context }) => active(context.current),
        onDone: {
          target: "reporting",
          actions: assign({ outcome: ({ event }): AgentOutcome => ({ status: "completed", output: event.output }) }),
        },
        onError: {
          target: "failed",
          actions: assign({ outcome: ({ event }) => failedOutcome(event.error) }),
        },
      },
      // Leaving `working` stops the invoked `work`, which aborts the signal it was given.
      on: { STOP: { target: "idle", actions: ["countStopped", "clearTask"] } },
      after: {
        attemptTimeout: {
          target: "failed",
          actions: assign({ outcome: ({ context }) => timeoutOutcome(context.current, context.attemptTimeoutMs) }),
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
