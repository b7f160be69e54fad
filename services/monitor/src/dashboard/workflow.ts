/**
 * One workflow as the dashboard shows it (`/dashboard/api/workflow/<id>`): its delegation tree
 * (the supervisor's `sup.debug.workflow`), its shared state as stored and its checkpoints (the
 * runbook's checkpoint validation). The state is read raw from the bucket, never through a
 * transaction store: a read there may finish or repair a transaction, and this page only looks.
 */

import { BUCKETS, type OpReply, operations, toCadreError } from "@cadre/protocol";
import { call, listKeys, type NatsConnection, verifyChecksum } from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";
import { checkpointValidation } from "../runbook/coordination.js";

/** At most this many state values are shown (the reply says when there were more). */
export const STATE_SHOWN = 100;
/** A value whose JSON is longer is shown cut, as a string. */
export const VALUE_CHARS = 2000;

/** Parts starting with "_" are Cadre's own (transaction records, checkpoints). */
const RESERVED = /(^|\.)_/;

/** The reply: the tree, with the state and the checkpoints (or why each could not be read). */
export type WorkflowDetail = OpReply<"sup.debug.workflow"> & {
  state: { values: { name: string; value: unknown; revision: number }[]; truncated: boolean } | { error: string };
  checkpoints: { position: number; at: number | null; checksum: string; replayable: boolean }[] | { error: string };
};

const STATUS_OF_CODE: Record<string, number> = { NOT_FOUND: 404, PROTOCOL_ERROR: 400, UNAVAILABLE: 503 };

/** The detail of `raw` (a URL path segment), as an HTTP status and a JSON body. */
export async function workflowDetail(
  nc: NatsConnection,
  raw: string,
  opts: { sender: string; timeoutMs: number },
): Promise<{ status: number; body: unknown }> {
  let workflowId: string;
  try {
    workflowId = decodeURIComponent(raw);
  } catch {
    workflowId = raw;
  }
  // The operation's own request schema says what a workflow id is.
  const ref = operations["sup.debug.workflow"].request.safeParse({ workflowId });
  if (!ref.success) {
    const why = ref.error.issues[0]?.message ?? "invalid";
    const message = `not a workflow id (${why}); use /dashboard/api/workflow/<workflowId>`;
    return { status: 400, body: { error: { code: "PROTOCOL_ERROR", message } } };
  }
  try {
    const [tree, state, checkpoints] = await Promise.all([
      call(nc, "sup.debug.workflow", ref.data, opts),
      readState(nc, workflowId).catch((err: unknown) => ({ error: toCadreError(err).message })),
      checkpointValidation({ nc }, workflowId).then(
        (v) =>
          v.checkpoints.map((c) => ({
            position: c.position,
            at: c.at,
            checksum: c.checksum,
            replayable: c.replayable,
          })),
        (err: unknown) => ({ error: toCadreError(err).message }),
      ),
    ]);
    const body: WorkflowDetail = { ...tree, state, checkpoints };
    return { status: 200, body };
  } catch (err) {
    const e = toCadreError(err);
    return { status: STATUS_OF_CODE[e.code] ?? 500, body: { error: { code: e.code, message: e.message } } };
  }
}

/** The workflow's state values as stored: each envelope's value, or a note when it fails its checksum. */
async function readState(nc: NatsConnection, workflowId: string) {
  const kv = await new Kvm(nc).open(BUCKETS.state);
  const prefix = `${workflowId}.`;
  const keys = (await listKeys(kv, `${prefix}>`)).filter((k) => !RESERVED.test(k.slice(prefix.length))).sort();
  const values = [];
  for (const key of keys.slice(0, STATE_SHOWN)) {
    const e = await kv.get(key);
    if (e?.operation !== "PUT" || e.value.length === 0) continue;
    const envelope = verifyChecksum(e.value) as { v?: unknown } | undefined;
    const value =
      envelope && typeof envelope === "object" && "v" in envelope ? shown(envelope.v) : "(fails its checksum)";
    values.push({ name: key.slice(prefix.length), value, revision: e.revision });
  }
  return { values, truncated: keys.length > STATE_SHOWN };
}

function shown(v: unknown): unknown {
  const text = JSON.stringify(v) ?? "null";
  return text.length > VALUE_CHARS ? `${text.slice(0, VALUE_CHARS)}…(truncated)` : v;
}
