/** Seed 003's runbook commands, served by the monitor as `mon.<family>.<operation>` (protocol runbook.ts). */

import { ResourceExhaustedError } from "@cadre/protocol";
import type { OperationServer } from "@cadre/runtime";
import { analyzeCascade } from "./cascade.js";
import { checkpointValidation, emergencyCleanup } from "./coordination.js";
import { corruptionAssessment, emergencyDataProtection, executeDataRecovery } from "./data.js";
import { dependencyAnalysis } from "./dependencies.js";
import { executeDependencyRecovery } from "./dependency-recovery.js";
import { bottleneckAnalysis, comprehensiveAnalysis, postEmergencyMonitoring } from "./performance.js";
import { gradualResumption } from "./recovery.js";
import { agentPool, analyze, emergencyAnalysis, type RunbookDeps, reallocate } from "./resource-manager.js";
import { transferContext } from "./transfer.js";

export { criticalPath, type RunbookDeps } from "./resource-manager.js";

/**
 * Runbook commands one monitor runs at once. Each reads the supervisor many times over (a
 * workflow's tree per running workflow): past this a request is answered at once, refused
 * (RESOURCE_EXHAUSTED, retryable), instead of piling calls on a supervisor under strain. The
 * long ones (gradual-resumption, post-emergency-monitoring) count too.
 */
export const MAX_RUNBOOK_AT_ONCE = 6;

/** A handler that refuses once MAX_RUNBOOK_AT_ONCE are running. */
function bounded<Q, R>(gate: { running: number }, fn: (req: Q) => Promise<R>): (req: Q) => Promise<R> {
  return async (req) => {
    if (gate.running >= MAX_RUNBOOK_AT_ONCE) {
      throw new ResourceExhaustedError("runbook commands running on the monitor", MAX_RUNBOOK_AT_ONCE, gate.running, {
        fix: "wait for one to finish and ask again",
      });
    }
    gate.running++;
    try {
      return await fn(req);
    } finally {
      gate.running--;
    }
  };
}

/** Serves every runbook operation on the monitor's endpoint. */
export function serveRunbook(server: OperationServer, d: RunbookDeps): void {
  const gate = { running: 0 };
  const serve: OperationServer["serve"] = (name, fn) => server.serve(name, bounded(gate, fn as never) as never);
  serve("mon.resource-manager.emergency-analysis", () => emergencyAnalysis(d));
  serve("mon.resource-manager.analyze-utilization", () => analyze(d));
  serve("mon.resource-manager.agent-pool-assessment", () => agentPool(d));
  serve("mon.resource-manager.emergency-reallocation", (req) => reallocate(d, req));
  serve("mon.coordination-hub.emergency-cleanup", (req) => emergencyCleanup(d, req));
  serve("mon.coordination-hub.checkpoint-validation", (req) => checkpointValidation(d, req.workflow));
  serve("mon.coordination-hub.dependency-analysis", (req) => dependencyAnalysis(d, req));
  serve("mon.coordination-hub.execute-dependency-recovery", (req) => executeDependencyRecovery(d, req));
  serve("mon.workflow-recovery.gradual-resumption", (req) => gradualResumption(d, req));
  serve("mon.workflow-recovery.analyze-cascade-failure", (req) => analyzeCascade(d, req));
  serve("mon.workflow-recovery.transfer-context", (req) => transferContext(d, req));
  serve("mon.coordination-hub.emergency-data-protection", (req) => emergencyDataProtection(d, req));
  serve("mon.workflow-recovery.corruption-assessment", (req) => corruptionAssessment(d, req.workflow));
  serve("mon.workflow-recovery.execute-data-recovery", (req) => executeDataRecovery(d, req));
  serve("mon.performance-monitor.comprehensive-analysis", (req) => comprehensiveAnalysis(d, req));
  // The seed's other name for it (its first subagents example): the same fields and reply.
  serve("mon.performance-monitor.emergency-assessment", (req) => comprehensiveAnalysis(d, req));
  serve("mon.performance-monitor.bottleneck-analysis", (req) => bottleneckAnalysis(d, req));
  serve("mon.performance-monitor.post-emergency-monitoring", (req) => postEmergencyMonitoring(d, req));
}
