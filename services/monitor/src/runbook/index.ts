/** Seed 003's runbook commands, served by the monitor as `mon.<family>.<operation>` (protocol runbook.ts). */

import type { OperationServer } from "@cadre/runtime";
import { gradualResumption } from "./recovery.js";
import { agentPool, analyze, emergencyAnalysis, type RunbookDeps, reallocate } from "./resource-manager.js";

export { criticalPath, type RunbookDeps } from "./resource-manager.js";

/** Serves every runbook operation on the monitor's endpoint. */
export function serveRunbook(server: OperationServer, d: RunbookDeps): void {
  server.serve("mon.resource-manager.emergency-analysis", () => emergencyAnalysis(d));
  server.serve("mon.resource-manager.analyze-utilization", () => analyze(d));
  server.serve("mon.resource-manager.agent-pool-assessment", () => agentPool(d));
  server.serve("mon.resource-manager.emergency-reallocation", (req) => reallocate(d, req));
  server.serve("mon.workflow-recovery.gradual-resumption", (req) => gradualResumption(d, req));
}
