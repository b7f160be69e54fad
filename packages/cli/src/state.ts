/**
 * `cadre state`: an operator's view of a workflow's shared state and its transaction log, read
 * from JetStream directly. Checkpoints and the selective rollback of seed 003 (restore a
 * checkpoint, replay the log forward without the transactions named) are the supervisor's
 * `sup.state.checkpoint` and `sup.state.rollback` (supervisor state-ops.ts), which the runbook's
 * data recovery uses too.
 */

import { BUCKETS, type Config, STREAMS } from "@cadre/protocol";
import {
  connectNats,
  ensureInfrastructure,
  type LogEntry,
  type NatsConnection,
  natsAuthOf,
  readLog,
  StateValueSchema,
  TxStore,
} from "@cadre/runtime";
import { jetstream } from "@nats-io/jetstream";

async function open(config: Config): Promise<{ nc: NatsConnection; store: TxStore<unknown> }> {
  const nc = await connectNats(config.natsUrl, "cadre-cli", undefined, natsAuthOf(config));
  const buckets = await ensureInfrastructure(nc, config);
  const store = new TxStore(buckets.state, StateValueSchema, {
    writer: "cadre-cli",
    txnTimeoutMs: config.storage.txnTimeoutMs,
  });
  return { nc, store };
}

/** The workflow's state names and values (one snapshot). */
export async function showState(config: Config, workflowId: string): Promise<Record<string, unknown>> {
  const { nc, store } = await open(config);
  try {
    const values = await store.read(await store.keysUnder(`${workflowId}.`));
    return Object.fromEntries(
      [...values].filter(([, v]) => v !== undefined).map(([k, v]) => [k.slice(workflowId.length + 1), v]),
    );
  } finally {
    await nc.close();
  }
}

/** The workflow's checkpoints, and the committed transactions on its state, oldest first. */
export async function stateLog(
  config: Config,
  workflowId: string,
): Promise<{ checkpoints: number[]; entries: LogEntry<unknown>[]; invalid: number[] }> {
  const { nc, store } = await open(config);
  try {
    const js = jetstream(nc);
    const prefix = `${workflowId}.`;
    const log = await readLog(js, STREAMS.stateLog, BUCKETS.state, StateValueSchema, prefix, await store.position(js));
    return { checkpoints: await store.checkpointsOf(prefix), ...log };
  } finally {
    await nc.close();
  }
}
