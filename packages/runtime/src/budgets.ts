/**
 * Budgets, enforced before a model call and across the cluster. A budget's ledger is one key of
 * the `cadre_llm` bucket (protocol llm.ts), changed only by compare-and-set, so concurrent
 * agents on any number of hosts see one count:
 *
 * 1. `reserve`: before the call, its worst case (the prompt's size in bytes, an upper bound of
 *    its tokens for byte-level BPE tokenizers, plus `maxTokens`; their cost at the provider's
 *    prices; one request) is added to the ledger's `held`, unless spent + held + the worst case
 *    would pass the limit: then the call is not made (BUDGET_EXCEEDED, not retryable).
 * 2. `settle`: after the call, the reservation goes and the call's real usage is added to
 *    `spent`; a failed call settles to nothing.
 *
 * A host that dies mid-call leaves its reservation behind: each expires at its `until` (the
 * call's time limit) and is dropped by the next change. Crossing 50, 80 and 100% of the limit is
 * announced once each (the compare-and-set decides who announces).
 */

import {
  type Amount,
  addUsage,
  type Budget,
  BudgetExceededError,
  type Ledger,
  LedgerSchema,
  llmKeys,
  type TypedEvent,
  type Usage,
  ZERO_USAGE,
} from "@cadre/protocol";
import type { KV } from "@nats-io/kv";
import { StateStore } from "./state-store.js";

/** The shares of a limit announced with BUDGET_THRESHOLD_REACHED. */
export const BUDGET_MARKS = [50, 80, 100] as const;

const DIMENSIONS = ["tokens", "costUsd", "requests"] as const;
type Dimension = (typeof DIMENSIONS)[number];

/** A ledger a call is charged to: the workflow's, or a kind's within the workflow. */
export interface BudgetScope {
  key: string;
  /** `workflow <id>` or `kind <name> of workflow <id>`, for errors and events. */
  label: string;
  /** The limit a missing ledger is created with (null: it only counts). */
  limit: Budget | null;
}

/** A call's hold on its ledgers, to settle once it returns. */
export interface Reservation {
  id: string;
  workflowId: string;
  scopes: BudgetScope[];
}

/** What a ledger's usage amounts to in each dimension. */
const spentOf = (u: Usage): Amount => ({
  tokens: u.inputTokens + u.outputTokens,
  costUsd: u.costUsd,
  requests: u.requests,
});

/** The ledgers of workflows and kinds. */
export class Budgets {
  private readonly store: StateStore<Ledger>;

  constructor(
    kv: KV,
    private readonly d: {
      /** Wall-clock ms: reservations expire across processes. */
      now: () => number;
      emit: (event: TypedEvent) => void;
    },
  ) {
    this.store = new StateStore(kv, LedgerSchema, "budget ledger");
  }

  /** The scopes a call of `kind` in `workflowId` is charged to. */
  static scopes(workflowId: string, kind: string, kindBudget: Budget | undefined): BudgetScope[] {
    const scopes: BudgetScope[] = [{ key: llmKeys.ledger(workflowId), label: `workflow ${workflowId}`, limit: null }];
    if (kindBudget) {
      scopes.push({
        key: llmKeys.ledger(workflowId, kind),
        label: `kind ${kind} of workflow ${workflowId}`,
        limit: kindBudget,
      });
    }
    return scopes;
  }

  /** Creates a workflow's ledger with its limit (the supervisor, at submit). */
  async open(workflowId: string, limit: Budget): Promise<void> {
    await this.store.modify(llmKeys.ledger(workflowId), (l) => l ?? fresh(limit));
  }

  /** The ledger of a workflow (or of a kind in it), if any call was charged or a budget set. */
  async read(workflowId: string, kind?: string): Promise<Ledger | undefined> {
    return (await this.store.get(llmKeys.ledger(workflowId, kind)))?.value;
  }

