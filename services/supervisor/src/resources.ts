/**
 * Named resources and deadlock resolution. A task's attempt acquires the resources its kind
 * lists (pools of `capacity` slots, or exclusive locks of capacity 1), in order; a request is
 * answered when granted, so a waiting attempt is a pending `sup.acquire` request. Waiting adds
 * edges to the wait-for graph (waiter → each holder of the resource; a director → its pending
 * subtasks); when an edge closes a cycle, or the periodic sweep finds one, the victim (lowest
 * priority, then youngest, among the cycle's waiting tasks) has its request refused with
 * DEADLOCK_VICTIM and everything it holds released, so the others proceed; its attempt fails
 * retryably and is redelivered after a backoff. An acquisition also gives up after
 * `resources.acquireTimeoutMs` (TIMEOUT, retryable). State lives in the active supervisor's
 * memory: a new supervisor starts empty, and attempts re-acquire as they are redelivered.
 */

import {
  type Config,
  DeadlockVictimError,
  NotFoundError,
  type Team,
  TimeoutError,
  type TypedEvent,
} from "@cadre/protocol";
import type { Clock, Logger } from "@cadre/runtime";
import { chooseVictim, WaitForGraph } from "./waitfor.js";

interface Waiter {
  taskId: string;
  resource: string;
  priority: number;
  since: number;
  grant: () => void;
  refuse: (err: Error) => void;
  timer: unknown;
}

/** Dependencies of {@link ResourceManager}. */
export interface ResourceDeps {
  config: Config;
  clock: Clock;
  logger: Logger;
  emit: (event: TypedEvent) => void;
  team: (teamId: string) => Promise<Team | undefined>;
}

/** Holders and waiters of every resource, and the wait-for graph between tasks. */
export class ResourceManager {
  private readonly capacity = new Map<string, number>();
  private readonly holders = new Map<string, Set<string>>();
  private readonly queues = new Map<string, Waiter[]>();
  private readonly graph = new WaitForGraph();
  private sweeper: unknown;

  constructor(private readonly d: ResourceDeps) {}

