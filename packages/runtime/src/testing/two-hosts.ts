/**
 * A nats-server with two connections to it, standing for two hosts, and fresh KV buckets each
 * connection sees: for tests of records that several hosts share (budgets, limits, journals).
 */

import { type KV, Kvm } from "@nats-io/kv";
import { connectNats, type NatsConnection } from "../nats.js";
import { startNatsServer } from "./nats-server.js";

export interface TwoHosts {
  nc1: NatsConnection;
  nc2: NatsConnection;
  /** A new bucket (`<base>_t<n>`), created on the first connection and opened on the second. */
  bucket(base: string): Promise<[KV, KV]>;
  stop(): Promise<void>;
}

export async function startTwoHosts(name: string): Promise<TwoHosts> {
  const server = await startNatsServer();
  const nc1 = await connectNats(server.url, `${name}-1`);
  const nc2 = await connectNats(server.url, `${name}-2`);
  let n = 0;
  return {
    nc1,
    nc2,
    bucket: async (base) => {
      const bucket = `${base}_t${++n}`;
      const kv1 = await new Kvm(nc1).create(bucket, { history: 1 });
      return [kv1, await new Kvm(nc2).open(bucket)];
    },
    stop: async () => {
      await nc1.close();
      await nc2.close();
      await server.stop();
    },
  };
}
