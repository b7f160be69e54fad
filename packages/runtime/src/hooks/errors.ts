/** Errors of hook runs: the typed one a caller sees, and the internal one a single attempt ends with. */

/** Why a hook run did not produce a result. */
export type HookFailureReason = "error" | "timeout" | "bypassed";

// The typed error lives in the protocol, so it is rebuilt on the other side of the wire.
export { HookFailedError } from "@cadre/protocol";

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
