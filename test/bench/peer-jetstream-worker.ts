/**
 * A worker of the bare JetStream flow (peer-jetstream.ts), in its own process: for each
 * `consumer=subject` argument it pulls from that durable consumer and, for every message, acks
 * it and publishes its payload to the subject, waiting for the stream's acknowledgement (a
 * durable publish). No state, no decoding: the floor of the messaging a delegation needs.
 *
 *   node peer-jetstream-worker.js <nats url> <stream> <consumer=subject>...
 */

import { type ConsumerMessages, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

const [url, stream, ...routes] = process.argv.slice(2);
if (!url || !stream || routes.length === 0) {
  process.stderr.write("usage: peer-jetstream-worker.js <nats url> <stream> <consumer=subject>...\n");
  process.exit(2);
}

// noAsyncTraces: no stack trace captured per publish (shared/notes/nats-here.md), as the client does.
const nc = await connect({ servers: url, noAsyncTraces: true });
const js = jetstream(nc);
const fail = (err: unknown) => {
  process.stderr.write(`peer-jetstream-worker: ${(err as Error).message}\n`);
  process.exit(1);
};
const consuming: ConsumerMessages[] = [];
for (const route of routes) {
  const [name, next] = route.split("=");
  if (!name || !next) fail(new Error(`bad route ${route}: want consumer=subject`));
  const consumer = await js.consumers.get(stream, name as string);
  // Messages are handled as they arrive, not one after the other: the 64 in flight overlap.
  consuming.push(
    await consumer.consume({
      max_messages: 256,
      expires: 5000,
      idle_heartbeat: 1000,
      callback: (m) => {
        m.ack();
        js.publish(next as string, m.data).catch(fail);
      },
    }),
  );
}
await nc.flush();
process.stdout.write("ready\n");
process.on("SIGTERM", () => {
  for (const c of consuming) c.stop();
  void nc.close().then(() => process.exit(0));
});
