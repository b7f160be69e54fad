/**
 * The call journal: each completed model call of a task, keyed by task and turn in the
 * `cadre_llm` bucket (`journal.<taskId>.<turn>`), written before anything is done with the
 * answer. A task redelivered after its host died reads the journal first and calls the model
 * only for the turns no attempt completed, so a crash never pays twice for a finished call.
 *
 * The journal outlives an attempt that failed retryably (the retry replays what was paid for)
 * and is forgotten when the supervisor retries a task for an answer that broke the kind's
 * schema (the retry must ask anew). Entries expire with the session (the bucket's TTL).
 */

import { ConcurrentModificationError, type JournalEntry, JournalEntrySchema, llmKeys } from "@cadre/protocol";
import type { KV } from "@nats-io/kv";
import { StateStore } from "./state-store.js";

/** The journal of every task. */
export class CallJournal {
  private readonly store: StateStore<JournalEntry>;

  constructor(kv: KV) {
    this.store = new StateStore(kv, JournalEntrySchema, "call journal entry");
  }

  /** The completed call of a task's turn, if an attempt made it. */
  async get(taskId: string, turn: number): Promise<JournalEntry | undefined> {
    return (await this.store.get(llmKeys.journal(taskId, turn)))?.value;
  }

  /**
   * Records a completed call. When another attempt (a concurrent holder after a partition)
   * recorded the turn first, its entry is kept and returned: every attempt goes on from the
   * same answer.
   */
  async record(taskId: string, entry: JournalEntry): Promise<JournalEntry> {
    try {
      await this.store.create(llmKeys.journal(taskId, entry.turn), entry);
      return entry;
    } catch (err) {
      if (!(err instanceof ConcurrentModificationError)) throw err;
      return (await this.get(taskId, entry.turn)) ?? entry;
    }
  }

  /** Forgets a task's calls (its answer broke the schema: the retry asks the model anew). Returns how many. */
  async forget(taskId: string): Promise<number> {
    let turn = 0;
    while (await this.get(taskId, turn)) {
      await this.store.kv.purge(llmKeys.journal(taskId, turn));
      turn++;
    }
    return turn;
  }
}
