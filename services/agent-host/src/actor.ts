/**
 * One actor on this host: its XState machine (agent or director) with the host's effects
 * plugged in, the behaviour of its kind, the attempt it holds, and whether it is quarantined.
 * The machine decides when the actor is free again: only its return to `idle` releases the
 * attempt (releasing earlier, when the report call returns, would let a task reach a machine
 * still in `reporting`, which ignores it, and that task would be held for ever).
 */

import type { ActorSpec, InheritedContext, SubtaskSpec, TaskEnvelope, Usage } from "@cadre/protocol";
import type { Clock } from "@cadre/runtime";
import { type AnyActorRef, createActor, fromPromise } from "xstate";
import type { AttemptActor, Outcome, RetryPolicy, TaskAttempt } from "./attempt.js";
import {
  type Behaviour,
  type BehaviourContext,
  type ChildOutcome,
  createBehaviour,
  type LlmDeps,
} from "./behaviours/index.js";
import { agentMachine, directorMachine } from "./machines/index.js";

/** What the actors of a host share. */
export interface ActorDeps {
  clock: Clock;
  hostId: string;
  /** Time limit of one attempt (`tasks.attemptTimeoutMs`). */
  attemptTimeoutMs: number;
  /** The configuration's retry settings, for kinds that set none. */
  retry: RetryPolicy;
  /** What llm behaviours call models through (absent: kinds of type llm are refused). */
  llm?: LlmDeps;
  /** The workflow's shared state, as behaviours see it. */
  state(workflowId: string): BehaviourContext["state"];
  /** Runs the `beforeTask` hooks (a critical one's failure rejects and fails the attempt). */
  beforeTask(payload: Record<string, unknown>): Promise<void>;
  /** The machine is back in `idle` with an attempt that had been handed to it: release it. */
  onIdle(actor: HostedActor): void;
}

/** What the host knows of one of its actors (the `host.inspect` reply). */
export interface ActorInspection {
  actorId: string;
  state: unknown;
  quarantined: boolean;
  held: { taskId: string; epoch: number; attempt: number; startedAt: number; chain: string[] } | null;
  history: string[];
  snapshot: unknown;
  idleSinceMs: number | null;
  /** The failed actor whose context it took on, how many tasks came with it, and whether a snapshot did. */
  inherited: { fromActorId: string; tasks: number; snapshot: boolean } | null;
}

type Snapshot = { value: unknown; context?: { history?: string[] } };

/** One actor and the attempt it holds. */
export class HostedActor implements Pick<AttemptActor, "actorId" | "kind" | "retry"> {
  readonly ref: AnyActorRef;
  readonly behaviour: Behaviour;
  readonly retry: RetryPolicy;
  /** The attempt it holds, from dispatch (admission included) until its machine is idle again. */
  attempt: TaskAttempt | undefined;
  /** Quarantined by the supervisor: takes no tasks (its machine enters `quarantined` once idle). */
  quarantined = false;
  /** Whether the held attempt was handed to the machine (only then does `idle` release it). */
  private handed = false;
  private idleSince: number;
  /** What its behaviour reads: whether it is some failed actor's replacement (spawned so, or adopted since). */
  private readonly self: { replacement: boolean };
  /** The context it took on, at its spawn or by {@link adopt} since. */
  private inherited: InheritedContext | undefined;

  constructor(
    readonly spec: ActorSpec,
    private readonly d: ActorDeps,
  ) {
    this.self = { replacement: spec.inherit !== undefined };
    this.inherited = spec.inherit;
    this.behaviour = createBehaviour(spec.kind, this.self, d.llm);
    this.retry = {
      attempts: spec.kind.retry?.attempts ?? d.retry.attempts,
      backoffMs: spec.kind.retry?.backoffMs ?? d.retry.backoffMs,
    };
    this.idleSince = d.clock.now();
    this.ref = this.createRef();
    this.ref.subscribe((snapshot: Snapshot) => {
      if (snapshot.value !== "idle") return;
      if (this.attempt && this.handed) this.d.onIdle(this);
      if (this.quarantined && !this.attempt) this.ref.send({ type: "QUARANTINE" });
    });
  }

  get actorId(): string {
    return this.spec.actorId;
  }

  get kind(): ActorSpec["kind"] {
    return this.spec.kind;
  }

  /** Whether it is free to take a task of this kind. */
  takes(teamId: string, kind: string): boolean {
    return !this.attempt && !this.quarantined && this.spec.teamId === teamId && this.spec.kindName === kind;
  }

  /** Reserves the actor for an attempt (admission may still say no). */
  hold(attempt: TaskAttempt): void {
    this.attempt = attempt;
    this.handed = false;
  }

  /** Hands the held attempt's task to the machine. */
  run(): void {
    const a = this.attempt;
    if (!a) return;
    this.handed = true;
    this.ref.send({ type: "TASK", task: a.task, attempt: a.attempt });
  }

  /** Stops the machine's work on the attempt (it goes back to `idle` and is released there). */
  stopWork(): void {
    if (this.handed) this.ref.send({ type: "STOP" });
  }

  /** Forgets the attempt (its message is settled or left to redeliver). */
  release(): TaskAttempt | undefined {
    const a = this.attempt;
    a?.close();
    this.attempt = undefined;
    this.handed = false;
    this.idleSince = this.d.clock.now();
    // Quarantined while it held a task its machine never started (admission, a passed
    // deadline): the machine did not leave `idle`, so no snapshot will say it is free.
    if (this.quarantined && (this.ref.getSnapshot() as unknown as Snapshot).value === "idle") {
      this.ref.send({ type: "QUARANTINE" });
    }
    return a;
  }

