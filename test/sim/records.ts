/**
 * Sizes of what Cadre sends and stores, from representative values put through the real codec
 * (msgpack envelopes, protocol codec.ts) and the real `StateStore` (JSON with its `_crc` field,
 * runtime state-store.ts): heartbeats by the length of their held list, the task and result
 * messages of one agent task, and the KV records of a host, an actor, a team, a task and a
 * workflow. The values follow the demo team (examples/software-team.yaml).
 */

import {
  ActorRecordSchema,
  encode,
  HostRecordSchema,
  type TaskEnvelope,
  TaskRecordSchema,
  type Team,
  TeamSchema,
  teamId,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import { StateStore } from "@cadre/runtime";
import type { z } from "zod";
import { SIM_START, type SimCluster } from "./cluster.js";
import { MemoryKv } from "./fakes.js";

/** A stored record: its key's length and its value's. */
export interface RecordSize {
  key: string;
  keyBytes: number;
  valueBytes: number;
}

/** The sizes measured. */
export interface Sizes {
  /** Encoded heartbeat bytes by the number of held tasks listed (absent list: 0). */
  heartbeat: Record<string, number>;
  messages: { task: number; result: number };
  kv: Record<"host" | "actor" | "team" | "task" | "workflow", RecordSize>;
}

/** Measures them; `cluster` provides held entries with real proofs. */
export async function measureSizes(cluster: SimCluster, team: Team): Promise<Sizes> {
  const hostId = "host-000";
  const heartbeat: Record<string, number> = {};
  for (const n of [0, 10, 100, 1000]) {
    const held = Array.from({ length: n }, () => cluster.heldTask(hostId));
    const body = {
      hostId,
      incarnation: "i0123456789",
      seq: 123_456,
      actors: 1000,
      busy: n,
      load: 0.42,
      heapUsedMb: 312.5,
      eventQueue: 0,
      circuits: {},
      ...(n > 0 ? { held } : {}),
    };
    heartbeat[String(n)] = encode("heartbeat", body, { sender: hostId }).byteLength;
  }
  const tid = teamId(team);
  const wf = "w0123456789ab";
  const taskId = `${wf}-r-0-0`;
  const actorId = "backend-engineer-0a1b2c3d";
  const envelope: TaskEnvelope = {
    taskId,
    workflowId: wf,
    teamId: tid,
    kind: "backend-engineer",
    parentTaskId: `${wf}-r-0`,
    chain: ["engineering-director", "engineering-lead", "backend-engineer"],
    depth: 2,
    priority: 0,
    deadline: null,
    idempotencyKey: taskId,
    epoch: 1,
    input: { feature: "password reset by email", part: "api" },
  };
  const output = {
    component: "backend",
    summary: "API endpoints for password reset by email",
    files: ["api/password-reset.ts", "api/password-reset.test.ts"],
  };
  const t0 = SIM_START;
  const result = {
    taskId,
    workflowId: wf,
    epoch: 1,
    attempt: 1,
    hostId,
    actorId,
    status: "completed" as const,
    output,
    startedAt: t0,
    finishedAt: t0 + 250,
    // An Ed25519 signature (64 bytes) and a holder proof, base64url, as authenticated hosts send.
    sig: "S".repeat(86),
    proof: "P".repeat(32),
  };
  const messages = {
    task: encode("task", envelope, { sender: "supervisor-sim" }).byteLength,
    result: encode("result", result, { sender: hostId }).byteLength,
  };
  const leadOutput = {
    summary: "password reset by email: backend, frontend and QA done",
    parts: [output, output, output],
  };
  const kv = {
    host: await stored(`host.${hostId}`, HostRecordSchema, {
      hostId,
      publicKey: `U${"A".repeat(55)}`,
      incarnation: "i0123456789",
      startedAt: t0,
      maxActors: 1200,
    }),
    actor: await stored(`actor.${actorId}`, ActorRecordSchema, {
      actorId,
      teamId: tid,
      kindName: "backend-engineer",
      hostId,
      incarnation: "i0123456789",
      spawnedAt: t0,
      priority: 0,
      status: "active",
    }),
    team: await stored(`team.${tid}`, TeamSchema, team),
    task: await stored(taskId, TaskRecordSchema, {
      task: envelope,
      status: "completed",
      createdAt: t0,
      finishedAt: t0 + 300,
      output,
      applied: { resultId: `${taskId}:1:1:${"S".repeat(22)}`, epoch: 1, attempt: 1, startedAt: t0, hostId, actorId },
      duplicates: [],
      conflicts: [],
      invalid: [],
    }),
    workflow: await stored(wf, WorkflowRecordSchema, {
      workflowId: wf,
      teamId: tid,
      teamName: team.name,
      rootTaskId: `${wf}-r`,
      status: "completed",
      submittedAt: t0,
      finishedAt: t0 + 1200,
      tasks: { total: 5, completed: 5, failed: 0, retried: 0, duplicates: 0, conflicts: 0, cancelled: 0 },
      output: { summary: "Shipped: password reset by email", delivered: [leadOutput] },
    }),
  };
  return { heartbeat, messages, kv };
}

/** Writes a value as the supervisor does (StateStore.put) and reads back the bytes stored. */
async function stored<T>(key: string, schema: z.ZodType<T>, value: T): Promise<RecordSize> {
  const kv = new MemoryKv("sizes");
  await new StateStore(kv.asKv(), schema).put(key, schema.parse(value));
  const e = await kv.get(key);
  return { key, keyBytes: key.length, valueBytes: e?.value.byteLength ?? 0 };
}
