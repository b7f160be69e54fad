/**
 * Each chaos scenario's incident report: built in-process with the incident library
 * (services/monitor/src/incident, what `cadre incident report` runs) from the events stream of the
 * scenario's own NATS, over the scenario's window (its start to its end, after its assertions),
 * written beside its figures as test/results/chaos/<scenario>.incident.md (the report's
 * Markdown, then a section on the scenario) and <scenario>.incident.json (the report, with the
 * scenario as `chaos`: what test/chaos/matrix.mjs renders the README's matrix from), and checked
 * against the figures (see {@link reportIncident}).
 *
 * Clocks: the report's times are JetStream's (the server stamps each event as it stores it), the
 * figures' are the test process's (when its live subscription received an event, and just before
 * the engine call that injected the fault). The containers run on the test's machine and share
 * its kernel clock, so the two differ only by delivery: the server forwards an event to the
 * test's subscription as it stores it, and the test stamps it when its event loop runs the
 * callback, on a two-core machine running seven containers. {@link DELIVERY_MS} allows for that.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  buildReport,
  type ChaosCheck,
  type ChaosIncident,
  type ChaosScenario,
  type Fault,
  type IncidentReport,
  reportMarkdown,
  type StampedEvent,
} from "@cadre/monitor/incident";
import { readEventLog } from "@cadre/runtime";
import { expect } from "vitest";
import { until } from "../helpers/client.js";
import type { ChaosCluster } from "./fixture.js";

/** This run of the suite: every report it writes carries it, so the matrix mixes no runs. */
export const RUN = new Date().toISOString();

/**
 * The most an event's stream time and its live receipt by the test differ, either way. Delivery
 * on one machine takes a millisecond or two; the rest is the test's event loop, which reads
 * hundreds of events a second here while two cores run seven containers (the run of 2026-12-02:
 * the receipt 0 to 38 ms after the stream time).
 */
export const DELIVERY_MS = 250;

/** The figures of a scenario (scenarios.test.ts) that its report is checked against. */
export interface ScenarioFigures {
  scenario: string;
  /** Tasks completed, by their records. */
  completed: number;
  lost: number;
  appliedTwice: number;
  duplicates: number;
  conflicts: number;
  detectMs: number | null;
  recoverMs: number | null;
  reconcileMs?: number | undefined;
  circuitsOpened: string[];
}

/** The fault injected: what, and the test's clock before the engine call and when it returned. */
export interface Injection {
  fault: string;
  at: number | null;
  by: number | null;
}

/** What the checks of a scenario get. */
export interface CheckInput {
  report: IncidentReport;
  faults: Fault[];
  events: StampedEvent[];
  injection: Injection;
  figures: ScenarioFigures;
}

/** How a scenario's fault shows in its report, and how the report is compared with its figures. */
export interface Expectation {
  /** The report's faults that are the injected one. */
  faults: (r: IncidentReport) => Fault[];
  /** How many of them there must be (0 where the fault is not visible as a fault). */
  count: number;
  /** How the injected fault shows in the events. */
  visibility: string;
  /** What the suite's recoverMs measures in this scenario. */
  recoverDefinition: string;
  /** Other faults the scenario accounts for (why, or undefined: unexplained, the test fails). */
  explains?: (f: Fault) => string | undefined;
  /**
   * A killed supervisor's events still in its publish queue die with it: results it applied (their
   * records written) whose TASK_COMPLETED it had not yet sent. At most this many. @default 0
   */
  unsent?: number;
  checks: (input: CheckInput) => ChaosCheck[];
}

/** A comparison: report - figure within the tolerance; both null is agreement (neither measures it). */
export function check(
  what: string,
  report: number | null,
  figure: number | null,
  tolerance: { min: number; max: number } | null,
  basis: string,
): ChaosCheck {
  const ok =
    tolerance === null
      ? report === null && figure === null
      : report !== null && figure !== null && report - figure >= tolerance.min && report - figure <= tolerance.max;
  return { what, report, figure, tolerance, basis, ok };
}

/** A statement that holds or not (no values to compare). */
export const holds = (what: string, ok: boolean, basis: string): ChaosCheck => ({
  what,
  report: null,
  figure: null,
  tolerance: null,
  basis,
  ok,
});

/** The task records' counts of late results, read again when the report's window is. */
export type Recount = () => Promise<Pick<ScenarioFigures, "duplicates" | "conflicts">>;

/**
 * The scenario's window of the events stream, once it holds every result the task records have,
 * and the figures' duplicates and conflicts read again after it. A host may send a result again
 * after the workflow completed (its publish timed out while a NATS node died, and the outbox
 * sent it again): the supervisor records that duplicate on the task, then stores its event. The
 * window is read until its RESULT_DUPLICATE and RESULT_CONFLICT events are what the records
 * read after it list, so the report and the figures count the same results.
 */
