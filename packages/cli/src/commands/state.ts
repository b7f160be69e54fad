/** `cadre state`: a workflow's shared state, its transaction log, checkpoints and rollback. */

import { call } from "@cadre/runtime";
import type { Command } from "commander";
import { showState, stateLog } from "../state.js";
import { action, type Ctx, EXIT, intAtLeast, print, printJson, withSupervisor } from "./common.js";

export function registerState(program: Command, ctx: Ctx): void {
  const state = program
    .command("state")
    .description("a workflow's shared state: show it, its transaction log, take a checkpoint, roll back and replay");

  state
    .command("show")
    .description("print the workflow's state names and values (one snapshot)")
    .argument("<workflowId>", "the workflow")
    .action(
      action(async (workflowId: string) => {
        print(JSON.stringify(await showState(ctx.config(), workflowId), null, 2));
      }),
    );

  state
    .command("log")
    .description("list the committed transactions on the workflow's state: log position, id, what they wrote")
    .argument("<workflowId>", "the workflow")
    .option("--json", "one JSON object instead of text")
    .action(
      action(async (workflowId: string, o: { json?: boolean }) => {
        const log = await stateLog(ctx.config(), workflowId);
        if (o.json) return void printJson(log);
        const lines = [
          `checkpoints: ${log.checkpoints.length === 0 ? "none" : log.checkpoints.join(", ")}`,
          ...log.entries.map((e) => `${e.seq}  ${e.txid}  ${JSON.stringify(e.writes)}`),
          ...log.invalid.map((seq) => `${seq}  (fails its checksum or schema: left out of any replay)`),
        ];
        if (log.entries.length === 0) lines.push("no transactions");
        print(lines.join("\n"));
      }),
    );

  state
    .command("checkpoint")
    .description("keep the workflow's state as of now (one snapshot, at a log position), to roll back to later")
    .argument("<workflowId>", "the workflow")
    .action(
      action(async (workflowId: string) => {
        const timeoutMs = ctx.config().requestTimeoutMs;
        const ck = await withSupervisor(ctx, (_s, nc) =>
          call(nc, "sup.state.checkpoint", { workflowId }, { sender: "cadre-cli", timeoutMs }),
        );
        print(`checkpoint ${ck.position}: ${ck.keys} key(s)`);
      }),
    );

  state
    .command("rollback")
    .description(
      "restore the workflow's state to a checkpoint, then replay the log after it without the transactions named " +
        "(freeze the workflow first so nothing commits meanwhile)",
    )
    .argument("<workflowId>", "the workflow")
    .requiredOption(
      "--to <position>",
      "the checkpoint: a log position from `cadre state checkpoint` or `cadre state log`",
      intAtLeast(0),
    )
    .option("--skip <txids>", "comma-separated transaction ids not to replay", "")
    .action(
      action(async (workflowId: string, o: { to: number; skip: string }) => {
        const skip = o.skip.split(",").filter((s) => s.length > 0);
        const timeoutMs = ctx.config().requestTimeoutMs;
        const r = await withSupervisor(ctx, (_s, nc) =>
          call(nc, "sup.state.rollback", { workflowId, toSeq: o.to, skip }, { sender: "cadre-cli", timeoutMs }),
        );
        print(
          `rolled back ${workflowId} to ${o.to}: changed ${r.keys.length} key(s), replayed ${r.replayed.length}, ` +
            `skipped ${r.skipped.length}, left out ${r.invalid.length} damaged` +
            (r.verified.mismatched.length > 0 ? `; ${r.verified.mismatched.length} did not read back as replayed` : ""),
        );
        // A value that did not read back as the replay made it: the rollback is not trusted (exit 1).
        return r.verified.mismatched.length > 0 ? EXIT.failed : EXIT.ok;
      }),
    );
}
