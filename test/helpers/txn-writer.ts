/**
 * A writer to be killed: runs one transaction over the keys given, values `{ n }`, and stops at
 * the fault point asked for (after preparing `afterKeys` keys, or after the commit point). There
 * it prints `STOPPED` and waits for its SIGKILL.
 *
 *   node txn-writer.js <natsUrl> <prepared|committed> <afterKeys> <n> <key>...
 */

import { parseConfig } from "@cadre/protocol";
import { connectNats, ensureInfrastructure, StateValueSchema, type TxnFaultPoint, TxStore } from "@cadre/runtime";

const [url, point, afterKeys, n, ...keys] = process.argv.slice(2);
if (!url || (point !== "prepared" && point !== "committed") || keys.length === 0) {
  process.stderr.write("usage: txn-writer <natsUrl> <prepared|committed> <afterKeys> <n> <key>...\n");
  process.exit(2);
}
const credentials = process.env.CADRE_NATS_CREDS;
const nc = await connectNats(url, "txn-writer", undefined, credentials ? { credentials } : {});
const buckets = await ensureInfrastructure(nc, parseConfig({ natsUrl: url }));
let prepared = 0;
const store = new TxStore(buckets.state, StateValueSchema, {
  writer: "txn-writer",
  txnTimeoutMs: 500,
  fault: async (at: TxnFaultPoint) => {
    if (at === "prepared") prepared++;
    if (at === point && (at === "committed" || prepared === Number(afterKeys))) {
      process.stdout.write("STOPPED\n");
      await new Promise(() => {});
    }
  },
});
await store.transact(keys, () => Object.fromEntries(keys.map((k) => [k, { n: Number(n) }])));
process.stdout.write("COMMITTED\n");
await nc.close();
