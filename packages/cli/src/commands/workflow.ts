/** `cadre workflow`: list workflows; pause, resume, cancel or limit one. */

import { InvalidConfigError, type WorkflowControl } from "@cadre/protocol";
import { type Command, InvalidArgumentError, Option } from "commander";
import { ago, controlText, duration, shownStatus, table } from "../format.js";
import { action, type Ctx, changing, intAtLeast, print, printJson, withSupervisor } from "./common.js";

const STATUSES = ["running", "paused", "completed", "failed", "cancelled"] as const;

/** What a control operation answered, for people. */
const controlLine = (workflowId: string, c: WorkflowControl): string => `workflow ${workflowId}: ${controlText(c)}`;

/** `--agents N|none`: a cap, or "none" to remove it (commander turns a parsed null into ""). */
const agentsCap = (value: string): number | "none" => {
  if (value === "none") return value;
  try {
    return intAtLeast(1)(value);
  } catch {
    throw new InvalidArgumentError(`expected a whole number of at least 1 or "none", got "${value}"`);
  }
};

export function registerWorkflow(program: Command, ctx: Ctx): void {
  const workflow = program
    .command("workflow")
    .description("list workflows; pause, resume, cancel a workflow or limit its agents");

  workflow
    .command("list")
    .description("workflows, newest first, with their status, tasks and controls")
    .addOption(new Option("--status <status>", "only workflows in this status").choices(STATUSES))
    .option("--limit <n>", "at most this many (1-1000)", intAtLeast(1, 1000), 100)
    .option("--json", "one JSON object: { workflows: [...] } as the supervisor answered")
    .action(
      action(async (o: { status?: (typeof STATUSES)[number]; limit: number; json?: boolean }) => {
        const reply = await withSupervisor(ctx, (sup) =>
          sup.call("sup.workflow.list", { limit: o.limit, ...(o.status ? { status: o.status } : {}) }),
        );
        if (o.json) {
          printJson(reply);
          return;
        }
        const now = Date.now();
        print(
          table(
            ["WORKFLOW", "TEAM", "STATUS", "TASKS", "FAILED", "SUBMITTED", "TOOK", "CONTROLS"],
            reply.workflows.map((w) => [
              w.workflowId,
              w.teamName,
              shownStatus(w.status, w.control, w.waitingFor),
              `${w.tasks.completed}/${w.tasks.total}`,
              String(w.tasks.failed),
              ago(w.submittedAt, now),
              w.finishedAt === null ? "-" : duration(w.finishedAt - w.submittedAt),
              w.control ? controlText(w.control) : "-",
            ]),
            "no workflows",
          ),
        );
      }),
    );

  workflow
    .command("pause <workflow-id>")
    .description(
      "stop handing the workflow's tasks to actors (they are parked); running attempts finish, or with --now give their tasks back",
    )
    .option("--now", "also stop the running attempts; their tasks run again on resume")
    .action(
      action(async (workflowId: string, o: { now?: boolean }) => {
        const { control } = await withSupervisor(ctx, (sup) =>
          changing(() => sup.call("sup.workflow.pause", { workflowId, now: !!o.now })),
        );
        print(controlLine(workflowId, control));
      }),
    );

  workflow
    .command("resume <workflow-id>")
    .description("hand a paused workflow's tasks out again (the parked ones first)")
    .action(
      action(async (workflowId: string) => {
        const { control } = await withSupervisor(ctx, (sup) =>
          changing(() => sup.call("sup.workflow.resume", { workflowId })),
        );
        print(controlLine(workflowId, control));
      }),
    );

  workflow
    .command("cancel <workflow-id>")
    .description("end every unfinished task of the workflow as cancelled (terminal); running attempts are stopped")
    .option("--reason <text>", "why, kept in its control and shown by cadre status")
    .action(
      action(async (workflowId: string, o: { reason?: string }) => {
        const reply = await withSupervisor(ctx, (sup) =>
          changing(() =>
            sup.call("sup.workflow.cancel", { workflowId, ...(o.reason !== undefined ? { reason: o.reason } : {}) }),
          ),
        );
        print(
          `${controlLine(workflowId, reply.control)}\n  cancelled ${reply.cancelled.length} task${reply.cancelled.length === 1 ? "" : "s"}${reply.cancelled.length > 0 ? `: ${reply.cancelled.join(", ")}` : ""}`,
        );
      }),
    );

  workflow
    .command("limit <workflow-id>")
    .description("cap the workflow's concurrent agent attempts, or reserve actors of its team for it")
    .option("--agents <n|none>", "at most this many agent attempts at once; none removes the cap", agentsCap)
    .option(
      "--guarantee <n>",
      "actors of its team placement and preemption leave alone; 0 removes it",
      intAtLeast(0, 10_000),
    )
    .action(
      action(async (workflowId: string, o: { agents?: number | "none"; guarantee?: number }) => {
        if (o.agents === undefined && o.guarantee === undefined) {
          throw new InvalidConfigError("cadre workflow limit", [
            { path: "--agents, --guarantee", message: "give one or both" },
          ]);
        }
        const { control } = await withSupervisor(ctx, (sup) =>
          changing(() =>
            sup.call("sup.workflow.limit", {
              workflowId,
              ...(o.agents !== undefined ? { agents: o.agents === "none" ? null : o.agents } : {}),
              ...(o.guarantee !== undefined ? { guarantee: o.guarantee } : {}),
            }),
          ),
        );
        print(controlLine(workflowId, control));
      }),
    );
}
