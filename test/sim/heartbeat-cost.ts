/**
 * What one heartbeat costs the supervisor by the length of its held list, and where it goes:
 * the whole followed path (a `SimCluster`'s Follower, registry and detector), decoding alone
 * (protocol `decodeAs`: msgpack and the zod schema) and the held entries' proofs alone
 * (`provesHolding`: two HMAC-SHA256 per entry). The liveness run measures one mix of lists; this
 * gives the line the mix lies on.
 */

import { type Config, decodeAs, encode, subjects } from "@cadre/protocol";
import { SimCluster } from "./cluster.js";
import type { Internals } from "./internals.js";

/** Microseconds per heartbeat carrying `held` entries. */
export interface HeartbeatCost {
  held: number;
  bytes: number;
  followedUs: number;
  decodeUs: number;
  proofsUs: number;
}

/** Measures `reps` heartbeats of each list length. */
export async function heartbeatCosts(
  x: Internals,
  config: Config,
  lengths = [0, 10, 50, 100, 1000],
  reps = 2000,
): Promise<HeartbeatCost[]> {
  const measure = (n: number, count: number): HeartbeatCost => {
    const cluster = new SimCluster(x, { config, hosts: 0, maxActors: 1, seed: 1, jitterMs: 0 });
    const hostId = "host-0";
    const held = Array.from({ length: n }, () => cluster.heldTask(hostId));
    const body = { hostId, incarnation: "i0123456789", seq: 1, actors: 1000, busy: n, load: 0.4, held };
    const bytes = encode("heartbeat", body, { sender: hostId });
    const subject = subjects.heartbeat(hostId);
    for (let i = 0; i < count; i++) {
      cluster.nats.publish(subject, bytes);
      cluster.scheduler.runUntil(cluster.clock.now() + config.heartbeat.intervalMs);
    }
    const followedUs = (cluster.beats.ms * 1000) / Math.max(1, cluster.beats.count);
    let t = performance.now();
    for (let i = 0; i < count; i++) decodeAs(bytes, "heartbeat");
    const decodeUs = ((performance.now() - t) * 1000) / count;
    t = performance.now();
    for (let i = 0; i < count; i++) for (const h of held) x.provesHolding(cluster.taskKey, hostId, h);
    const proofsUs = ((performance.now() - t) * 1000) / count;
    return {
      held: n,
      bytes: bytes.byteLength,
      followedUs: r1(followedUs),
      decodeUs: r1(decodeUs),
      proofsUs: r1(proofsUs),
    };
  };
  // Warm the code paths first (a cold first length would carry the compiler's work).
  measure(10, reps);
  const out = lengths.map((n) => measure(n, Math.max(20, Math.round(reps / Math.max(1, n / 50)))));
  return out;
}

const r1 = (v: number): number => Math.round(v * 10) / 10;
