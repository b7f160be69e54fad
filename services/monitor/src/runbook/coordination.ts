/**
 * `/coordination-hub emergency-cleanup`: the monitor's `cleanup` action (actions.ts) on demand:
 * every live host is asked at once (`host.cleanup`: it stops the pullers of kinds it no longer
 * runs, runs a full garbage collection when its own heap is over the memory rule's clear level,
 * and announces CLEANUP_REPORTED), and the reply adds up what they freed against the seed's
 * `resource_recovery_target.memory` ("20_percent": freed over the hosts' heaps before).
 * `aggressive_garbage_collection` and `idle_process_termination` are what host.cleanup does;
 * Cadre keeps no temporary files or caches to purge, so those two actions are `ignored`.
 */

import type { CleanupNowRequest, OpReplyInput } from "@cadre/protocol";
import { call } from "@cadre/runtime";
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
