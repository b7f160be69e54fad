/** `cadre monitor` and `cadre perf bottlenecks`: what the monitor sees, and where tasks spend their time. */

import { bottlenecks } from "@cadre/protocol";
import { call } from "@cadre/runtime";
import type { Command } from "commander";
import { ago, table } from "../format.js";
import { action, type Ctx, print, printJson, withSupervisor } from "./common.js";

const num = (v: number | null): string => (v === null ? "-" : String(Math.round(v * 1000) / 1000));

export function registerObserve(program: Command, ctx: Ctx): void {
  program
    .command("monitor")
    .description("the cluster's six metrics as the monitor computes them, with thresholds, actions and state")
    .option("--json", "one JSON object: { metrics: [...], sources: [...] }")
    .action(
      action(async (o: { json?: boolean }) => {
        const cfg = ctx.config();
        const reply = await withSupervisor(ctx, (_sup, nc) =>
          call(nc, "mon.status", {}, { sender: "cadre-cli", timeoutMs: cfg.requestTimeoutMs }),
        );
        if (o.json) return void printJson(reply);
        print(
          table(
            ["METRIC", "VALUE", "THRESHOLD", "CLEAR", "ACTION", "STATE", "SINCE"],
            reply.metrics.map((m) => [
              m.metric,
              num(m.value),
              String(m.threshold),
              num(m.clear),
              m.action,
              m.state,
              m.since === null ? "-" : ago(m.since),
            ]),
            "the monitor has no metrics yet",
          ),
        );
        print(`\nreporting: ${reply.sources.map((s) => `${s.service} ${s.id}`).join(", ") || "nobody yet"}`);
      }),
    );

  const perf = program.command("perf").description("where the time goes");
  perf
    .command("bottlenecks")
    .description("per kind, the task stage (queued, working, waiting, applying) holding the largest share of the time")
    .option("--json", "one JSON object: { kinds: [{ kind, bottleneck, tasks, stages: [...] }] }")
    .action(
      action(async (o: { json?: boolean }) => {
        const kinds = bottlenecks(await withSupervisor(ctx, (sup) => sup.call("sup.perf.stages", {})));
        if (o.json) return void printJson({ kinds });
        print(
          table(
            ["KIND", "BOTTLENECK", "SHARE", "TASKS", "STAGES (share, mean s, p95 s)"],
            kinds.map((k) => [
              k.kind,
              k.bottleneck ?? "-",
              `${Math.round((k.stages[0]?.share ?? 0) * 100)}%`,
              String(k.tasks),
              k.stages
                .map((s) => `${s.stage} ${Math.round(s.share * 100)}% ${num(s.meanSeconds)} ${num(s.p95Seconds)}`)
                .join("; "),
            ]),
            "no task has finished on this supervisor yet",
          ),
        );
      }),
    );
}
