/**
 * Runs a shell command hook: the payload goes in as JSON on stdin, stdout comes back as the
 * result (JSON when it parses, else `{ stdout }`). Like the command behaviour of the agent host,
 * the command gets its own process group, so a timeout kills everything it started, not just
 * the shell.
 */

import { spawn } from "node:child_process";
import type { Clock } from "../clock.js";
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

function parseStdout(text: string): unknown {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    return { stdout: trimmed };
  }
}

/** Resolves with the command's output, or rejects with a HookAttemptError. */
export function runCommandHook({ command, payload, timeoutMs, clock, env }: CommandHookRun): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let input: string;
    try {
      input = JSON.stringify(payload) ?? "null";
    } catch (err) {
      reject(new HookAttemptError("error", `the payload is not JSON: ${(err as Error).message}`));
      return;
    }
    const child = spawn("/bin/sh", ["-c", command], {
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });

    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = Buffer.alloc(0);
    let settled = false;

    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      settle();
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

    const timer = clock.setTimeout(() => {
      killGroup();
      finish(() => reject(new HookAttemptError("timeout", `did not finish within ${timeoutMs} ms`)));
    }, timeoutMs);

    child.stdout.on("data", (chunk: Buffer) => {
      if (settled) return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_HOOK_STDOUT_BYTES) {
        killGroup();
        finish(() => reject(new HookAttemptError("error", `wrote more than ${MAX_HOOK_STDOUT_BYTES} bytes to stdout`)));
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
    child.stdin.end(input);

    child.on("error", (err) => {
      killGroup();
      finish(() => reject(new HookAttemptError("error", `could not start: ${err.message}`)));
    });
    // "close" rather than "exit": it waits for stdout to be fully read.
    child.on("close", (code, signal) => {
      finish(() => {
        if (code === 0) {
          resolve(parseStdout(Buffer.concat(stdout).toString("utf8")));
          return;
        }
        const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
        const tail = stderr.toString("utf8").trim();
        reject(new HookAttemptError("error", tail ? `${how}: ${tail}` : how));
      });
    });
  });
}
