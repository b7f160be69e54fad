/**
 * A redis-server of the bench's own, for BullMQ: Debian's package (scripts/install.sh installs
 * it), on a free loopback port with its data in a temporary directory, never the system's
 * service. Durable the way JetStream's file storage is: every write goes to the append-only
 * file, fsynced once a second (`appendfsync everysec`); no RDB snapshots (`save ""`).
 */

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** A running redis-server. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Synchronous last resort for an exiting process: kills the server and removes its directory. */
  kill(): void;
}

/** A loopback port nothing listens on (the OS picks it; redis-server cannot be told to). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === "string") throw new Error("could not read the free port's address");
  return addr.port;
}

/** Starts redis-server and resolves once it accepts connections (10 s at most). */
export async function startRedisServer(binary = "redis-server"): Promise<RedisServer> {
  const host = "127.0.0.1";
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cadre-redis-"));
  const child = spawn(
    binary,
    [
      "--bind",
      host,
      "--port",
      String(port),
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--save",
      "",
      "--daemonize",
      "no",
      "--logfile",
      "",
      // BullMQ refuses to lose keys to eviction: say so rather than rely on the default.
      "--maxmemory-policy",
      "noeviction",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const output: string[] = [];
  const kill = () => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("redis-server did not start within 10 s")), 10_000);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${binary} (${err.message}); install it (bash scripts/install.sh)`));
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited during start-up:\n${output.join("\n")}`));
      });
      createInterface({ input: child.stderr }).on("line", (line) => output.push(line));
      createInterface({ input: child.stdout }).on("line", (line) => {
        output.push(line);
        if (line.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (err) {
    kill();
    throw err;
  }
  return {
    host,
    port,
    dir,
    kill,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // SIGTERM flushes the append-only file and exits; a server stuck past 5 s is killed.
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
