/**
 * `/coordination-hub emergency-cleanup`: the monitor's `cleanup` action (actions.ts) on demand:
 * every live host is asked at once (`host.cleanup`: it stops the pullers of kinds it no longer
 * runs, runs a full garbage collection when its own heap is over the memory rule's clear level,
 * and announces CLEANUP_REPORTED), and the reply adds up what they freed against the seed's
 * `resource_recovery_target.memory` ("20_percent": freed over the hosts' heaps before).
 * `aggressive_garbage_collection` and `idle_process_termination` are what host.cleanup does;
 * Cadre keeps no temporary files or caches to purge, so those two actions are `ignored`.
 */

import { BUCKETS, type CleanupNowRequest, type OpReplyInput, STREAMS } from "@cadre/protocol";
import { call, listKeys, verifyChecksum } from "@cadre/runtime";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { ask, type RunbookDeps } from "./resource-manager.js";

type Reply = OpReplyInput<"mon.coordination-hub.emergency-cleanup">;

/** "20_percent", "20%" or "20": the number; undefined when it is none of those. */
export function percentOf(text: string | undefined): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:_?percent|%)?\s*$/.exec(text ?? "");
  return m?.[1] ? Number(m[1]) : undefined;
}

export async function emergencyCleanup(d: RunbookDeps, req: CleanupNowRequest): Promise<Reply> {
  const began = d.clock.now();
  const ignored: string[] = [];
  for (const a of req.actions ?? []) {
    if (a === "temp_file_cleanup" || a === "cache_purging") {
      ignored.push(`${a} (Cadre keeps no temporary files or caches to purge)`);
    }
  }
  const { hosts } = await ask(d, "sup.host.list", {});
  const live = hosts.filter((h) => h.state === "alive" || h.state === "suspect");
  const rows: Reply["hosts"] = await Promise.all(
    live.map(async ({ hostId }): Promise<Reply["hosts"][number]> => {
      try {
        const r = await call(
          d.nc,
          "host.cleanup",
          { reason: "coordination-hub emergency-cleanup" },
          { sender: d.sender, hostId, timeoutMs: d.config.requestTimeoutMs },
        );
        return { hostId, ok: true, ...r };
      } catch (err) {
        return { hostId, ok: false, error: (err as Error).message.slice(0, 300) };
      }
    }),
  );
  const before = rows.reduce((a, r) => a + (r.heapBeforeBytes ?? 0), 0);
  const bytes = rows.reduce((a, r) => a + (r.freedBytes ?? 0), 0);
  const percent = before > 0 ? Math.round((bytes / before) * 1000) / 10 : 0;
  const wanted = percentOf(req.resource_recovery_target?.memory);
  const other = Object.keys(req.resource_recovery_target ?? {}).filter((k) => k !== "memory");
  if (other.length > 0) ignored.push(`resource_recovery_target.${other.join(", ")} (only memory is measured)`);
  return {
    ms: d.clock.now() - began,
    hosts: rows,
    freed: { bytes, percent },
    target: wanted === undefined ? null : { memoryPercent: wanted, met: percent >= wanted },
    ignored,
  };
}

/**
 * `/coordination-hub checkpoint-validation`: each checkpoint of a workflow (`<wf>._ckpt.<position>`
 * in the state bucket) read as stored, without the restore a damaged read would attempt: its
 * CRC32 and shape checked; replayable while the state log still starts at or before the entry
 * after it (the log is trimmed by age and size). `lagging`: entries of the bucket the log
 * mirror has not copied yet. Valid: every checkpoint ok and replayable (and there is one).
 */
export async function checkpointValidation(
  d: Pick<RunbookDeps, "nc">,
  workflowId: string,
): Promise<OpReplyInput<"mon.coordination-hub.checkpoint-validation">> {
  const kv = await new Kvm(d.nc).open(BUCKETS.state);
  const jsm = await jetstreamManager(d.nc);
  const [logInfo, bucketInfo] = await Promise.all([
    jsm.streams.info(STREAMS.stateLog),
    jsm.streams.info(`KV_${BUCKETS.state}`),
  ]);
  const log = {
    firstSeq: logInfo.state.first_seq,
    lastSeq: logInfo.state.last_seq,
    bucketLastSeq: bucketInfo.state.last_seq,
    lagging: Math.max(0, bucketInfo.state.last_seq - logInfo.state.last_seq),
  };
  const prefix = `${workflowId}._ckpt.`;
  const checkpoints = [];
  for (const key of await listKeys(kv, `${prefix}>`)) {
    const position = Number(key.slice(prefix.length));
    const e = await kv.get(key);
    const value = e?.operation === "PUT" ? (verifyChecksum(e.value) as Record<string, unknown> | undefined) : undefined;
    const shaped =
      value !== undefined &&
      value.position === position &&
      typeof value.at === "number" &&
      typeof value.values === "object" &&
      value.values !== null;
    const replayable = log.firstSeq <= position + 1;
    const reasons = [
      ...(shaped ? [] : ["its stored bytes fail their checksum or are no checkpoint"]),
      ...(replayable ? [] : [`the log now starts at ${log.firstSeq}, after ${position + 1}`]),
    ];
    checkpoints.push({
      position,
      at: shaped ? (value.at as number) : null,
      keys: shaped ? Object.keys(value.values as object).length : 0,
      checksum: shaped ? ("ok" as const) : ("damaged" as const),
      replayable,
      ...(reasons.length > 0 ? { reason: reasons.join("; ") } : {}),
    });
  }
  checkpoints.sort((a, b) => a.position - b.position);
  return {
    workflowId,
    log,
    checkpoints,
    valid: checkpoints.length > 0 && checkpoints.every((c) => c.checksum === "ok" && c.replayable),
  };
}
