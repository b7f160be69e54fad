/**
 * `/coordination-hub execute-dependency-recovery`: seed 003's dependency-aware recovery after an
 * agent pool failure, its actions run in the order given:
 *
 * - `immediate_agent_replacement`: transfer-context (transfer.ts) for the failed agents, to the
 *   actors the supervisor placed in their stead, each read back (comprehensive validation).
 * - `dependency_chain_recovery`: with `checkpoint_restoration`, both workflows' state assessed
 *   first and damaged state recovered from its latest verified checkpoint (data.ts). Then the
 *   primary is resumed if paused, and the dependent is held until the primary completed:
 *   `declared` when the dependent's `after` names the primary (the supervisor holds it, and
 *   releases it once the primary completed); otherwise `held`: this command pauses it (running
 *   attempts finish, no new task starts) and resumes it once the primary completed. Integrity is
 *   maintained when the primary completed with the dependent held until then; broken when the
 *   primary failed, was cancelled or did not complete within `timeout_ms` (a held dependent
 *   then stays paused, for the operator to decide). Looks every LOOK_EVERY_MS.
 * - `enhanced_monitoring_activation`: a watch is its own command with its own duration
 *   (`/performance-monitor post-emergency-monitoring`): reported `ignored`, never pretended.
 *
 * DEPENDENCY_RECOVERY_COMPLETED at the end: the workflows recovered (of the chains whose
 * integrity held, the primary completed and the dependent released), the contexts transferred.
 */

import { type DependencyRecoveryRequest, type OpReplyInput, toCadreError } from "@cadre/protocol";
import { sleep } from "@cadre/runtime";
import { corruptionAssessment, executeDataRecovery } from "./data.js";
import { LOOK_EVERY_MS } from "./post-emergency.js";
import { ask, type RunbookDeps } from "./resource-manager.js";
import { transferContext } from "./transfer.js";

type Reply = OpReplyInput<"mon.coordination-hub.execute-dependency-recovery">;
type Action = DependencyRecoveryRequest["recovery_actions"][number];
type ChainAction = Extract<Action, { action: "dependency_chain_recovery" }>;
type Chain = Reply["chains"][number];

const status = (d: RunbookDeps, workflowId: string) => ask(d, "sup.status", { workflowId });

/** Damaged state of either workflow recovered from its latest verified checkpoint. */
async function restore(d: RunbookDeps, workflows: string[]): Promise<Chain["restored"]> {
  const out: Chain["restored"] = [];
  for (const workflowId of workflows) {
    const a = await corruptionAssessment(d, workflowId, false);
    if (a.damaged.length === 0) {
      out.push({ workflowId, damaged: 0, outcome: "intact" });
      continue;
    }
    const r = await executeDataRecovery(d, { workflow: workflowId, skip: [], unfreeze: true });
    out.push({ workflowId, damaged: a.damaged.length, outcome: r.outcome });
  }
  return out;
}

async function recoverChain(d: RunbookDeps, a: ChainAction): Promise<Chain> {
  const { primary_workflow: primary, dependent_workflow: dependent } = a;
  const [p, q] = await Promise.all([status(d, primary), status(d, dependent)]);
  const order = q.workflow.after?.includes(primary) ? ("declared" as const) : ("held" as const);
  const restored = a.checkpoint_restoration ? await restore(d, [primary, dependent]) : [];
  const row = (over: Partial<Chain> & Pick<Chain, "integrity" | "heldMs">): Chain => ({
    primary,
    dependent,
    order,
    primaryStatus: p.workflow.status,
    dependentStatus: q.workflow.status,
    restored,
    ...over,
  });
  if (q.workflow.status !== "running") {
    return row({ integrity: "broken", heldMs: 0, reason: `the dependent is already ${q.workflow.status}` });
  }
  const held = d.clock.now();
  // Hold the dependent first, so nothing of it starts while the primary recovers.
  if (order === "held" && !q.control?.paused) {
    await ask(d, "sup.workflow.pause", { workflowId: dependent, now: false });
  }
  if (p.workflow.status === "running" && p.control?.paused)
    await ask(d, "sup.workflow.resume", { workflowId: primary });
  let ended = p.workflow.status;
  while (ended === "running" && d.clock.now() - held < a.timeout_ms) {
    await sleep(d.clock, LOOK_EVERY_MS);
    ended = (await status(d, primary)).workflow.status;
  }
  if (ended !== "completed") {
    const why = ended === "running" ? `did not complete within ${a.timeout_ms} ms` : `is ${ended}`;
    return row({
      primaryStatus: ended,
      integrity: "broken",
      heldMs: d.clock.now() - held,
      reason: `the primary ${why}; the dependent stays ${order === "held" ? "paused" : "waiting"}`,
    });
  }
  const heldMs = d.clock.now() - held;
  // Declared: the supervisor releases it; held (or paused by an operator meanwhile): resumed now.
  const now = await status(d, dependent);
  if (now.workflow.status === "running" && now.control?.paused) {
    await ask(d, "sup.workflow.resume", { workflowId: dependent });
  }
  return row({ primaryStatus: ended, dependentStatus: now.workflow.status, integrity: "maintained", heldMs });
}

