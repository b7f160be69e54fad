/**
 * The incident report for people: as text ({@link reportText}) and as a Markdown document
 * ({@link reportMarkdown}). The JSON output is the report itself (report.ts).
 */

import { duration, table } from "./format.js";
import type { Counts, Fault, IncidentReport, Redone } from "./report.js";

/** How many timeline entries the text and Markdown views show (JSON has all). */
export const TIMELINE_SHOWN = 500;

const time = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString());
const measured = (ms: number | null): string => (ms === null ? "-" : duration(ms));

function countLines(c: Counts): [string, string][] {
  const by = Object.entries(c.reassignedBy)
    .map(([r, n]) => `${r} ${n}`)
    .join(", ");
  return [
    [
      "tasks lost",
      `${c.lost}${c.lostBy.length ? ` (${c.lostBy.map((l) => `${l.workflowId} ${l.lost}`).join(", ")})` : ""}`,
    ],
    [
      "applied twice",
      `${c.appliedTwice}${c.appliedTwiceTasks.length ? ` (${c.appliedTwiceTasks.slice(0, 10).join(", ")})` : ""}`,
    ],
    ["reassigned", `${c.reassigned} (${c.reassignedTasks} tasks${by ? `; ${by}` : ""})`],
    ["conflicts", `${c.conflicts} (workflows' counts: ${c.workflowCounts.conflicts})`],
    ["duplicates", `${c.duplicates} (workflows' counts: ${c.workflowCounts.duplicates})`],
    ["results rejected", String(c.rejected)],
    ["attempts failed", String(c.attemptsFailed)],
    ["tasks applied", `${c.tasksCompleted} completed, ${c.tasksFailed} failed`],
    [
      "workflows",
      `${c.workflows.submitted} submitted, ${c.workflows.completed} completed, ${c.workflows.failed} failed, ${c.workflows.cancelled} cancelled, ${c.workflows.unfinished.length} unfinished`,
    ],
  ];
}

const faultRow = (f: Fault): string[] => [
  f.id,
  f.type,
  f.key,
  time(f.detectedAt),
  measured(f.detectMs),
  f.target?.detect?.text ?? "-",
  f.detect,
  time(f.recoveredAt),
  measured(f.recoverMs),
  f.target?.recover.text ?? "-",
  f.recover,
  f.verdict,
];
const FAULT_HEADER = [
  "fault",
  "type",
  "subject",
  "detected",
  "detect in",
  "target",
  "detect",
  "recovered",
  "recover in",
  "target",
  "recover",
  "verdict",
];

/** A host fault's `detail.redone` (faults.ts), or undefined for any other fault. */
export const redoneOf = (f: Fault): Redone | undefined => f.detail.redone as Redone | undefined;

/** A lost host's work done again (faults.ts `detail.redone`), for people; undefined for other faults. */
export function redoneLine(f: Fault): string | undefined {
  const r = redoneOf(f);
  if (!r) return undefined;
  const own = r.finishedThere.length > 0 ? `; ${r.finishedThere.length} finished by the host itself` : "";
  if (r.at === null) {
    return r.pending.length > 0
      ? `work done again: not yet, ${r.pending.length} of its tasks not applied by --until (${r.pending.slice(0, 5).join(", ")})${own}`
      : `work done again: none of its tasks was done elsewhere${own}`;
  }
  const onset = r.afterOnsetMs === null ? "" : ` (${duration(r.afterOnsetMs)} after its last heartbeat)`;
  return `work done again: the last of ${r.tasks.length} tasks applied on another host at ${time(r.at)}, ${duration(r.afterDetectionMs)} after the detection${onset}${own}`;
}

function readLine(r: IncidentReport): string {
  const capped = r.read.capped
    ? `; capped at ${r.read.cap} events: later events were not read (narrow --since/--until or raise --max-events)`
    : "";
  const skipped = r.read.skipped > 0 ? `, ${r.read.skipped} skipped (not decoded or not parsed)` : "";
  return `${r.read.events} events read${skipped}${capped}`;
}

