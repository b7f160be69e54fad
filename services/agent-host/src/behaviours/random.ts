/**
 * Seeded randomness for script behaviours. A run must be replayable: the same seed, task and
 * attempt always roll the same numbers, while a retry (next attempt) rolls afresh so a scripted
 * failure is not permanent.
 */

import { mulberry32, type Rolls } from "@cadre/runtime";

export { mulberry32, type Rolls };

/** 32-bit FNV-1a of a string, used to fold the task identity into the seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The deterministic roll stream of one attempt at one task. */
export function rollsFor(seed: number, taskId: string, attempt: number): Rolls {
  return mulberry32(hashString(`${seed}:${taskId}:${attempt}`));
}
