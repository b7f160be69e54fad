/**
 * `cadre incident report`: an incident report from the events stream between two times (the
 * builder and its classification: services/monitor/src/incident/, @cadre/monitor/incident). The
 * events are read with runtime's readEventLog, each with its JetStream timestamp (the server's
 * clock, the same for every service) and stream sequence, from --since up to --until or the cap
 * on events read, whichever comes first.
 */

import { buildReport, MAX_EVENTS, parseTime, reportMarkdown, reportText } from "@cadre/monitor/incident";
import { ProtocolError } from "@cadre/protocol";
import { connectNats, type EventLog, natsAuthOf, readEventLog } from "@cadre/runtime";
import { type Command, InvalidArgumentError, Option } from "commander";
import { action, type Ctx, intAtLeast, print, printJson } from "./common.js";

/** An option parser of a time (bad input: exit 2 with what is accepted). */
const timeArg =
  (now: number) =>
  (value: string): number => {
    try {
      return parseTime(value, now);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };

const HELP = `
Times: an ISO 8601 time (2026-05-01T10:00:00Z; without an offset, local time), a duration ago
(30s, 15m, 2h, 1d) or "now". Events are placed by their stream time (JetStream's timestamp).

The report: a timeline of faults, detections, actions, recoveries and operators' commands; for
each fault when it was detected and recovered, measured against seed 000's recovery matrix
(seeds/000_c4c521c85f6376de.txt lines 251-262; circuit breakers: lines 214-218) and judged met,
missed or open (not recovered by --until); tasks lost, applied twice, reassigned, conflicts.
Examples:
  cadre incident report --since 15m
  cadre incident report --since 2026-05-01T10:00:00Z --until 2026-05-01T11:00:00Z --markdown
`;

export function registerIncident(program: Command, ctx: Ctx): void {
  const now = Date.now();
  const incident = program.command("incident").description("incident reports from the events stream");
  incident
    .command("report")
    .description(
      "what went wrong between two times: faults with detection and recovery times against seed 000's targets, counts, operators' commands",
    )
    .requiredOption("--since <time>", "from this time (ISO 8601, or a duration ago: 15m, 2h, 30s)", timeArg(now))
    .option("--until <time>", "to this time (default: now)", timeArg(now))
    .addOption(new Option("--json", "one JSON object").conflicts("markdown"))
    .addOption(new Option("--markdown", "a Markdown document").conflicts("json"))
    .option(
      "--max-events <n>",
      `read at most this many events (default ${MAX_EVENTS}; the report says when it stopped there)`,
      intAtLeast(1, 10_000_000),
    )
    .addHelpText("after", HELP)
    .action(
      action(async (o: { since: number; until?: number; json?: boolean; markdown?: boolean; maxEvents?: number }) => {
        const untilMs = o.until ?? now;
        if (untilMs < o.since) {
          throw new ProtocolError(
            `--until (${new Date(untilMs).toISOString()}) is before --since (${new Date(o.since).toISOString()})`,
          );
        }
        const cap = o.maxEvents ?? MAX_EVENTS;
        const cfg = ctx.config();
        const nc = await connectNats(cfg.natsUrl, "cadre-cli", undefined, natsAuthOf(cfg));
        let window: EventLog;
        try {
          window = await readEventLog(nc, { sinceMs: o.since, untilMs, max: cap });
        } finally {
          await nc.close().catch(() => undefined);
        }
        const report = buildReport(window.events, {
          sinceMs: o.since,
          untilMs,
          skipped: window.skipped,
          cap,
          capped: window.capped,
        });
        if (window.capped) {
          process.stderr.write(`cadre: stopped after ${cap} events; the report covers only those (see --max-events)\n`);
        }
        if (o.json) printJson(report);
        else print(o.markdown ? reportMarkdown(report) : reportText(report));
      }),
    );
}
