/**
 * Cadre's no-op delegation as the benchmarks measure it, in one place so that `delegation.ts`
 * (Cadre against raw request-reply, observed three ways) and `peers.ts` (Cadre beside BullMQ and
 * the bare JetStream flow) run the same code path: the same team (director on host-1 > agent
 * on host-2, 64 replicas each), the same configuration, a fresh stack per measurement, the same
 * warm-up and phases.
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startStack, submitWorkflow } from "@cadre/cli";
import { decodeAs, parseTeam, subjects, type Team } from "@cadre/protocol";
import type { NatsConnection } from "@cadre/runtime";
import { machineBusyMs, sequential, throughput } from "./stats.js";

/** Calls kept in flight in the throughput phase. */
export const IN_FLIGHT = 64;

/** One system's figures: each sequential call's latency (ms) and the throughput (per s). */
export interface Measurement {
  lat: number[];
  rate: number;
  /** The machine's CPU (all processes, all cores) per call in the in-flight phase, ms. */
  cpuMsPerCall: number;
}

/** How long each phase runs and where progress lines go. */
export interface PhaseOptions {
  seconds: number;
  log: (line: string) => void;
}

/**
 * A 1 s sequential warm-up, then `seconds` sequential (latencies) and `seconds` with
 * {@link IN_FLIGHT} in flight (calls per second, and the machine's CPU per call).
 */
export async function measure(label: string, op: () => Promise<unknown>, opts: PhaseOptions): Promise<Measurement> {
  await sequential(op, 1000);
  opts.log(`${label}: sequential ${opts.seconds} s`);
  const lat = await sequential(op, opts.seconds * 1000);
  opts.log(`${label}: ${IN_FLIGHT} in flight ${opts.seconds} s`);
  const busy = machineBusyMs();
  const began = performance.now();
  const rate = await throughput(op, IN_FLIGHT, opts.seconds * 1000);
  const calls = (rate * (performance.now() - began)) / 1000;
  return { lat, rate, cpuMsPerCall: (machineBusyMs() - busy) / calls };
}

/**
 * A config file in `dir` for the benchmarks' stacks: limits raised past the seed's defaults (10
 * actors per team, 50 in all), which k replicas of two kinds pass. Returns its path.
 */
export function benchConfig(dir: string, more: Record<string, unknown> = {}): string {
  const configFile = join(dir, "config.json");
  const limits = { max_agents_per_orchestrator: 1000, max_concurrent_agents: 1000 };
  writeFileSync(configFile, JSON.stringify({ logLevel: "warn", orchestration_limits: limits, ...more }));
  return configFile;
}

/** The benchmarks' team: a director on host-1 delegating one task to an agent on host-2, `replicas` of each. */
export function directorAgentTeam(name: string, replicas: number): Team {
  return parseTeam({
    name,
    root: "director",
    kinds: {
      director: {
        role: "director",
        replicas,
        hosts: ["host-1"],
        behaviour: { type: "script", delegate: [{ kind: "noop" }] },
      },
      noop: { role: "agent", replicas, hosts: ["host-2"], behaviour: { type: "script" } },
    },
  });
}

/** Cadre's delegation bench on one connection: run it once per configuration, then close it. */
export interface CadreDelegation {
  /** Starts a supervisor and two agent-hosts with this environment, measures, and stops them. */
  run(name: string, env: NodeJS.ProcessEnv): Promise<Measurement>;
  /** Stops listening for workflow events (the connection stays open). */
  close(): void;
}

/**
 * Prepares the bench: writes its configuration into `dir` and listens on `nc` for the
 * workflows' completion events. Each workflow is submit > director (host-1) plans and delegates
 * > agent (host-2) > results applied > director aggregates > workflow completed.
 */
export function cadreDelegation(nc: NatsConnection, natsUrl: string, dir: string, opts: PhaseOptions): CadreDelegation {
  const configFile = benchConfig(dir);
  const team = directorAgentTeam("bench", IN_FLIGHT);
  const { workflow, close } = workflowRunner(nc, team);
  return {
    async run(name, env) {
      opts.log(`cadre (${name}): starting supervisor and two agent-hosts`);
      const stack = await startStack({ natsUrl, hosts: 2, monitor: false, configFile, env });
      try {
        return await measure(`cadre (${name})`, workflow, opts);
      } finally {
        await stack.stop();
      }
    },
    close,
  };
}

/** Submits one workflow of `team` and resolves when its WORKFLOW_COMPLETED or _FAILED is heard. */
export function workflowRunner(nc: NatsConnection, team: Team): { workflow: () => Promise<void>; close: () => void } {
  const waiting = new Map<string, () => void>();
  const sub = nc.subscribe(subjects.eventsOf("workflow"), {
    callback: (_e, m) => {
      const e = decodeAs(m.data, "event").body;
      if (e.type === "WORKFLOW_COMPLETED" || e.type === "WORKFLOW_FAILED") {
        waiting.get(e.scope)?.();
        waiting.delete(e.scope);
      }
    },
  });
  const workflow = async () => {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const { workflowId } = await submitWorkflow(nc, { team });
    waiting.set(workflowId, done);
    await finished;
  };
  return { workflow, close: () => sub.unsubscribe() };
}
