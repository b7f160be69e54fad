/**
 * One lifecycle sweep (lifecycle.ts `Lifecycle.sweep`, run every `lifecycle.sweepMs` by the
 * active supervisor) over the teams placed so far: for every kind of every team it reads the
 * consumer's demand (a JetStream consumer-info request: answered at once here, idle) and walks
 * the registry's actors (`actorsOf`), and for every team it looks for any of its actors in all
 * of them. So its CPU grows with teams × actors. Timed once, at the size the caller chooses.
 */

import type { LifecycleDeps } from "../../services/supervisor/src/lifecycle.js";
import { type SimCluster, unavailable } from "./cluster.js";
import type { Internals } from "./internals.js";

/** One sweep's time and what it went over. */
export interface SweepTime {
  teams: number;
  actors: number;
  ms: number;
  /** Consumer-info requests the sweep made (one per kind of every team). */
  consumerInfos: number;
}

/** Runs one sweep on the cluster's registry and times it. */
export async function timeSweep(x: Internals, cluster: SimCluster): Promise<SweepTime> {
  let infos = 0;
  const jsm = {
    consumers: {
      info: async () => {
        infos++;
        return { num_pending: 0, num_ack_pending: 0 };
      },
    },
  };
  const lifecycle = new x.Lifecycle({
    nc: unavailable<LifecycleDeps["nc"]>("NATS connection (no actor is stopped in one sweep)"),
    jsm: jsm as unknown as LifecycleDeps["jsm"],
    kv: cluster.registryKv.asKv(),
    config: cluster.config,
    clock: cluster.clock,
    logger: cluster.logger,
    sender: "supervisor-sim",
    registry: cluster.registry,
    placer: unavailable<LifecycleDeps["placer"]>("placer (no kind has demand)"),
    emit: cluster.emit,
    hostState: (h) => cluster.registry.detector.state(h),
  });
  const teams = (await cluster.registry.teamIds()).length;
  const t = performance.now();
  await lifecycle.sweep();
  const ms = performance.now() - t;
  return { teams, actors: cluster.registry.allActors().length, ms: Math.round(ms), consumerInfos: infos };
}
