/**
 * The bare JetStream floor of one Cadre director > agent workflow: the same message flow with
 * nothing else (no state, no schemas, no events). Four durable publishes and four acked pull
 * deliveries per workflow, over one file-storage work-queue stream (as Cadre's tasks stream):
 *
 *   client --publish a--> director --publish b--> agent --publish c--> director --publish d--> client
 *
 * The director (consumers a and c) and the agent (consumer b) are worker processes
 * (peer-jetstream-worker.ts); the client pulls d with a durable pull consumer and acks it.
 */

import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type Measurement, measure, type PhaseOptions } from "./cadre-delegation.js";
import { startWorker, type Worker } from "./peer-process.js";

const STREAM = "BENCH_FLOOR";
const subject = (step: string) => `bench.floor.${step}`;
/** How long one workflow may take before the bench gives up on it. */
const TIMEOUT_MS = 10_000;

/** Measures the floor on the server at `natsUrl` and removes its stream afterwards. */
export async function measureJetStreamFloor(natsUrl: string, opts: PhaseOptions): Promise<Measurement> {
  const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const workers: Worker[] = [];
  try {
    await jsm.streams.add({
      name: STREAM,
      subjects: [subject("*")],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
    });
    for (const step of ["a", "b", "c", "d"]) {
      await jsm.consumers.add(STREAM, {
        durable_name: step,
        ack_policy: AckPolicy.Explicit,
        filter_subject: subject(step),
        max_ack_pending: 10_000,
      });
    }
    opts.log("jetstream floor: starting director and agent processes");
    const worker = (...routes: string[]) => startWorker("./peer-jetstream-worker.js", [natsUrl, STREAM, ...routes]);
    workers.push(await worker(`a=${subject("b")}`, `c=${subject("d")}`), await worker(`b=${subject("c")}`));

    const pending = new Map<number, () => void>();
    const results = await (await js.consumers.get(STREAM, "d")).consume({
      max_messages: 256,
      expires: 5000,
      idle_heartbeat: 1000,
      callback: (m) => {
        m.ack();
        const { workflow } = m.json<{ workflow: number }>();
        pending.get(workflow)?.();
        pending.delete(workflow);
      },
    });
    const input = "x".repeat(160);
    let next = 0;
    const workflow = async () => {
      const id = next++;
      let timer: NodeJS.Timeout | undefined;
      const done = new Promise<void>((resolve, reject) => {
        pending.set(id, resolve);
        timer = setTimeout(
          () => reject(new Error(`jetstream floor: workflow ${id} took over ${TIMEOUT_MS} ms`)),
          TIMEOUT_MS,
        );
      });
      try {
        await js.publish(subject("a"), JSON.stringify({ workflow: id, input }));
        await done;
      } finally {
        clearTimeout(timer);
        pending.delete(id);
      }
    };
    const m = await measure("jetstream floor", workflow, opts);
    results.stop();
    return m;
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await jsm.streams.delete(STREAM).catch(() => undefined);
    await nc.close();
  }
}
