/**
 * Starts a real nats-server for tests and local stacks: loopback only, a random port,
 * JetStream in a temporary (or given) directory.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** A nats-server child process. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Stops the server (SIGTERM) and, if the data directory was temporary, removes it. */
  stop(): Promise<void>;
  /** Makes the server read its configuration file again (SIGHUP), e.g. after a new identity; resolves once it has. */
  reload(): Promise<void>;
}

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** @default a new temporary directory, removed on stop */
  dataDir?: string;
  /** @default random (-1) */
  port?: number;
  /** @default "nats-server" */
  binary?: string;
  /** Called with each log line. */
  onLine?: (line: string) => void;
  /**
   * A configuration file (`-c`), e.g. the one `cadre security init` writes (users,
   * permissions); it must enable JetStream with `store_dir` = `dataDir`.
   */
  configFile?: string;
}

/** Starts nats-server with JetStream and resolves once it accepts clients. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const temporary = !opts.dataDir;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "cadre-nats-"));
  const child = spawn(
    opts.binary ?? "nats-server",
    [
      // A configuration file carries JetStream and its store_dir itself (a reload refuses a
      // store_dir given on the command line).
      ...(opts.configFile ? ["-c", opts.configFile] : ["-js", "-sd", dataDir]),
      "-a",
      "127.0.0.1",
      "-p",
      String(opts.port ?? -1),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lineListeners = new Set<(line: string) => void>();
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("nats-server did not start within 10 s")), 10_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run nats-server (${err.message}); install it (apt-get install nats-server)`));
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error("nats-server exited during start-up"));
    });
    if (child.stderr) {
      createInterface({ input: child.stderr }).on("line", (line) => {
        opts.onLine?.(line);
        for (const l of lineListeners) l(line);
        const m = /Listening for client connections on [^:]+:(\d+)/.exec(line);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    }
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dataDir,
    process: child,
    reload: () =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          lineListeners.delete(listener);
          reject(new Error("nats-server did not reload its configuration within 10 s"));
        }, 10_000);
        const listener = (line: string) => {
          if (!/Reloaded server configuration/.test(line)) return;
          clearTimeout(timer);
          lineListeners.delete(listener);
          resolve();
        };
        lineListeners.add(listener);
        child.kill("SIGHUP");
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      if (temporary) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
