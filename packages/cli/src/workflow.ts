/** Submitting a workflow and following it to its end, for `cadre run` and the tests. */

import {
  BUCKETS,
  type Budget,
  randomId,
  type Team,
  TimeoutError,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import {
  backoffDelay,
  endSpan,
  isTransient,
  type NatsConnection,
  retry,
  SPAN_ATTR,
  type Span,
  SpanStatusCode,
  SupervisorClient,
  startSpan,
  withContext,
} from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";

/** Options of {@link submitWorkflow}. */
export interface SubmitOptions {
  team: Team;
  input?: Record<string, unknown>;
  priority?: number;
  /** What the workflow's model calls may spend, in place of the team's. */
  budget?: Budget;
  /** Workflows it waits for: its root task starts once every one completed. */
  after?: string[];
  /** @default 5000 */
  requestTimeoutMs?: number;
}

/**
 * The root spans (`cadre.workflow`) of the workflows this process submitted, by id, until
 * {@link waitForWorkflow} sees them end (or {@link endWorkflowSpans}). Only with tracing on.
 */
const workflowSpans = new Map<string, Span>();

/**
 * Submits a workflow and returns its id. Retries while no supervisor or host answers yet
 * (a stack that is still starting), up to about 20 s. With tracing on (runtime tracing.ts) the
 * workflow's trace begins here: a `cadre.workflow` span (a child of the active one, if any)
 * that the submit request carries, ended when {@link waitForWorkflow} sees the workflow end.
 */
export async function submitWorkflow(
  nc: NatsConnection,
  opts: SubmitOptions,
): Promise<{ workflowId: string; teamId: string }> {
  const sup = new SupervisorClient(nc, { sender: `cli-${randomId(6)}`, timeoutMs: opts.requestTimeoutMs ?? 5000 });
  const { span, ctx } = startSpan("cadre.workflow", { "cadre.team": opts.team.name });
  try {
    const submitted = await withContext(ctx, () =>
      retry(
        () =>
          sup.call("sup.submit", {
            team: opts.team,
            ...(opts.input ? { input: opts.input } : {}),
            priority: opts.priority ?? 0,
            ...(opts.budget ? { budget: opts.budget } : {}),
            ...(opts.after?.length ? { after: opts.after } : {}),
          }),
        { maxAttempts: 12, baseMs: 250, maxMs: 3000 },
      ),
    );
    if (span.isRecording()) {
      span.setAttributes({ [SPAN_ATTR.workflowId]: submitted.workflowId, "cadre.team.id": submitted.teamId });
      workflowSpans.set(submitted.workflowId, span);
    }
    return submitted;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}

/** Ends the root spans of workflows submitted but not followed to their end (a detached run). */
export function endWorkflowSpans(): void {
  for (const span of workflowSpans.values()) endSpan(span);
  workflowSpans.clear();
}

/** Ends a workflow's root span, if this process opened one: with its outcome, or what stopped the wait. */
function endWorkflowSpan(workflowId: string, outcome: { record: WorkflowRecord } | { err: unknown }): void {
  const span = workflowSpans.get(workflowId);
  if (!span) return;
  workflowSpans.delete(workflowId);
  if ("err" in outcome) {
    endSpan(span, outcome.err);
    return;
  }
  const w = outcome.record;
  span.setAttribute("cadre.workflow.status", w.status);
  if (w.status !== "completed") span.setStatus({ code: SpanStatusCode.ERROR, message: `workflow ${w.status}` });
  endSpan(span);
}

/**
 * Follows a workflow's record (a KV watch, so no change is missed) until it is no longer
 * running; calls `onProgress` with each version. A watch broken by a NATS node failing is
 * opened again (it starts from the record's latest version, so nothing is missed either).
 * Throws TimeoutError after `timeoutMs`.
 */
export async function waitForWorkflow(
  nc: NatsConnection,
  workflowId: string,
  opts: { timeoutMs: number; onProgress?: (w: WorkflowRecord) => void },
): Promise<WorkflowRecord> {
  try {
    const record = await followWorkflow(nc, workflowId, opts);
    endWorkflowSpan(workflowId, { record });
    return record;
  } catch (err) {
    endWorkflowSpan(workflowId, { err });
    throw err;
  }
}

async function followWorkflow(
  nc: NatsConnection,
  workflowId: string,
  opts: { timeoutMs: number; onProgress?: (w: WorkflowRecord) => void },
): Promise<WorkflowRecord> {
  const deadline = Date.now() + opts.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const w = await watchUntilDone(nc, workflowId, deadline - Date.now(), opts.onProgress);
      if (w) return w;
    } catch (err) {
      if (!isTransient(err)) throw err;
    }
    if (Date.now() >= deadline) throw new TimeoutError(`workflow ${workflowId}`, opts.timeoutMs);
    await new Promise((r) => setTimeout(r, backoffDelay(attempt, { baseMs: 100, maxMs: 2000 })));
  }
}

/** One watch: the finished record, or undefined when the time ran out or the watch ended. */
async function watchUntilDone(
  nc: NatsConnection,
  workflowId: string,
  timeoutMs: number,
  onProgress?: (w: WorkflowRecord) => void,
): Promise<WorkflowRecord | undefined> {
  if (timeoutMs <= 0) return undefined;
  const kv = await new Kvm(nc).open(BUCKETS.workflows);
  const watch = await kv.watch({ key: workflowId });
  const timer = setTimeout(() => watch.stop(), timeoutMs);
  try {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      const w = WorkflowRecordSchema.parse(e.json());
      onProgress?.(w);
      if (w.status !== "running") return w;
    }
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
  return undefined;
}
