/**
 * The agent machine: one task at a time, idle → working → reporting → idle, or working →
 * failed → idle when the work throws or overruns its time limit. Effects are invoked actors
 * (`work`, `report`) that the host provides; the time limit is an XState delay, so tests
 * drive it with a clock.
 */

import { type TaskEnvelope, TimeoutError, toCadreError, type WireErrorBody } from "@cadre/protocol";
import { assign, fromPromise, setup } from "xstate";

/** What an attempt produced. */
export type AgentOutcome = { status: "completed"; output: unknown } | { status: "failed"; error: WireErrorBody };

/** The task an actor holds. */
export interface ActiveTask {
  task: TaskEnvelope;
  attempt: number;
}

/** Input of both machines. */
export interface ActorInput {
  actorId: string;
  kindName: string;
  attemptTimeoutMs: number;
}

/** Input of the `report` actor. */
export interface ReportInput extends ActiveTask {
  outcome: AgentOutcome;
}

const notProvided = (name: string) =>
  fromPromise<never, unknown>(async () => {
    throw new Error(`${name} is not provided; the host supplies it with machine.provide()`);
  });

/** Turns what an invoked actor threw into the failed outcome. */
export const failedOutcome = (err: unknown): AgentOutcome => ({ status: "failed", error: toCadreError(err).toWire() });

/** The failed outcome of an attempt that overran its time limit. */
export const timeoutOutcome = (current: ActiveTask | null, ms: number): AgentOutcome => ({
  status: "failed",
  error: new TimeoutError(`task ${current?.task.taskId ?? "?"} attempt ${current?.attempt ?? "?"}`, ms).toWire(),
});

export const agentMachine = setup({
  types: {
    input: {} as ActorInput,
    context: {} as ActorInput & {
      current: ActiveTask | null;
      outcome: AgentOutcome | null;
      completed: number;
      failed: number;
    },
    events: {} as { type: "TASK"; task: TaskEnvelope; attempt: number },
  },
  actors: {
    work: notProvided("work") as unknown as ReturnType<typeof fromPromise<unknown, ActiveTask>>,
    report: notProvided("report") as unknown as ReturnType<typeof fromPromise<void, ReportInput>>,
  },
  delays: {
    attemptTimeout: ({ context }) => context.attemptTimeoutMs,
  },
}).createMachine({
  id: "agent",
  context: ({ input }) => ({ ...input, current: null, outcome: null, completed: 0, failed: 0 }),
  initial: "idle",
  states: {
    idle: {
      entry: assign({ current: null, outcome: null }),
      on: {
        TASK: {
          target: "working",
          actions: assign({ current: ({ event }) => ({ task: event.task, attempt: event.attempt }) }),
        },
      },
    },
    working: {
      invoke: {
        src: "work",
        input: ({ context }) => context.current as ActiveTask,
        onDone: {
          target: "reporting",
          actions: assign({ outcome: ({ event }) => ({ status: "completed", output: event.output }) }),
        },
        onError: { target: "failed", actions: assign({ outcome: ({ event }) => failedOutcome(event.error) }) },
      },
      // Leaving the state stops the invoked work and aborts its signal.
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
        input: ({ context }) => ({ ...(context.current as ActiveTask), outcome: context.outcome as AgentOutcome }),
        onDone: { target: "idle", actions: assign({ completed: ({ context }) => context.completed + 1 }) },
        onError: { target: "idle", actions: assign({ completed: ({ context }) => context.completed + 1 }) },
      },
    },
    failed: {
      invoke: {
        src: "report",
        input: ({ context }) => ({ ...(context.current as ActiveTask), outcome: context.outcome as AgentOutcome }),
        onDone: { target: "idle", actions: assign({ failed: ({ context }) => context.failed + 1 }) },
        onError: { target: "idle", actions: assign({ failed: ({ context }) => context.failed + 1 }) },
      },
    },
  },
});
