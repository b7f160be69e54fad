/**
 * The delegation policy: one pure function, run by the supervisor before a subtask is
 * published, so a refused target never starts. The chain holds kinds, root first.
 */

import { CircularDelegationError, DelegationDepthExceededError } from "./errors.js";

/**
 * Checks a delegation from the last kind of `chain` to `target` and returns the new chain.
 * Throws CircularDelegationError when `target` is already in the chain and
 * DelegationDepthExceededError when the new depth (`chain.length`) exceeds `maxDepth`; both
 * carry the chain including the refused target.
 */
export function checkDelegation(chain: readonly string[], target: string, maxDepth: number): string[] {
  const next = [...chain, target];
  if (chain.includes(target)) throw new CircularDelegationError(next);
  const depth = next.length - 1;
  if (depth > maxDepth) throw new DelegationDepthExceededError(next, depth, maxDepth);
  return next;
}
