/**
 * Seed 003's data integrity scenario, over a workflow's shared state (runtime transactions.ts:
 * every value an envelope with a CRC32, every write mirrored into the state log):
 *
 * - `/workflow-recovery corruption-assessment`: every state value of the workflow read as
 *   stored (no restore attempted), its checksum and shape checked; for each damaged one whether
 *   the bucket's history still holds a good revision (a read then restores it by itself) and
 *   whether the latest verified checkpoint plus the log after it give it a good value. Rules:
 *   rollback feasible = a checkpoint validates and the log still reaches back to it; partial
 *   recovery = some damaged values are restorable from history; data reconstruction = rollback
 *   feasible and every damaged value is in that checkpoint or written after it. At risk: the
 *   damaged values neither can give back. Damage found announces DATA_INTEGRITY_ALERT.
 * - `/coordination-hub emergency-data-protection`: freeze (the supervisor's data protection
 *   mode: state changes and results wait), then checkpoint, then validate the checkpoints, then
 *   confirm the state log, in that order whatever order the request lists them: frozen first,
 *   nothing commits between the checkpoint and the freeze. A checkpoint is not taken over
 *   damaged values (it would keep them); the reply then names them and the verified checkpoint
 *   a recovery would use. The log "enabled" is confirmed, not switched on: Cadre always mirrors
 *   the state bucket; confirmed = the mirror has copied every write and reaches back to the
 *   verified checkpoint.
 * - `/workflow-recovery execute-data-recovery`: isolation (the assessment), restoration of the
 *   chosen checkpoint and replay of the committed transactions after it (`sup.state.rollback`:
 *   damaged values are reset and written from the replay, log entries that fail their checksum
 *   are left out, each value read back against the replay), then every value scanned again.
 *   Recovered = nothing damaged after and every value read back as replayed; then (by default)
 *   the workflow is unfrozen. DATA_RECOVERY_COMPLETED clears the alert when complete.
 */

import {
  BUCKETS,
  type CorruptionAssessmentReply,
  type DataProtectionRequest,
  type DataRecoveryRequest,
  type OpReplyInput,
  PROTECTION_ACTIONS,
  STREAMS,
} from "@cadre/protocol";
import { isFrozen, listKeys, readLog, StateValueSchema, verifyChecksum } from "@cadre/runtime";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { integrityAlert } from "./announce-data.js";
import { checkpointValidation } from "./coordination.js";
import { ask, type RunbookDeps } from "./resource-manager.js";

/** Parts starting with "_" are Cadre's own (transaction records, checkpoints). */
const RESERVED = /(^|\.)_/;

/** A stored value that is an envelope (transactions.ts) whose checksum holds. */
function intact(bytes: Uint8Array): boolean {
  const raw = verifyChecksum(bytes) as { v?: unknown; by?: unknown } | undefined;
  return raw !== undefined && raw !== null && typeof raw === "object" && "v" in raw && typeof raw.by === "string";
}

/** Every state value of the workflow as stored: its name, revision and whether it checks out. */
async function scan(d: RunbookDeps, workflowId: string) {
  const kv = await new Kvm(d.nc).open(BUCKETS.state);
  const prefix = `${workflowId}.`;
  const rows: { key: string; name: string; revision: number; ok: boolean; restorable: boolean }[] = [];
  for (const key of (await listKeys(kv, `${prefix}>`)).sort()) {
    if (RESERVED.test(key)) continue;
    const e = await kv.get(key);
    if (e?.operation !== "PUT" || e.value.length === 0) continue;
    const ok = intact(e.value);
    let restorable = false;
    if (!ok) {
      for await (const h of await kv.history({ key })) {
        if (h.revision < e.revision && h.operation === "PUT" && intact(h.value)) restorable = true;
      }
    }
    rows.push({ key, name: key.slice(prefix.length), revision: e.revision, ok, restorable });
  }
  return rows;
}

/** The committed transactions on the workflow's state after `position`, up to `upTo`. */
const logAfter = (d: RunbookDeps, workflowId: string, position: number, upTo: number) =>
  readLog(jetstream(d.nc), STREAMS.stateLog, BUCKETS.state, StateValueSchema, `${workflowId}.`, upTo, position + 1);

