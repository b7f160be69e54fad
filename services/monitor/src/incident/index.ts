/**
 * Incident reports (`cadre incident report`, the dashboard's `/dashboard/api/incident`), the pure
 * part: what the command (packages/cli/src/commands/incident.ts), the dashboard
 * (dashboard/incident.ts) and the tests use, from the modules of this folder.
 */

export type { EventClass } from "./classes.js";
export { classifiedTypes, classOf, isCommand, ROUTINE } from "./classes.js";
export { describe } from "./describe.js";
export { duration, table } from "./format.js";
export type { ChaosCheck, ChaosIncident, ChaosScenario } from "./matrix.js";
export { chaosMatrix } from "./matrix.js";
export { redoneLine, redoneOf, reportMarkdown, reportText, TIMELINE_SHOWN } from "./render.js";
export type {
  CommandEntry,
  Counts,
  Fault,
  IncidentReport,
  Redone,
  ReportOptions,
  StampedEvent,
  TimelineEntry,
  Verdict,
} from "./report.js";
export { buildReport, MAX_EVENTS } from "./report.js";
export type { Bound, MatrixCase, Target } from "./targets.js";
export { BREAKER_TARGETS, IMMEDIATE_MS, METRIC_CASES, RECOVERY_MATRIX, SEED_000 } from "./targets.js";
export { parseTime } from "./time.js";
