#!/usr/bin/env node
/** The `cadre` command. */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  formatEventLine,
  InvalidConfigError,
  parseTeam,
  subjects,
  type Team,
  toCadreError,
  type WorkflowRecord,
} from "@cadre/protocol";
import { call, connectNats, loadConfig, readEvents, readYamlFile } from "@cadre/runtime";
import { SingleBar } from "cli-progress";
import { Command } from "commander";
import { startStack } from "./stack.js";
import { checkpoint, rollback, showState, stateLog } from "./state.js";
import { summaryJson, summaryText } from "./summary.js";
import { submitWorkflow, waitForWorkflow } from "./workflow.js";

/** Exit codes: 0 completed, 1 workflow failed, 2 bad input, 3 could not reach or finish. */
const EXIT = { ok: 0, failed: 1, badInput: 2, unavailable: 3 } as const;

function fail(err: unknown): never {
  const e = toCadreError(err);
  process.stderr.write(`cadre: ${e.message}\n`);
  process.exit(e.code === "INVALID_CONFIG" || e.code === "PROTOCOL_ERROR" ? EXIT.badInput : EXIT.unavailable);
}

function readTeam(file: string): Team {
  return parseTeam(readYamlFile(file, "team file"), `team file ${file}`);
}

/** Runs a team's workflow against a running stack, with a progress bar; returns the exit code. */
async function runTeam(natsUrl: string, file: string, opts: { json: boolean; timeoutMs: number }): Promise<number> {
  const team = readTeam(file);
  const nc = await connectNats(natsUrl, "cadre-cli");
  try {
    const { workflowId } = await submitWorkflow(nc, { team });
    const showBar = !opts.json || process.stderr.isTTY;
    const bar = new SingleBar({
      format: `${workflowId} [{bar}] {value}/{total} tasks | failed {failed} | retried {retried}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 1000,
      hideCursor: true,
    });
    if (showBar) bar.start(1, 0, { failed: 0, retried: 0 });
    let w: WorkflowRecord;
    try {
      w = await waitForWorkflow(nc, workflowId, {
        timeoutMs: opts.timeoutMs,
        onProgress: (p) => {
          if (!showBar) return;
          bar.setTotal(p.tasks.total);
          bar.update(p.tasks.completed + p.tasks.failed, { failed: p.tasks.failed, retried: p.tasks.retried });
        },
      });
    } finally {
      if (showBar) bar.stop();
    }
    process.stdout.write(`${opts.json ? JSON.stringify(summaryJson(w)) : summaryText(w)}\n`);
    return w.status === "completed" ? EXIT.ok : EXIT.failed;
  } finally {
    await nc.close();
  }
}

const program = new Command("cadre")
  .description("Operate a Cadre cluster: bring up a local stack, run team workflows, inspect them.")
  .option("--nats-url <url>", "NATS server URL (env CADRE_NATS_URL)")
  .option("--config <file>", "YAML or JSON configuration file")
  .showHelpAfterError();

const config = () => {
  const o = program.opts<{ natsUrl?: string; config?: string }>();
  return loadConfig({ file: o.config, overrides: { natsUrl: o.natsUrl } });
};

program
  .command("up")
  .description("start nats-server (if none answers), the supervisor, agent-hosts and the monitor; Ctrl-C stops them")
  .option("--hosts <n>", "number of agent-hosts", "2")
  .option("--data-dir <dir>", "JetStream directory of a started nats-server", ".cadre/data")
  .option("--log-dir <dir>", "where each service's log goes", ".cadre/logs")
  .action(async (o: { hosts: string; dataDir: string; logDir: string }) => {
    try {
      const cfg = config();
      const stack = await startStack({
        natsUrl: cfg.natsUrl,
        dataDir: resolve(o.dataDir),
        logDir: resolve(o.logDir),
        hosts: Number(o.hosts),
        ...(program.opts().config ? { configFile: resolve(program.opts().config) } : {}),
      });
      process.stdout.write(
        `cadre is up: NATS ${stack.natsUrl}${stack.nats ? " (started here)" : ""}; ${[...stack.processes.keys()].join(", ")}\n` +
          `logs in ${resolve(o.logDir)}; run a team with: cadre run <team.yaml>; Ctrl-C stops everything\n`,
      );
      const shutdown = async () => {
        process.stdout.write("stopping...\n");
        await stack.stop();
        process.exit(0);
      };
      process.on("SIGINT", () => void shutdown());
      process.on("SIGTERM", () => void shutdown());
    } catch (err) {
      fail(err);
    }
  });

program
  .command("run <team-file>")
  .description("submit the team's root task, show progress, print a summary; exit 0 when the workflow completes")
  .option("--json", "print one JSON object instead of the summary")
  .option("--timeout <seconds>", "give up after this long", "600")
  .action(async (file: string, o: { json?: boolean; timeout: string }) => {
    try {
      process.exit(await runTeam(config().natsUrl, file, { json: !!o.json, timeoutMs: Number(o.timeout) * 1000 }));
    } catch (err) {
      fail(err);
    }
  });

program
  .command("demo [team-file]")
  .description("bring up a fresh local stack, run a team (default: examples/software-team.yaml), tear it down")
  .option("--json", "print one JSON object instead of the summary")
  .action(async (file: string | undefined, o: { json?: boolean }) => {
    const dataDir = mkdtempSync(join(tmpdir(), "cadre-demo-"));
    let code: number = EXIT.unavailable;
    try {
      const teamFile = file ?? "examples/software-team.yaml";
      readTeam(teamFile);
      process.stderr.write("starting nats-server, supervisor, 2 agent-hosts and the monitor...\n");
      const stack = await startStack({ dataDir, logDir: join(dataDir, "logs") });
      try {
        code = await runTeam(stack.natsUrl, teamFile, { json: !!o.json, timeoutMs: 300_000 });
      } finally {
        await stack.stop();
      }
    } catch (err) {
      rmSync(dataDir, { recursive: true, force: true });
      fail(err);
    }
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(code);
  });

program
  .command("status <workflow-id>")
  .description("print a workflow's record")
  .action(async (workflowId: string) => {
    try {
      const nc = await connectNats(config().natsUrl, "cadre-cli");
      const reply = await call(nc, "sup.status", { workflowId }, {
        sender: "cadre-cli",
        timeoutMs: 5000,
      });
      process.stdout.write(`${summaryText(reply.workflow)}\n`);
      await nc.close();
    } catch (err) {
      fail(err);
    }
  });

program
  .command("reconciliation")
  .description(
    "print the supervisor's reconciliation reports: how the results each host replayed after being cut off were classified",
  )
  .option("--host <id>", "only this host's reports")
  .option("--json", "one JSON array instead of event lines")
  .action(async (o: { host?: string; json?: boolean }) => {
    try {
      const nc = await connectNats(config().natsUrl, "cadre-cli");
      const filter = o.host ? subjects.event("host", o.host) : subjects.eventsOf("host");
      const reports = (await readEvents(nc, filter)).filter((e) => e.type === "RECONCILIATION_REPORT");
      const text = o.json
        ? JSON.stringify(reports.map((e) => e.data))
        : reports.length === 0
          ? "no reconciliation reports"
          : reports.map(formatEventLine).join("\n");
      process.stdout.write(`${text}\n`);
      await nc.close();
    } catch (err) {
      fail(err);
    }
  });

program
  .command("quarantine")
  .description(
    "list the actors quarantined for responses that broke their kind's schema (with the reason), or release or retire one",
  )
  .argument("[op]", "list, release or retire", "list")
  .argument("[actorId]", "the actor to release or retire")
  .option("--json", "one JSON array instead of a table")
  .action(async (op: string, actorId: string | undefined, o: { json?: boolean }) => {
    try {
      if (!["list", "release", "retire"].includes(op) || (op !== "list" && !actorId)) {
        throw new InvalidConfigError("cadre quarantine", [
          { path: "op", message: `use "list", "release <actorId>" or "retire <actorId>" (got "${op}")` },
        ]);
      }
      const nc = await connectNats(config().natsUrl, "cadre-cli");
      const { actors } = await call(
        nc,
        "sup.quarantine",
        { op: op as "list" | "release" | "retire", ...(actorId ? { actorId } : {}) },
        { sender: "cadre-cli", timeoutMs: config().requestTimeoutMs },
      );
      await nc.close();
      if (op !== "list") process.stdout.write(`${op === "release" ? "released" : "retired"} ${actorId}\n`);
      const text = o.json
        ? JSON.stringify(actors)
        : actors.length === 0
          ? "no quarantined actors"
          : actors
              .map(
                (a) =>
                  `${a.actorId}  kind ${a.kindName}  host ${a.hostId}  task ${a.quarantine?.taskId ?? "?"}  ` +
                  `replaced by ${a.replacedBy ?? "-"}\n  ${(a.quarantine?.issues ?? []).map((i) => `${i.path || "(output)"}: ${i.message}`).join("\n  ")}`,
              )
              .join("\n");
      process.stdout.write(`${text}\n`);
    } catch (err) {
      fail(err);
    }
  });

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
    .action(async (workflowId: string) => {
      try {
        const nc = await connectNats(config().natsUrl, "cadre-cli");
        await call(nc, "sup.freeze", { workflowId, frozen }, {
          sender: "cadre-cli",
          timeoutMs: config().requestTimeoutMs,
        });
        await nc.close();
        process.stdout.write(`${frozen ? "frozen" : "unfrozen"} ${workflowId}\n`);
      } catch (err) {
        fail(err);
      }
    });
}

const state = program
  .command("state")
  .description("a workflow's shared state: show it, its transaction log, take a checkpoint, roll back and replay");
state
  .command("show")
  .description("print the workflow's state names and values (one snapshot)")
  .argument("<workflowId>", "the workflow")
  .action(async (workflowId: string) => {
    try {
      process.stdout.write(`${JSON.stringify(await showState(config(), workflowId), null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });
state
  .command("log")
  .description("list the committed transactions on the workflow's state: log position, id, what they wrote")
  .argument("<workflowId>", "the workflow")
  .option("--json", "one JSON object instead of text")
  .action(async (workflowId: string, o: { json?: boolean }) => {
    try {
      const log = await stateLog(config(), workflowId);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(log)}\n`);
        return;
      }
      const lines = [
        `checkpoints: ${log.checkpoints.length === 0 ? "none" : log.checkpoints.join(", ")}`,
        ...log.entries.map((e) => `${e.seq}  ${e.txid}  ${JSON.stringify(e.writes)}`),
        ...log.invalid.map((seq) => `${seq}  (fails its checksum or schema: left out of any replay)`),
      ];
      if (log.entries.length === 0) lines.push("no transactions");
      process.stdout.write(`${lines.join("\n")}\n`);
    } catch (err) {
      fail(err);
    }
  });
state
  .command("checkpoint")
  .description("keep the workflow's state as of now (one snapshot, at a log position), to roll back to later")
  .argument("<workflowId>", "the workflow")
  .action(async (workflowId: string) => {
    try {
      const ck = await checkpoint(config(), workflowId);
      process.stdout.write(`checkpoint ${ck.position}: ${Object.keys(ck.values).length} key(s)\n`);
    } catch (err) {
      fail(err);
    }
  });
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
  )
  .option("--skip <txids>", "comma-separated transaction ids not to replay", "")
  .action(async (workflowId: string, o: { to: string; skip: string }) => {
    const to = Number(o.to);
    if (!Number.isInteger(to) || to < 0) {
      fail(
        new InvalidConfigError("cadre state rollback", [{ path: "--to", message: `a log position, got "${o.to}"` }]),
      );
    }
    try {
      const skip = o.skip.split(",").filter((s) => s.length > 0);
      const r = await rollback(config(), workflowId, to, skip);
      process.stdout.write(
        `rolled back ${workflowId} to ${to}: changed ${r.keys.length} key(s), replayed ${r.replayed.length}, ` +
          `skipped ${r.skipped.length}, left out ${r.invalid.length} damaged\n`,
      );
    } catch (err) {
      fail(err);
    }
  });

program
  .command("waits")
  .description("show the wait-for graph: which task holds which resource, who waits for what, and the edges")
  .option("--json", "one JSON object instead of text")
  .action(async (o: { json?: boolean }) => {
    try {
      const nc = await connectNats(config().natsUrl, "cadre-cli");
      const w = await call(nc, "sup.waits", {}, {
        sender: "cadre-cli",
        timeoutMs: config().requestTimeoutMs,
      });
      await nc.close();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(w)}\n`);
        return;
      }
      const lines = [
        ...Object.entries(w.holders).map(([r, tasks]) => `${r}: held by ${tasks.join(", ")}`),
        ...w.waiting.map((x) => `${x.taskId} waits for ${x.resource} (${x.sinceMs} ms)`),
        ...w.edges.map(([a, b]) => `${a} -> ${b}`),
      ];
      process.stdout.write(`${lines.length === 0 ? "nothing held, nobody waiting" : lines.join("\n")}\n`);
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync(process.argv);
