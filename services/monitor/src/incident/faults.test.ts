/** Pairing each fault with what ended it (faults.ts, faults-work.ts, faults-signals.ts). */

import type { EventData } from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import { buildReport } from "./report.js";
import { IMMEDIATE_MS } from "./targets.js";
import { applied, breaker, fault, reassigned, report, silent, started, stream, T0, threshold } from "./testing.js";

describe("pairing a fault with its recovery", () => {
  it("a host declared unreachable is recovered when the last task it held is reassigned", () => {
    const { list, add } = stream();
    add(0, "TASK_STARTED", "w1", started("w1-0", "h1"));
    add(10, "TASK_STARTED", "w1", started("w1-1", "h1"));
    add(20, "TASK_STARTED", "w1", started("w1-2", "h2"));
    add(30, "TASK_STARTED", "w1", started("w1-3", "h1"));
    add(500, "TASK_COMPLETED", "w1", applied("w1-3", "h1"));
    add(900, "HOST_SUSPECTED", "h1", silent(600));
    add(1500, "HOST_UNREACHABLE", "h1", silent(1200));
    add(2500, "TASK_REASSIGNED", "w1", reassigned("w1-0", "h1"));
    add(2510, "TASK_REASSIGNED", "w1", reassigned("w1-1", "h1"));
    add(4000, "TASK_COMPLETED", "w1", applied("w1-0", "h2", "w1-0:2:1"));
    const r = report(list);
    const f = fault(r, "HOST_UNREACHABLE", "host:h1");
    expect(f).toMatchObject({
      detectedAt: T0 + 1500,
      detectMs: 1200,
      startedAt: T0 + 300,
      detect: "met",
      recoveredAt: T0 + 2510,
      recoverMs: 1010,
      recover: "met",
      verdict: "met",
      recoveredBy: { type: "TASK_REASSIGNED", how: "its tasks reassigned" },
    });
    expect(f.detail).toMatchObject({ held: ["w1-0", "w1-1"], moved: ["w1-0", "w1-1"], suspectedAt: T0 + 900 });
    expect(f.target?.source).toBe("seeds/000_c4c521c85f6376de.txt:262");
    expect(r.timeline.find((t) => t.type === "TASK_REASSIGNED" && t.text.includes("w1-1"))?.recovers).toEqual([f.id]);
  });

  it("a held task started again elsewhere (redelivered) also counts as moved; a later reassignment extends the recovery", () => {
    const { list, add } = stream();
    add(0, "TASK_STARTED", "w1", started("w1-0", "h1"));
    add(1000, "HOST_UNREACHABLE", "h1", silent(900));
    add(1200, "TASK_STARTED", "w1", started("w1-0", "h2"));
    add(1300, "TASK_REASSIGNED", "w1", reassigned("w1-9", "h1"));
    const f = fault(report(list), "HOST_UNREACHABLE");
    expect(f.recoveredAt).toBe(T0 + 1300);
    expect(f.detail).toMatchObject({ held: ["w1-0"], moved: ["w1-0", "w1-9"], reassigned: ["w1-9"] });
  });

  it("a host heard from again before its tasks moved is recovered by HOST_HEALED", () => {
    const { list, add } = stream();
    add(0, "TASK_STARTED", "w1", started("w1-0", "h1"));
    add(1000, "HOST_UNREACHABLE", "h1", silent(1000));
    add(1400, "HOST_HEALED", "h1", silent(0));
    add(1500, "TASK_REASSIGNED", "w1", reassigned("w1-0", "h1"));
    const f = fault(report(list), "HOST_UNREACHABLE");
    expect(f.recoveredBy).toMatchObject({ type: "HOST_HEALED", how: "heard from again" });
    expect(f.recoverMs).toBe(400);
  });

  it("a host whose tasks never moved is open at --until, and a slow detection is missed", () => {
    const { list, add } = stream();
    add(0, "TASK_STARTED", "w1", started("w1-0", "h1"));
    add(1000, "TASK_STARTED", "w1", started("w1-1", "h3"));
    add(21_000, "HOST_UNREACHABLE", "h1", silent(20_000));
    add(22_000, "HOST_UNREACHABLE", "h3", silent(16_000));
    add(23_000, "TASK_REASSIGNED", "w1", reassigned("w1-1", "h3"));
    const r = report(list);
    expect(fault(r, "HOST_UNREACHABLE", "host:h1")).toMatchObject({
      detect: "missed",
      recover: "open",
      verdict: "open",
    });
    expect(fault(r, "HOST_UNREACHABLE", "host:h3")).toMatchObject({
      detect: "missed",
      recover: "met",
      verdict: "missed",
    });
    expect(r.summary).toMatchObject({ faults: 2, open: 1, missed: 1, met: 0 });
  });

  it("a breaker pairs with its own closing, per process; a re-opening is a repeat; the seed's timeout is the target", () => {
    const { list, add } = stream();
    add(0, "CIRCUIT_OPENED", "state_update", breaker("state_update", "sup-1", "closed", "open"));
    add(100, "CIRCUIT_OPENED", "state_update", breaker("state_update", "host-1", "closed", "open"));
    add(5000, "CIRCUIT_HALF_OPEN", "state_update", breaker("state_update", "sup-1", "open", "halfOpen"));
    add(5100, "CIRCUIT_OPENED", "state_update", breaker("state_update", "sup-1", "halfOpen", "open"));
    add(40_000, "CIRCUIT_CLOSED", "state_update", breaker("state_update", "sup-1", "halfOpen", "closed"));
    add(2000, "CIRCUIT_CLOSED", "state_update", breaker("state_update", "host-1", "halfOpen", "closed"));
    add(100, "CIRCUIT_OPENED", "llm_provider", breaker("llm_provider:openai", "host-1", "closed", "open"));
    const r = report(list);
    expect(fault(r, "CIRCUIT_OPENED", "breaker:sup-1:state_update")).toMatchObject({
      repeats: 1,
      recoverMs: 40_000,
      detect: "no target",
      recover: "missed",
      verdict: "missed",
    });
    expect(fault(r, "CIRCUIT_OPENED", "breaker:host-1:state_update")).toMatchObject({ recover: "met", verdict: "met" });
    expect(fault(r, "CIRCUIT_OPENED", "breaker:host-1:llm_provider:openai")).toMatchObject({
      target: null,
      verdict: "open",
    });
  });

  it("a threshold pairs with its clearing of the same metric, judged by the metric's row", () => {
    const { list, add } = stream();
    add(0, "THRESHOLD_CROSSED", "event_queue_depth", threshold("event_queue_depth", 9000));
    add(1000, "THRESHOLD_CROSSED", "memory_usage_percent", threshold("memory_usage_percent", 91));
    add(12_000, "THRESHOLD_CLEARED", "event_queue_depth", threshold("event_queue_depth", 5000));
    const r = report(list);
    expect(fault(r, "THRESHOLD_CROSSED", "metric:event_queue_depth")).toMatchObject({
      target: { row: "event-saturation" },
      detectMs: null,
      detect: "unmeasured",
      recoverMs: 12_000,
      recover: "met",
      verdict: "met",
    });
    expect(fault(r, "THRESHOLD_CROSSED", "metric:memory_usage_percent")).toMatchObject({
      target: { row: "memory-leaks" },
      verdict: "open",
    });
  });

  it("a corrupted value is recovered by its own restore, or by the rollback of its workflow", () => {
    const { list, add } = stream();
    add(0, "STATE_CORRUPTED", "tasks", {
      key: "w1-0",
      revision: 4,
      reason: "checksum",
      restoredFrom: 3,
      restoredAs: 5,
    });
    add(10, "STATE_CORRUPTED", "state", {
      key: "w2.notes",
      revision: 9,
      reason: "checksum",
      restoredFrom: null,
      restoredAs: null,
    });
    add(
      20_000,
      "STATE_ROLLED_BACK",
      "w2",
      { toSeq: 7, txid: "tx1", keys: ["notes"], replayed: ["notes"], skipped: [], invalid: [] },
      "cadre-cli",
    );
    const r = report(list);
    expect(fault(r, "STATE_CORRUPTED", "state:tasks:w1-0")).toMatchObject({ recoverMs: 0, verdict: "met" });
    expect(fault(r, "STATE_CORRUPTED", "state:state:w2.notes")).toMatchObject({
      recoverMs: 19_990,
      recover: "met",
      recoveredBy: { type: "STATE_ROLLED_BACK" },
    });
    expect(r.commands).toEqual([
      expect.objectContaining({ type: "STATE_ROLLED_BACK", scope: "w2", sender: "cadre-cli" }),
    ]);
  });

  it("the runbook's DATA_INTEGRITY_ALERT is recovered by a complete data recovery of its workflow, not a failed one", () => {
    const { list, add } = stream();
    const alert: EventData<"DATA_INTEGRITY_ALERT"> = {
      alert_type: "state_corruption",
      severity: "critical",
      affected_workflows: ["w3"],
      damaged_keys: ["ledger"],
      corruption_risk: "high",
      immediate_action_required: true,
      detected_by: "corruption-assessment",
    };
    const recovery = (success: "complete" | "failed") => ({
      recovery_success: success,
      data_integrity: success === "complete" ? ("verified" as const) : ("not_verified" as const),
      corrupted_segments: 1,
      restored_from: 41,
      replayed: 2,
      validation_passed_percent: success === "complete" ? 100 : 50,
      recovery_time_ms: 90,
      unfrozen: success === "complete",
    });
    add(0, "DATA_INTEGRITY_ALERT", "w3", alert);
    add(100, "DATA_INTEGRITY_ALERT", "w3", alert);
    add(1000, "DATA_RECOVERY_COMPLETED", "w3", recovery("failed"));
    add(4000, "DATA_RECOVERY_COMPLETED", "w3", recovery("complete"));
    const r = report(list);
    expect(r.faults.filter((f) => f.type === "DATA_INTEGRITY_ALERT")).toHaveLength(1);
    expect(fault(r, "DATA_INTEGRITY_ALERT", "data:w3")).toMatchObject({
      recoverMs: 4000,
      recover: "met",
      recoveredBy: { type: "DATA_RECOVERY_COMPLETED" },
    });
  });

  it("a quarantined agent is recovered when its task is retried elsewhere, even if the retry was stored first", () => {
    const { list, add } = stream();
    const quarantine = (actorId: string, taskId: string) => ({
      actorId,
      hostId: "h1",
      teamId: "t",
      kind: "worker",
      taskId,
      issues: [{ path: "out", message: "bad" }],
      replacement: `${actorId}-r`,
    });
    add(0, "AGENT_QUARANTINED", "a1", quarantine("a1", "w1-0"));
    add(300, "TASK_REASSIGNED", "w1", reassigned("w1-0", "h1", { actorId: "a1", reason: "invalid-response" }));
    add(400, "TASK_REASSIGNED", "w1", reassigned("w1-1", "h1", { actorId: "a2", reason: "invalid-response" }));
    add(410, "AGENT_QUARANTINED", "a2", quarantine("a2", "w1-1"));
    const r = report(list);
    expect(fault(r, "AGENT_QUARANTINED", "actor:a1")).toMatchObject({ detectMs: 0, recoverMs: 300, verdict: "met" });
    expect(fault(r, "AGENT_QUARANTINED", "actor:a2")).toMatchObject({ recoverMs: 0, verdict: "met" });
  });

  it("a deadlock and a refused delegation are detected and handled in one event", () => {
    const { list, add } = stream();
    add(0, "DEADLOCK_RESOLVED", "db", {
      cycle: ["w1-1", "w1-2"],
      victim: "w1-2",
      priority: 0,
      waitingFor: "db",
      released: ["cache"],
      waitedMs: 70_000,
    });
    add(10, "DELEGATION_REFUSED", "w1", { code: "CIRCULAR_DELEGATION", parentTaskId: "w1-0", chain: ["a", "b", "a"] });
    const r = report(list);
    expect(fault(r, "DEADLOCK_RESOLVED")).toMatchObject({
      detectMs: 70_000,
      detect: "missed",
      recoverMs: 0,
      verdict: "missed",
    });
    expect(fault(r, "DELEGATION_REFUSED")).toMatchObject({
      target: { row: "delegation-loops" },
      detect: "met",
      recover: "met",
      verdict: "met",
    });
    expect(IMMEDIATE_MS).toBe(1000);
  });

  it("resource exhaustion found by emergency-analysis ends with the emergency reallocation; a failover is its own recovery", () => {
    const { list, add } = stream();
    add(0, "RESOURCE_EXHAUSTION", "global", {
      error_type: "agent_pool",
      severity: "critical",
      affected_workflows: ["w1", "w2"],
      system_utilization: { cpu: 0.9, memory: 0.5, agents: "12/12" },
    });
    add(1000, "EMERGENCY_RESPONSE_ACTIVATED", "resource_management", {
      response_level: "critical",
      strategy: "triage",
      actions: ["pause_low_priority_workflows"],
      affected_workflows: 1,
    });
    add(1500, "EMERGENCY_RESPONSE_COMPLETED", "resource_management", {
      recovery_time_ms: 500,
      agents_freed: 4,
      workflows_affected: 1,
    });
    add(2000, "SUPERVISOR_ACTIVE", "sup-b", { term: 3, previous: "sup-a", activationMs: 40 });
    const r = report(list);
    expect(fault(r, "RESOURCE_EXHAUSTION")).toMatchObject({ recoverMs: 1500, verdict: "met" });
    expect(fault(r, "SUPERVISOR_ACTIVE")).toMatchObject({ target: null, recoverMs: 0, verdict: "no target" });
    expect(r.commands.map((c) => c.type)).toEqual([
      "RESOURCE_EXHAUSTION",
      "EMERGENCY_RESPONSE_ACTIVATED",
      "EMERGENCY_RESPONSE_COMPLETED",
    ]);
  });

  it("a lost host's work is done again when the last task it held is applied on another host (its own results apart)", () => {
    const { list, add } = stream();
    add(0, "TASK_STARTED", "w1", started("w1-0", "h1"));
    add(10, "TASK_STARTED", "w1", started("w1-1", "h1"));
    add(20, "TASK_STARTED", "w1", started("w1-2", "h1"));
    add(1000, "HOST_UNREACHABLE", "h1", silent(800));
    add(1100, "TASK_COMPLETED", "w1", applied("w1-2", "h1"));
    add(2000, "TASK_REASSIGNED", "w1", reassigned("w1-0", "h1"));
    add(2010, "TASK_REASSIGNED", "w1", reassigned("w1-1", "h1"));
    add(2500, "HOST_HEALED", "h1", silent(0));
    add(3000, "TASK_COMPLETED", "w1", applied("w1-1", "h2", "w1-1:2:1"));
    add(4200, "TASK_COMPLETED", "w1", applied("w1-0", "h3", "w1-0:2:1"));
    const f = fault(report(list), "HOST_UNREACHABLE");
    // Recovered when the work moved; done again (after the heal, which ends the fault, not the work) later.
    expect(f).toMatchObject({ recoveredAt: T0 + 2010, recoverMs: 1010 });
    expect(f.detail.redone).toEqual({
      at: T0 + 4200,
      afterDetectionMs: 3200,
      afterOnsetMs: 4000,
      tasks: ["w1-0", "w1-1"],
      finishedThere: ["w1-2"],
      pending: [],
    });

    const cut = buildReport(list, { sinceMs: T0, untilMs: T0 + 3500 });
    expect(fault(cut, "HOST_UNREACHABLE").detail.redone).toMatchObject({
      at: null,
      tasks: ["w1-1"],
      pending: ["w1-0"],
    });
  });

  it("a takeover's detection runs from the old holder's last event; a supervisor taking its own lease back died holding it", () => {
    const { list, add } = stream();
    add(0, "TASK_COMPLETED", "w1", applied("w1-0", "h1"), "sup-a");
    add(100, "TASK_COMPLETED", "w1", applied("w1-1", "h1"), "sup-a");
    add(3600, "SUPERVISOR_ACTIVE", "sup-b", { term: 2, previous: "sup-a", activationMs: 40 }, "sup-b");
    add(9000, "TASK_COMPLETED", "w1", applied("w1-2", "h1"), "sup-b");
    add(9050, "SUPERVISOR_ACTIVE", "sup-b", { term: 3, previous: "sup-b", activationMs: 30 }, "sup-b");
    add(9100, "SUPERVISOR_ACTIVE", "sup-c", { term: 1, previous: null, activationMs: 30 }, "sup-c");
    const r = report(list);
    const [takeover, restart, ...rest] = r.faults;
    expect(rest).toEqual([]);
    expect(takeover).toMatchObject({
      type: "SUPERVISOR_ACTIVE",
      scope: "sup-b",
      detectMs: 3500,
      startedAt: T0 + 100,
      recoverMs: 0,
      verdict: "no target",
      detail: { previous: "sup-a", previousLastEventAt: T0 + 100 },
    });
    expect(restart).toMatchObject({
      scope: "sup-b",
      detectMs: null,
      detect: "no target",
      recoverMs: 0,
      recoveredBy: { how: "sup-b started again and took its lease back (term 3)" },
      detail: { previous: "sup-b" },
    });
  });

  it("a partition taken from a lapsed holder is a takeover measured from that holder's last event; a free one is none", () => {
    const { list, add } = stream();
    add(0, "TASK_COMPLETED", "w1", applied("w1-0", "h1"), "sup-a");
    add(200, "TASK_COMPLETED", "w1", applied("w1-1", "h1"), "sup-a");
    add(3300, "PARTITION_ACQUIRED", "sup-b", { partition: 1, term: 4, previous: "sup-a", held: [0, 1] }, "sup-b");
    add(3400, "PARTITION_ACQUIRED", "sup-b", { partition: 2, term: 2, previous: null, held: [0, 1, 2] }, "sup-b");
    const r = report(list);
    expect(r.faults).toHaveLength(1);
    expect(r.faults[0]).toMatchObject({
      type: "PARTITION_ACQUIRED",
      scope: "sup-b",
      detectMs: 3100,
      startedAt: T0 + 200,
      recoverMs: 0,
      recoveredBy: { how: "sup-b took partition 1 (term 4)" },
      detail: { previous: "sup-a", partition: 1, previousLastEventAt: T0 + 200 },
    });
  });
});
