/**
 * A Cadre cluster for integration tests: a real nats-server on a random port with JetStream
 * in a temporary directory, and the supervisor and agent-hosts as real processes (the same
 * launcher `cadre up` uses). Service output is kept so a failing test can show it.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Stack, startStack, submitWorkflow, waitForWorkflow } from "@cadre/cli";
import {
  BUCKETS,
  type CadreEvent,
  type ConfigInput,
  decodeAs,
  parseTeam,
  STREAMS,
  type TaskRecord,
  TaskRecordSchema,
  type TeamInput,
  type WorkflowRecord,
} from "@cadre/protocol";
import { connectNats, type NatsConnection } from "@cadre/runtime";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";

/** A running test cluster. */
export interface TestCluster {
  readonly stack: Stack;
  readonly nc: NatsConnection;
  /** Output lines of each service. */
  readonly logs: Map<string, string[]>;
  /** Submits the team's workflow and returns its id. */
  submit(team: TeamInput, input?: Record<string, unknown>): Promise<string>;
  /** Waits for a workflow to finish. */
  wait(workflowId: string, timeoutMs?: number): Promise<WorkflowRecord>;
  /** Every task record of a workflow. */
  taskRecords(workflowId: string): Promise<TaskRecord[]>;
  /** Every event persisted so far. */
  events(): Promise<CadreEvent[]>;
  /** The last lines of every service's output, for failure messages. */
  tail(lines?: number): string;
  stop(): Promise<void>;
}

/** Settings that make failures show quickly in tests. */
export const fastConfig: ConfigInput = {
  tasks: { ackWaitMs: 1500, maxDeliver: 5, retryBackoffMs: 100 },
  heartbeat: { intervalMs: 200, hostDeadAfterMs: 1000 },
};

/** Starts nats-server, a supervisor and `hosts` agent-hosts. */
export async function startCluster(
  opts: { hosts?: number; config?: ConfigInput; monitor?: boolean } = {},
): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "cadre-test-"));
  const configFile = join(dir, "config.json");
  writeFileSync(configFile, JSON.stringify(opts.config ?? fastConfig));
  const logs = new Map<string, string[]>();
  const stack = await startStack({
    hosts: opts.hosts ?? 2,
    configFile,
    monitor: opts.monitor ?? false,
    onLine: (service, line) => {
      const l = logs.get(service) ?? [];
      l.push(line);
      if (l.length > 2000) l.shift();
      logs.set(service, l);
    },
  });
  const nc = await connectNats(stack.natsUrl, "cadre-test");
  const kvm = new Kvm(nc);
  return {
    stack,
    nc,
    logs,
    submit: async (team, input) =>
      (await submitWorkflow(nc, { team: parseTeam(team), ...(input ? { input } : {}) })).workflowId,
    wait: (workflowId, timeoutMs = 30_000) => waitForWorkflow(nc, workflowId, { timeoutMs }),
    taskRecords: async (workflowId) => {
      const kv = await kvm.open(BUCKETS.tasks);
      const out: TaskRecord[] = [];
      for await (const key of await kv.keys()) {
        if (!key.startsWith(`${workflowId}-`)) continue;
        const e = await kv.get(key);
        if (e?.operation === "PUT") out.push(TaskRecordSchema.parse(e.json()));
      }
      return out.sort((a, b) => a.task.taskId.localeCompare(b.task.taskId));
    },
    events: async () => {
      const jsm = await jetstreamManager(nc);
      const count = (await jsm.streams.info(STREAMS.events)).state.messages;
      if (count === 0) return [];
      const consumer = await jetstream(nc).consumers.get(STREAMS.events);
      const out: CadreEvent[] = [];
      const msgs = await consumer.fetch({ max_messages: count, expires: 5000 });
      for await (const m of msgs) {
        out.push(decodeAs(m.data, "event").body);
        if (out.length >= count) break;
      }
      return out;
    },
    tail: (n = 30) => [...logs].map(([service, l]) => `--- ${service}\n${l.slice(-n).join("\n")}`).join("\n"),
    stop: async () => {
      await nc.close();
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Subscribes to live events now and resolves with the first that matches; subscribe before
 * causing the event. Rejects after `timeoutMs`.
 */
export function waitForEvent(
  nc: NatsConnection,
  match: (e: CadreEvent) => boolean,
  timeoutMs = 20_000,
): Promise<CadreEvent> {
  return new Promise((resolve, reject) => {
    const sub = nc.subscribe("cadre.v1.evt.>", {
      callback: (_err, m) => {
        const e = decodeAs(m.data, "event").body;
        if (!match(e)) return;
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(e);
      },
    });
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`no matching event within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}

/** A chain of leads k0 > k1 > ... > k{depth}, each delegating to the next; the last is an agent. */
export function chainTeam(name: string, depth: number): TeamInput {
  const kinds: TeamInput["kinds"] = {};
  for (let i = 0; i <= depth; i++) {
    kinds[`k${i}`] =
      i < depth
        ? {
            role: "lead",
            replicas: 1,
            behaviour: { type: "script", delegate: [{ kind: `k${i + 1}` }], output: { level: i } },
          }
        : { role: "agent", replicas: 1, behaviour: { type: "script", output: { level: i } } };
  }
  return { name, root: "k0", kinds };
}
