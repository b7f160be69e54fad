/** Hooks: user code run at moments of a task's life, isolated and bounded in time. */

export type { HookFailureReason } from "./errors.js";
export { HookFailedError } from "./errors.js";
export type { HookEvent } from "./events.js";
export { HOOK_EVENTS, isHookEvent } from "./events.js";
export type {
  HookDefinition,
  HookLogger,
  HookOutcome,
  HookRunnerOptions,
  HookRunReport,
  HookStats,
  HookStatus,
} from "./runner.js";
export { HOOK_FAILURE_WINDOW, HOOK_MIN_SAMPLES, HookRunner } from "./runner.js";
