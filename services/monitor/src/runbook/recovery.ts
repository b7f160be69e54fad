/**
 * `/workflow-recovery gradual-resumption`: the seed's staged recovery. Stages run in order; each
 * applies its action to its workflow (resume with a cap: `resource_limit`; or restore the full
 * allocation: the cap lifted), then waits until the monitor has seen the cluster healthy (no
 * metric crossed or pending past its threshold) for `healthy_for_ms`. A metric that crosses while
 * a stage waits pauses that stage's workflow again and ends the resumption there; so does a
 * cluster not healthy within `stage_timeout_ms`. Later stages are reported skipped.
 */

import type { OpReplyInput, ResumptionRequest } from "@cadre/protocol";
import { sleep } from "@cadre/runtime";
import { LOOK_EVERY_MS } from "./post-emergency.js";
import { ask, type RunbookDeps } from "./resource-manager.js";

type Reply = OpReplyInput<"mon.workflow-recovery.gradual-resumption">;
type StageRow = Reply["stages"][number];

/** The metrics past their threshold now (crossed, or pending their hold time). */
function unhealthy(d: RunbookDeps): string[] {
  return d
    .status()
    .metrics.filter((m) => m.state === "crossed" || m.state === "pending")
    .map((m) => m.metric);
}

/** `conservative`: half the replicas of the team's largest agent kind (at least 1). */
async function capOf(d: RunbookDeps, workflowId: string, limit: "conservative" | number | undefined) {
  if (limit === undefined) return null;
  if (typeof limit === "number") return limit;
  const { workflow } = await ask(d, "sup.status", { workflowId });
  const team = await d.team(workflow.teamId);
  const agents = Object.values(team?.kinds ?? {}).filter((k) => k.role === "agent");
  return Math.max(1, Math.floor(Math.max(1, ...agents.map((k) => k.replicas)) / 2));
}

/** Waits for `healthyForMs` of health; the metric that crossed, or "timeout". */
async function settle(d: RunbookDeps, healthyForMs: number, timeoutMs: number): Promise<string | null> {
  const began = d.clock.now();
  let healthySince: number | null = null;
  for (;;) {
    const now = d.clock.now();
    const bad = unhealthy(d);
    if (bad.length === 0) {
      healthySince ??= now;
      if (now - healthySince >= healthyForMs) return null;
    } else {
      const crossed = d.status().metrics.find((m) => m.state === "crossed");
      if (crossed) return crossed.metric;
      healthySince = null;
    }
    if (now - began >= timeoutMs) return "timeout";
    await sleep(d.clock, LOOK_EVERY_MS);
  }
}

export async function gradualResumption(d: RunbookDeps, req: ResumptionRequest): Promise<Reply> {
  const began = d.clock.now();
  const stages: StageRow[] = [];
  const resumed: string[] = [];
  let stopped: string | null = null;
  for (const s of [...req.stages].sort((a, b) => a.stage - b.stage)) {
    const row = { stage: s.stage, workflowId: s.workflow, action: s.action };
    if (stopped) {
      stages.push({ ...row, outcome: "skipped", cap: null, ms: 0, reason: stopped });
      continue;
    }
    const t0 = d.clock.now();
    // A workflow that ended meanwhile has nothing to resume: reported, and the stages go on.
    const { workflow } = await ask(d, "sup.status", { workflowId: s.workflow });
    if (workflow.status !== "running") {
      stages.push({ ...row, outcome: "skipped", cap: null, ms: 0, reason: `it is ${workflow.status}` });
      continue;
    }
    const cap = s.action === "restore_full_allocation" ? null : await capOf(d, s.workflow, s.resource_limit);
    // The cap first: a resumed workflow must not start more than its stage allows.
    const { control } = await ask(d, "sup.workflow.limit", { workflowId: s.workflow, agents: cap });
    if (control.paused) await ask(d, "sup.workflow.resume", { workflowId: s.workflow });
    resumed.push(s.workflow);
    const metric = await settle(d, req.healthy_for_ms, req.stage_timeout_ms);
    const ms = d.clock.now() - t0;
    if (metric === null) {
      stages.push({ ...row, outcome: "done", cap, ms });
    } else if (metric === "timeout") {
      stopped = `the cluster was not healthy within ${req.stage_timeout_ms} ms after stage ${s.stage}`;
      stages.push({ ...row, outcome: "not-healthy", cap, ms, reason: stopped });
    } else {
      // This stage made a metric cross: it goes back to paused, and the resumption stops here.
      await ask(d, "sup.workflow.pause", { workflowId: s.workflow, now: false });
      stopped = `${metric} crossed its threshold during stage ${s.stage}; ${s.workflow} was paused again`;
      stages.push({ ...row, outcome: "paused-again", cap, ms, metric, reason: stopped });
    }
    const last = stages.at(-1);
    d.emit({
      type: "RECOVERY_STAGE_COMPLETED",
      category: "workflow",
      scope: "gradual_resumption",
      data: {
        stage: s.stage,
        workflowId: s.workflow,
        action: s.action,
        outcome: last?.outcome ?? "done",
        cap,
        ms,
        ...(last?.metric ? { metric: last.metric } : {}),
      },
    });
  }
  const ms = d.clock.now() - began;
  d.emit({
    type: "GRADUAL_RESUMPTION_COMPLETED",
    category: "workflow",
    scope: "gradual_resumption",
    data: {
      recovery_time_ms: ms,
      stages: stages.length,
      workflows_recovered: stages.filter((x) => x.outcome === "done").length,
      paused_again: stages.filter((x) => x.outcome === "paused-again").length,
    },
  });
  return { ms, stages, resumed };
}
