/**
 * `pnpm bench`, sixth part: what the state_update breaker costs and saves when the bucket's
 * stream is unavailable for a while (as in a JetStream leader election, when writes get "no
 * responders" at once), measured three ways in the same run: no breaker, the seed's breaker
 * (5 failures, open a fixed 30 s), and Cadre's (5 failures, open 1 s doubling up to 30 s).
 *
 * A writer puts one value every 10 ms. The stream is deleted (every write fails fast) and
 * created again BREAKER_OUTAGE_MS later (default 5,000). Printed: the writes that reached NATS
 * during the outage (the load on the dependency) and the stall after it (from the stream being
 * back to the first write that succeeds).
 */

import { connectNats, createBreaker, StateStore, sleep, systemClock } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { z } from "zod";
import { printTable } from "./stats.js";

const OUTAGE_MS = Number(process.env.BREAKER_OUTAGE_MS ?? 5_000);
const log = (s: string) => process.stderr.write(`${s}\n`);

const server = await startNatsServer();
try {
  const nc = await connectNats(server.url, "bench-breakers");
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);

  async function run(name: string, breaker: { firstResetMs: number } | null) {
    const bucket = `bench_${name.replace(/\W+/g, "_")}`;
    const store = new StateStore(await kvm.create(bucket, { history: 1 }), z.object({ i: z.number() }), "bench", {
      ...(breaker
        ? {
            breaker: createBreaker({
              name: "state_update",
              threshold: 5,
              resetTimeoutMs: 30_000,
              firstResetMs: breaker.firstResetMs,
            }),
          }
        : {}),
    });
    let reachedNats = 0;
    let refused = 0;
    let downAt = Number.POSITIVE_INFINITY;
    let backAt = Number.POSITIVE_INFINITY;
    let firstOkAfter = Number.NaN;
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const t = performance.now();
        try {
          await store.put("k", { i });
          if (t >= backAt && Number.isNaN(firstOkAfter)) firstOkAfter = performance.now() - backAt;
        } catch (err) {
          if ((err as { code?: string }).code === "CIRCUIT_OPEN") refused++;
          else if (t >= downAt && t < backAt) reachedNats++;
        }
        await sleep(systemClock, 10);
      }
    })();
    await sleep(systemClock, 500);
    await jsm.streams.delete(`KV_${bucket}`);
    downAt = performance.now();
    await sleep(systemClock, OUTAGE_MS);
    await kvm.create(bucket, { history: 1 });
    backAt = performance.now();
    const end = Date.now() + 60_000;
    while (Number.isNaN(firstOkAfter) && Date.now() < end) await sleep(systemClock, 10);
    stop = true;
    await writer;
    log(
      `${name}: ${reachedNats} writes reached NATS in the outage, ${refused} refused; stall ${Math.round(firstOkAfter)} ms`,
    );
    return { name, reachedNats, refused, stall: firstOkAfter };
  }

  const rows = [
    await run("no breaker", null),
    await run("seed: open a fixed 30 s", { firstResetMs: 30_000 }),
    await run("Cadre: open 1 s, doubling to 30 s", { firstResetMs: 1_000 }),
  ];
  await nc.close();
  printTable([
    ["state_update breaker", "writes reaching NATS in the outage", "refused at once", "stall after the outage (ms)"],
    ...rows.map((r) => [r.name, String(r.reachedNats), String(r.refused), String(Math.round(r.stall))]),
  ]);
  process.stdout.write(
    `\nOne write every 10 ms; the bucket's stream unavailable for ${OUTAGE_MS} ms (every write fails at once, as in a leader election).\n`,
  );
} finally {
  await server.stop();
}