  /** What the actor knew: its task history and persisted snapshot (for a replacement or a checkpoint). */
  knowledge(): InheritedContext {
    const snapshot = this.ref.getPersistedSnapshot() as { context?: { history?: string[] } };
    return { fromActorId: this.actorId, history: snapshot.context?.history ?? [], snapshot };
  }

  /**
   * Takes on a failed actor's context (a transfer, `host.actor` adopt): its machine adds the
   * history to its own (shared.ts `adopted`), and its behaviour sees a replacement from now on,
   * as if it had been spawned with the context. The task in flight, if any, goes on. Returns
   * its history now, latest first.
   */
  adopt(context: InheritedContext): string[] {
    this.inherited = context;
    this.self.replacement = true;
    this.ref.send({ type: "ADOPT", context });
    return this.inspect().history;
  }

  /** Its live state, for `host.inspect`. */
  inspect(): ActorInspection {
    const snap = this.ref.getSnapshot() as unknown as Snapshot;
    const a = this.attempt;
    return {
      actorId: this.actorId,
      state: snap.value,
      quarantined: this.quarantined,
      held: a
        ? {
            taskId: a.task.taskId,
            epoch: a.task.epoch,
            attempt: a.attempt,
            startedAt: a.startedAt,
            chain: a.task.chain,
          }
        : null,
      history: (snap.context?.history ?? []).slice(0, 50),
      snapshot: this.ref.getPersistedSnapshot(),
      idleSinceMs: a ? null : Math.max(0, this.d.clock.now() - this.idleSince),
      inherited: this.inherited
        ? {
            fromActorId: this.inherited.fromActorId,
            tasks: this.inherited.history.length,
            snapshot: this.inherited.snapshot !== undefined,
          }
        : null,
    };
  }

  /** The held attempt, when it is the one the machine is working on. */
  private current(task: TaskEnvelope): TaskAttempt {
    const a = this.attempt;
    if (!a || a.task.taskId !== task.taskId)
      throw new Error(`actor ${this.actorId} holds no attempt at ${task.taskId}`);
    return a;
  }

  private context(task: TaskEnvelope, attempt: number, signal: AbortSignal): BehaviourContext {
    const a = this.attempt?.task.taskId === task.taskId ? this.attempt : undefined;
    return {
      task,
      attempt,
      clock: this.d.clock,
      signal,
      state: this.d.state(task.workflowId),
      ...(a
        ? {
            delegate: (sub: SubtaskSpec, index: number) => a.delegateOne(sub, index, signal),
            addUsage: (u: Usage) => a.addUsage(u),
          }
        : {}),
    };
  }

  /** A step of the behaviour, in a span under the held attempt's (attempt.ts), when it holds the task. */
  private step<T>(task: TaskEnvelope, step: string, fn: () => Promise<T>): Promise<T> {
    const a = this.attempt;
    return a && a.task.taskId === task.taskId ? a.inBehaviour(step, fn) : fn();
  }

  /** beforeTask hooks, then the kind's resources: what every attempt does before it plans or works. */
  private async prepare(task: TaskEnvelope, attempt: number, signal: AbortSignal): Promise<TaskAttempt> {
    const a = this.current(task);
    await this.d.beforeTask({
      hostId: this.d.hostId,
      actorId: this.actorId,
      taskId: task.taskId,
      kind: task.kind,
      attempt,
      input: task.input,
    });
    await a.acquire(signal);
    return a;
  }

  /** The actor's machine with this host's effects plugged in. */
  private createRef(): AnyActorRef {
    const input = {
      actorId: this.spec.actorId,
      kindName: this.spec.kindName,
      attemptTimeoutMs: this.d.attemptTimeoutMs,
      ...(this.spec.inherit ? { inherited: this.spec.inherit } : {}),
    };
    type Active = { task: TaskEnvelope; attempt: number };
    const report = fromPromise<void, Active & { outcome: Outcome }>(async ({ input }) => {
      const a = this.attempt;
      if (a && a.task.taskId === input.task.taskId) await a.report(input.outcome);
    });
    const options = { input, clock: this.d.clock };
    // A behaviour without a plan delegates while it runs (an llm director): one `work` per task.
    if (this.spec.kind.role === "agent" || !this.behaviour.plan) {
      const machine = agentMachine.provide({
        actors: {
          work: fromPromise<unknown, Active>(async ({ input, signal }) => {
            const a = await this.prepare(input.task, input.attempt, signal);
            // In a span under the attempt's (attempt.ts): what the behaviour does is part of the task's trace.
            return a.inBehaviour("run", () => this.behaviour.run(this.context(input.task, input.attempt, signal), []));
          }),
          report,
        },
      });
      return createActor(machine, options).start() as unknown as AnyActorRef;
    }
    const machine = directorMachine.provide({
      actors: {
        plan: fromPromise<SubtaskSpec[], Active>(async ({ input, signal }) => {
          const a = await this.prepare(input.task, input.attempt, signal);
          return a.inBehaviour(
            "plan",
            () => this.behaviour.plan?.(this.context(input.task, input.attempt, signal)) ?? [],
          );
        }),
        delegate: fromPromise<string[], Active & { subtasks: SubtaskSpec[] }>(({ input }) =>
          this.current(input.task).delegate(input.subtasks),
        ),
        aggregate: fromPromise<unknown, Active & { children: ChildOutcome[] }>(({ input, signal }) =>
          this.step(input.task, "aggregate", () =>
            this.behaviour.run(this.context(input.task, input.attempt, signal), input.children),
          ),
        ),
        report,
      },
    });
    return createActor(machine, options).start() as unknown as AnyActorRef;
  }

  /** Hands a child's outcome to the director's machine. */
  onChild(child: ChildOutcome): void {
    this.ref.send({ type: "CHILD_DONE", child });
  }
}