async function readWindow(
  c: ChaosCluster,
  sinceMs: number,
  figures: ScenarioFigures,
  unsent: number,
  recount: Recount,
) {
  const read = async () => {
    const untilMs = Date.now();
    const log = await readEventLog(c.client.nc, { sinceMs, untilMs });
    return { untilMs, log, figures: { ...figures, ...(await recount()) } };
  };
  const stored = (w: Awaited<ReturnType<typeof read>>) => {
    const n = (type: string) => w.log.events.filter((s) => s.event.type === type).length;
    const all =
      n("RESULT_CONFLICT") === w.figures.conflicts &&
      n("RESULT_DUPLICATE") === w.figures.duplicates &&
      n("TASK_COMPLETED") >= w.figures.completed - unsent;
    return all ? w : undefined;
  };
  // The records and the events are written one after the other: the last event may be a moment
  // behind. Past the deadline the report is built from what is there, and the counts fail.
  // A JetStream request may time out while the streams elect new leaders (the NATS node
  // scenario killed one): that read counts as "not there yet", within the same deadline.
  const attempt = () =>
    read().catch((err: Error) => {
      if (err.name === "TimeoutError" || /timeout|no responders/i.test(err.message)) return undefined;
      throw err;
    });
  return until(
    "the events stream to hold the completions, conflicts and duplicates of the task records",
    async () => {
      const w = await attempt();
      return w ? stored(w) : undefined;
    },
    20_000,
  ).catch(read);
}

const ms = (v: number | null, unit = "ms"): string => (v === null ? "-" : `${v} ${unit}`);

/** Why a lost host's recovery in the report is not the suite's recoverMs. */
const HOST_RECOVERIES =
  "Two recoveries. This report's recovery of a lost host runs from the detection (HOST_UNREACHABLE) " +
  "to the moment the last task the host held moved (reassigned, started on another host, or " +
  "finished), or it was heard from again, whichever came first; the suite's recoverMs runs from the " +
  "injection to the moment the last of those tasks was done again on another host (they wait " +
  "behind the rest of the queue). The report gives the second too, as the fault's work done again " +
  "(after the detection, and after the onset: the host's last heartbeat); it is not judged, since " +
  'seed 000 gives a partition\'s recovery as "On heal".';

/** Why a supervisor's recovery in the report is not the suite's recoverMs. */
const SUPERVISOR_RECOVERIES =
  "Two recoveries. This report's fault is the SUPERVISOR_ACTIVE that ended the outage, so it is " +
  "recovered at once (0 ms); the outage shows as its detection instead (from the old holder's last " +
  "event, with a standby; unmeasured after a restart, the new incarnation sharing its sender). The " +
  "suite's recoverMs is the outage, from the kill (with a standby) or from the restart (without).";

/** The section the Markdown report gets on its scenario. */
function scenarioMarkdown(s: ChaosScenario, r: IncidentReport): string {
  const mine = s.faults.map((id) => r.faults.find((x) => x.id === id)).filter((f) => f !== undefined);
  const seen = mine.map((f) => `${f.id} (${f.type} ${f.key})`);
  const types = new Set(mine.map((f) => f.type));
  const tol = (k: ChaosCheck) => (k.tolerance ? `${k.tolerance.min} to ${k.tolerance.max} ${k.unit ?? "ms"}` : "-");
  return [
    "## The chaos scenario",
    "",
    `Scenario \`${s.scenario}\` of the run of ${s.run}. Fault injected: ${s.fault}${
      s.injectedAt === null
        ? "."
        : ` at ${new Date(s.injectedAt).toISOString()} (the engine call returned ${ms((s.injectedBy ?? s.injectedAt) - s.injectedAt)} later).`
    }`,
    "",
    seen.length > 0
      ? `In this report: ${seen.join(", ")}. ${s.visibility}`
      : `Not a fault of this report. ${s.visibility}`,
    "",
    `The suite's figures (\`${s.scenario}.json\`): detectMs ${ms(s.figures.detectMs)}, recoverMs ${ms(s.figures.recoverMs)}${
      s.figures.reconcileMs === undefined ? "" : `, reconcileMs ${ms(s.figures.reconcileMs)}`
    }. Its recovery: ${s.recoverDefinition}`,
    "",
    ...(types.has("HOST_UNREACHABLE") ? [HOST_RECOVERIES, ""] : []),
    ...(types.has("SUPERVISOR_ACTIVE") ? [SUPERVISOR_RECOVERIES, ""] : []),
    "| Check | Report | Suite | Allowed (report - suite) | Agrees | Basis |",
    "| --- | --- | --- | --- | --- | --- |",
    ...s.checks.map(
      (k) =>
        `| ${k.what} | ${ms(k.report, k.unit)} | ${ms(k.figure, k.unit)} | ${tol(k)} | ${k.ok ? "yes" : "NO"} | ${k.basis.replace(/\|/g, "\\|")} |`,
    ),
    "",
  ].join("\n");
}