/** The latest checkpoint that validates, with its values, and the log after it. */
async function verifiedCheckpoint(d: RunbookDeps, workflowId: string) {
  const v = await checkpointValidation(d, workflowId);
  const best = v.checkpoints.filter((c) => c.checksum === "ok" && c.replayable).at(-1);
  if (!best) return { validation: v, best: null };
  const kv = await new Kvm(d.nc).open(BUCKETS.state);
  const stored = await kv.get(`${workflowId}._ckpt.${best.position}`);
  const values = ((stored && (verifyChecksum(stored.value) as { values?: object })?.values) ?? {}) as Record<
    string,
    unknown
  >;
  const log = await logAfter(d, workflowId, best.position, v.log.bucketLastSeq);
  return { validation: v, best: { ...best, values, log } };
}

/** `announce`: whether damage found is announced (a recovery's own isolation step does not announce again). */
export async function corruptionAssessment(
  d: RunbookDeps,
  workflowId: string,
  announce = true,
): Promise<CorruptionAssessmentReply> {
  await ask(d, "sup.status", { workflowId }); // NOT_FOUND for a workflow that does not exist
  const [rows, { best }, registry] = await Promise.all([
    scan(d, workflowId),
    verifiedCheckpoint(d, workflowId),
    new Kvm(d.nc).open(BUCKETS.registry),
  ]);
  const written = new Set([
    ...Object.keys(best?.values ?? {}),
    ...(best?.log.entries ?? []).flatMap((e) => Object.keys(e.writes)),
  ]);
  const damaged = rows
    .filter((r) => !r.ok)
    .map((r) => ({
      name: r.name,
      revision: r.revision,
      restorableFromHistory: r.restorable,
      reconstructable: best !== null && written.has(r.key),
    }));
  const reply: CorruptionAssessmentReply = {
    workflowId,
    keys: rows.length,
    intact: rows.filter((r) => r.ok).length,
    damaged,
    checkpoint: best
      ? { position: best.position, at: best.at, replays: best.log.entries.length, invalid: best.log.invalid.length }
      : null,
    options: {
      rollbackFeasible: best !== null,
      partialRecovery: damaged.some((x) => x.restorableFromHistory),
      dataReconstruction: best !== null && damaged.every((x) => x.reconstructable),
    },
    atRisk: damaged.filter((x) => !x.reconstructable && !x.restorableFromHistory).map((x) => x.name),
    frozen: await isFrozen(registry, workflowId),
  };
  if (announce && damaged.length > 0) {
    d.emit(
      integrityAlert(
        workflowId,
        damaged.map((x) => x.name),
        {
          risk: damaged.some((x) => !x.restorableFromHistory) ? "high" : "medium",
          actionRequired: !reply.frozen,
          by: "corruption-assessment",
        },
      ),
    );
  }
  return reply;
}

type Protection = OpReplyInput<"mon.coordination-hub.emergency-data-protection">;

export async function emergencyDataProtection(d: RunbookDeps, req: DataProtectionRequest): Promise<Protection> {
  const began = d.clock.now();
  const workflowId = req.affected_workflow;
  const wanted = new Set(req.immediate_actions ?? PROTECTION_ACTIONS);
  const steps: Protection["steps"] = [];
  let frozen = false;
  let checkpoint: number | null = null;
  let verified: number | null = null;
  let logConfirmed = false;
  let damaged: string[] = [];
  if (wanted.has("freeze_state_modifications")) {
    frozen = (await ask(d, "sup.freeze", { workflowId, frozen: true })).frozen;
    steps.push({ action: "freeze_state_modifications", outcome: "done", detail: "state changes and results wait" });
  } else {
    await ask(d, "sup.status", { workflowId });
  }
  if (wanted.has("create_emergency_checkpoint")) {
    damaged = (await scan(d, workflowId)).filter((r) => !r.ok).map((r) => r.name);
    if (damaged.length > 0) {
      steps.push({
        action: "create_emergency_checkpoint",
        outcome: "not-done",
        detail: `not taken: ${damaged.join(", ")} fail their checksum, and a checkpoint would keep them`,
      });
    } else {
      const ck = await ask(d, "sup.state.checkpoint", { workflowId });
      checkpoint = ck.position;
      steps.push({
        action: "create_emergency_checkpoint",
        outcome: "done",
        detail: `${ck.keys} value(s) at ${ck.position}`,
      });
    }
  }
  const v = await checkpointValidation(d, workflowId);
  const good = v.checkpoints.filter((c) => c.checksum === "ok" && c.replayable);
  verified = good.at(-1)?.position ?? null;
  if (wanted.has("activate_backup_validation")) {
    steps.push({
      action: "activate_backup_validation",
      outcome: verified === null ? "not-done" : "done",
      detail: `${good.length} of ${v.checkpoints.length} checkpoint(s) valid${verified === null ? "" : `; latest ${verified}`}`,
    });
  }
  if (wanted.has("enable_transaction_logging")) {
    logConfirmed = v.log.lagging === 0 && (verified === null || v.log.firstSeq <= verified + 1);
    steps.push({
      action: "enable_transaction_logging",
      outcome: logConfirmed ? "done" : "not-done",
      detail: `the state log holds ${v.log.firstSeq}..${v.log.lastSeq}, ${v.log.lagging} write(s) not copied yet`,
    });
  }
  const ms = d.clock.now() - began;
  d.emit({
    type: "DATA_PROTECTION_ACTIVATED",
    category: "coordination",
    scope: workflowId,
    data: {
      protection_level: req.protection_level ?? "maximum",
      frozen,
      checkpoint,
      verified_checkpoint: verified,
      log_confirmed: logConfirmed,
      ms,
    },
  });
  return { ms, workflowId, steps, frozen, checkpoint, verifiedCheckpoint: verified, logConfirmed, damaged };
}

