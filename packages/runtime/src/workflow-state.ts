/**
 * The state a workflow's agents share: JSON values under `<workflowId>.<name>` in the state
 * bucket, written only in transactions (transactions.ts), refused while the workflow is frozen.
 */

import { NameSchema, ProtocolError, UnavailableError } from "@cadre/protocol";
import type { KV } from "@nats-io/kv";
import { z } from "zod";
import type { TxStore } from "./transactions.js";

/** Any JSON value: what a state key holds. */
export const StateValueSchema: z.ZodType<unknown> = z.json();

/** A workflow's shared state, as behaviours see it. Names are like kind names (lower-case letters, digits, -). */
export interface WorkflowState {
  get(name: string): Promise<unknown>;
  /** Several names as one snapshot. */
  read(names: readonly string[]): Promise<Record<string, unknown>>;
  /**
   * Reads `names`, and writes what `fn` returns (null deletes, undefined leaves) all or nothing.
   * UNAVAILABLE (retryable) while the workflow is frozen.
   */
  transact(
    names: readonly string[],
    fn: (current: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<{ txid: string; names: string[] }>;
}

/** The key of a workflow's state name; PROTOCOL_ERROR for a name that is not a name. */
export function stateKey(workflowId: string, name: string): string {
  const r = NameSchema.safeParse(name);
  if (!r.success) throw new ProtocolError(`state name "${name}": ${r.error.issues[0]?.message}`, { name });
  return `${workflowId}.${name}`;
}

/** The registry key that puts a workflow in data protection mode while it exists. */
export const frozenKey = (workflowId: string): string => `frozen.${workflowId}`;

/**
 * The registry key of a workflow's controls (pause, cancel, cap, guarantee): a JSON
 * `WorkflowControl` (protocol operations.ts), written by the active supervisor, watched by hosts.
 */
export const controlKey = (workflowId: string): string => `control.${workflowId}`;

/** Whether a workflow is in data protection mode (its registry key {@link frozenKey} exists). */
export async function isFrozen(registry: KV, workflowId: string): Promise<boolean> {
  const e = await registry.get(frozenKey(workflowId));
  return e?.operation === "PUT";
}

/** One workflow's view of the state store. */
export function workflowState(store: TxStore<unknown>, registry: KV, workflowId: string): WorkflowState {
  const key = (name: string) => stateKey(workflowId, name);
  const named = (names: readonly string[], values: Map<string, unknown>) =>
    Object.fromEntries(names.map((n) => [n, values.get(key(n))]));
  return {
    get: (name) => store.get(key(name)),
    read: async (names) => named(names, await store.read(names.map(key))),
    async transact(names, fn) {
      // Checked before the transaction: one that read before a freeze landed may still commit.
      if (await isFrozen(registry, workflowId)) {
        throw new UnavailableError(
          `workflow ${workflowId} is frozen (data protection mode): its state changes wait until it is unfrozen`,
          { workflowId },
        );
      }
      const done = await store.transact(names.map(key), (cur) => {
        const writes = fn(named(names, cur));
        return Object.fromEntries(Object.entries(writes).map(([n, v]) => [key(n), v as unknown]));
      });
      return { txid: done.txid, names: done.keys.map((k) => k.slice(workflowId.length + 1)) };
    },
  };
}
