/**
 * Seed 003's data integrity incident on a real stack ("State Synchronization Failure with Data
 * Corruption Risk"), with the commands an operator types: a workflow's state value damaged past
 * what the bucket's history keeps (so no read can restore it), assessed, protected (frozen,
 * checkpoints validated, the log confirmed), and recovered from the last verified checkpoint plus
 * the state log, every value verified, the workflow unfrozen, nothing lost.
 */

import { BUCKETS, type OpReply } from "@cadre/protocol";
import { StateValueSchema, TxStore } from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, runbookJson, startCluster, type TestCluster, until } from "../helpers/cluster.js";

type Assessment = OpReply<"mon.workflow-recovery.corruption-assessment">;
type Protection = OpReply<"mon.coordination-hub.emergency-data-protection">;
type Recovery = OpReply<"mon.workflow-recovery.execute-data-recovery">;
type Validation = OpReply<"mon.coordination-hub.checkpoint-validation">;

/** The state bucket keeps 5 revisions per key (runtime infrastructure.ts): 5 bad writes leave no good one. */
const HISTORY = 5;

describe("the runbook: a corrupted state value, from the alert to a verified recovery", () => {
  let c: TestCluster;
  const json = <T>(...args: string[]): T => runbookJson(c)<T>(...args);

  beforeAll(async () => {
    c = await startCluster({ hosts: 1, monitor: true, config: fastConfig });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("assesses the damage, protects the workflow, restores and replays, verifies, and unfreezes", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit({
      name: "rb-ledger",
      root: "writer",
      kinds: {
        writer: { role: "agent", replicas: 1, behaviour: { type: "script", state: { ledger: 1, status: "draft" } } },
      },
    });
    expect((await c.wait(id)).status, c.tail()).toBe("completed");
    // A checkpoint (through the supervisor), then two more transactions the log keeps.
    const position = Number(/checkpoint (\d+):/.exec(c.cli("state", "checkpoint", id))?.[1]);
    const kv = await new Kvm(c.nc).open(BUCKETS.state);
    const store = new TxStore(kv, StateValueSchema, { writer: "test-agent" });
    await store.transact([`${id}.ledger`], () => ({ [`${id}.ledger`]: 2 }));
    await store.transact([`${id}.ledger`, `${id}.status`], () => ({ [`${id}.ledger`]: 3, [`${id}.status`]: "final" }));
    // A faulty writer: more damaged writes than the bucket keeps revisions.
    for (let i = 0; i < HISTORY; i++) await kv.put(`${id}.ledger`, `{"v":3,"by":"x","_crc":${i}}`);
    expect(((await store.get(`${id}.ledger`).catch((e) => e)) as { code: string }).code).toBe("PROTOCOL_ERROR");

    // Assessment: the damaged value, that no revision can restore it, and that the checkpoint and
    // the log after it can rebuild it.
    const a = json<Assessment>("workflow-recovery", "corruption-assessment", JSON.stringify({ workflow: id }));
    expect(a).toMatchObject({ keys: 2, intact: 1, frozen: false, atRisk: [] });
    expect(a.damaged).toEqual([
      expect.objectContaining({ name: "ledger", restorableFromHistory: false, reconstructable: true }),
    ]);
    expect(a.checkpoint).toMatchObject({ position, replays: 2, invalid: HISTORY });
    expect(a.options).toEqual({ rollbackFeasible: true, partialRecovery: false, dataReconstruction: true });
    await until("DATA_INTEGRITY_ALERT", () =>
      rec.events.some((e) => e.event.type === "DATA_INTEGRITY_ALERT" && e.event.scope === id),
    );
    const alert = rec.events.find((e) => e.event.type === "DATA_INTEGRITY_ALERT")?.event.data;
    expect(alert).toMatchObject({ damaged_keys: ["ledger"], corruption_risk: "high", affected_workflows: [id] });

    // Protection, as the seed types it: frozen; no checkpoint over damaged values; the verified one named.
    const p = json<Protection>(
      "coordination-hub",
      "emergency-data-protection",
      JSON.stringify({
        protection_level: "maximum",
        affected_workflow: id,
        immediate_actions: [
          "create_emergency_checkpoint",
          "freeze_state_modifications",
          "activate_backup_validation",
          "enable_transaction_logging",
        ],
      }),
    );
    expect(p).toMatchObject({ frozen: true, checkpoint: null, verifiedCheckpoint: position, logConfirmed: true });
    expect(p.damaged).toEqual(["ledger"]);
    expect(p.steps.map((s) => [s.action, s.outcome])).toEqual([
      ["freeze_state_modifications", "done"],
      ["create_emergency_checkpoint", "not-done"],
      ["activate_backup_validation", "done"],
      ["enable_transaction_logging", "done"],
    ]);
    expect(p.steps[1]?.detail).toContain("ledger");

    // The seed's parallel data integrity analysis.
    const fan = JSON.parse(
      c.cli(
        "subagents",
        JSON.stringify({ phase: "data_integrity_analysis", priority: "critical" }),
        JSON.stringify([
          { command: "/debug", scope: "state_consistency_validation" },
          { command: "/coordination-hub", operation: "checkpoint-validation", workflow: id },
          { command: "/workflow-recovery", operation: "corruption-assessment", workflow: id },
        ]),
        "--data-protection",
      ),
    );
    expect(fan.dataProtection).toBe(true);
    expect(fan.commands.map((x: { status: string }) => x.status)).toEqual(["ok", "ok", "ok"]);
    expect(fan.commands[2].result.frozen).toBe(true);

    // Recovery, as the seed types it, naming the workflow.
    const r = json<Recovery>(
      "workflow-recovery",
      "execute-data-recovery",
      JSON.stringify({
        workflow: id,
        recovery_strategy: "intelligent_selective_recovery",
        data_preservation: "maximum",
        validation_level: "comprehensive",
        recovery_steps: [
          { step: "state_corruption_isolation", action: "identify_corrupted_state_segments" },
          {
            step: "clean_state_restoration",
            action: "restore_from_validated_checkpoint",
            checkpoint: "latest_verified_checkpoint",
          },
          {
            step: "delta_reconstruction",
            action: "reconstruct_changes_since_checkpoint",
            method: "transaction_log_replay",
          },
        ],
      }),
    );
    expect(r).toMatchObject({
      outcome: "recovered",
      damaged: ["ledger"],
      restoredFrom: position,
      replayed: 2,
      invalid: HISTORY,
      cleared: ["ledger"],
      verification: { keys: 2, intact: 2, mismatched: [], percent: 100 },
      unfrozen: true,
    });
    // Nothing lost: the values of the last committed transaction.
    expect(JSON.parse(c.cli("state", "show", id))).toEqual({ ledger: 3, status: "final" });
    const v = json<Validation>("coordination-hub", "checkpoint-validation", JSON.stringify({ workflow: id }));
    expect(v.valid).toBe(true);
    const again = json<Assessment>("workflow-recovery", "corruption-assessment", JSON.stringify({ workflow: id }));
    expect(again).toMatchObject({ keys: 2, intact: 2, damaged: [], frozen: false });

    await until("DATA_RECOVERY_COMPLETED", () => rec.events.some((e) => e.event.type === "DATA_RECOVERY_COMPLETED"));
    rec.stop();
    const types = rec.events.filter((e) => e.event.scope === id).map((e) => e.event.type);
    // In this order: the alert, the freeze, the protection, the rollback, the unfreeze, the recovery.
    const order = [
      "DATA_INTEGRITY_ALERT",
      "WORKFLOW_FROZEN",
      "DATA_PROTECTION_ACTIVATED",
      "STATE_ROLLED_BACK",
      "WORKFLOW_UNFROZEN",
      "DATA_RECOVERY_COMPLETED",
    ];
    const at = order.map((t) => types.indexOf(t as (typeof types)[number]));
    expect(
      at.every((i) => i >= 0),
      `${order} in ${types}`,
    ).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    const done = rec.events.find((e) => e.event.type === "DATA_RECOVERY_COMPLETED")?.event.data;
    expect(done).toMatchObject({
      recovery_success: "complete",
      data_integrity: "verified",
      corrupted_segments: 1,
      restored_from: position,
      replayed: 2,
      validation_passed_percent: 100,
      unfrozen: true,
    });
  }, 90_000);

  it("refuses a checkpoint that does not validate, leaving the state as it was", async () => {
    const id = await c.submit({
      name: "rb-nock",
      root: "writer",
      kinds: { writer: { role: "agent", replicas: 1, behaviour: { type: "script", state: { n: 1 } } } },
    });
    expect((await c.wait(id)).status, c.tail()).toBe("completed");
    const r = JSON.parse(
      c.cli(
        "workflow-recovery",
        "execute-data-recovery",
        JSON.stringify({ workflow: id, recovery_steps: [{ step: "clean_state_restoration", checkpoint: 999_999 }] }),
        "--json",
      ),
    ) as Recovery;
    expect(r).toMatchObject({ outcome: "failed", restoredFrom: null, unfrozen: false });
    expect(r.reason).toContain("999999");
    expect(JSON.parse(c.cli("state", "show", id))).toEqual({ n: 1 });
  });

  it("names an unknown workflow and an unknown field, exit 2 for the field", () => {
    const fail = (...args: string[]) => {
      try {
        c.cli(...args);
      } catch (e) {
        return e as { status: number; stderr: string };
      }
      throw new Error("it did not fail");
    };
    const unknown = fail("workflow-recovery", "corruption-assessment", JSON.stringify({ workflow: "wnope" }));
    expect(String(unknown.stderr)).toContain("wnope");
    const field = fail(
      "coordination-hub",
      "emergency-data-protection",
      JSON.stringify({ affected_workflow: "w1", paranoid: true }),
    );
    expect(field.status).toBe(2);
    expect(String(field.stderr)).toContain("paranoid");
  });
});
