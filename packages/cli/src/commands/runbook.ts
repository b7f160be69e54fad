/**
 * Seed 003's runbook commands: `cadre <family> <operation> ['<json>']` for every `mon.<family>.<op>`
 * of the operations table (one mechanism: a new operation there is a new command here), and
 * `cadre subagents '<phase>' '[commands]'`, which runs several of them at once and reports each.
 */

import {
  formatIssues,
  type OperationName,
  type OpRequestInput,
  operations,
  ProtocolError,
  toCadreError,
} from "@cadre/protocol";
import { call, type NatsConnection } from "@cadre/runtime";
import type { Command } from "commander";
import { action, type Ctx, EXIT, print, printJson, seconds, withSupervisor } from "./common.js";

type RunbookOp = Extract<OperationName, `mon.${string}.${string}`>;

/** The runbook operations by family: `resource-manager` → [`emergency-analysis`, ...]. */
export function runbookFamilies(): Map<string, { op: RunbookOp; name: string; summary: string }[]> {
  const families = new Map<string, { op: RunbookOp; name: string; summary: string }[]>();
  for (const op of Object.keys(operations) as OperationName[]) {
    const m = /^mon\.([a-z-]+)\.([a-z-]+)$/.exec(op);
    if (!m?.[1] || !m[2]) continue;
    const list = families.get(m[1]) ?? [];
    list.push({ op: op as RunbookOp, name: m[2], summary: operations[op].summary });
    families.set(m[1], list);
  }
  return families;
}

/** A JSON argument, parsed and checked against the operation's request (bad input: exit 2). */
function requestOf(op: RunbookOp, text: string | undefined): OpRequestInput<RunbookOp> {
  let raw: unknown = {};
  if (text !== undefined) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ProtocolError(`the argument is not JSON (${(err as Error).message}); quote it: '{"key": "value"}'`);
    }
  }
  const r = operations[op].request.safeParse(raw);
  if (!r.success) {
    const issues = formatIssues(r.error.issues).map((i) => `${i.path || "(the argument)"}: ${i.message}`);
    throw new ProtocolError(`${op}: ${issues.join("; ")}`, { issues });
  }
  return raw as OpRequestInput<RunbookOp>;
}

async function runOp(nc: NatsConnection, op: RunbookOp, body: unknown, timeoutMs: number): Promise<unknown> {
  return call(nc, op, body as never, { sender: "cadre-cli", timeoutMs } as never);
}

/** One command of `cadre subagents`, as the seed writes it. */
interface SubCommand {
  command: string;
  operation?: string;
  timeout_ms?: number;
  [field: string]: unknown;
}

/** The outcome of one command of a fan-out. */
interface SubOutcome {
  command: string;
  operation: string | null;
  status: "ok" | "failed" | "timeout";
  ms: number;
  result?: unknown;
  error?: { code: string; message: string };
}

