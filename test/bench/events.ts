/**
 * `pnpm bench`, fourth part: the event bus's throughput against one nats-server, beside raw
 * core publishes of the same events in the same run. Non-critical events go out as core
 * publishes after the rate check; critical ones are acknowledged by JetStream (64 in flight).
 * Each measure sends EVENTS_N events (default 50,000) from distinct sources, so no rate limit
 * sheds any; a subscriber confirms every one arrived.
 */

import { encode, parseConfig, subjects } from "@cadre/protocol";
import { connectNats, EventBus, ensureInfrastructure } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { printTable } from "./stats.js";

const N = Number(process.env.EVENTS_N ?? 50_000);
const log = (s: string) => process.stderr.write(`${s}\n`);

const server = await startNatsServer();
try {
  const nc = await connectNats(server.url, "bench-events");
  await ensureInfrastructure(nc, parseConfig({}));
  let received = 0;
  nc.subscribe("cadre.v1.evt.bench.>", {
    callback: () => {
      received++;
    },
  });
  const event = (type: string, i: number) => ({ type, category: "bench", scope: `s${i % 1000}`, data: { i } });

  /** Events per second from the first send until the subscriber has seen all `n`. */
  async function measure(name: string, send: (i: number) => void, settled: () => Promise<void>): Promise<number> {
    received = 0;
    const start = performance.now();
    for (let i = 0; i < N; i++) send(i);
    await settled();
    while (received < N) await new Promise((r) => setTimeout(r, 1));
    const rate = N / ((performance.now() - start) / 1000);
    log(`${name}: ${Math.round(rate)} events/s`);
    return rate;
  }

  // Warm-up (the first measure otherwise pays for the JIT and the connection's buffers).
  await measure(
    "warm-up",
    (i) => nc.publish(subjects.event("bench", `s${i % 1000}`), encode("event", event("RAW", i), { sender: "b" })),
    () => nc.flush(),
  );
  const raw = await measure(
    "raw core publish",
    (i) => nc.publish(subjects.event("bench", `s${i % 1000}`), encode("event", event("RAW", i), { sender: "b" })),
    () => nc.flush(),
  );
  const bus = new EventBus({
    nc,
    sender: "bench",
    maxQueue: 10_000,
    ratePerSec: 1_000_000,
    burst: 1_000_000,
    critical: new Set(["CRITICAL"]),
  });
  const normal = await measure(
    "bus, non-critical",
    (i) => bus.emit(event("NORMAL", i)),
    () => nc.flush(),
  );
  const critical = await measure(
    "bus, critical (acknowledged)",
    (i) => bus.emit(event("CRITICAL", i)),
    () => bus.drained(),
  );
  bus.stop();
  await nc.close();

  const f = (n: number) => Math.round(n).toLocaleString("en-US");
  const rows = [
    ["path", "events/s", "against raw"],
    ["raw core publish", f(raw), "1.00x"],
    ["bus, non-critical (rate check, core publish)", f(normal), `${(normal / raw).toFixed(2)}x`],
    ["bus, critical (JetStream acknowledged, 64 in flight)", f(critical), `${(critical / raw).toFixed(2)}x`],
  ];
  printTable(rows);
  process.stdout.write(`\n${f(N)} events per measure, 1,000 sources, every one received by a subscriber.\n`);
} finally {
  await server.stop();
}
