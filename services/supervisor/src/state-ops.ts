/**
 * `sup.state.checkpoint` and `sup.state.rollback`: a workflow's shared state checkpointed and
 * rolled back by the supervisor, for callers that may not write the state bucket themselves
 * (the monitor's runbook commands: seed 003's data recovery). The same TxStore operations
 * `cadre state` runs (runtime transactions.ts); a rollback is announced as STATE_ROLLED_BACK.
 */

import { NotFoundError, type OpReplyInput, type OpRequest, STREAMS, type TypedEvent } from "@cadre/protocol";
import { StateValueSchema, TxStore } from "@cadre/runtime";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";

export interface StateOpsDeps {
  kv: KV;
  js: JetStreamClient;
  /** The workflow records (only whether one exists is read). */
  workflows: { get(workflowId: string): Promise<unknown> };
  writer: string;
  txnTimeoutMs: number;
  emit: (e: TypedEvent) => void;
}

export class StateOps {
  private readonly store: TxStore<unknown>;

  constructor(private readonly d: StateOpsDeps) {
    this.store = new TxStore(d.kv, StateValueSchema, { writer: d.writer, txnTimeoutMs: d.txnTimeoutMs });
  }

  /** NOT_FOUND unless the workflow exists (a typo would otherwise checkpoint an empty state). */
  private async known(workflowId: string): Promise<void> {
    if (!(await this.d.workflows.get(workflowId))) throw new NotFoundError("workflow", workflowId);
  }

  async checkpoint({ workflowId }: OpRequest<"sup.state.checkpoint">): Promise<OpReplyInput<"sup.state.checkpoint">> {
    await this.known(workflowId);
    const ck = await this.store.checkpoint(this.d.js, `${workflowId}.`);
    return { workflowId, position: ck.position, at: ck.at, keys: Object.keys(ck.values).length };
  }

  async rollback({
    workflowId,
    toSeq,
    skip,
  }: OpRequest<"sup.state.rollback">): Promise<OpReplyInput<"sup.state.rollback">> {
    await this.known(workflowId);
    const prefix = `${workflowId}.`;
    const r = await this.store.rollback(this.d.js, STREAMS.stateLog, prefix, toSeq, skip);
    const name = (k: string) => k.slice(prefix.length);
    const reply = {
      workflowId,
      toSeq,
      ...r,
      keys: r.keys.map(name),
      cleared: r.cleared.map(name),
      verified: { keys: r.verified.keys, mismatched: r.verified.mismatched.map(name) },
    };
    this.d.emit({
      type: "STATE_ROLLED_BACK",
      category: "state",
      scope: workflowId,
      data: {
        toSeq,
        txid: r.txid,
        keys: reply.keys,
        replayed: r.replayed,
        skipped: r.skipped,
        invalid: r.invalid,
      },
    });
    return reply;
  }
}
