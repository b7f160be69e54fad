/** Errors of hook runs: the typed one a caller sees, and the internal one a single attempt ends with. */

import { CadreError } from "@cadre/protocol";
import type { HookEvent } from "./events.js";

/** Why a hook run did not produce a result. */
export type HookFailureReason = "error" | "timeout" | "bypassed";

/**
 * A critical hook failed, so the action it guards must not go ahead. Retryable unless the hook
 * itself threw: a throwing `beforeTask` hook is usually a veto, and a veto stays a veto.
 */
export class HookFailedError extends CadreError {
  static readonly code = "HOOK_FAILED";
  constructor(hook: string, event: HookEvent, reason: HookFailureReason, message: string, options?: ErrorOptions) {
    const what =
      reason === "bypassed" ? "is bypassed after failing too often" : reason === "timeout" ? "timed out" : "failed";
    super(
      HookFailedError.code,
      `critical hook "${hook}" for ${event} ${what}: ${message}; fix the hook or mark it non-critical`,
      { retryable: reason !== "error", data: { hook, event, reason, message }, ...options },
    );
  }
}

/** How one attempt to run a hook ended badly. Internal: the runner turns it into an outcome. */
export class HookAttemptError extends Error {
  constructor(
    readonly reason: "error" | "timeout",
    message: string,
  ) {
    super(message);
    this.name = "HookAttemptError";
  }
}