/**
 * Builds a scenario's incident report, checks it against the figures (the checks: a
 * TASK_COMPLETED stored per task completed, `expected.count` faults that are the injected one,
 * no other fault the scenario does not explain (a circuit the figures list is explained), and
 * the scenario's own) and writes it; {@link expectIncident} asserts on it.
 */
export async function reportIncident(
  c: ChaosCluster,
  sinceMs: number,
  injection: Injection,
  scenarioFigures: ScenarioFigures,
  expected: Expectation,
  dir: string,
  recount: Recount,
): Promise<{ incident: ChaosIncident; figures: ScenarioFigures }> {
  const unsent = expected.unsent ?? 0;
  const window = await readWindow(c, sinceMs, scenarioFigures, unsent, recount);
  const { untilMs, log, figures } = window;
  const report = buildReport(log.events, { sinceMs, untilMs, skipped: log.skipped, capped: log.capped });
  const faults = expected.faults(report);
  const mine = new Set(faults.map((f) => f.id));
  const circuits = new Set(figures.circuitsOpened);
  const others = report.faults
    .filter((f) => !mine.has(f.id))
    .map((f) => {
      const circuit = f.type === "CIRCUIT_OPENED" && circuits.has(`${f.detail.breaker}@${f.detail.source}`);
      return { f, why: circuit ? "a circuit the figures list" : expected.explains?.(f) };
    });
  const checks = [
    {
      ...check(
        "the stream holds a TASK_COMPLETED per task completed",
        report.counts.tasksCompleted,
        figures.completed,
        { min: -unsent, max: 0 },
        unsent === 0
          ? "TASK_COMPLETED is critical (acknowledged, stored once): one per completed task"
          : `one per completed task, but those the killed supervisor had applied and not yet sent (at most ${unsent}); fewer stored means events were discarded`,
      ),
      unit: "events",
    },
    {
      ...check(
        "the report's faults that are the injected one",
        faults.length,
        expected.count,
        { min: 0, max: 0 },
        faults.length > 0
          ? faults.map((f) => `${f.id} ${f.type} ${f.key}`).join(", ")
          : expected.count === 0
            ? "none expected: it is no fault of the report"
            : "none found",
      ),
      unit: "faults",
    },
    ...expected.checks({ report, faults, events: log.events, injection, figures }),
    ...others.map(({ f, why }) =>
      holds(`${f.id} ${f.type} ${f.key} accounted for`, why !== undefined, why ?? "unexplained: not this fault"),
    ),
  ];
  const chaos: ChaosScenario = {
    scenario: figures.scenario,
    run: RUN,
    fault: injection.fault,
    injectedAt: injection.at,
    injectedBy: injection.by,
    faults: faults.map((f) => f.id),
    visibility: expected.visibility,
    figures: { detectMs: figures.detectMs, recoverMs: figures.recoverMs, reconcileMs: figures.reconcileMs },
    recoverDefinition: expected.recoverDefinition,
    checks,
  };
  const incident: ChaosIncident = { ...report, chaos };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${figures.scenario}.incident.json`), `${JSON.stringify(incident, null, 2)}\n`);
  writeFileSync(
    join(dir, `${figures.scenario}.incident.md`),
    `${reportMarkdown(report)}\n${scenarioMarkdown(chaos, report)}`,
  );
  return { incident, figures };
}

/**
 * Asserts on a scenario's incident report: nothing capped or skipped; its counts of tasks lost
 * and applied twice, its conflicts and duplicates equal the figures; one workflow submitted and
 * completed; every check agrees.
 */
export function expectIncident({ incident, figures }: Awaited<ReturnType<typeof reportIncident>>): void {
  const report = incident;
  const { checks } = incident.chaos;
  const where = `(see test/results/chaos/${figures.scenario}.incident.md)`;
  expect(report.read, where).toMatchObject({ skipped: 0, capped: false });
  const { counts } = report;
  expect(
    {
      lost: counts.lost,
      appliedTwice: counts.appliedTwice,
      conflicts: counts.conflicts,
      duplicates: counts.duplicates,
    },
    where,
  ).toEqual({
    lost: figures.lost,
    appliedTwice: figures.appliedTwice,
    conflicts: figures.conflicts,
    duplicates: figures.duplicates,
  });
  expect(counts.workflows, where).toMatchObject({ submitted: 1, completed: 1, unfinished: [] });
  // The checks last: each failed one says what it compared and on what basis.
  expect(
    checks.filter((k) => !k.ok),
    where,
  ).toEqual([]);
}
