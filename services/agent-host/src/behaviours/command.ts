/**
 * The command behaviour: runs a shell command per task. The command gets the task input on
 * stdin and in the environment, and its stdout is the output. It runs in its own process group
 * so a timeout or abort can kill everything it started, not just the shell.
 */

import { spawn } from "node:child_process";
import type { CommandBehaviour, SubtaskSpec } from "@cadre/protocol";
import { BehaviourFailedError, TimeoutError } from "@cadre/protocol";
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

/** The command text for messages, shortened so a long script does not flood logs. */
function shown(run: string): string {
  return run.length > 120 ? `${run.slice(0, 117)}...` : run;
}

/** Turns stdout into the output: JSON when it parses, else the raw text. */
function parseStdout(text: string): unknown {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    return { stdout: trimmed };
  }
}

function runCommand(spec: CommandBehaviour, ctx: BehaviourContext): Promise<unknown> {
  const { task, attempt, signal } = ctx;
  const inputJson = JSON.stringify(task.input);
  const base = { command: shown(spec.run), taskId: task.taskId, attempt };

  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const child = spawn("/bin/sh", ["-c", spec.run], {
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        ...process.env,
        CADRE_INPUT: inputJson,
        CADRE_TASK_ID: task.taskId,
        CADRE_KIND: task.kind,
        CADRE_ATTEMPT: String(attempt),
      },
    });

    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = Buffer.alloc(0);
    let settled = false;

    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      fn();
    };
    // Negative pid: the whole group, so grandchildren (a `sleep` the shell forked) die too.
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    };
    const onAbort = (): void => {
      killGroup();
      finish(() => reject(signal.reason));
    };

    const timer = setTimeout(() => {
      killGroup();
      finish(() => reject(new TimeoutError(`command "${shown(spec.run)}"`, spec.timeoutMs)));
    }, spec.timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });

    child.stdout.on("data", (chunk: Buffer) => {
      if (settled) return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_STDOUT_BYTES) {
        killGroup();
        finish(() =>
          reject(
            new BehaviourFailedError(
              `command "${shown(spec.run)}" wrote more than ${MAX_STDOUT_BYTES} bytes to stdout`,
              {
                ...base,
                limitBytes: MAX_STDOUT_BYTES,
              },
            ),
          ),
        );
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      const all = Buffer.concat([stderr, chunk]);
      stderr = all.length > STDERR_TAIL_BYTES ? all.subarray(all.length - STDERR_TAIL_BYTES) : all;
    });
    // A command that never reads stdin may exit before we finish writing; EPIPE is not its fault.
    child.stdin.on("error", () => {});
    child.stdin.end(inputJson);

    child.on("error", (err) => {
      killGroup();
      finish(() =>
        reject(
          new BehaviourFailedError(`command "${shown(spec.run)}" could not start: ${err.message}`, base, {
            cause: err,
          }),
        ),
      );
    });
    // "close" rather than "exit": it waits for stdout to be fully read.
    child.on("close", (code, sig) => {
      finish(() => {
        if (code === 0) {
          resolve(parseStdout(Buffer.concat(stdout).toString("utf8")));
          return;
        }
        const how = code === null ? `was killed by ${sig}` : `exited with code ${code}`;
        reject(
          new BehaviourFailedError(`command "${shown(spec.run)}" ${how}`, {
            ...base,
            exitCode: code,
            signal: sig,
            stderr: stderr.toString("utf8"),
          }),
        );
      });
    });
  });
}
