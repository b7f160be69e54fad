/**
 * The command behaviour: runs a shell command per task. The command gets the task input on
 * stdin and in the environment, and its stdout is the output. It runs in its own process group
 * so a timeout or abort can kill everything it started, not just the shell.
 *
 * Its errors are published (task results, events) and logged, so what they carry of the
 * command is redacted: the command text (`describeCommand`), the stderr tail (`runShell`
 * redacts it) and a spawn error's message.
 */

import type { CommandBehaviour, SubtaskSpec } from "@cadre/protocol";
import { BehaviourFailedError, TimeoutError } from "@cadre/protocol";
import { describeCommand, describeExit, parseShellOutput, redact, runShell } from "@cadre/runtime";
import type { Behaviour, BehaviourContext } from "./types.js";

/** Largest stdout kept; beyond it the command is killed, so a runaway cannot exhaust memory. */
export const MAX_STDOUT_BYTES = 1024 * 1024;
/** Tail of stderr kept for the error: the end is where the reason usually is. */
export const STDERR_TAIL_BYTES = 2048;

/** Builds a command behaviour from its (parsed, defaults applied) spec. */
export function createCommandBehaviour(spec: CommandBehaviour): Behaviour {
  return {
    plan(): SubtaskSpec[] {
      return [];
    },
    run(ctx: BehaviourContext): Promise<unknown> {
      return runCommand(spec, ctx);
    },
  };
}

async function runCommand(spec: CommandBehaviour, ctx: BehaviourContext): Promise<unknown> {
  const { task, attempt, signal } = ctx;
  const shown = describeCommand(spec.run);
  const base = { command: shown, taskId: task.taskId, attempt };
  const inputJson = JSON.stringify(task.input);
  // Real time, not the context's clock: a command runs in the real world.
  const r = await runShell({
    command: spec.run,
    stdin: inputJson,
    env: {
      CADRE_INPUT: inputJson,
      CADRE_TASK_ID: task.taskId,
      CADRE_KIND: task.kind,
      CADRE_ATTEMPT: String(attempt),
    },
    timeoutMs: spec.timeoutMs,
    signal,
    maxStdoutBytes: MAX_STDOUT_BYTES,
    stderrTailBytes: STDERR_TAIL_BYTES,
  });
  switch (r.type) {
    case "exit":
      if (r.code === 0) return parseShellOutput(r.stdout);
      throw new BehaviourFailedError(`command "${shown}" ${describeExit(r.code, r.signal)}`, {
        ...base,
        exitCode: r.code,
        signal: r.signal,
        stderr: r.stderrTail,
      });
    case "timeout":
      throw new TimeoutError(`command "${shown}"`, spec.timeoutMs);
    case "aborted":
      throw r.reason;
    case "stdout-limit":
      throw new BehaviourFailedError(`command "${shown}" wrote more than ${r.limitBytes} bytes to stdout`, {
        ...base,
        limitBytes: r.limitBytes,
      });
    case "spawn-error":
      throw new BehaviourFailedError(`command "${shown}" could not start: ${redact(r.error.message)}`, base, {
        cause: r.error,
      });
  }
}
