/**
 * Ids. Every id is a valid subject token and KV key. Task ids are paths: the root task of
 * workflow `wX` is `wX-r`, its second child `wX-r-1`, so a task's parent is its id minus the
 * last segment and a retried delegation produces the same ids (delegation is idempotent).
 */

import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/**
 * Random bytes are drawn from the system a pool at a time: one `randomBytes` call per id was 27 us
 * of every submit (a synchronous call into the system's generator). 252 is the largest multiple
 * of 36 in a byte, so bytes at or above it are skipped and every character is equally likely.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolAt = 0;

/** A random id of `length` base-36 characters. */
export function randomId(length = 12): string {
  let s = "";
  while (s.length < length) {
    if (poolAt >= pool.length) {
      pool = randomBytes(POOL_BYTES);
      poolAt = 0;
    }
    const b = pool[poolAt++] as number;
    if (b < 252) s += ALPHABET[b % 36];
  }
  return s;
}

export const newWorkflowId = (): string => `w${randomId(12)}`;
export const rootTaskId = (workflowId: string): string => `${workflowId}-r`;
export const childTaskId = (parentTaskId: string, index: number): string => `${parentTaskId}-${index}`;
export const newIncarnation = (): string => `i${randomId(10)}`;
/** Message id of a result, for JetStream de-duplication: one per task attempt. */
export const resultMessageId = (taskId: string, epoch: number, attempt: number): string =>
  `${taskId}:${epoch}:${attempt}`;
/**
 * Message id of a task on the tasks stream, for JetStream de-duplication: one per assignment
 * epoch (the first is the task's idempotency key itself; a reassignment is a new message).
 */
export const taskMessageId = (idempotencyKey: string, epoch: number): string =>
  epoch <= 1 ? idempotencyKey : `${idempotencyKey}:e${epoch}`;
