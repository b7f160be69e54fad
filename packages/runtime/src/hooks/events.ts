/** The moments a hook can be registered for (the list is the configuration's, protocol config.ts). */

import { HOOK_EVENTS } from "@cadre/protocol";

export { HOOK_EVENTS };

/** A moment a hook can be registered for. */
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** Whether `value` names a hook event. */
export const isHookEvent = (value: unknown): value is HookEvent =>
  typeof value === "string" && (HOOK_EVENTS as readonly string[]).includes(value);