/** The report for people. */
export function reportText(r: IncidentReport): string {
  const s = r.summary;
  const out = [
    `Incident report ${r.window.since} .. ${r.window.until}: ${readLine(r)}`,
    "",
    `Faults: ${s.faults} (${s.met} met, ${s.missed} missed, ${s.open} open, ${s.noTarget} without a target)`,
    table(FAULT_HEADER, r.faults.map(faultRow), "  none"),
  ];
  for (const f of r.faults) {
    out.push(
      `  ${f.id} ${f.text}${f.recoveredBy ? `; recovered by ${f.recoveredBy.type}: ${f.recoveredBy.how}` : "; not recovered by --until"}${f.repeats ? ` (announced ${f.repeats} more times)` : ""}`,
    );
    if (f.target) out.push(`     target: ${f.target.case} (${f.target.source}); detection: ${f.detectBasis}`);
    const again = redoneLine(f);
    if (again) out.push(`     ${again}`);
  }
  out.push("", "Counts:", ...countLines(r.counts).map(([k, v]) => `  ${k}: ${v}`));
  out.push(
    "",
    `Commands operators ran: ${r.commands.length}`,
    table(
      ["time", "event", "scope", "what"],
      r.commands.map((c) => [time(c.at), c.type, c.scope, c.text]),
      "  none",
    ),
  );
  const shown = r.timeline.slice(0, TIMELINE_SHOWN);
  out.push(
    "",
    `Timeline: ${r.timeline.length} entries`,
    table(
      ["time", "class", "event", "fault", "what"],
      shown.map((t) => [
        time(t.at),
        t.class,
        t.type,
        [t.fault, ...(t.recovers ?? []).map((id) => `ends ${id}`)].filter(Boolean).join(" "),
        t.text,
      ]),
      "  none",
    ),
  );
  if (r.timeline.length > shown.length)
    out.push(`... ${r.timeline.length - shown.length} more (--json lists every one)`);
  out.push(
    "",
    `Targets: seed 000's recovery matrix (${r.targets.matrix}) and circuit breakers (${r.targets.breakers}).`,
  );
  return out.join("\n");
}

/** A Markdown table cell: pipes escaped, one line. */
const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
const mdTable = (header: string[], rows: string[][], empty: string): string =>
  rows.length === 0
    ? empty
    : [
        `| ${header.map(cell).join(" | ")} |`,
        `| ${header.map(() => "---").join(" | ")} |`,
        ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
      ].join("\n");

/** One fault in words: what, how its detection was measured, its target's line, and its work done again. */
function faultNote(f: Fault): string {
  const target = f.target ? `target: ${f.target.case} (\`${f.target.source}\`)` : "no target in seed 000";
  const again = redoneLine(f);
  return `- **${f.id}** ${cell(f.text)}. Detection: ${cell(f.detectBasis)}; ${target}.${again ? ` Recovery is when the work moved; ${cell(again)}.` : ""}${f.repeats ? ` Announced ${f.repeats} more times.` : ""}`;
}

/** The report as a Markdown document. */
export function reportMarkdown(r: IncidentReport): string {
  const s = r.summary;
  const shown = r.timeline.slice(0, TIMELINE_SHOWN);
  return [
    "# Incident report",
    "",
    `${r.window.since} to ${r.window.until}: ${readLine(r)}.`,
    "",
    "## Faults",
    "",
    `${s.faults} fault${s.faults === 1 ? "" : "s"}: ${s.met} met, ${s.missed} missed, ${s.open} open, ${s.noTarget} without a target. Targets: seed 000's recovery matrix (\`${r.targets.matrix}\`) and circuit breakers (\`${r.targets.breakers}\`); "Immediate" is read as at most ${duration(r.targets.immediateMs)}.`,
    "",
    mdTable(
      [
        "Fault",
        "Type",
        "Subject",
        "Detected",
        "Detection (measured)",
        "Detection target",
        "Detection",
        "Recovered",
        "Recovery (measured)",
        "Recovery target",
        "Recovery",
        "Met",
        "Recovered by",
      ],
      r.faults.map((f) => [
        ...faultRow(f),
        f.recoveredBy ? `${f.recoveredBy.type}: ${f.recoveredBy.how}` : "open at --until",
      ]),
      "No faults.",
    ),
    ...(r.faults.length > 0 ? ["", ...r.faults.map(faultNote)] : []),
    "",
    "## Counts",
    "",
    mdTable(
      ["Count", "Value"],
      countLines(r.counts).map(([k, v]) => [k, v]),
      "",
    ),
    "",
    "## Commands operators ran",
    "",
    mdTable(
      ["Time", "Event", "Scope", "What"],
      r.commands.map((c) => [time(c.at), c.type, c.scope, c.text]),
      "None.",
    ),
    "",
    "## Timeline",
    "",
    mdTable(
      ["Time", "Class", "Event", "Scope", "Fault", "What"],
      shown.map((t) => [
        time(t.at),
        t.class,
        t.type,
        t.scope,
        [t.fault, ...(t.recovers ?? []).map((id) => `ends ${id}`)].filter(Boolean).join(" "),
        t.text,
      ]),
      "Nothing happened.",
    ),
    ...(r.timeline.length > shown.length
      ? ["", `${r.timeline.length - shown.length} more entries: --json lists every one.`]
      : []),
    "",
  ].join("\n");
}