type Recovery = OpReplyInput<"mon.workflow-recovery.execute-data-recovery">;

export async function executeDataRecovery(d: RunbookDeps, req: DataRecoveryRequest): Promise<Recovery> {
  const began = d.clock.now();
  const workflowId = req.workflow;
  const steps = new Map((req.recovery_steps ?? []).map((s) => [s.step, s]));
  const replay = req.recovery_steps === undefined || steps.has("delta_reconstruction");
  const before = await corruptionAssessment(d, workflowId, false);
  const damaged = before.damaged.map((x) => x.name);
  const wantedAt = steps.get("clean_state_restoration")?.checkpoint;
  const { best, validation } = await verifiedCheckpoint(d, workflowId);
  const chosen =
    typeof wantedAt === "number"
      ? validation.checkpoints.find((c) => c.position === wantedAt && c.checksum === "ok" && c.replayable)
      : best;
  const finish = (reply: Omit<Recovery, "ms" | "workflowId">): Recovery => {
    const ms = d.clock.now() - began;
    const complete = reply.outcome === "recovered";
    d.emit({
      type: "DATA_RECOVERY_COMPLETED",
      category: "coordination",
      scope: workflowId,
      data: {
        recovery_success: complete ? "complete" : "failed",
        data_integrity: complete ? "verified" : "not_verified",
        corrupted_segments: damaged.length,
        restored_from: reply.restoredFrom,
        replayed: reply.replayed,
        validation_passed_percent: reply.verification.percent,
        recovery_time_ms: ms,
        unfrozen: reply.unfrozen,
      },
    });
    return { ms, workflowId, ...reply };
  };
  const none = { keys: before.keys, intact: before.intact, mismatched: [], percent: 0 };
  if (!chosen) {
    const reason =
      typeof wantedAt === "number"
        ? `checkpoint ${wantedAt} does not validate (checkpoint-validation says why)`
        : "no checkpoint of this workflow validates: take one (cadre state checkpoint) once its state is good";
    return finish({
      outcome: "failed",
      damaged,
      restoredFrom: null,
      replayed: 0,
      invalid: 0,
      cleared: [],
      verification: none,
      unfrozen: false,
      reason,
    });
  }
  // Writes that commit during a rollback are not in its replay: the workflow is frozen for it.
  if (!before.frozen) await ask(d, "sup.freeze", { workflowId, frozen: true });
  let skip = req.skip;
  if (!replay) {
    // Restoration without the delta: every transaction after the checkpoint is left out.
    const log = await logAfter(d, workflowId, chosen.position, validation.log.bucketLastSeq);
    skip = [...new Set([...skip, ...log.entries.map((e) => e.txid)])];
  }
  const r = await ask(d, "sup.state.rollback", { workflowId, toSeq: chosen.position, skip });
  const after = await scan(d, workflowId);
  const good = after.filter((x) => x.ok && !r.verified.mismatched.includes(x.name)).length;
  const verification = {
    keys: after.length,
    intact: after.filter((x) => x.ok).length,
    mismatched: r.verified.mismatched,
    percent: after.length === 0 ? 100 : Math.round((good / after.length) * 1000) / 10,
  };
  const recovered = good === after.length;
  let unfrozen = false;
  if (recovered && req.unfreeze) {
    await ask(d, "sup.freeze", { workflowId, frozen: false });
    unfrozen = true;
  }
  return finish({
    outcome: recovered ? "recovered" : "failed",
    damaged,
    restoredFrom: chosen.position,
    replayed: r.replayed.length,
    invalid: r.invalid.length,
    cleared: r.cleared,
    verification,
    unfrozen,
    ...(recovered
      ? {}
      : { reason: "values still damaged or not as replayed after the rollback; the workflow stays frozen" }),
  });
}