/** Runs the commands at once, each with its own timeout; resolves when the slowest has. */
export async function fanOut(
  nc: NatsConnection,
  commands: SubCommand[],
  defaultTimeoutMs: number,
): Promise<SubOutcome[]> {
  const families = runbookFamilies();
  return Promise.all(
    commands.map(async (c): Promise<SubOutcome> => {
      const began = performance.now();
      const family = c.command.replace(/^\//, "");
      const { command: _c, operation, timeout_ms, ...fields } = c;
      const base = { command: c.command, operation: operation ?? null };
      const took = () => Math.round(performance.now() - began);
      const timeoutMs = timeout_ms ?? defaultTimeoutMs;
      try {
        // `/debug`: the inspection commands' view of the cluster (hosts and the wait-for graph).
        if (family === "debug") {
          const result = await Promise.all([
            call(nc, "sup.host.list", {}, { sender: "cadre-cli", timeoutMs }),
            call(nc, "sup.waits", {}, { sender: "cadre-cli", timeoutMs }),
            call(nc, "mon.status", {}, { sender: "cadre-cli", timeoutMs }),
          ]).then(([hosts, waits, monitor]) => ({ ...hosts, ...waits, metrics: monitor.metrics, asked: fields }));
          return { ...base, status: "ok", ms: took(), result };
        }
        const op = families.get(family)?.find((o) => o.name === operation)?.op;
        if (!op) {
          throw new ProtocolError(
            `no runbook operation ${c.command} ${operation ?? "(none given)"}; there are: ${[...families]
              .map(([f, ops]) => `/${f} ${ops.map((o) => o.name).join("|")}`)
              .join(", ")}, /debug`,
          );
        }
        // call() gives up after timeoutMs (UNAVAILABLE: reported as a timeout).
        const result = await runOp(nc, op, requestOf(op, JSON.stringify(fields)), timeoutMs);
        return { ...base, status: "ok", ms: took(), result };
      } catch (err) {
        const e = toCadreError(err);
        return {
          ...base,
          status: e.code === "TIMEOUT" || e.code === "UNAVAILABLE" ? "timeout" : "failed",
          ms: took(),
          error: { code: e.code, message: e.message },
        };
      }
    }),
  );
}

const jsonArg = (what: string) => (value: string) => {
  try {
    return JSON.parse(value) as unknown;
  } catch (err) {
    throw new ProtocolError(`${what} is not JSON (${(err as Error).message})`);
  }
};

export function registerRunbook(program: Command, ctx: Ctx): void {
  for (const [family, ops] of runbookFamilies()) {
    const group = program.command(family).description(`seed 003's /${family} commands (served by the monitor)`);
    for (const { op, name, summary } of ops) {
      group
        .command(`${name} [json]`)
        .description(summary)
        .option("--json", "the reply as one JSON object")
        .option("--timeout <seconds>", "wait this long for the answer (exit 3 past it)", seconds)
        .action(
          action(async (json: string | undefined, o: { json?: boolean; timeout?: number }) => {
            const body = requestOf(op, json);
            const cfg = ctx.config();
            const reply = await withSupervisor(ctx, (_s, nc) => runOp(nc, op, body, o.timeout ?? cfg.requestTimeoutMs));
            if (o.json) return void printJson(reply);
            print(JSON.stringify(reply, null, 2));
          }),
        );
    }
  }

  program
    .command("subagents <phase> <commands>")
    .description(
      "run several runbook commands at once, each with its own timeout (timeout_ms), and report each: status, time, result or error",
    )
    .option("--emergency", "recorded in the report (runbook commands are never throttled)")
    // The seed's other flags (one per incident): they name the fan-out, and change nothing.
    .option("--critical-failure", "recorded in the report")
    .option("--data-protection", "recorded in the report")
    .option("--network-resilient", "recorded in the report")
    .option("--timeout <seconds>", "each command's timeout when it gives none", seconds)
    .action(
      action(
        async (
          phaseText: string,
          commandsText: string,
          o: {
            emergency?: boolean;
            criticalFailure?: boolean;
            dataProtection?: boolean;
            networkResilient?: boolean;
            timeout?: number;
          },
        ) => {
          const phase = jsonArg("the phase")(phaseText) as Record<string, unknown>;
          const commands = jsonArg("the commands")(commandsText);
          if (!Array.isArray(commands) || commands.some((c) => typeof c?.command !== "string")) {
            throw new ProtocolError('the commands are a JSON array of objects with a "command" field');
          }
          const cfg = ctx.config();
          let ms = 0;
          const outcomes = await withSupervisor(ctx, async (_s, nc) => {
            const began = performance.now();
            const out = await fanOut(nc, commands as SubCommand[], o.timeout ?? cfg.requestTimeoutMs);
            ms = Math.round(performance.now() - began);
            return out;
          });
          const report = {
            phase,
            priority: phase.priority ?? null,
            emergency: o.emergency === true,
            criticalFailure: o.criticalFailure === true,
            dataProtection: o.dataProtection === true,
            networkResilient: o.networkResilient === true,
            ms,
            slowestMs: Math.max(0, ...outcomes.map((x) => x.ms)),
            sumMs: outcomes.reduce((a, x) => a + x.ms, 0),
            commands: outcomes,
          };
          printJson(report);
          // Exit 1 when any command failed: the report says which.
          return outcomes.some((x) => x.status !== "ok") ? EXIT.failed : EXIT.ok;
        },
      ),
    );
}
