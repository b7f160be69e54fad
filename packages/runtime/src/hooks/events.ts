/** The moments a hook can be registered for. */

/** Every hook event, in the order they occur in a task's life. */
export const HOOK_EVENTS = [
  "onSpawn",
  "beforeTask",
  "onDelegation",
  "onProgress",
  "afterTask",
  "onTaskFailed",
  "onTerminate",
] as const;

/** A moment a hook can be registered for. */
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** Whether `value` names a hook event. */
export const isHookEvent = (value: unknown): value is HookEvent =>
  typeof value === "string" && (HOOK_EVENTS as readonly string[]).includes(value);
