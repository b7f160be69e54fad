/** The raw baseline's responder: echoes every request on `bench.echo`, in its own process. */
import { connect } from "@nats-io/transport-node";

const nc = await connect({ servers: process.argv[2] ?? "nats://127.0.0.1:4222", noAsyncTraces: true });
nc.subscribe("bench.echo", {
  callback: (_e, m) => {
    m.respond(m.data);
  },
});
await nc.flush();
process.stdout.write("ready\n");
process.on("SIGTERM", () => void nc.close().then(() => process.exit(0)));
