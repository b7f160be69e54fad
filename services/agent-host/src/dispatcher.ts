/**
 * The task intake: hands each pulled task to an idle actor of its kind, as a new
 * {@link TaskAttempt}. A task of a controlled workflow is admitted first (admission.ts): dropped
 * when the workflow is cancelled, else started, parked or dropped as the supervisor says, or
 * given back after the retry backoff when the supervisor does not answer. The actor is held
 * meanwhile and free again at once when the task does not start, so its puller pulls more.
 */

import { decodeAs, type TaskEnvelope } from "@cadre/protocol";
import type { Logger } from "@cadre/runtime";
import type { JsMsg } from "@nats-io/jetstream";
import type { HostedActor } from "./actor.js";
import type { Admission, WorkflowControls } from "./admission.js";
import { type AttemptDeps, TaskAttempt } from "./attempt.js";
import type { PullerHost } from "./puller.js";

/** What the dispatcher works with. */
export interface DispatcherDeps {
  /** The host's actors (live: the host adds and removes them). */
  actors: ReadonlyMap<string, HostedActor>;
  controls: WorkflowControls;
  attemptDeps: AttemptDeps;
  logger: Logger;
  /** Frees an actor whose attempt is over (and wakes its kind's puller). */
  release(actor: HostedActor): void;
}

/** Hands pulled tasks to actors. */
export class Dispatcher implements PullerHost {
  constructor(private readonly d: DispatcherDeps) {}

  /** Number of actors of a kind free to take a task. */
  idleCount(teamId: string, kind: string): number {
    let n = 0;
    for (const a of this.d.actors.values()) if (a.takes(teamId, kind)) n++;
    return n;
  }

  /** Hands a pulled task to an idle actor of its kind (see the file's comment). */
  dispatch(teamId: string, kind: string, msg: JsMsg): void {
    let task: TaskEnvelope;
    try {
      task = decodeAs(msg.data, "task").body;
    } catch (err) {
      this.d.logger.error({ err, seq: msg.seq }, "undecodable task terminated");
      msg.term();
      return;
    }
    const actor = [...this.d.actors.values()].find((a) => a.takes(teamId, kind));
    if (!actor) {
      msg.nak();
      return;
    }
    const control = this.d.controls.get(task.workflowId);
    if (control?.cancelled) {
      this.d.logger.info({ taskId: task.taskId, workflowId: task.workflowId }, "task of a cancelled workflow dropped");
      msg.term();
      return;
    }
    const attempt = new TaskAttempt(this.d.attemptDeps, actor, msg, task);
    actor.hold(attempt);
    // Workflows without a control pay nothing: no request.
    if (!control) this.begin(actor, attempt);
    else void this.admit(actor, attempt);
  }

  /** Asks the supervisor whether a task of a controlled workflow may start, and acts on the answer. */
  private async admit(actor: HostedActor, attempt: TaskAttempt): Promise<void> {
    const { task } = attempt;
    let decision: Admission | "unknown";
    try {
      decision = await this.d.controls.admit(task, attempt.holding());
    } catch (err) {
      // The supervisor is unreachable: the task comes back after the retry backoff.
      this.d.logger.warn({ err, taskId: task.taskId }, "admission not decided; the task comes back later");
      decision = "unknown";
    }
    // Stopped or yielded while asking (or the actor retired): already settled and released.
    if (attempt.phase !== "admitting" || actor.attempt !== attempt) return;
    if (decision === "run") {
      this.begin(actor, attempt);
      return;
    }
    attempt.settle(decision === "parked" ? "ack" : decision === "cancelled" ? "term" : "retry");
    this.d.logger.info({ taskId: task.taskId, decision }, "task not started");
    this.d.release(actor);
  }

  /** Starts an admitted attempt on its actor (a task past its deadline fails at once). */
  private begin(actor: HostedActor, attempt: TaskAttempt): void {
    if (attempt.start()) {
      actor.run();
      return;
    }
    void attempt.report(attempt.expired()).finally(() => {
      if (actor.attempt === attempt) this.d.release(actor);
    });
  }
}
