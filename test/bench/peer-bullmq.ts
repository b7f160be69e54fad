/**
 * BullMQ 6 doing one director > agent workflow: what a Node user picks for durable job trees.
 * The client adds a FlowProducer parent ("director" queue) with one child ("agent" queue) and
 * waits for the parent to complete (`job.waitUntilFinished(queueEvents)`); each queue has a
 * `Worker` with concurrency 64 in a process of its own (peer-bullmq-worker.ts).
 *
 * Completed and failed jobs are kept by count (the newest 1,000 of each queue), not removed at
 * once: a parent removed on completion cannot be waited on, and keeping every job would grow
 * redis over the run. The events stream is trimmed by BullMQ itself (about 10,000 entries).
 */

import { FlowProducer, QueueEvents } from "bullmq";
import { Redis as IORedis } from "ioredis";
import { IN_FLIGHT, type Measurement, measure, type PhaseOptions } from "./cadre-delegation.js";
import { startWorker, type Worker } from "./peer-process.js";

/** How long one workflow may take before the bench gives up on it. */
const TIMEOUT_MS = 10_000;
const KEEP = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } };

/** BullMQ's figures and what redis held at the end (to show it stayed bounded). */
export interface BullMQMeasurement extends Measurement {
  redisUsedMemoryBytes: number;
  redisKeys: number;
}

/** Measures BullMQ's flow on the redis-server at `host:port`. */
export async function measureBullMQ(host: string, port: number, opts: PhaseOptions): Promise<BullMQMeasurement> {
  // maxRetriesPerRequest: null is what BullMQ requires of a connection it blocks on; the
  // events reader blocks, so it has a connection of its own.
  const connect = () => new IORedis({ host, port, maxRetriesPerRequest: null });
  const flowConnection = connect();
  const eventsConnection = connect();
  const flow = new FlowProducer({ connection: flowConnection });
  // Each waitUntilFinished listens for the producer's closing: 64 at once are expected.
  flow.setMaxListeners(2 * IN_FLIGHT);
  const events = new QueueEvents("director", { connection: eventsConnection });
  const workers: Worker[] = [];
  try {
    await events.waitUntilReady();
    opts.log("bullmq: starting director and agent worker processes");
    const worker = (queue: string) => startWorker("./peer-bullmq-worker.js", [host, String(port), queue]);
    workers.push(await worker("director"), await worker("agent"));
    const input = "x".repeat(160);
    let next = 0;
    const workflow = async () => {
      const data = { workflow: next++, input };
      const node = await flow.add({
        name: "workflow",
        queueName: "director",
        data,
        opts: KEEP,
        children: [{ name: "task", queueName: "agent", data, opts: KEEP }],
      });
      await node.job.waitUntilFinished(events, TIMEOUT_MS);
    };
    const m = await measure("bullmq", workflow, opts);
    const memory = /used_memory:(\d+)/.exec(await flowConnection.info("memory"));
    return { ...m, redisUsedMemoryBytes: Number(memory?.[1] ?? Number.NaN), redisKeys: await flowConnection.dbsize() };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await flow.close();
    await events.close();
    await Promise.all([flowConnection.quit(), eventsConnection.quit()]);
  }
}
