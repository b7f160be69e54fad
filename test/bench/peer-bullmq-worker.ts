/**
 * A BullMQ worker of the peers bench (peer-bullmq.ts), in its own process: one `Worker` on one
 * queue with concurrency 64. On "agent" it does the child's no-op work; on "director" it runs
 * once the child has completed (a FlowProducer parent) and aggregates the child's result, as
 * Cadre's director does.
 *
 *   node peer-bullmq-worker.js <redis host> <redis port> director|agent
 */

import { type Job, Worker } from "bullmq";
import { Redis as IORedis } from "ioredis";
import { IN_FLIGHT } from "./cadre-delegation.js";

const [host, port, queue] = process.argv.slice(2);
if (!host || !port || (queue !== "director" && queue !== "agent")) {
  process.stderr.write("usage: peer-bullmq-worker.js <redis host> <redis port> director|agent\n");
  process.exit(2);
}

type Data = { workflow: number; input: string };
const processor =
  queue === "agent"
    ? async (job: Job<Data>) => ({ workflow: job.data.workflow, ok: true })
    : async (job: Job<Data>) => ({
        workflow: job.data.workflow,
        results: Object.values(await job.getChildrenValues()),
      });

// maxRetriesPerRequest: null is what BullMQ requires of a connection it blocks on.
const connection = new IORedis({ host, port: Number(port), maxRetriesPerRequest: null });
const worker = new Worker<Data>(queue, processor, { connection, concurrency: IN_FLIGHT });
worker.on("error", (err) => process.stderr.write(`peer-bullmq-worker (${queue}): ${err.message}\n`));
await worker.waitUntilReady();
process.stdout.write("ready\n");
process.on("SIGTERM", () => {
  void worker
    .close()
    .then(() => connection.quit())
    .then(() => process.exit(0));
});
