/** `cadre up`, `cadre run`, `cadre demo` and `cadre status`: bring a stack up, run a team, follow it. */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AfterSchema, type Budget, formatIssues, parseTeam, type Team, type WorkflowRecord } from "@cadre/protocol";
import { connectNats, type NatsAuth, natsAuthOf, readYamlFile } from "@cadre/runtime";
import { SingleBar } from "cli-progress";
import { type Command, InvalidArgumentError } from "commander";
import { controlText } from "../format.js";
import { startStack } from "../stack.js";
import { summaryJson, summaryText } from "../summary.js";
import { submitWorkflow, waitForWorkflow } from "../workflow.js";
import {
  action,
  budgetArg,
  type Ctx,
  EXIT,
  fail,
  intAtLeast,
  print,
  printJson,
  seconds,
  withSupervisor,
} from "./common.js";

function readTeam(file: string): Team {
  return parseTeam(readYamlFile(file, "team file"), `team file ${file}`);
}

/**
 * `--after <id...>`: each value may list several ids separated by commas; the whole list is
 * checked as the supervisor will (ids, at most 20, none twice), so a bad one is exit 2 here.
 */
const afterArg = (value: string, previous: string[] | undefined): string[] => {
  const ids = [...(previous ?? []), ...value.split(",").map((v) => v.trim())].filter((v) => v.length > 0);
  const r = AfterSchema.safeParse(ids);
  if (!r.success)
    throw new InvalidArgumentError(
      formatIssues(r.error.issues)
        .map((i) => i.message)
        .join("; "),
    );
  return r.data;
};

