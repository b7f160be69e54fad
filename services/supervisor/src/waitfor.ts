/**
 * The wait-for graph: an edge A → B means task A waits for task B (A wants a resource B holds,
 * or director A waits for its subtask B). A cycle is a deadlock. Cycles are found when an edge
 * is added (a search from the edge's head back to its tail) and by a periodic sweep (Tarjan's
 * strongly connected components, iterative so long chains cannot overflow the stack).
 */

/** What victim selection knows of a task. */
export interface VictimInfo {
  priority: number;
  /** When it started waiting or running: the larger, the younger. */
  startedAt: number;
}

export class WaitForGraph {
  private readonly out = new Map<string, Set<string>>();

  /** Adds `from → to`; returns the cycle it closes (starting at `from`, in wait order), or null. */
  addEdge(from: string, to: string): string[] | null {
    let targets = this.out.get(from);
    if (!targets) {
      targets = new Set();
      this.out.set(from, targets);
    }
    targets.add(to);
    if (!this.out.has(to)) this.out.set(to, new Set());
    const path = this.pathFrom(to, from);
    return path ? [from, ...path.filter((id) => id !== from)] : null;
  }

  removeEdge(from: string, to: string): void {
    this.out.get(from)?.delete(to);
  }

  /** Drops a task and every edge into or out of it. */
  removeNode(id: string): void {
    this.out.delete(id);
    for (const targets of this.out.values()) targets.delete(id);
  }

  /** The edges out of a task. */
  waitsFor(id: string): string[] {
    return [...(this.out.get(id) ?? [])];
  }

  /** Every edge, sorted (for display). */
  edges(): [string, string][] {
    const all: [string, string][] = [];
    for (const [from, targets] of this.out) for (const to of targets) all.push([from, to]);
    return all.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  }

  /** One cycle from every strongly connected component that has one (the periodic sweep). */
  findCycles(): string[][] {
    const cycles: string[][] = [];
    for (const scc of this.components()) {
      const [first] = [...scc].sort();
      if (first === undefined) continue;
      if (scc.size === 1 && !this.out.get(first)?.has(first)) continue;
      // A path from one member back to itself within the component.
      const next = [...(this.out.get(first) ?? [])].filter((t) => scc.has(t)).sort()[0];
      if (next === undefined) continue;
      const path = next === first ? [first] : this.pathFrom(next, first, scc);
      if (path) cycles.push(next === first ? [first] : [first, ...path.filter((id) => id !== first)]);
    }
    return cycles.sort((a, b) => ((a[0] ?? "") < (b[0] ?? "") ? -1 : 1));
  }

  /** A path from `start` to `goal` (both included), breadth first; null when there is none. */
  private pathFrom(start: string, goal: string, within?: Set<string>): string[] | null {
    const parent = new Map<string, string | null>([[start, null]]);
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      const id = queue[i] as string;
      if (id === goal) {
        const path: string[] = [];
        for (let at: string | null | undefined = id; at != null; at = parent.get(at)) path.push(at);
        return path.reverse();
      }
      for (const t of this.out.get(id) ?? []) {
        if (parent.has(t) || (within && !within.has(t))) continue;
        parent.set(t, id);
        queue.push(t);
      }
    }
    return null;
  }

  /** Tarjan's strongly connected components, with an explicit stack. */
  private components(): Set<string>[] {
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const onStack = new Set<string>();
    const stack: string[] = [];
    const result: Set<string>[] = [];
    let counter = 0;
    for (const root of this.out.keys()) {
      if (index.has(root)) continue;
      const work: { id: string; it: Iterator<string> }[] = [];
      const visit = (id: string) => {
        index.set(id, counter);
        low.set(id, counter++);
        stack.push(id);
        onStack.add(id);
        work.push({ id, it: (this.out.get(id) ?? new Set<string>()).values() });
      };
      visit(root);
      while (work.length > 0) {
        const top = work[work.length - 1] as { id: string; it: Iterator<string> };
        const step = top.it.next();
        if (!step.done) {
          const t = step.value;
          if (!index.has(t)) visit(t);
          else if (onStack.has(t)) low.set(top.id, Math.min(low.get(top.id) ?? 0, index.get(t) ?? 0));
          continue;
        }
        work.pop();
        const parent = work[work.length - 1];
        if (parent) low.set(parent.id, Math.min(low.get(parent.id) ?? 0, low.get(top.id) ?? 0));
        if (low.get(top.id) === index.get(top.id)) {
          const scc = new Set<string>();
          for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
            onStack.delete(id);
            scc.add(id);
            if (id === top.id) break;
          }
          result.push(scc);
        }
      }
    }
    return result;
  }
}

/**
 * The victim of a cycle: the lowest priority, then the youngest (latest startedAt), then the
 * largest id, among the members `info` knows (only tasks blocked waiting can be chosen).
 */
export function chooseVictim(cycle: string[], info: (id: string) => VictimInfo | undefined): string | undefined {
  let best: { id: string; i: VictimInfo } | undefined;
  for (const id of cycle) {
    const i = info(id);
    if (!i) continue;
    if (
      !best ||
      i.priority < best.i.priority ||
      (i.priority === best.i.priority &&
        (i.startedAt > best.i.startedAt || (i.startedAt === best.i.startedAt && id > best.id)))
    ) {
      best = { id, i };
    }
  }
  return best?.id;
}
