/**
 * `cadre reconciliation`, `cadre quarantine`, `cadre freeze`/`unfreeze`, `cadre waits`: what the
 * supervisor did about misbehaving hosts and agents, data protection mode, the wait-for graph.
 */

import { formatEventLine, InvalidConfigError, subjects } from "@cadre/protocol";
import { connectNats, natsAuthOf, readEventLog } from "@cadre/runtime";
import { Argument, type Command } from "commander";
import { action, type Ctx, changing, print, printJson, withSupervisor } from "./common.js";

export function registerOps(program: Command, ctx: Ctx): void {
  program
    .command("reconciliation")
    .description(
      "print the supervisor's reconciliation reports: how the results each host replayed after being cut off were classified",
    )
    .option("--host <id>", "only this host's reports")
    .option("--json", "one JSON array instead of event lines")
    .action(
      action(async (o: { host?: string; json?: boolean }) => {
        const cfg = ctx.config();
        const nc = await connectNats(cfg.natsUrl, "cadre-cli", undefined, natsAuthOf(cfg));
        try {
          const filter = o.host ? subjects.event("host", o.host) : subjects.eventsOf("host");
          // Parsed by the events table: a stored event that does not parse is skipped and counted.
          const { events, skipped } = await readEventLog(nc, { filter });
          const reports = events.map((e) => e.event).filter((e) => e.type === "RECONCILIATION_REPORT");
          if (skipped > 0) {
            process.stderr.write(`cadre: ${skipped} stored host events skipped (not decoded, or not parsed)\n`);
          }
          if (o.json) printJson(reports.map((e) => e.data));
          else print(reports.length === 0 ? "no reconciliation reports" : reports.map(formatEventLine).join("\n"));
        } finally {
          await nc.close();
        }
      }),
    );

  program
    .command("quarantine")
    .description(
      "list the actors quarantined for responses that broke their kind's schema (with the reason), or release or retire one",
    )
    .addArgument(new Argument("[op]", "list, release or retire").choices(["list", "release", "retire"]).default("list"))
    .argument("[actorId]", "the actor to release or retire")
    .option("--json", "one JSON array instead of a table")
    .action(
      action(async (op: "list" | "release" | "retire", actorId: string | undefined, o: { json?: boolean }) => {
        if (op !== "list" && !actorId) {
          throw new InvalidConfigError("cadre quarantine", [
            { path: "actorId", message: `"${op}" needs the actor: cadre quarantine ${op} <actorId>` },
          ]);
        }
        const { actors } = await withSupervisor(ctx, (sup) =>
          changing(() => sup.call("sup.quarantine", { op, ...(actorId ? { actorId } : {}) })),
        );
        if (op !== "list") print(`${op === "release" ? "released" : "retired"} ${actorId}`);
        if (o.json) return void printJson(actors);
        print(
          actors.length === 0
            ? "no quarantined actors"
            : actors
                .map(
                  (a) =>
                    `${a.actorId}  kind ${a.kindName}  host ${a.hostId}  task ${a.quarantine?.taskId ?? "?"}  ` +
                    `replaced by ${a.replacedBy ?? "-"}\n  ${(a.quarantine?.issues ?? []).map((i) => `${i.path || "(output)"}: ${i.message}`).join("\n  ")}`,
                )
                .join("\n"),
        );
      }),
    );

  for (const [name, frozen] of [
    ["freeze", true],
    ["unfreeze", false],
  ] as const) {
    program
      .command(name)
      .description(
        frozen
          ? "data protection mode: stop every state change of a workflow (its results and subtasks wait, nothing is lost)"
          : "end data protection mode for a workflow: what waited is applied",
      )
      .argument("<workflowId>", "the workflow")
      .action(
        action(async (workflowId: string) => {
          await withSupervisor(ctx, (sup) => changing(() => sup.call("sup.freeze", { workflowId, frozen })));
          print(`${frozen ? "frozen" : "unfrozen"} ${workflowId}`);
        }),
      );
  }

  program
    .command("waits")
    .description("show the wait-for graph: which task holds which resource, who waits for what, and the edges")
    .option("--json", "one JSON object instead of text")
    .action(
      action(async (o: { json?: boolean }) => {
        const w = await withSupervisor(ctx, (sup) => sup.call("sup.waits", {}));
        if (o.json) return void printJson(w);
        const lines = [
          ...Object.entries(w.holders).map(([r, tasks]) => `${r}: held by ${tasks.join(", ")}`),
          ...w.waiting.map((x) => `${x.taskId} waits for ${x.resource} (${x.sinceMs} ms)`),
          ...w.edges.map(([a, b]) => `${a} -> ${b}`),
        ];
        print(lines.length === 0 ? "nothing held, nobody waiting" : lines.join("\n"));
      }),
    );
}
