/** Starts a Cadre service as a child process and waits for its `ready` log line. */

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { HEALTH_MESSAGE, READY_MESSAGE } from "./service.js";

/** A service running as a child process. */
export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves when the service logged `ready`; rejects if it exits or times out first. */
  readonly ready: Promise<void>;
  /** Resolves with the exit code (or null after a signal). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Sends a signal (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * The port of its `/healthz` and `/metrics` server, once ready, when it serves one (started
   * with `--health-port`; with port 0 the service logs the port it was given).
   */
  readonly healthPort: number | undefined;
}

/** Options of {@link spawnService}. */
export interface SpawnServiceOptions {
  name: string;
  /** The service's JS entry point. */
  entry: string;
  args?: string[];
  /** Node's own options before the entry, e.g. `--cpu-prof` (NODE_OPTIONS does not take that one). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Each output line, as printed. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** @default 20000 */
  readyTimeoutMs?: number;
}

/** Spawns `node entry args...` and tracks readiness and exit. */
export function spawnService(opts: SpawnServiceOptions): ServiceProcess {
  // --expose-gc: the monitor's cleanup action asks hosts for a full collection (host.cleanup).
  const child = spawn(process.execPath, ["--expose-gc", ...(opts.nodeArgs ?? []), opts.entry, ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let healthPort: number | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${opts.name} not ready within ${opts.readyTimeoutMs ?? 20_000} ms`)),
      opts.readyTimeoutMs ?? 20_000,
    );
    timer.unref();
    // The last lines, so a service that dies before it is ready says why in the error.
    const last: string[] = [];
    const lines = (stream: NodeJS.ReadableStream, name: "stdout" | "stderr") => {
      createInterface({ input: stream }).on("line", (line) => {
        opts.onLine?.(line, name);
        last.push(line);
        if (last.length > 10) last.shift();
        if (line.includes(`"msg":"${HEALTH_MESSAGE}`)) {
          const port = Number(/"port":(\d+)/.exec(line)?.[1]);
          if (port > 0) healthPort = port;
        }
        if (line.includes(`"msg":"${READY_MESSAGE}"`)) {
          clearTimeout(timer);
          resolve();
        }
      });
    };
    if (child.stdout) lines(child.stdout, "stdout");
    if (child.stderr) lines(child.stderr, "stderr");
    // "close" comes after the output streams ended, so the last lines are in.
    child.once("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited with code ${code} before it was ready:\n${last.join("\n")}`));
    });
  });
  ready.catch(() => {});
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    name: opts.name,
    child,
    ready,
    exited,
    kill,
    get healthPort() {
      return healthPort;
    },
    stop: async (graceMs = 5000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
