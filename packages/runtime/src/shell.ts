/**
 * Runs one shell command the way Cadre runs every command (agent behaviours, hooks): `/bin/sh -c`
 * in its own process group, input on stdin, stdout kept up to a limit, the tail of stderr kept
 * for the message. A timeout, an abort or a runaway stdout kills the whole group, so a `sleep`
 * the shell forked dies too. It never rejects: it says how the command ended, and each caller
 * turns that into its own typed error.
 *
 * What a command says goes into messages, logs and error data that leave the host, so the
 * stderr tail comes back redacted (./redact.ts) and {@link describeCommand} gives the command
 * text to show.
 */

import { spawn } from "node:child_process";
import { type Clock, systemClock } from "./clock.js";
import { redact } from "./redact.js";

/**
 * How a command ended. `stderrTail` is the end of stderr with secret-looking values redacted;
 * when stderr was longer than the tail, its first (cut) line is dropped too, so half a secret
 * that the cut made unrecognisable is not passed on.
 */
export type ShellOutcome =
  | { type: "exit"; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderrTail: string }
  | { type: "timeout"; timeoutMs: number }
  | { type: "aborted"; reason: unknown }
  | { type: "stdout-limit"; limitBytes: number }
  | { type: "spawn-error"; error: Error };

export interface ShellRun {
  command: string;
  stdin: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  timeoutMs: number;
  /** @default systemClock */
  clock?: Clock;
  signal?: AbortSignal;
  /** @default 1 MiB */
  maxStdoutBytes?: number;
  /** @default 2048 */
  stderrTailBytes?: number;
}

/** Runs the command to its end (see {@link ShellOutcome}). */
export function runShell(run: ShellRun): Promise<ShellOutcome> {
  const clock = run.clock ?? systemClock;
  const maxStdout = run.maxStdoutBytes ?? 1024 * 1024;
  const tailBytes = run.stderrTailBytes ?? 2048;
  return new Promise((resolve) => {
    if (run.signal?.aborted) {
      resolve({ type: "aborted", reason: run.signal.reason });
      return;
    }
    const child = spawn("/bin/sh", ["-c", run.command], {
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...run.env },
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = Buffer.alloc(0);
    let stderrCut = false;
    let settled = false;

    const finish = (outcome: ShellOutcome): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      run.signal?.removeEventListener("abort", onAbort);
      resolve(outcome);
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
      finish({ type: "aborted", reason: run.signal?.reason });
    };
    const timer = clock.setTimeout(() => {
      killGroup();
      finish({ type: "timeout", timeoutMs: run.timeoutMs });
    }, run.timeoutMs);
    run.signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout.on("data", (chunk: Buffer) => {
      if (settled) return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        killGroup();
        finish({ type: "stdout-limit", limitBytes: maxStdout });
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      const all = Buffer.concat([stderr, chunk]);
      if (all.length > tailBytes) stderrCut = true;
      stderr = stderrCut ? all.subarray(all.length - tailBytes) : all;
    });
    // A command that never reads stdin may exit before we finish writing; EPIPE is not its fault.
    child.stdin.on("error", () => {});
    child.stdin.end(run.stdin);

    child.on("error", (error) => {
      killGroup();
      finish({ type: "spawn-error", error });
    });
    // "close" rather than "exit": it waits for stdout to be fully read.
    child.on("close", (code, signal) => {
      finish({
        type: "exit",
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderrTail: stderrTail(stderr, stderrCut),
      });
    });
  });
}

/** The kept end of stderr, for messages: redacted, without the line the cut went through. */
function stderrTail(tail: Buffer, cut: boolean): string {
  let text = tail.toString("utf8");
  if (cut) {
    const nl = text.indexOf("\n");
    // A tail that is one long line is kept: dropping it would leave nothing to go on.
    if (nl >= 0 && nl < text.length - 1) text = text.slice(nl + 1);
  }
  return redact(text);
}

/** The command text for messages: secrets redacted, then shortened so a long script does not flood logs. */
export function describeCommand(command: string, maxChars = 120): string {
  const text = redact(command);
  return text.length > maxChars ? `${text.slice(0, maxChars - 3)}...` : text;
}

/** A command's stdout as a value: JSON when it parses, else `{ stdout }` (trimmed). */
export function parseShellOutput(text: string): unknown {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    return { stdout: trimmed };
  }
}

/** "exited with code 3" / "was killed by SIGKILL", for messages. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return code === null ? `was killed by ${signal}` : `exited with code ${code}`;
}
