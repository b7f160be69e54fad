/**
 * The director machine (directors and leads): idle → busy(planning → delegating → waiting →
 * aggregating) → reporting → idle, or → failed → idle. Child results arrive as CHILD_DONE
 * events, which are accepted while delegating too (a notice can beat the delegate reply).
 * One time limit covers the whole busy phase.
 */

import type { SubtaskSpec, TaskEnvelope } from "@cadre/protocol";
import { assign, fromPromise, setup } from "xstate";
import type { ChildOutcome } from "../behaviours/types.js";
import {
  type ActiveTask,
  type ActorInput,
  type AgentOutcome,
  failedOutcome,
  type ReportInput,
  timeoutOutcome,
} from "./agent.js";

const notProvided = (name: string) =>
  fromPromise<never, unknown>(async () => {
    throw new Error(`${name} is not provided; the host supplies it with machine.provide()`);
  });

interface DirectorContext extends ActorInput {
  current: ActiveTask | null;
  subtasks: SubtaskSpec[];
  childIds: string[];
  children: Record<string, ChildOutcome>;
  outcome: AgentOutcome | null;
  completed: number;
  failed: number;
}

type DirectorEvent =
  | { type: "TASK"; task: TaskEnvelope; attempt: number }
  | { type: "CHILD_DONE"; child: ChildOutcome };

const firstFailedChild = (c: DirectorContext): ChildOutcome | undefined =>
  c.childIds.map((id) => c.children[id]).find((ch) => ch?.status === "failed");

export const directorMachine = setup({
  types: {
    input: {} as ActorInput,
    context: {} as DirectorContext,
    events: {} as DirectorEvent,
  },
  actors: {
    plan: notProvided("plan") as unknown as ReturnType<typeof fromPromise<SubtaskSpec[], ActiveTask>>,
    delegate: notProvided("delegate") as unknown as ReturnType<
      typeof fromPromise<string[], ActiveTask & { subtasks: SubtaskSpec[] }>
    >,
    aggregate: notProvided("aggregate") as unknown as ReturnType<
      typeof fromPromise<unknown, ActiveTask & { children: ChildOutcome[] }>
    >,
    report: notProvided("report") as unknown as ReturnType<typeof fromPromise<void, ReportInput>>,
  },
  delays: {
    attemptTimeout: ({ context }) => context.attemptTimeoutMs,
  },
  actions: {
    /** Keeps the first outcome per child; ignores children that are not ours once we know ours. */
    recordChild: assign({
      children: ({ context, event }) => {
        if (event.type !== "CHILD_DONE") return context.children;
        const id = event.child.taskId;
        if (context.children[id]) return context.children;
        if (context.childIds.length > 0 && !context.childIds.includes(id)) return context.children;
        return { ...context.children, [id]: event.child };
      },
    }),
  },
  guards: {
    anyChildFailed: ({ context }) => firstFailedChild(context) !== undefined,
    allChildrenDone: ({ context }) => context.childIds.every((id) => context.children[id] !== undefined),
  },
}).createMachine({
  id: "director",
  context: ({ input }) => ({
    ...input,
    current: null,
    subtasks: [],
    childIds: [],
    children: {},
    outcome: null,
    completed: 0,
    failed: 0,
  }),
  initial: "idle",
  states: {
    idle: {
      entry: assign({ current: null, subtasks: [], childIds: [], children: {}, outcome: null }),
      on: {
        TASK: {
          target: "busy",
          actions: assign({ current: ({ event }) => ({ task: event.task, attempt: event.attempt }) }),
        },
      },
    },
    busy: {
      initial: "planning",
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
            input: ({ context }) => context.current as ActiveTask,
            onDone: [
              { guard: ({ event }) => event.output.length === 0, target: "aggregating" },
              { target: "delegating", actions: assign({ subtasks: ({ event }) => event.output }) },
            ],
            onError: {
              target: "#director.failed",
              actions: assign({ outcome: ({ event }) => failedOutcome(event.error) }),
            },
          },
        },
        delegating: {
          on: { CHILD_DONE: { actions: "recordChild" } },
          invoke: {
            src: "delegate",
            input: ({ context }) => ({ ...(context.current as ActiveTask), subtasks: context.subtasks }),
            onDone: {
              target: "waiting",
              actions: assign({
                childIds: ({ event }) => event.output,
                // Drop anything recorded early that is not one of ours.
                children: ({ context, event }) =>
                  Object.fromEntries(Object.entries(context.children).filter(([id]) => event.output.includes(id))),
              }),
            },
            onError: {
              target: "#director.failed",
              actions: assign({ outcome: ({ event }) => failedOutcome(event.error) }),
            },
          },
        },
        waiting: {
          on: { CHILD_DONE: { actions: "recordChild" } },
          always: [
            {
              guard: "anyChildFailed",
              target: "#director.failed",
              // The root cause travels up unchanged: the workflow reports the child's error.
              actions: assign({
                outcome: ({ context }) => {
                  const child = firstFailedChild(context);
                  return {
                    status: "failed",
                    error: child?.error ?? { code: "INTERNAL", message: `subtask ${child?.taskId} failed` },
                  };
                },
              }),
            },
            { guard: "allChildrenDone", target: "aggregating" },
          ],
        },
        aggregating: {
          invoke: {
            src: "aggregate",
            input: ({ context }) => ({
              ...(context.current as ActiveTask),
              children: context.childIds.map((id) => context.children[id] as ChildOutcome),
            }),
            onDone: {
              target: "#director.reporting",
              actions: assign({ outcome: ({ event }) => ({ status: "completed", output: event.output }) }),
            },
            onError: {
              target: "#director.failed",
              actions: assign({ outcome: ({ event }) => failedOutcome(event.error) }),
            },
          },
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
