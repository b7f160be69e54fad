/**
 * The scale simulation (issue 17, item 4): Cadre's failure detection and placement code at 10^3
 * hosts and 10^6 agents on a driven clock, without NATS. Four parts, each on a fresh cluster:
 * liveness (liveness.ts), the cost of one heartbeat by its held list (heartbeat-cost.ts),
 * placement (placement.ts, with components.ts timing its parts), and the sizes of messages and
 * records (records.ts). `scale.ts` is the command line around it.
 */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type Config, parseConfig, teamId } from "@cadre/protocol";
import { type ComponentTimes, timeComponents } from "./components.js";
import { type HeartbeatCost, heartbeatCosts } from "./heartbeat-cost.js";
import { loadInternals } from "./internals.js";
import { type LivenessResult, runLiveness } from "./liveness.js";
import { demoTeam, type PlacementResult, runPlacement } from "./placement.js";
import { measureSizes, type Sizes } from "./records.js";

/** What to simulate. */
export interface ScaleOptions {
  hosts: number;
  agents: number;
  /** Simulated minutes of heartbeats. */
  minutes: number;
  /** Hosts killed during the liveness phase. @default 5 */
  kills?: number;
  /** How late a host's timer may run (uniform), ms. @default 10 */
  jitterMs?: number;
  /** Share of each host's actors holding a task. @default 0.01 */
  busy?: number;
  /** Mean task duration, ms. @default 10000 */
  taskMs?: number;
  /** Teams submitted at once per heartbeat interval. @default 100 */
  batch?: number;
  /** Wall time the placement phase may take before it stops and extrapolates, ms. @default 120000 */
  placementBudgetMs?: number;
  seed?: number;
  /** Progress lines (stderr in the command). @default none */
  progress?: (line: string) => void;
}

/** Heap in use, after a full collection when one can be forced. */
export interface Memory {
  /** Heap growth per actor placed (the registry's records, and the fake KV's bytes of them). */
  placementHeapBytesPerActor: number;
  /** Of that, the bytes the fake KV holds per actor (what NATS would store instead). */
  kvBytesPerActor: number;
  heapUsedMb: number;
}

/** Everything measured. */
export interface ScaleResult {
  options: Required<Omit<ScaleOptions, "progress">>;
  config: {
    heartbeatIntervalMs: number;
    acceptablePauseMs: number;
    minStdDevMs: number;
    suspectPhi: number;
    unreachablePhi: number;
    hostDeadAfterMs: number;
    hostMaxActors: number;
    defaultHostMaxActors: number;
    maxConcurrentAgents: number;
    maxAgentsPerOrchestrator: number;
  };
  liveness: LivenessResult;
  /** The supervisor's cost of one heartbeat by the length of its held list. */
  heartbeatCosts: HeartbeatCost[];
  placement: Omit<PlacementResult, "cluster" | "batches"> & { batches: number };
  components: ComponentTimes;
  sizes: Sizes;
  memory: Memory;
  totalWallMs: number;
}

/** A full collection, when the flag can be set at run time (it can in Node 20). */
function collector(): () => void {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as (() => void) | undefined;
    if (typeof gc === "function") return gc;
  } catch {
    // No forced collections: the heap figures are then upper bounds.
  }
  return () => {};
}

/** The configuration the simulation runs with: the defaults, with room for the wanted agents. */
export function simConfig(hosts: number, agents: number): Config {
  const defaults = parseConfig({});
  return parseConfig({
    logLevel: "silent",
    orchestration_limits: {
      max_concurrent_agents: Math.max(defaults.orchestration_limits.max_concurrent_agents, agents),
    },
    // 20% headroom over an even spread, never below the default.
    host: { maxActors: Math.max(defaults.host.maxActors, Math.ceil((1.2 * agents) / hosts)) },
  });
}

/** Runs the parts and returns their figures. */
export async function runScaleSimulation(opts: ScaleOptions): Promise<ScaleResult> {
  const o = {
    kills: 5,
    jitterMs: 10,
    busy: 0.01,
    taskMs: 10_000,
    batch: 100,
    placementBudgetMs: 120_000,
    seed: 17,
    ...opts,
  };
  const progress = opts.progress ?? (() => {});
  const started = performance.now();
  const gc = collector();
  const heap = () => {
    gc();
    return process.memoryUsage().heapUsed;
  };
  const x = await loadInternals();
  const config = simConfig(o.hosts, o.agents);

  const liveness = await runLiveness(x, {
    config,
    hosts: o.hosts,
    actorsPerHost: Math.round(o.agents / o.hosts),
    minutes: o.minutes,
    kills: o.kills,
    jitterMs: o.jitterMs,
    busy: o.busy,
    taskMs: o.taskMs,
    seed: o.seed,
    progress,
    heap,
  });

  progress("heartbeat cost by held-list length");
  const costs = await heartbeatCosts(x, config);

  const before = heap();
  const { cluster, batches, ...placement } = await runPlacement(x, {
    config,
    hosts: o.hosts,
    agents: o.agents,
    batch: o.batch,
    budgetMs: o.placementBudgetMs,
    sweepAtAgents: Math.min(5000, o.agents),
    seed: o.seed,
    progress,
  });
  const placementHeap = heap() - before;
  const kvActors = cluster.registryKv.sizes("actor.");

  // A team not placed yet, as the next submit's would be.
  const team = demoTeam("software-team-next");
  const components = await timeComponents(x, cluster, teamId(team), Object.keys(team.kinds), 2);
  const sizes = await measureSizes(cluster, team);
  const perActor = Math.max(1, placement.agentsPlaced);
  const { progress: _p, ...options } = o;
  const defaults = parseConfig({});
  return {
    options,
    config: {
      heartbeatIntervalMs: config.heartbeat.intervalMs,
      acceptablePauseMs: config.heartbeat.acceptablePauseMs,
      minStdDevMs: config.heartbeat.minStdDevMs,
      suspectPhi: config.heartbeat.suspectPhi,
      unreachablePhi: config.heartbeat.unreachablePhi,
      hostDeadAfterMs: config.heartbeat.hostDeadAfterMs,
      hostMaxActors: config.host.maxActors,
      defaultHostMaxActors: defaults.host.maxActors,
      maxConcurrentAgents: config.orchestration_limits.max_concurrent_agents,
      maxAgentsPerOrchestrator: config.orchestration_limits.max_agents_per_orchestrator,
    },
    liveness,
    heartbeatCosts: costs,
    placement: { ...placement, batches: batches.length },
    components,
    sizes,
    memory: {
      placementHeapBytesPerActor: Math.round(Math.max(0, placementHeap) / perActor),
      kvBytesPerActor: Math.round((kvActors.bytes + kvActors.keyBytes) / perActor),
      heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1048576),
    },
    totalWallMs: Math.round(performance.now() - started),
  };
}
