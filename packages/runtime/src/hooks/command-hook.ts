/**
 * Runs a shell command hook: the payload goes in as JSON on stdin, stdout comes back as the
 * result (JSON when it parses, else `{ stdout }`). It runs through `runShell`, as the agent
 * host's command behaviour does: its own process group, killed whole on a timeout. The stderr
 * tail in its error message comes back from `runShell` redacted.
 */

import type { Clock } from "../clock.js";
import { describeExit, parseShellOutput, runShell } from "../shell.js";
import { HookAttemptError } from "./errors.js";

/** Largest stdout kept; beyond it the command is killed, so a runaway cannot exhaust memory. */
export const MAX_HOOK_STDOUT_BYTES = 1024 * 1024;
/** Tail of stderr kept for the error message: the end is where the reason usually is. */
const STDERR_TAIL_BYTES = 2048;

/** What {@link runCommandHook} needs. */
export interface CommandHookRun {
  command: string;
  payload: unknown;
  timeoutMs: number;
  clock: Clock;
  /** Extra environment (the hook's name and event). */
  env: Record<string, string>;
}

/** Resolves with the command's output, or rejects with a HookAttemptError. */
export async function runCommandHook({ command, payload, timeoutMs, clock, env }: CommandHookRun): Promise<unknown> {
  let input: string;
  try {
    input = JSON.stringify(payload) ?? "null";
  } catch (err) {
    throw new HookAttemptError("error", `the payload is not JSON: ${(err as Error).message}`);
  }
  const r = await runShell({
    command,
    stdin: input,
    env,
    timeoutMs,
    clock,
    maxStdoutBytes: MAX_HOOK_STDOUT_BYTES,
    stderrTailBytes: STDERR_TAIL_BYTES,
  });
  switch (r.type) {
    case "exit": {
      if (r.code === 0) return parseShellOutput(r.stdout);
      const how = describeExit(r.code, r.signal);
      const tail = r.stderrTail.trim();
      throw new HookAttemptError("error", tail ? `${how}: ${tail}` : how);
    }
    case "timeout":
      throw new HookAttemptError("timeout", `did not finish within ${timeoutMs} ms`);
    case "stdout-limit":
      throw new HookAttemptError("error", `wrote more than ${r.limitBytes} bytes to stdout`);
    case "spawn-error":
      throw new HookAttemptError("error", `could not start: ${r.error.message}`);
    case "aborted":
      throw new HookAttemptError("error", "aborted");
  }
}