export async function executeDependencyRecovery(d: RunbookDeps, req: DependencyRecoveryRequest): Promise<Reply> {
  const began = d.clock.now();
  const actions: Reply["actions"] = [];
  const replacements: Reply["replacements"] = [];
  const chains: Chain[] = [];
  const ignored: string[] = [];
  const transfer = { validated: 0, of: 0 };
  for (const a of req.recovery_actions) {
    if (a.action === "immediate_agent_replacement") {
      if (a.replacement_pool !== undefined) {
        ignored.push(`replacement_pool (replacements are the actors the supervisor placed in the failed ones' stead)`);
      }
      const t = await transferContext(d, {
        failed_agents: a.failed_agents,
        context_transfer: a.context_transfer === "history_only" ? "history_only" : "complete_state_and_history",
        validation: "comprehensive",
        rollback_capability: "disabled",
      });
      for (const r of t.agents) {
        replacements.push({
          from: r.from,
          to: r.to,
          history: r.history,
          validated: r.validated,
          ...(r.error ? { error: `${r.error.code}: ${r.error.message}` } : {}),
        });
      }
      transfer.validated += t.validated;
      transfer.of += t.agents.length;
      actions.push({
        action: a.action,
        outcome: t.validated === t.agents.length ? "done" : t.validated > 0 ? "partial" : "failed",
        detail: `${t.validated} of ${t.agents.length} context(s) transferred and read back`,
      });
    } else if (a.action === "dependency_chain_recovery") {
      try {
        const c = await recoverChain(d, a);
        chains.push(c);
        actions.push({
          action: a.action,
          outcome: c.integrity === "maintained" ? "done" : "failed",
          detail:
            c.reason ??
            `${c.primary} ${c.primaryStatus}, then ${c.dependent} ${c.order === "held" ? "resumed" : "released"} after ${c.heldMs} ms`,
        });
      } catch (err) {
        const e = toCadreError(err);
        actions.push({ action: a.action, outcome: "failed", detail: `${e.code}: ${e.message}`.slice(0, 1000) });
      }
    } else {
      actions.push({
        action: a.action,
        outcome: "ignored",
        detail: "run /performance-monitor post-emergency-monitoring: a watch is its own command, with its own duration",
      });
      ignored.push("enhanced_monitoring_activation (a watch is /performance-monitor post-emergency-monitoring)");
    }
  }
  const recovered = new Set(
    chains.filter((c) => c.integrity === "maintained").flatMap((c) => [c.primary, c.dependent]),
  );
  const ms = d.clock.now() - began;
  const maintained = chains.every((c) => c.integrity === "maintained");
  d.emit({
    type: "DEPENDENCY_RECOVERY_COMPLETED",
    category: "coordination",
    scope: "dependency_recovery",
    data: {
      workflows_recovered: recovered.size,
      dependency_integrity: maintained ? "maintained" : "broken",
      context_transfer_percent: transfer.of > 0 ? Math.round((transfer.validated / transfer.of) * 1000) / 10 : null,
      recovery_time_ms: ms,
    },
  });
  return { ms, actions, replacements, chains, workflowsRecovered: recovered.size, ignored };
}
