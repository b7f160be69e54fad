/**
 * `{{path}}` templates for script outputs and delegated inputs. Kept deliberately tiny (no
 * logic, no helpers): team files describe data flow, not programs.
 */

import type { TaskEnvelope } from "@cadre/protocol";

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const WHOLE = /^\{\{\s*([^{}]*?)\s*\}\}$/;

/** Marks a path that does not resolve, distinct from a value that is `undefined` or `null`. */
const MISSING: unique symbol = Symbol("missing");

function lookup(scope: unknown, path: string): unknown {
  if (path === "") return MISSING;
  let cur: unknown = scope;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object") return MISSING;
    // Own properties only, so `{{constructor}}` and friends never reach the prototype.
    if (!Object.hasOwn(cur, key)) return MISSING;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur === undefined ? MISSING : cur;
}

function interpolate(value: unknown): string {
  if (value === MISSING) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value) ?? "";
}

/**
 * Renders a template: walks objects and arrays and replaces `{{dotted.path}}` in strings
 * (array indexes are path segments: `{{children.0.summary}}`). A string that is exactly one
 * placeholder becomes the raw value (`null` when missing), so arrays and objects can be passed
 * through; otherwise values are interpolated as text (missing paths as "").
 */
export function renderTemplate(template: unknown, scope: Record<string, unknown>): unknown {
  if (typeof template === "string") {
    const whole = WHOLE.exec(template);
    if (whole) {
      const v = lookup(scope, whole[1] ?? "");
      return v === MISSING ? null : v;
    }
    return template.replace(PLACEHOLDER, (_, path: string) => interpolate(lookup(scope, path)));
  }
  if (Array.isArray(template)) return template.map((t) => renderTemplate(t, scope));
  if (template !== null && typeof template === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(template)) out[k] = renderTemplate(v, scope);
    return out;
  }
  return template;
}

/**
 * The scope templates are rendered with: the task's input, a few task fields, the attempt
 * and the outputs of the task's children (in plan order; [] before delegation).
 */
export function templateScope(
  task: TaskEnvelope,
  attempt: number,
  childOutputs: unknown[] = [],
): Record<string, unknown> {
  return {
    input: task.input,
    task: { id: task.taskId, kind: task.kind, workflowId: task.workflowId, depth: task.depth, chain: task.chain },
    attempt,
    children: childOutputs,
  };
}
