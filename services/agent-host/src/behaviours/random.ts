/**
 * Seeded randomness for script behaviours. A run must be replayable: the same seed, task and
 * attempt always roll the same numbers, while a retry (next attempt) rolls afresh so a scripted
 * failure is not permanent.
 */

import { hashString } from "@cadre/protocol";
import { mulberry32, type Rolls } from "@cadre/runtime";

/** 32-bit FNV-1a folds the task identity into the seed. */
export { hashString, mulberry32, type Rolls };

/** The deterministic roll stream of one attempt at one task. */
export function rollsFor(seed: number, taskId: string, attempt: number): Rolls {
  return mulberry32(hashString(`${seed}:${taskId}:${attempt}`));
}
