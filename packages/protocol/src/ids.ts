/**
 * Ids. Every id is a valid subject token and KV key. Task ids are paths: the root task of
 * workflow `wX` is `wX-r`, its second child `wX-r-1`, so a task's parent is its id minus the
 * last segment and a retried delegation produces the same ids (delegation is idempotent).
 */

import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** A random id of `length` base-36 characters. */
export function randomId(length = 12): string {
  const bytes = randomBytes(length);
  let s = "";
  for (const b of bytes) s += ALPHABET[b % 36];
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
