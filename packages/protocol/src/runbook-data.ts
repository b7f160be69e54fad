/**
 * Seed 003's data integrity scenario ("State Synchronization Failure with Data Corruption
 * Risk"): the supervisor's state operations the runbook acts through (`sup.state.*`: the monitor
 * may not write the state bucket), and the commands of `/coordination-hub
 * emergency-data-protection`, `/workflow-recovery corruption-assessment` and `/workflow-recovery
 * execute-data-recovery`. What each computes is in docs/architecture.md ("The runbook").
 */

import { z } from "zod";
import { Id, Millis } from "./messages.js";

const Count = z.number().int().nonnegative();
const Note = z.string().max(200);
const Notes = z.array(Note).max(20);
const Key = z.string().max(512);

// --- the supervisor's state operations ------------------------------------------------------

/** `sup.state.checkpoint`: keep a workflow's state as of now. */
export const StateCheckpointRequestSchema = z.object({ workflowId: Id });
export const StateCheckpointReplySchema = z.object({
  workflowId: Id,
  /** The log position it was taken at (its name: `<workflowId>._ckpt.<position>`). */
  position: Count,
  at: Millis,
  keys: Count,
});

/** `sup.state.rollback`: restore a checkpoint and replay the log after it, except `skip`. */
export const StateRollbackRequestSchema = z.object({
  workflowId: Id,
  toSeq: Count,
  skip: z.array(Id).max(100).default([]),
});
export const StateRollbackReplySchema = z.object({
  workflowId: Id,
  toSeq: Count,
  txid: z.string().max(64),
  /** State names whose value changed. */
  keys: z.array(Key).max(10_000),
  replayed: z.array(Id).max(100_000),
  skipped: z.array(Id).max(100),
  /** Log entries left out: they fail their checksum or schema. */
  invalid: z.array(Count).max(100_000),
  /** Names damaged past the bucket's history, reset before the replay wrote them. */
  cleared: z.array(Key).max(10_000),
  /** Every name read back against the value the replay gave it. */
  verified: z.object({ keys: Count, mismatched: z.array(Key).max(10_000) }),
});

// --- /workflow-recovery corruption-assessment ------------------------------------------------

/** `/workflow-recovery corruption-assessment`: what is damaged, and what a recovery could do. */
export const CorruptionAssessmentRequestSchema = z
  .object({
    /** The workflow whose state to assess (the seed names it in the alert). */
    workflow: Id,
    scope: Note.optional(),
    focus: Notes.optional(),
  })
  .strict();

const CheckpointChoice = z.object({
  position: Count,
  at: Millis.nullable(),
  /** Committed transactions after it that a rollback replays. */
  replays: Count,
  /** Log entries after it that fail their checksum: left out of the replay. */
  invalid: Count,
});

export const CorruptionAssessmentReplySchema = z.object({
  workflowId: Id,
  /** State names under the workflow, and how many hold a value that checks out. */
  keys: Count,
  intact: Count,
  damaged: z.array(
    z.object({
      name: Key,
      revision: Count,
      /** A good revision is still in the bucket's history: the next read restores it by itself. */
      restorableFromHistory: z.boolean(),
      /** The log after the chosen checkpoint (or the checkpoint itself) holds a good value of it. */
      reconstructable: z.boolean(),
    }),
  ),
  /** The latest checkpoint whose checksum holds and whose log after it is still kept. */
  checkpoint: CheckpointChoice.nullable(),
  /** The options of the seed's `focus`, each decided by a rule (docs/architecture.md). */
  options: z.object({
    rollbackFeasible: z.boolean(),
    partialRecovery: z.boolean(),
    dataReconstruction: z.boolean(),
  }),
  /** Names a rollback to `checkpoint` could not give a good value: they would be lost. */
  atRisk: z.array(Key),
  frozen: z.boolean(),
});

// --- /coordination-hub emergency-data-protection ---------------------------------------------

export const PROTECTION_ACTIONS = [
  "create_emergency_checkpoint",
  "freeze_state_modifications",
  "activate_backup_validation",
  "enable_transaction_logging",
] as const;

/** `/coordination-hub emergency-data-protection`: freeze, checkpoint, validate, confirm the log. */
export const DataProtectionRequestSchema = z
  .object({
    protection_level: Note.optional(),
    affected_workflow: Id,
    /** @default all four, in the seed's order of intent (the freeze runs first: see the handler) */
    immediate_actions: z.array(z.enum(PROTECTION_ACTIONS)).min(1).max(4).optional(),
  })
  .strict();
export const DataProtectionReplySchema = z.object({
  ms: Millis,
  workflowId: Id,
  steps: z.array(
    z.object({
      action: z.enum(PROTECTION_ACTIONS),
      outcome: z.enum(["done", "not-done"]),
      detail: z.string().max(500),
    }),
  ),
  frozen: z.boolean(),
  /** The checkpoint taken now, or null when damaged state kept it from being whole. */
  checkpoint: z.number().int().nullable(),
  /** The latest checkpoint that validates: what a recovery would restore. */
  verifiedCheckpoint: z.number().int().nullable(),
  /** The state log holds every write of the bucket (nothing lagging) and reaches back to it. */
  logConfirmed: z.boolean(),
  damaged: z.array(Key),
});

// --- /workflow-recovery execute-data-recovery ------------------------------------------------

const RecoveryStep = z
  .object({
    step: z.enum(["state_corruption_isolation", "clean_state_restoration", "delta_reconstruction"]),
    action: Note.optional(),
    validation: Note.optional(),
    /** `latest_verified_checkpoint`, or a log position. */
    checkpoint: z.union([z.literal("latest_verified_checkpoint"), Count]).optional(),
    method: z.enum(["transaction_log_replay"]).optional(),
  })
  .strict();

/** `/workflow-recovery execute-data-recovery`: isolate, restore a checkpoint, replay, verify. */
export const DataRecoveryRequestSchema = z
  .object({
    /** The workflow to recover. */
    workflow: Id,
    recovery_strategy: Note.optional(),
    data_preservation: Note.optional(),
    validation_level: Note.optional(),
    recovery_steps: z.array(RecoveryStep).max(3).optional(),
    /** Transactions to leave out of the replay (a selective rollback). */
    skip: z.array(Id).max(100).default([]),
    /** Unfreeze the workflow once the recovery verified. @default true */
    unfreeze: z.boolean().default(true),
  })
  .strict();
export const DataRecoveryReplySchema = z.object({
  ms: Millis,
  workflowId: Id,
  outcome: z.enum(["recovered", "failed"]),
  /** Names damaged before. */
  damaged: z.array(Key),
  restoredFrom: Count.nullable(),
  replayed: Count,
  invalid: Count,
  cleared: z.array(Key),
  /** After: every name checks out and holds what the replay gave it. */
  verification: z.object({ keys: Count, intact: Count, mismatched: z.array(Key), percent: z.number() }),
  unfrozen: z.boolean(),
  reason: z.string().max(500).optional(),
});

export type CorruptionAssessmentReply = z.infer<typeof CorruptionAssessmentReplySchema>;
export type DataProtectionRequest = z.infer<typeof DataProtectionRequestSchema>;
export type DataRecoveryRequest = z.infer<typeof DataRecoveryRequestSchema>;
