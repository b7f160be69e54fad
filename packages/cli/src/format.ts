/** Text output of the `cadre` commands: tables, durations, a workflow's controls, a task tree. */

import { duration, table } from "@cadre/monitor/incident";
import type { WorkflowControl } from "@cadre/protocol";

// One definition, with the incident report that needs them (the monitor's dashboard renders it too).
export { duration, table };

/** How long ago a time was: `3.20 s ago`, or `-` for none. */
export const ago = (at: number | null | undefined, now = Date.now()): string =>
  at === null || at === undefined ? "-" : `${duration(Math.max(0, now - at))} ago`;

/** A workflow's controls in one line: `paused, at most 2 agents, 1 actor reserved, 3 tasks parked`. */
export function controlText(c: WorkflowControl | null | undefined): string {
  if (!c) return "none";
  const parts: string[] = [];
  if (c.cancelled) parts.push(`cancelled (${c.cancelled.reason}) at ${new Date(c.cancelled.at).toISOString()}`);
  else parts.push(c.paused ? "paused" : "not paused");
  parts.push(c.maxAgents === null ? "no agent cap" : `at most ${c.maxAgents} agent${c.maxAgents === 1 ? "" : "s"}`);
  parts.push(c.guarantee === 0 ? "no actors reserved" : `${c.guarantee} actor${c.guarantee === 1 ? "" : "s"} reserved`);
  parts.push(`${c.parked.length} task${c.parked.length === 1 ? "" : "s"} parked`);
  return parts.join(", ");
}

/**
 * A workflow's status as operators see it: `running` shows `waiting` while workflows it waits
 * for (its `after`) have not completed, else `paused` when its control says so.
 */
export const shownStatus = (
  status: string,
  c: WorkflowControl | null | undefined,
  waitingFor?: readonly string[] | undefined,
): string => (status !== "running" ? status : waitingFor?.length ? "waiting" : c?.paused ? "paused" : status);

/** `waits for wA, wB (after wA, wB, wC)`; empty when it waits for nothing and names nothing. */
export function waitsText(after: readonly string[] | undefined, waitingFor: readonly string[] | undefined): string {
  if (!after?.length) return "";
  if (!waitingFor?.length) return `after ${after.join(", ")}`;
  const rest = after.length > waitingFor.length ? ` (after ${after.join(", ")})` : "";
  return `waits for ${waitingFor.join(", ")}${rest}`;
}

/** A node of a tree printed by {@link tree}. */
export interface TreeNode {
  id: string;
  parent: string | null;
}

/**
 * Lines of a forest, each node under its parent and indented two spaces per level; a node whose
 * parent is not in the list is a root. Siblings keep the order of `nodes`.
 */
export function tree<N extends TreeNode>(nodes: readonly N[], line: (n: N) => string): string[] {
  const ids = new Set(nodes.map((n) => n.id));
  const children = new Map<string | null, N[]>();
  for (const n of nodes) {
    const p = n.parent !== null && ids.has(n.parent) && n.parent !== n.id ? n.parent : null;
    const list = children.get(p) ?? [];
    list.push(n);
    children.set(p, list);
  }
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (parent: string | null, depth: number) => {
    for (const n of children.get(parent) ?? []) {
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      out.push(`${"  ".repeat(depth)}${line(n)}`);
      walk(n.id, depth + 1);
    }
  };
  walk(null, 0);
  // A cycle in the parents (never expected) still shows every node.
  for (const n of nodes) if (!seen.has(n.id)) out.push(line(n));
  return out;
}

/** JSON for a text view, cut at `max` characters. */
export function shortJson(value: unknown, max = 2000): string {
  const s = JSON.stringify(value) ?? "undefined";
  return s.length <= max ? s : `${s.slice(0, max)}... (${s.length} characters; --json shows all)`;
}
