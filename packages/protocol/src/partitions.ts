/**
 * Partitions of the supervisors' work: each workflow hashes to one of P partitions, and each
 * partition goes to one live supervisor. Which one is decided by rendezvous hashing (highest
 * random weight): every supervisor ranks the members for a partition the same way, so a member
 * joining takes only the partitions it now ranks first for, and a member leaving gives up only
 * its own. The table (key `supervisor.partitions` in the registry bucket) records who holds what.
 */

import { z } from "zod";

/** 32-bit FNV-1a of a string. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finalizer: spreads FNV-1a's weak low bits over the whole word. */
function mix(h: number): number {
  let x = h;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The partition (0 to `partitions` - 1) of a workflow. */
export function partitionOf(workflowId: string, partitions: number): number {
  return mix(hashString(workflowId)) % partitions;
}

/** The members ordered by their weight for partition `p`, the first being its owner. */
export function rankFor(p: number, members: readonly string[]): string[] {
  const weight = new Map(members.map((m) => [m, mix(hashString(`${p}/${m}`))]));
  return [...members].sort((a, b) => (weight.get(b) ?? 0) - (weight.get(a) ?? 0) || (a < b ? -1 : 1));
}

const MemberId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, - and _");

/**
 * Who holds which partition. `owners[p]` is the holder of partition p ("" while free) and
 * `terms[p]` counts its changes of holder (a fencing token). `members` are the supervisors
 * taking part; each proves it is alive by renewing its own record (`supervisor.member.<id>`).
 */
export const PartitionTableSchema = z
  .object({
    members: z.array(MemberId).max(256),
    owners: z
      .array(z.union([MemberId, z.literal("")]))
      .min(1)
      .max(4096),
    terms: z.array(z.number().int().min(0)).min(1).max(4096),
  })
  .refine((t) => t.owners.length === t.terms.length, "owners and terms have one entry per partition");
export type PartitionTable = z.infer<typeof PartitionTableSchema>;

/** A supervisor's liveness record: rewritten every renewal, so its revision moves while it lives. */
export const MemberRecordSchema = z.object({ id: MemberId, renewedAt: z.number().int().min(0) });
export type MemberRecord = z.infer<typeof MemberRecordSchema>;

export const PARTITIONS_KEY = "supervisor.partitions";
export const memberKey = (id: string): string => `supervisor.member.${id}`;
