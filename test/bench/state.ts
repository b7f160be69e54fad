/**
 * `pnpm bench`, fifth part: what a state transaction costs, against a plain compare-and-set of
 * the same value in the same run. One writer, STATE_N updates per measure (default 2,000), each
 * on its own key (no contention: the protocol's cost alone); then 10 writers on the same 3 keys
 * (contention: how many attempts each commit took).
 */

import { parseConfig } from "@cadre/protocol";
import { connectNats, ensureInfrastructure, StateStore, StateValueSchema, TxStore } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { printTable } from "./stats.js";

const N = Number(process.env.STATE_N ?? 2_000);
const log = (s: string) => process.stderr.write(`${s}\n`);

const server = await startNatsServer();
try {
  const nc = await connectNats(server.url, "bench-state");
  const buckets = await ensureInfrastructure(nc, parseConfig({}));
  const plain = new StateStore(buckets.state, StateValueSchema, "bench");
  const tx = new TxStore(buckets.state, StateValueSchema, { writer: "bench" });

  /** Updates per second over `n` sequential calls of `op`. */
  async function measure(name: string, op: (i: number) => Promise<unknown>, n = N): Promise<number> {
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      await op(i);
      if (i > 0 && i % 500 === 0) log(`${name}: ${i}/${n}`);
    }
    const rate = n / ((performance.now() - start) / 1000);
    log(`${name}: ${Math.round(rate)} updates/s`);
    return rate;
  }

  await measure("warm-up", (i) => plain.modify(`w.${i}`, () => ({ i })), 200);
  const cas = await measure("compare-and-set (StateStore.modify), 1 key", (i) => plain.modify(`a.${i}`, () => ({ i })));
  const one = await measure("transaction, 1 key", (i) => tx.transact([`b.${i}`], () => ({ [`b.${i}`]: { i } })));
  const three = await measure("transaction, 3 keys", (i) => {
    const keys = [`c.${i}.x`, `c.${i}.y`, `c.${i}.z`];
    return tx.transact(keys, () => Object.fromEntries(keys.map((k) => [k, { i }])));
  });

  // Contention: 10 writers each move one unit between the same 3 keys, N/10 times each.
  const keys = ["hot.x", "hot.y", "hot.z"];
  await tx.transact(keys, () => Object.fromEntries(keys.map((k) => [k, 0])));
  let runs = 0;
  const per = Math.max(1, Math.floor(N / 10));
  const start = performance.now();
  await Promise.all(
    Array.from({ length: 10 }, async (_, w) => {
      for (let i = 0; i < per; i++) {
        await tx.transact(keys, (cur) => {
          runs++;
          const from = keys[(w + i) % 3] as string;
          const to = keys[(w + i + 1) % 3] as string;
          return { [from]: (cur.get(from) as number) - 1, [to]: (cur.get(to) as number) + 1 };
        });
      }
    }),
  );
  const contended = (10 * per) / ((performance.now() - start) / 1000);
  const sum = [...(await tx.read(keys)).values()].reduce((a: number, b) => a + (b as number), 0);
  await nc.close();

  const f = (n: number) => Math.round(n).toLocaleString("en-US");
  const rows = [
    ["update", "updates/s", "against compare-and-set"],
    ["compare-and-set of 1 key (StateStore.modify)", f(cas), "1.00x"],
    ["transaction writing 1 key (one compare-and-set, no record)", f(one), `${(one / cas).toFixed(2)}x`],
    ["transaction writing 3 keys (record, 3 intents, commit, 3 resolves)", f(three), `${(three / cas).toFixed(2)}x`],
    ["10 writers, 3 shared keys each transaction", f(contended), `${(contended / cas).toFixed(2)}x`],
  ];
  printTable(rows);
  process.stdout.write(
    `\n${f(N)} sequential updates per row; contended: ${f(10 * per)} commits took ${f(runs)} attempts ` +
      `(${(runs / (10 * per)).toFixed(2)} per commit), the keys still sum to ${sum} (0 expected).\n`,
  );
} finally {
  await server.stop();
}
