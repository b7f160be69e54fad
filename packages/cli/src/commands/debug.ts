/** `cadre debug`: a workflow's task tree, an actor's live state, a task's record with every result seen. */

import type { OpReply } from "@cadre/protocol";
import type { Command } from "commander";
import { ago, controlText, duration, shortJson, tree } from "../format.js";
import { summaryText } from "../summary.js";
import { action, type Ctx, print, printJson, withSupervisor } from "./common.js";

type TaskNode = OpReply<"sup.debug.workflow">["tasks"][number];
type Holder = { hostId: string; actorId: string | null } | null;

const holderText = (h: Holder): string => (h ? `${h.hostId}/${h.actorId ?? "-"}` : "-");
const iso = (at: number | null | undefined): string =>
  at === null || at === undefined ? "-" : new Date(at).toISOString();

/** One task of the tree: kind, status, epoch, holder, attempts, time in each stage. */
export const taskNodeLine = (t: TaskNode): string =>
  [
    `${t.taskId}  ${t.kind}  ${t.status}`,
    `epoch ${t.epoch}`,
    `attempts ${t.attempts}`,
    `holder ${holderText(t.holder)}`,
    `queued ${duration(t.stages.queuedMs)}`,
    `working ${duration(t.stages.workingMs)}`,
    `total ${duration(t.stages.totalMs)}`,
    ...(t.error ? [`error ${t.error.code}: ${t.error.message}`] : []),
  ].join("  ");

function workflowText(r: OpReply<"sup.debug.workflow">): string {
  const tasks = [...r.tasks].sort((a, b) => a.createdAt - b.createdAt || a.taskId.localeCompare(b.taskId));
  return [
    summaryText(r.workflow),
    `  controls: ${controlText(r.control)}`,
    "",
    ...(tasks.length === 0
      ? ["no tasks"]
      : tree(
          tasks.map((t) => ({ ...t, id: t.taskId, parent: t.parentTaskId })),
          taskNodeLine,
        )),
  ].join("\n");
}

function actorText(r: OpReply<"sup.debug.actor">): string {
  const a = r.record;
  const lines = [
    `actor ${a.actorId} (kind ${a.kindName}, team ${a.teamId}) on host ${a.hostId}, incarnation ${a.incarnation}`,
    `  status: ${a.status}, priority ${a.priority}, spawned ${ago(a.spawnedAt)}`,
  ];
  if (a.replaces) lines.push(`  replaces: ${a.replaces}`);
  if (a.replacedBy) lines.push(`  replaced by: ${a.replacedBy}`);
  if (a.quarantine) {
    lines.push(
      `  quarantined for task ${a.quarantine.taskId} (result ${a.quarantine.resultId}) ${ago(a.quarantine.at)}: ` +
        a.quarantine.issues.map((i) => `${i.path || "(output)"}: ${i.message}`).join("; "),
    );
  }
  const live = r.live;
  if (!live) {
    lines.push("  live: its host did not answer (state, held task and history unknown)");
    return lines.join("\n");
  }
  lines.push(`  machine state: ${shortJson(live.state)}${live.quarantined ? " (quarantined on its host)" : ""}`);
  lines.push(
    live.held
      ? `  holds: task ${live.held.taskId} (epoch ${live.held.epoch}, attempt ${live.held.attempt}, started ${ago(live.held.startedAt)}); delegation chain ${live.held.chain.join(" > ")}`
      : `  holds: nothing${live.idleSinceMs !== null ? `, idle for ${duration(live.idleSinceMs)}` : ""}`,
  );
  lines.push(`  history (latest first): ${live.history.length ? live.history.join(", ") : "none"}`);
  lines.push(`  snapshot: ${live.snapshot === undefined ? "none" : shortJson(live.snapshot)}`);
  return lines.join("\n");
}

function taskText(r: OpReply<"sup.debug.task">): string {
  const { record: rec, holder, children } = r;
  const t = rec.task;
  const lines = [
    `task ${t.taskId} (kind ${t.kind}) of workflow ${t.workflowId}: ${rec.status}, epoch ${t.epoch}`,
    `  chain: ${t.chain.join(" > ")}; parent ${t.parentTaskId ?? "none (the root)"}; priority ${t.priority}`,
    `  created ${iso(rec.createdAt)}, finished ${iso(rec.finishedAt)}${rec.finishedAt !== null ? ` (after ${duration(rec.finishedAt - rec.createdAt)})` : ""}`,
    `  holder: ${holder ? holderText(holder) : "none"}`,
    rec.applied
      ? `  applied: result ${rec.applied.resultId} of epoch ${rec.applied.epoch}, attempt ${rec.applied.attempt}, from ${rec.applied.hostId}/${rec.applied.actorId}`
      : "  applied: no result yet",
  ];
  if (rec.output !== undefined) lines.push(`  output: ${shortJson(rec.output)}`);
  if (rec.error) lines.push(`  error: ${rec.error.code}: ${rec.error.message}`);
  lines.push(`  duplicates (${rec.duplicates.length}): ${rec.duplicates.join(", ") || "none"}`);
  lines.push(`  conflicts (${rec.conflicts.length}):${rec.conflicts.length ? "" : " none"}`);
  for (const c of rec.conflicts) {
    lines.push(
      `    result ${c.resultId} of epoch ${c.epoch} from ${c.hostId}: ${c.status} at ${iso(c.finishedAt)}` +
        (c.error ? ` (${c.error.code}: ${c.error.message})` : ""),
    );
  }
  lines.push(`  invalid responses (${rec.invalid.length}):${rec.invalid.length ? "" : " none"}`);
  for (const i of rec.invalid) {
    lines.push(`    result ${i.resultId} from ${i.hostId}/${i.actorId}: ${shortJson(i.issues, 500)}`);
  }
  lines.push(`  children (${children.length}): ${children.join(", ") || "none"}`);
  return lines.join("\n");
}

export function registerDebug(program: Command, ctx: Ctx): void {
  const debug = program
    .command("debug")
    .description("look inside: a workflow's task tree, an actor's live state, a task's record with every result seen");

  debug
    .command("workflow <workflow-id>")
    .description(
      "the workflow's task tree, indented by parent: kind, status, epoch, holder host/actor, attempts, time queued, working and in all",
    )
    .option("--json", "one JSON object: { workflow, control, tasks: [...] }")
    .action(
      action(async (workflowId: string, o: { json?: boolean }) => {
        const r = await withSupervisor(ctx, (sup) => sup.call("sup.debug.workflow", { workflowId }));
        if (o.json) printJson(r);
        else print(workflowText(r));
      }),
    );

  debug
    .command("actor <actor-id>")
    .description(
      "an actor's record and, from its host, its machine state, held task, delegation chain, history and snapshot",
    )
    .option("--json", "one JSON object: { record, live }")
    .action(
      action(async (actorId: string, o: { json?: boolean }) => {
        const r = await withSupervisor(ctx, (sup) => sup.call("sup.debug.actor", { actorId }));
        if (o.json) printJson(r);
        else print(actorText(r));
      }),
    );

  debug
    .command("task <task-id>")
    .description(
      "a task's record: the applied result, duplicates, conflicts, invalid responses, its holder and children",
    )
    .option("--json", "one JSON object: { record, holder, children }")
    .action(
      action(async (taskId: string, o: { json?: boolean }) => {
        const r = await withSupervisor(ctx, (sup) => sup.call("sup.debug.task", { taskId }));
        if (o.json) printJson(r);
        else print(taskText(r));
      }),
    );
}
