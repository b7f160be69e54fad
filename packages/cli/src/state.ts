/**
 * `cadre state`: an operator's view of a workflow's shared state, its transaction log, and the
 * selective rollback of seed 003 (restore a checkpoint, replay the log forward without the
 * transactions named). Talks to JetStream directly; a rollback is one transaction, announced as
 * STATE_ROLLED_BACK on the bus.
 */

import { BUCKETS, type Config, STREAMS } from "@cadre/protocol";
import {
  type Checkpoint,
  closeBus,
  connectNats,
  ensureInfrastructure,
  eventBusFor,
  type LogEntry,
  type NatsConnection,
  natsAuthOf,
  type RollbackReport,
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

/** Takes a checkpoint of the workflow's state (kept in the bucket), to roll back to later. */
export async function checkpoint(config: Config, workflowId: string): Promise<Checkpoint<unknown>> {
  const { nc, store } = await open(config);
  try {
    return await store.checkpoint(jetstream(nc), `${workflowId}.`);
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

/** Restores the workflow's checkpoint at `toSeq` and replays the log after it except `skip`. */
export async function rollback(
  config: Config,
  workflowId: string,
  toSeq: number,
  skip: string[],
): Promise<RollbackReport> {
  const { nc, store } = await open(config);
  const bus = eventBusFor(nc, "cadre-cli", config);
  try {
    const report = await store.rollback(jetstream(nc), STREAMS.stateLog, `${workflowId}.`, toSeq, skip);
    bus.emit({
      type: "STATE_ROLLED_BACK",
      category: "state",
      scope: workflowId,
      data: { toSeq, ...report, keys: report.keys.map((k) => k.slice(workflowId.length + 1)) },
    });
    return report;
  } finally {
    await closeBus(bus);
    await nc.close();
  }
}
