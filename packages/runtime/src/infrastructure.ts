/**
 * Creates Cadre's streams and buckets if they are missing. Idempotent; every service calls it
 * at start-up so none depends on another having started first.
 */

import { BUCKETS, type Config, STREAMS, subjects, UnavailableError } from "@cadre/protocol";
import { type JetStreamManager, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { retry } from "./backoff.js";
import { isTransient } from "./nats.js";

const nanos = (ms: number): number => ms * 1_000_000;

/** The buckets, opened. */
export interface Buckets {
  workflows: KV;
  tasks: KV;
  registry: KV;
  /** Workflow state shared by agents, written in transactions (transactions.ts). */
  state: KV;
  /** Model calls: budgets, providers' shared limits, the call journal (protocol llm.ts). */
  llm: KV;
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

/**
 * In a JetStream cluster a stream answers only once its replicas have elected a leader, a moment
 * after it is created (or after its leader's node died); until then a publish gets "no
 * responders". Waits for a leader so a service's first write does not fail for that.
 */
async function waitForLeader(jsm: JetStreamManager, name: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const info = await jsm.streams.info(name);
      if (!info.cluster || info.cluster.leader) return;
      last = "no leader elected yet";
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > end) {
      throw new UnavailableError(`JetStream stream ${name} has no leader after ${timeoutMs} ms (${last})`, {
        stream: name,
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Creates (if missing) the tasks, results and events streams and the KV buckets. Retried while
 * NATS is not ready (a JetStream cluster still electing its leaders answers with timeouts and
 * "no responders" for a few seconds after it starts); every step is idempotent.
 */
/**
 * Opens what the supervisor created, creating nothing: for identities without JetStream
 * administration rights (agent-hosts). Waits up to `timeoutMs` for a supervisor starting at the
 * same time to create it.
 */
export async function openInfrastructure(nc: NatsConnection, timeoutMs = 30_000): Promise<Buckets> {
  const end = Date.now() + timeoutMs;
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  for (let attempt = 1; ; attempt++) {
    try {
      for (const s of Object.values(STREAMS)) await jsm.streams.info(s);
      return {
        workflows: await kvm.open(BUCKETS.workflows),
        tasks: await kvm.open(BUCKETS.tasks),
        registry: await kvm.open(BUCKETS.registry),
        state: await kvm.open(BUCKETS.state),
        llm: await kvm.open(BUCKETS.llm),
      };
    } catch (err) {
      const missing = /not found/i.test((err as Error).message);
      if ((!missing && !isTransient(err)) || Date.now() > end) {
        throw new UnavailableError(
          `Cadre's streams and buckets are not there (${(err as Error).message}); start the supervisor, which creates them`,
          {},
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
    }
  }
}

export async function ensureInfrastructure(nc: NatsConnection, config: Config): Promise<Buckets> {
  return retry(() => ensureOnce(nc, config), { isRetryable: isTransient, maxAttempts: 12, baseMs: 250, maxMs: 3000 });
}

async function ensureOnce(nc: NatsConnection, config: Config): Promise<Buckets> {
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
  // max_state_size_mb bounds the state agents write (history included): the server refuses a
  // write past it and StateStore turns that into STATE_LIMIT_EXCEEDED. Cadre's own records
  // (workflows, tasks) are bounded by the session TTL instead: refusing them would stop work.
  const maxBytes = Math.floor(config.orchestration_limits.max_state_size_mb * 1024 * 1024);
  const open = async (name: string, history: number, limited: boolean) => {
    // The limited bucket (the workflow state) is mirrored into its log, and nats-server lets a
    // mirror of a bucket with direct gets answer them: reads from a copy that lags (and is
    // trimmed) would break read-committed and lose keys. So its reads go to its leader.
    const opts = limited ? { max_bytes: maxBytes, allow_direct: false } : {};
    const kv = await kvm.create(name, { history, replicas, ttl: sessionMs, storage: "file", ...opts });
    if (limited) {
      // An existing bucket keeps its old settings through create(): apply changed ones.
      const info = await jsm.streams.info(`KV_${name}`);
      if (info.config.max_bytes !== maxBytes || info.config.allow_direct) {
        await jsm.streams.update(`KV_${name}`, opts);
        return kvm.open(name);
      }
    }
    return kv;
  };
  const buckets = {
    workflows: await open(BUCKETS.workflows, 5, false),
    tasks: await open(BUCKETS.tasks, 5, false),
    registry: await open(BUCKETS.registry, 1, false),
    state: await open(BUCKETS.state, 5, true),
    llm: await open(BUCKETS.llm, 1, false),
  };
  // Every write to the state bucket: the transaction log that rollback and replay read. A
  // mirror is written by the server, so no committed write can miss it. Kept for the session,
  // and at most 4x the bucket's size (the oldest entries go first; a rollback to a checkpoint
  // older than the log's start is refused).
  await ensureStream(jsm, STREAMS.stateLog, {
    mirror: { name: `KV_${BUCKETS.state}` },
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_age: nanos(sessionMs),
    max_bytes: 4 * maxBytes,
  });
  const log = await jsm.streams.info(STREAMS.stateLog);
  if (log.config.max_bytes !== 4 * maxBytes) await jsm.streams.update(STREAMS.stateLog, { max_bytes: 4 * maxBytes });
  if (replicas > 1) {
    const names = [...Object.values(STREAMS), ...Object.values(BUCKETS).map((b) => `KV_${b}`)];
    await Promise.all(names.map((n) => waitForLeader(jsm, n)));
  }
  return buckets;
}
