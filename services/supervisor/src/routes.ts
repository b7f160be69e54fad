/**
 * Which collaborator answers each supervisor operation (the operations table names them all;
 * `satisfies` makes a missing or misspelt one a compile error).
 */

import {
  type Holding,
  type OpReplyInput,
  type OpRequest,
  PARTITIONED_OPERATIONS,
  PermissionDeniedError,
  type SupervisorOperationName,
} from "@cadre/protocol";
import type { CadreMetrics, OperationHandler, OperationServer, PartitionedOperationName } from "@cadre/runtime";
import type { WorkflowControls } from "./controls.js";
import type { Coordination } from "./coordinate.js";
import type { Dependencies } from "./dependencies.js";
import type { Inspector } from "./inspect.js";
import type { Intake } from "./intake.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Quarantine } from "./quarantine.js";
import { provesHolding } from "./reassign.js";
import type { ResourceManager } from "./resources.js";
import { stageTable } from "./stages.js";
import type { StateOps } from "./state-ops.js";
import type { AdmissionThrottle } from "./throttle.js";
import type { ContextTransfer } from "./transfer.js";

/** The collaborators the routes reach. */
export interface Routed {
  intake: Intake;
  controls: WorkflowControls;
  /** Told when a cancel ended a workflow: its dependents can never start. */
  dependencies: Dependencies;
  lifecycle: Lifecycle;
  inspector: Inspector;
  quarantine: Quarantine;
  resources: ResourceManager;
  throttle: AdmissionThrottle;
  state: StateOps;
  /** Gives failed actors' contexts to their replacements (sup.actor.transfer). */
  transfer: ContextTransfer;
  metrics: CadreMetrics;
  /** Derives task tokens: given, a host's request about a task must prove it holds the task. */
  taskKey: Buffer | undefined;
  /** What partition holders hand to the lease holder (sup.coordinate). */
  coordination: Coordination;
}

/** Each supervisor operation's handler. */
export type Handlers = { [N in SupervisorOperationName]: OperationHandler<N> };

/**
 * Registers every supervisor operation but the partitioned ones on the active supervisor's
 * service; those the holder of each partition answers (see {@link partitioned}).
 */
export function serveOperations(server: OperationServer, handlers: Handlers): void {
  for (const [name, handler] of Object.entries(handlers) as [SupervisorOperationName, OperationHandler<never>][]) {
    if (!(PARTITIONED_OPERATIONS as string[]).includes(name)) server.serve(name, handler);
  }
}

/**
 * The operations every supervisor holding a partition answers, not the lease holder alone: a
 * submit creates its workflow in a partition its answerer holds (intake.ts), so submits spread
 * over the supervisors as their results do.
 */
export const SHARED_OPERATIONS = ["sup.submit"] as const satisfies SupervisorOperationName[];

/** The handlers of {@link SHARED_OPERATIONS}, for the partitions' server's `share`. */
export const shared = (handlers: Handlers): Pick<Handlers, (typeof SHARED_OPERATIONS)[number]> =>
  Object.fromEntries(SHARED_OPERATIONS.map((n) => [n, handlers[n]])) as never;

/** The handlers of the partitioned operations, for the partitions' server (runtime operations.ts). */
export const partitioned = (handlers: Handlers): { [N in PartitionedOperationName]: OperationHandler<N> } =>
  Object.fromEntries(PARTITIONED_OPERATIONS.map((n) => [n, handlers[n]])) as never;

/** What answers each supervisor operation. */
export function operationHandlers(r: Routed): Handlers {
  const { intake, controls, lifecycle, inspector, quarantine, resources } = r;
  /** A host may act on a task only with proof that it holds it (runtime authenticity.ts). */
  const holder = (taskId: string, holding: Holding | undefined, epoch = holding?.epoch): void => {
    if (!r.taskKey) return;
    if (holding && holding.epoch === epoch && provesHolding(r.taskKey, holding.hostId, { taskId, ...holding, seq: 1 }))
      return;
    throw new PermissionDeniedError(
      `this request about task ${taskId} does not prove its sender holds the task (no or a wrong holding proof); only the host a delivery of the task reached may act on it`,
      { taskId },
    );
  };
  const handlers = {
    "sup.submit": (b) => intake.submit(b),
    "sup.delegate": (b) => {
      holder(b.parent.taskId, b.holding, b.parent.epoch);
      return intake.delegate(b);
    },
    "sup.coordinate": (b) => r.coordination.handle(b),
    "sup.status": (b) => inspector.status(b),
    "sup.quarantine": async ({ op, actorId }) => ({ actors: await quarantine.command(op, actorId) }),
    "sup.quarantine.list": async () => ({ actors: await quarantine.command("list") }),
    "sup.acquire": async (req) => {
      holder(req.taskId, req.holding);
      return { resource: req.resource, waitedMs: await resources.acquire(req) };
    },
    "sup.release": ({ taskId, holding }) => {
      holder(taskId, holding);
      return { released: resources.release(taskId) };
    },
    "sup.waits": () => resources.view(),
    "sup.freeze": (b) => controls.freeze(b),
    "sup.workflow.list": (b) => inspector.list(b),
    "sup.workflow.pause": (b) => controls.pause(b),
    "sup.workflow.resume": (b) => controls.resume(b),
    "sup.workflow.cancel": async (b) => {
      const reply = await controls.cancel(b);
      r.dependencies.finished(b.workflowId);
      return reply;
    },
    "sup.workflow.limit": (b) => controls.limit(b),
    "sup.admission.throttle": (b) => r.throttle.command(b),
    "sup.perf.stages": () => stageTable(r.metrics),
    "sup.task.admit": (b) => {
      holder(b.taskId, b.holding, b.epoch);
      return controls.admit(b);
    },
    "sup.team.list": async () => lifecycle.teamList(await inspector.runningByTeam()),
    "sup.team.retire": async (b) => lifecycle.teamRetire(b, (await inspector.runningByTeam()).get(b.teamId) ?? 0),
    "sup.actor.list": (b) => lifecycle.actorList(b),
    "sup.actor.retire": (b) => lifecycle.actorRetire(b),
    "sup.actor.transfer": (b) => r.transfer.transfer(b),
    "sup.host.list": () => lifecycle.hostList(),
    "sup.host.cordon": (b) => lifecycle.cordon(b),
    "sup.host.drain": (b) => lifecycle.drain(b),
    "sup.debug.workflow": (b) => inspector.debugWorkflow(b),
    "sup.debug.task": (b) => inspector.debugTask(b),
    "sup.debug.actor": (b) => inspector.debugActor(b),
    "sup.state.checkpoint": (b) => r.state.checkpoint(b),
    "sup.state.rollback": (b) => r.state.rollback(b),
  } satisfies {
    [N in SupervisorOperationName]: (body: OpRequest<N>) => Promise<OpReplyInput<N>> | OpReplyInput<N>;
  };
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      async (body: never) => (await (handler as (b: never) => unknown)(body)) as never,
    ]),
  ) as unknown as Handlers;
}
