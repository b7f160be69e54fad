/**
 * Creates Cadre's streams and buckets if they are missing. Idempotent; every service calls it
 * at start-up so none depends on another having started first.
 */

import { BUCKETS, type Config, STREAMS, subjects } from "@cadre/protocol";
import { type JetStreamManager, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";

const nanos = (ms: number): number => ms * 1_000_000;

/** The buckets, opened. */
export interface Buckets {
  workflows: KV;
  tasks: KV;
  registry: KV;
}

type StreamSettings = Omit<Parameters<JetStreamManager["streams"]["add"]>[0], "name">;

async function ensureStream(jsm: JetStreamManager, name: string, cfg: StreamSettings): Promise<void> {
  try {
    await jsm.streams.info(name);
  } catch {
    try {
      await jsm.streams.add({ ...cfg, name });
    } catch (err) {
      // Another service created it between our look-up and our add.
      if (!(err as Error).message.includes("already in use")) throw err;
    }
  }
}

/** Creates (if missing) the tasks, results and events streams and the KV buckets. */
export async function ensureInfrastructure(nc: NatsConnection, config: Config): Promise<Buckets> {
  const jsm = await jetstreamManager(nc);
  const replicas = config.storage.replicas;
  const sessionMs = config.orchestration_limits.session_timeout_hours * 3_600_000;
  await ensureStream(jsm, STREAMS.tasks, {
    subjects: [subjects.allTasks()],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: replicas,
    duplicate_window: nanos(config.storage.duplicateWindowMs),
  });
  await ensureStream(jsm, STREAMS.results, {
    subjects: [subjects.allResults()],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_age: nanos(sessionMs),
    duplicate_window: nanos(config.storage.duplicateWindowMs),
  });
  await ensureStream(jsm, STREAMS.events, {
    subjects: [subjects.allEvents()],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_age: nanos(sessionMs),
    max_msgs: 1_000_000,
  });
  const kvm = new Kvm(nc);
  const open = (name: string, history: number) =>
    kvm.create(name, { history, replicas, ttl: sessionMs, storage: "file" });
  return {
    workflows: await open(BUCKETS.workflows, 5),
    tasks: await open(BUCKETS.tasks, 5),
    registry: await open(BUCKETS.registry, 1),
  };
}