  /** Resolves when the task holds the resource; rejects with DEADLOCK_VICTIM or TIMEOUT. */
  async acquire(req: { taskId: string; teamId: string; resource: string; priority: number }): Promise<number> {
    const { taskId, resource } = req;
    if (!this.capacity.has(resource)) {
      const declared = (await this.d.team(req.teamId))?.resources[resource];
      if (!declared) throw new NotFoundError(`resource of team ${req.teamId}`, resource);
      this.capacity.set(resource, declared.capacity);
    }
    const holders = this.holdersOf(resource);
    const queue = this.queues.get(resource) ?? [];
    // Held already (an attempt acquiring again after a redelivery) or free with nobody ahead.
    if (holders.has(taskId)) return 0;
    if (holders.size < (this.capacity.get(resource) ?? 1) && queue.length === 0) {
      holders.add(taskId);
      return 0;
    }
    const since = this.d.clock.now();
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        taskId,
        resource,
        priority: req.priority,
        since,
        grant: () => resolve(this.d.clock.now() - since),
        refuse: reject,
        timer: this.d.clock.setTimeout(() => {
          this.dropWaiter(waiter);
          reject(
            new TimeoutError(`acquiring ${resource} for task ${taskId}`, this.d.config.resources.acquireTimeoutMs),
          );
        }, this.d.config.resources.acquireTimeoutMs),
      };
      this.queues.set(resource, [...queue, waiter]);
      for (const h of holders) {
        const cycle = this.graph.addEdge(taskId, h);
        if (cycle) {
          this.breakCycle(cycle);
          break;
        }
      }
    });
  }

  /** The attempt ended (or the task finished): lets go of what it holds and what it waits for. */
  release(taskId: string): string[] {
    const released: string[] = [];
    for (const [resource, holders] of this.holders) {
      if (holders.delete(taskId)) released.push(resource);
    }
    for (const queue of this.queues.values()) {
      for (const w of queue.filter((w) => w.taskId === taskId)) {
        this.dropWaiter(w);
        w.refuse(new TimeoutError(`acquiring ${w.resource} for task ${taskId} (the attempt ended)`, 0));
      }
    }
    this.graph.removeNode(taskId);
    for (const resource of released) this.grantNext(resource);
    return released;
  }

  /** A director waits for its subtasks (edges removed as each finishes, with {@link release}). */
  waitsOn(parentTaskId: string, childTaskIds: string[]): void {
    for (const child of childTaskIds) {
      const cycle = this.graph.addEdge(parentTaskId, child);
      if (cycle) this.breakCycle(cycle);
    }
  }

  /** What operators see: holders, waiters and the graph's edges. */
  view(): {
    holders: Record<string, string[]>;
    waiting: { taskId: string; resource: string; sinceMs: number }[];
    edges: [string, string][];
  } {
    const now = this.d.clock.now();
    const holders: Record<string, string[]> = {};
    for (const [r, h] of this.holders) if (h.size > 0) holders[r] = [...h].sort();
    const waiting = [...this.queues.values()]
      .flat()
      .map((w) => ({ taskId: w.taskId, resource: w.resource, sinceMs: now - w.since }));
    return { holders, waiting, edges: this.graph.edges() };
  }

  /** Looks for cycles every `resources.sweepMs` too (edges can close one in ways a single insert does not show). */
  start(): void {
    const loop = () => {
      for (const cycle of this.graph.findCycles()) this.breakCycle(cycle);
      this.sweeper = this.d.clock.setTimeout(loop, this.d.config.resources.sweepMs);
    };
    this.sweeper = this.d.clock.setTimeout(loop, this.d.config.resources.sweepMs);
  }

  stop(): void {
    this.d.clock.clearTimeout(this.sweeper);
  }

  private holdersOf(resource: string): Set<string> {
    let h = this.holders.get(resource);
    if (!h) {
      h = new Set();
      this.holders.set(resource, h);
    }
    return h;
  }

  /** Refuses the victim's wait and releases what it holds; the rest of the cycle proceeds. */
  private breakCycle(cycle: string[]): void {
    const waiting = new Map<string, Waiter>();
    for (const queue of this.queues.values()) for (const w of queue) waiting.set(w.taskId, w);
    const victim = chooseVictim(cycle, (id) => {
      const w = waiting.get(id);
      return w && { priority: w.priority, startedAt: w.since };
    });
    const w = victim ? waiting.get(victim) : undefined;
    if (!victim || !w) {
      this.d.logger.warn({ cycle }, "a wait-for cycle with no task waiting for a resource; left to the timeouts");
      return;
    }
    const waitedMs = this.d.clock.now() - w.since;
    const held = [...this.holders].filter(([, h]) => h.has(victim)).map(([r]) => r);
    this.dropWaiter(w);
    w.refuse(new DeadlockVictimError(victim, cycle, w.resource));
    this.release(victim);
    this.d.emit({
      type: "DEADLOCK_RESOLVED",
      category: "resource",
      scope: w.resource,
      data: { cycle, victim, priority: w.priority, waitingFor: w.resource, released: held, waitedMs },
    });
  }

  private dropWaiter(w: Waiter): void {
    this.d.clock.clearTimeout(w.timer);
    const queue = (this.queues.get(w.resource) ?? []).filter((x) => x !== w);
    this.queues.set(w.resource, queue);
    // Its edges towards the holders of that resource go; edges of its other waits stay.
    for (const h of this.holdersOf(w.resource)) this.graph.removeEdge(w.taskId, h);
  }

  /** Grants freed slots to waiters in arrival order; those left wait for the new holders. */
  private grantNext(resource: string): void {
    const holders = this.holdersOf(resource);
    const capacity = this.capacity.get(resource) ?? 1;
    for (const w of [...(this.queues.get(resource) ?? [])]) {
      // Refused meanwhile (a cycle broken by an edge added in this loop): not to be granted.
      if (!this.queues.get(resource)?.includes(w)) continue;
      if (holders.size >= capacity) {
        for (const h of holders) {
          const cycle = this.graph.addEdge(w.taskId, h);
          if (cycle) this.breakCycle(cycle);
        }
        continue;
      }
      this.dropWaiter(w);
      holders.add(w.taskId);
      w.grant();
    }
  }
}