  /**
   * Holds `amount` on every scope until `holdMs` from now, or throws BudgetExceededError (after
   * letting go of the scopes already held) when one has not enough left.
   */
  async reserve(
    call: { id: string; taskId: string; workflowId: string },
    scopes: BudgetScope[],
    amount: Amount,
    holdMs: number,
  ): Promise<Reservation> {
    const r: Reservation = { id: call.id, workflowId: call.workflowId, scopes: [] };
    for (const scope of scopes) {
      let refused: BudgetExceededError | undefined;
      await this.store.modify(scope.key, (current) => {
        const now = this.d.now();
        const l = live(current ?? fresh(scope.limit), now);
        const over = overrun(l, amount);
        refused = over && new BudgetExceededError({ budget: scope.label, ...over });
        // Refused: the ledger is left as it is (undefined writes nothing).
        return over ? undefined : { ...l, held: { ...l.held, [call.id]: { amount, until: now + holdMs } } };
      });
      if (refused) {
        this.d.emit({
          type: "BUDGET_EXCEEDED",
          category: "llm",
          scope: call.workflowId,
          data: { taskId: call.taskId, ...refused.details },
        });
        await this.settle(r, ZERO_USAGE);
        throw refused;
      }
      r.scopes.push(scope);
    }
    return r;
  }

  /** Lets go of the reservation and adds what the call used (nothing for a failed call). */
  async settle(r: Reservation, used: Usage): Promise<void> {
    for (const scope of r.scopes) {
      let before: Ledger | undefined;
      let after: Ledger | undefined;
      await this.store.modify(scope.key, (current) => {
        const l = live(current ?? fresh(scope.limit), this.d.now());
        const { [r.id]: _gone, ...held } = l.held;
        before = l;
        after = { ...l, held, spent: addUsage(l.spent, used) };
        after.announced = Math.max(l.announced, reached(after));
        return after;
      });
      if (!before || !after?.limit || after.announced <= before.announced) continue;
      // Every mark passed, in order (one settle can pass several).
      const { dimension, share } = nearest(after);
      const limit = after.limit[dimension] ?? 0;
      for (const percent of BUDGET_MARKS.filter((m) => m > (before?.announced ?? 0) && m <= (after?.announced ?? 0))) {
        this.d.emit({
          type: "BUDGET_THRESHOLD_REACHED",
          category: "llm",
          scope: r.workflowId,
          data: { budget: scope.label, percent, dimension, limit, spent: Math.round(share * limit * 1e6) / 1e6 },
        });
      }
    }
  }
}

const fresh = (limit: Budget | null): Ledger => ({ limit, spent: ZERO_USAGE, held: {}, announced: 0 });

/** The ledger without its expired reservations. */
function live(l: Ledger, now: number): Ledger {
  const held = Object.fromEntries(Object.entries(l.held).filter(([, h]) => h.until > now));
  return Object.keys(held).length === Object.keys(l.held).length ? l : { ...l, held };
}

/** The dimension `amount` would take past the limit, if any. */
function overrun(l: Ledger, amount: Amount): Omit<BudgetExceededError["details"], "budget"> | undefined {
  if (!l.limit) return undefined;
  const spent = spentOf(l.spent);
  for (const d of DIMENSIONS) {
    const limit = l.limit[d];
    if (limit === undefined) continue;
    const reserved = Object.values(l.held).reduce((s, h) => s + h.amount[d], 0);
    if (spent[d] + reserved + amount[d] > limit) {
      return { dimension: d, limit, spent: round(spent[d]), reserved: round(reserved), requested: round(amount[d]) };
    }
  }
  return undefined;
}

const round = (n: number): number => Math.round(n * 1e9) / 1e9;

/** The dimension nearest its limit, and its share spent (0..). */
function nearest(l: Ledger): { dimension: Dimension; share: number } {
  let best: { dimension: Dimension; share: number } = { dimension: "requests", share: 0 };
  const spent = spentOf(l.spent);
  for (const d of DIMENSIONS) {
    const limit = l.limit?.[d];
    if (limit === undefined) continue;
    const share = limit === 0 ? 1 : spent[d] / limit;
    if (share >= best.share) best = { dimension: d, share };
  }
  return best;
}

/** The highest mark the spending has reached (0 when none, or not limited). */
function reached(l: Ledger): number {
  if (!l.limit) return 0;
  const pct = nearest(l).share * 100;
  return BUDGET_MARKS.filter((m) => pct >= m).at(-1) ?? 0;
}
