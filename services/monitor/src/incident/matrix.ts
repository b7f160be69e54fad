/**
 * The chaos suite's recovery matrix (the README's table): per scenario the fault injected, the
 * report's fault for it, detection and recovery as the report measured them and as the suite
 * did, seed 000's targets and the verdict, from the incident reports the suite writes
 * (`test/results/chaos/<scenario>.incident.json`: a report with a {@link ChaosScenario} as
 * `chaos`). One run only: {@link chaosMatrix} renders the newest run and names what it left out.
 */

import { duration } from "./format.js";
import { redoneOf } from "./render.js";
import type { Fault, IncidentReport } from "./report.js";

/** One comparison of the report with the suite's figures (`ok`: within the tolerance). */
export interface ChaosCheck {
  what: string;
  /** The report's value, or null where it has none. */
  report: number | null;
  /** The suite's value, or null. */
  figure: number | null;
  /** What the values count. @default "ms" */
  unit?: string;
  /** The difference allowed either way (report - figure within [min, max]), or null: not compared. */
  tolerance: { min: number; max: number } | null;
  /** Which clocks and events the two come from, and so why the tolerance. */
  basis: string;
  ok: boolean;
}

/** What a chaos scenario adds to its incident report. */
export interface ChaosScenario {
  scenario: string;
  /** The suite run it belongs to (the run's start, ISO 8601): a table mixes no runs. */
  run: string;
  /** The fault injected, for people ("SIGKILL agent-host host-2"); "none" for the baseline. */
  fault: string;
  /** The test's clock just before the engine call that injected it, and when the call returned. */
  injectedAt: number | null;
  injectedBy: number | null;
  /** The ids of the report's faults that are the injected one (none where it is not visible). */
  faults: string[];
  /** How the injected fault shows in the events (why no fault, where none). */
  visibility: string;
  /** The suite's own figures (scenarios.test.ts). */
  figures: { detectMs: number | null; recoverMs: number | null; reconcileMs?: number | undefined };
  /** What the suite's recoverMs measures in this scenario. */
  recoverDefinition: string;
  checks: ChaosCheck[];
}

/** An incident report as the chaos suite writes it. */
export type ChaosIncident = IncidentReport & { chaos: ChaosScenario };

const ms = (v: number | null | undefined): string => (v === null || v === undefined ? "-" : duration(v));
const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");

/** The verdicts of a scenario's faults, "-" when it has none. */
const verdicts = (fs: Fault[]): string => (fs.length === 0 ? "-" : [...new Set(fs.map((f) => f.verdict))].join(", "));

/** The report's faults that are the scenario's injected one. */
const injected = (i: ChaosIncident): Fault[] =>
  i.chaos.faults.map((id) => i.faults.find((f) => f.id === id)).filter((f): f is Fault => f !== undefined);

/** One row: the scenario's own faults side by side with the suite's figures. */
function row(i: ChaosIncident): string[] {
  const c = i.chaos;
  const fs = injected(i);
  const each = (pick: (f: Fault) => string): string => (fs.length === 0 ? "-" : fs.map(pick).join("; "));
  const failed = c.checks.filter((k) => !k.ok).length;
  return [
    c.scenario,
    c.fault,
    fs.length === 0 ? "none" : each((f) => `${f.id} ${f.type} ${f.key}`),
    each((f) => ms(f.detectMs)),
    ms(c.figures.detectMs),
    each((f) => f.target?.detect?.text ?? "none"),
    each((f) => ms(f.recoverMs)),
    each((f) => ms(redoneOf(f)?.afterOnsetMs)),
    ms(c.figures.recoverMs),
    each((f) => f.target?.recover.text ?? "none"),
    verdicts(fs),
    failed === 0 ? `${c.checks.length} agree` : `${failed} of ${c.checks.length} off`,
  ];
}

/** Below the table, per scenario: how its fault shows, the other faults of its report, the suite's recovery. */
function note(i: ChaosIncident): string {
  const mine = new Set(i.chaos.faults);
  const others = i.faults.filter((f) => !mine.has(f.id)).map((f) => `${f.id} ${f.type} ${f.key} (${f.verdict})`);
  return `- ${i.chaos.scenario}: ${i.chaos.visibility}${others.length > 0 ? ` Also in its report: ${others.join(", ")}.` : ""} The suite's recovery: ${i.chaos.recoverDefinition}`;
}

const HEADER = [
  "Scenario",
  "Fault injected",
  "Report's fault",
  "Detected in (report)",
  "Detected in (suite)",
  "Detection target",
  "Recovered in (report)",
  "Work done again (report)",
  "Recovered in (suite)",
  "Recovery target",
  "Met",
  "Report vs figures",
];

/**
 * The matrix as Markdown, from the incident reports of one run (the newest of those given, by
 * `chaos.run`), scenarios in the order they ran; the reports of other runs are named below it.
 */
export function chaosMatrix(incidents: readonly ChaosIncident[]): string {
  if (incidents.length === 0) return "No chaos incident reports.\n";
  const run =
    incidents
      .map((i) => i.chaos.run)
      .sort()
      .at(-1) ?? "";
  const shown = incidents.filter((i) => i.chaos.run === run).sort((a, b) => a.window.sinceMs - b.window.sinceMs);
  const others = incidents.filter((i) => i.chaos.run !== run);
  const lines = [
    `| ${HEADER.join(" | ")} |`,
    `| ${HEADER.map(() => "---").join(" | ")} |`,
    ...shown.map((i) => `| ${row(i).map(cell).join(" | ")} |`),
  ];
  return [
    `Chaos run of ${run}: ${shown.length} scenario${shown.length === 1 ? "" : "s"}.`,
    "",
    ...lines,
    "",
    ...shown.map(note),
    ...(others.length > 0
      ? ["", `Left out, from other runs: ${others.map((i) => `${i.chaos.scenario} (${i.chaos.run})`).join(", ")}.`]
      : []),
    "",
  ].join("\n");
}
