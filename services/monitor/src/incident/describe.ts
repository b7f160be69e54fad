/**
 * One line about an event, from its data: the text of its timeline entry, of the fault it opens
 * and of the command it records (in every output, JSON too).
 */

import type { TypedEvent } from "@cadre/protocol";
import { duration } from "./format.js";

const clip = (s: string, n = 160): string => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/** One line about an event, from its data. */
export function describe(e: TypedEvent): string {
  switch (e.type) {
    case "HOST_SUSPECTED":
    case "HOST_UNREACHABLE":
    case "HOST_HEALED":
      return `host ${e.scope} ${e.type.slice(5).toLowerCase()} (silent ${duration(e.data.silenceMs)}, phi ${e.data.phi})`;
    case "TASK_REASSIGNED":
      return `task ${e.data.taskId} (${e.data.kind}) from ${e.data.fromHostId} at epoch ${e.data.epoch}: ${e.data.reason}`;
    case "ACTOR_LOST":
      return `actor ${e.scope} (${e.data.kind}) lost with host ${e.data.hostId}`;
    case "AGENT_QUARANTINED":
      return `actor ${e.data.actorId} (${e.data.kind}) on ${e.data.hostId} quarantined for task ${e.data.taskId}; replacement ${e.data.replacement ?? "none"}`;
    case "STATE_CORRUPTED":
      return `${e.scope} ${e.data.key} revision ${e.data.revision}: ${e.data.reason}; ${e.data.restoredAs === null ? "not restored" : `restored as ${e.data.restoredAs}`}`;
    case "STATE_ROLLED_BACK":
      return `workflow ${e.scope} state rolled back to ${e.data.toSeq} (${e.data.keys.length} keys, ${e.data.replayed.length} replayed, ${e.data.invalid.length} invalid)`;
    case "CIRCUIT_OPENED":
    case "CIRCUIT_HALF_OPEN":
    case "CIRCUIT_CLOSED":
      return `breaker ${e.data.breaker} of ${e.data.source} ${e.data.from} -> ${e.data.to} (${e.data.failures} failures)`;
    case "THRESHOLD_CROSSED":
    case "THRESHOLD_WARNING":
      return `${e.data.metric} ${e.data.value} over ${e.data.threshold} (${e.data.action})`;
    case "THRESHOLD_CLEARED":
    case "THRESHOLD_WARNING_CLEARED":
      return `${e.data.metric} ${e.data.value} back under ${e.data.clear}`;
    case "DEADLOCK_RESOLVED":
      return `cycle ${e.data.cycle.join(" > ")}: victim ${e.data.victim} after ${duration(e.data.waitedMs)}`;
    case "DELEGATION_REFUSED":
      return `${e.data.code} under ${e.data.parentTaskId}`;
    case "RESULT_CONFLICT":
      return `task ${e.data.taskId} result of epoch ${e.data.epoch} from ${e.data.hostId} (current ${e.data.currentEpoch}): recorded, not applied`;
    case "RESULT_DUPLICATE":
      return `task ${e.data.taskId} result ${e.data.resultId} from ${e.data.hostId}: recorded, not applied`;
    case "RESULT_REJECTED":
      return `task ${e.data.taskId} result claiming ${e.data.claimedHostId}: ${e.data.reason}`;
    case "WORKFLOW_PAUSED":
      return `workflow ${e.scope} paused${e.data.now ? ` now (${e.data.yielded} yielded)` : ""}`;
    case "WORKFLOW_RESUMED":
      return `workflow ${e.scope} resumed (${e.data.released} released)`;
    case "WORKFLOW_LIMITED":
      return `workflow ${e.scope} limited: at most ${e.data.maxAgents ?? "any"} agents, ${e.data.guarantee} reserved`;
    case "WORKFLOW_CANCELLED":
      return `workflow ${e.scope} cancelled (${e.data.reason}): ${e.data.cancelled} tasks`;
    case "WORKFLOW_FROZEN":
    case "WORKFLOW_UNFROZEN":
      return `workflow ${e.scope} ${e.type === "WORKFLOW_FROZEN" ? "frozen" : "unfrozen"}`;
    case "RESOURCE_EXHAUSTION":
      return `${e.data.error_type} (${e.data.severity}): ${e.data.affected_workflows.length} workflows, agents ${e.data.system_utilization.agents}`;
    case "EMERGENCY_RESPONSE_ACTIVATED":
      return `${e.data.strategy}: ${e.data.actions.join(", ")} (${e.data.affected_workflows} workflows)`;
    case "EMERGENCY_RESPONSE_COMPLETED":
      return `${e.data.agents_freed} agents freed, ${e.data.workflows_affected} workflows in ${duration(e.data.recovery_time_ms)}`;
    case "RECOVERY_STAGE_COMPLETED":
      return `stage ${e.data.stage} ${e.data.action} ${e.data.workflowId}: ${e.data.outcome}`;
    case "GRADUAL_RESUMPTION_COMPLETED":
      return `${e.data.stages} stages, ${e.data.workflows_recovered} recovered, ${e.data.paused_again} paused again in ${duration(e.data.recovery_time_ms)}`;
    case "PARTITION_ACQUIRED":
      return `${e.scope} holds partition ${e.data.partition}, term ${e.data.term}${e.data.previous ? ` after ${e.data.previous}` : ""}`;
    case "SUPERVISOR_ACTIVE":
      return `${e.scope} active, term ${e.data.term}${e.data.previous ? ` after ${e.data.previous}` : ""}`;
    case "RECONCILIATION_REPORT":
      return `host ${e.data.hostId}: ${e.data.applied} applied, ${e.data.duplicate} duplicate, ${e.data.conflict} conflict of ${e.data.total}`;
    default:
      return clip(`${e.scope} ${JSON.stringify(e.data)}`);
  }
}
