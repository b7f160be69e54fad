/**
 * Seeded randomness for script behaviours. A run must be replayable: the same seed, task and
 * attempt always roll the same numbers, while a retry (next attempt) rolls afresh so a scripted
 * failure is not permanent.
 */

/** A source of numbers in [0, 1). */
export type Rolls = () => number;

/** mulberry32: tiny, fast and good enough for demo dice; not for anything secret. */
export function mulberry32(seed: number): Rolls {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
