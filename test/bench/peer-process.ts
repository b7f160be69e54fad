/**
 * Worker processes of the peers bench: each peer runs its director and its agent in two
 * processes of their own, as Cadre's agent-hosts do, so every system pays the same process
 * hops. A worker prints one line ("ready") on stdout once it consumes; the bench waits for it.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** A started worker process. */
export interface Worker {
  readonly child: ChildProcess;
  /** Sends SIGTERM and waits for the process to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A bench that throws or is interrupted leaves no worker behind.
process.once("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

/** Starts `node <script next to this file> ...args` and resolves once it printed its ready line (30 s at most). */
export async function startWorker(script: string, args: string[]): Promise<Worker> {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const child = spawn(process.execPath, [file, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      running.delete(child);
      resolve();
    }),
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${script} ${args.join(" ")} was not ready within 30 s`)),
        30_000,
      );
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${script} ${args.join(" ")} exited during start-up (code ${child.exitCode})`));
      });
      createInterface({ input: child.stdout }).once("line", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, stop };
}