/** How {@link runTeam} reports. */
interface RunOptions {
  budget?: Budget | undefined;
  /** Workflows it waits for (the submit's `after`). */
  after?: string[] | undefined;
  json: boolean;
  detach: boolean;
  timeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * Submits a team's workflow to a running stack; unless detached, follows it with a progress bar
 * and prints a summary. Returns the exit code: 0 completed (or submitted, detached), 1 failed or
 * cancelled.
 */
async function runTeam(natsUrl: string, file: string, opts: RunOptions, auth: NatsAuth = {}): Promise<number> {
  const team = readTeam(file);
  const nc = await connectNats(natsUrl, "cadre-cli", undefined, auth);
  try {
    const { workflowId } = await submitWorkflow(nc, {
      team,
      requestTimeoutMs: opts.requestTimeoutMs,
      ...(opts.budget ? { budget: opts.budget } : {}),
      ...(opts.after?.length ? { after: opts.after } : {}),
    });
    if (opts.json) printJson({ workflowId, accepted: true });
    else if (opts.detach) print(workflowId);
    if (opts.detach) return EXIT.ok;

    const showBar = !opts.json || process.stderr.isTTY;
    const bar = new SingleBar({
      format: `${workflowId} [{bar}] {value}/{total} tasks | failed {failed} | retried {retried}{waiting}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 1000,
      hideCursor: true,
    });
    if (showBar) bar.start(1, 0, { failed: 0, retried: 0, waiting: "" });
    let w: WorkflowRecord;
    try {
      w = await waitForWorkflow(nc, workflowId, {
        timeoutMs: opts.timeoutMs,
        onProgress: (p) => {
          if (!showBar) return;
          bar.setTotal(p.tasks.total);
          bar.update(p.tasks.completed + p.tasks.failed, {
            failed: p.tasks.failed,
            retried: p.tasks.retried,
            waiting: p.waitingFor?.length ? ` | waits for ${p.waitingFor.join(", ")}` : "",
          });
        },
      });
    } finally {
      if (showBar) bar.stop();
    }
    print(opts.json ? JSON.stringify(summaryJson(w)) : summaryText(w));
    return w.status === "completed" ? EXIT.ok : EXIT.failed;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

const RUN_HELP = `
Output:
  Without --json: a progress bar on standard error, then a summary on standard output.
  --json: two JSON lines on standard output. The first as soon as the supervisor accepted the
  workflow:
    {"workflowId":"<id>","accepted":true}
  the last when it finished (the summary):
    {"workflowId","team","teamId","status","ms","tasks":{...},"output"?,"error"?}
  --detach: the workflow id alone (with --json: the first line alone); the workflow goes on
  without the command (follow it with cadre status <id> or cadre workflow list).
`;

export function registerRun(program: Command, ctx: Ctx): void {
  program
    .command("up")
    .description("start nats-server (if none answers), the supervisor, agent-hosts and the monitor; Ctrl-C stops them")
    .option("--hosts <n>", "number of agent-hosts", intAtLeast(0), 2)
    .option("--data-dir <dir>", "JetStream directory of a started nats-server", ".cadre/data")
    .option("--log-dir <dir>", "where each service's log goes", ".cadre/logs")
    .option("--security-dir <dir>", "identities and the server's users (made on first start)", ".cadre/security")
    .option("--insecure", "no identities: anyone who can reach NATS can do anything (see the README's Security)")
    .option("--tls", "also TLS with client certificates (mutual TLS) between everything and NATS")
    .action(
      async (o: {
        hosts: number;
        dataDir: string;
        logDir: string;
        securityDir: string;
        insecure?: boolean;
        tls?: boolean;
      }) => {
        try {
          const cfg = ctx.config();
          const configFile = ctx.configFile();
          // The monitor's scale action asks this process for one more agent-host (SIGUSR2, its
          // scale command below). Handled from before the monitor starts: SIGUSR2's default kills.
          let starting: ReturnType<typeof startStack> | undefined;
          let hosts = o.hosts;
          let adding = Promise.resolve();
          process.on("SIGUSR2", () => {
            adding = adding.then(async () => {
              // Asked while starting: once started.
              const s = await starting?.catch(() => undefined);
              if (!s) return;
              const hostId = `host-${++hosts}`;
              try {
                await s.startHost(hostId);
                print(`scaled: started ${hostId} (the monitor's scale action)`);
              } catch (err) {
                print(`scale: ${hostId} did not start: ${(err as Error).message}`);
              }
            });
          });
          starting = startStack({
            natsUrl: cfg.natsUrl,
            dataDir: resolve(o.dataDir),
            logDir: resolve(o.logDir),
            hosts: o.hosts,
            ...(configFile ? { configFile: resolve(configFile) } : {}),
            ...(o.insecure ? {} : { security: { dir: resolve(o.securityDir), tls: !!o.tls } }),
            monitorArgs: ["--scale-command", `kill -USR2 ${process.pid}`],
          });
          const stack = await starting;
          const operator = stack.security?.credentials("operator");
          print(
            `cadre is up: NATS ${stack.natsUrl}${stack.nats ? " (started here)" : ""}; ${[...stack.processes.keys()].join(", ")}\n` +
              `logs in ${resolve(o.logDir)}; run a team with: cadre run <team.yaml>; Ctrl-C stops everything\n` +
              `metrics (Prometheus) and health: ${[...stack.processes.values()]
                .map((p) => `${p.name} http://127.0.0.1:${p.healthPort}/metrics`)
                .join(", ")}` +
              (stack.processes.get("monitor")
                ? `\ndashboard: http://127.0.0.1:${stack.processes.get("monitor")?.healthPort}/dashboard`
                : "") +
              (operator
                ? `\nauthenticated: connect as the operator with  export CADRE_NATS_CREDS=${operator}  (identities in ${resolve(o.securityDir)})` +
                  (stack.security?.tls
                    ? `\nTLS: export CADRE_NATS_TLS_CA=${stack.security.tls("operator").caFile} CADRE_NATS_TLS_CERT=${stack.security.tls("operator").certFile} CADRE_NATS_TLS_KEY=${stack.security.tls("operator").keyFile}`
                    : "")
                : "\nINSECURE: anonymous clients may do anything"),
          );
          const shutdown = async () => {
            print("stopping...");
            await stack.stop();
            process.exit(EXIT.ok);
          };
          process.on("SIGINT", () => void shutdown());
          process.on("SIGTERM", () => void shutdown());
        } catch (err) {
          fail(err);
        }
      },
    );

  program
    .command("run <team-file>")
    .description(
      "submit the team's root task, show progress, print a summary; exit 0 when the workflow completes, 1 when it fails or is cancelled",
    )
    .option("--json", "JSON lines: the workflow id once accepted, the summary at the end (see Output)")
    .option("--detach", "print the workflow id once it is accepted and exit 0, without following it")
    .option("--timeout <seconds>", "give up following it after this long (exit 3)", seconds, 600_000)
    .option(
      "--budget <json>",
      `what its model calls may spend, in place of the team's: '{"requests":20,"costUsd":0.5}'`,
      budgetArg,
    )
    .option(
      "--after <workflow-id...>",
      "wait for these workflows to complete before starting (up to 20; one that fails or is cancelled fails this one); after the team file, or comma-separated",
      afterArg,
    )
    .addHelpText("after", RUN_HELP)
    .action(
      action(
        async (
          file: string,
          o: { json?: boolean; detach?: boolean; timeout: number; budget?: Budget; after?: string[] },
        ) => {
          const cfg = ctx.config();
          return runTeam(
            cfg.natsUrl,
            file,
            {
              json: !!o.json,
              detach: !!o.detach,
              timeoutMs: o.timeout,
              requestTimeoutMs: cfg.requestTimeoutMs,
              budget: o.budget,
              after: o.after,
            },
            natsAuthOf(cfg),
          );
        },
      ),
    );

  program
    .command("demo [team-file]")
    .description("bring up a fresh local stack, run a team (default: examples/software-team.yaml), tear it down")
    .option("--json", "JSON lines as for cadre run --json")
    .action(async (file: string | undefined, o: { json?: boolean }) => {
      const dataDir = mkdtempSync(join(tmpdir(), "cadre-demo-"));
      let code: number = EXIT.unavailable;
      try {
        const teamFile = file ?? "examples/software-team.yaml";
        readTeam(teamFile);
        process.stderr.write("starting nats-server, supervisor, 2 agent-hosts and the monitor...\n");
        // Authenticated like cadre up: the demo runs as the operator.
        const stack = await startStack({
          dataDir,
          logDir: join(dataDir, "logs"),
          security: { dir: join(dataDir, "security") },
        });
        try {
          code = await runTeam(
            stack.natsUrl,
            teamFile,
            { json: !!o.json, detach: false, timeoutMs: 300_000, requestTimeoutMs: 5000 },
            { credentials: stack.security?.credentials("operator"), tls: stack.security?.tls?.("operator") },
          );
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
    .description(
      "print a workflow's record and its controls (paused, cancelled, agent cap, reserved actors, parked tasks)",
    )
    .option("--json", "one JSON object: the summary of cadre run --json and the control")
    .action(
      action(async (workflowId: string, o: { json?: boolean }) => {
        const { workflow, control } = await withSupervisor(ctx, (sup) => sup.call("sup.status", { workflowId }));
        if (o.json) printJson({ ...summaryJson(workflow), control });
        else print(`${summaryText(workflow)}\n  controls: ${controlText(control)}`);
        return EXIT.ok;
      }),
    );
}
