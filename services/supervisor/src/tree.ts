/**
 * A workflow's task tree, walked by id: the root is `<workflowId>-r` and the children of `T`
 * are `T-0`, `T-1`, ... created together, so the first absent index ends them (ids.ts).
 */

import { childTaskId, rootTaskId, type TaskRecord } from "@cadre/protocol";
import type { StateStore } from "@cadre/runtime";

/** Every task record of a workflow, parents before children (breadth first). */
export async function* taskTree(tasks: StateStore<TaskRecord>, workflowId: string): AsyncGenerator<TaskRecord> {
  const queue = [rootTaskId(workflowId)];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    const rec = (await tasks.get(id))?.value;
    if (!rec) continue;
    yield rec;
    queue.push(...(await childrenOf(tasks, id)));
  }
}

/** The ids of a task's children that exist. */
export async function childrenOf(tasks: StateStore<TaskRecord>, taskId: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; ; i++) {
    const child = childTaskId(taskId, i);
    if (!(await tasks.get(child))) return ids;
    ids.push(child);
  }
}

/** The workflow a task belongs to (its id's first segment). */
export const workflowOf = (taskId: string): string => taskId.slice(0, taskId.indexOf("-"));
