/**
 * A local Cadre stack: a nats-server (started only when none answers at the URL), the
 * supervisor, agent-hosts and the monitor, each a separate process. Used by `cadre up`,
 * `cadre demo` and the integration tests, so all three run the same thing.
 */

import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { UnavailableError } from "@cadre/protocol";
import { type ServiceProcess, spawnService } from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { connect } from "@nats-io/transport-node";

/** Options of {@link startStack}. */
export interface StackOptions {
  /** Use the server at this URL; if nothing answers and it is on loopback, start one there. @default a new server on a random port */
  natsUrl?: string;
  /** JetStream directory of a started server. @default a temporary directory */
  dataDir?: string;
  /** Number of agent-hosts. @default 2 */
  hosts?: number;
  /** Passed to every service as --config. */
  configFile?: string;
  /** Each service's output goes to `<logDir>/<name>.log`. */
  logDir?: string;
  /** Each output line of each service. */
  onLine?: (service: string, line: string) => void;
  /** Start the monitor. @default true */
  monitor?: boolean;
}

/** A running stack. */
export interface Stack {
  readonly natsUrl: string;
  /** The server this stack started, if it started one. */
  readonly nats: NatsServer | undefined;
  readonly processes: Map<string, ServiceProcess>;
  /** Starts one more agent-host with this id (connected to `natsUrl`, by default the stack's). */
  startHost(hostId: string, opts?: { natsUrl?: string }): Promise<ServiceProcess>;
  /** Stops every service, then the server if this stack started it. */
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);
/** A service's entry point, resolved through its package's exports. */
const entry = (pkg: string): string => require.resolve(`${pkg}/main`);

/** Whether a NATS server answers at the URL. */
export async function natsReachable(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, timeout: 1000, maxReconnectAttempts: 0, reconnect: false });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

/** Starts the stack and resolves once every service logged `ready`. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  let nats: NatsServer | undefined;
  let natsUrl = opts.natsUrl;
  if (!natsUrl || !(await natsReachable(natsUrl))) {
    let port: number | undefined;
    if (natsUrl) {
      const u = new URL(natsUrl.replace(/^nats:/, "http:"));
      if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
        throw new UnavailableError(
          `no NATS server answers at ${natsUrl}; start it, or use a loopback URL so cadre can start one`,
        );
      }
      port = Number(u.port || 4222);
    }
    nats = await startNatsServer({ ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), ...(port ? { port } : {}) });
    natsUrl = nats.url;
  }
  const url = natsUrl;
  if (opts.logDir) mkdirSync(opts.logDir, { recursive: true });
  const logs: WriteStream[] = [];
  const processes = new Map<string, ServiceProcess>();
  const config = opts.configFile ? ["--config", opts.configFile] : [];

  // Outboxes beside the stack's JetStream data, so two stacks never share a host's outbox file.
  const hostArgs = (hostId: string) => [
    "--host-id",
    hostId,
    ...(opts.dataDir ? ["--outbox-dir", join(opts.dataDir, "outbox")] : []),
  ];
  const launch = (name: string, pkg: string, args: string[] = [], natsUrl = url): ServiceProcess => {
    const log = opts.logDir ? createWriteStream(join(opts.logDir, `${name}.log`), { flags: "a" }) : undefined;
    if (log) logs.push(log);
    const p = spawnService({
      name,
      entry: entry(pkg),
      args: ["--nats-url", natsUrl, ...config, ...args],
      onLine: (line) => {
        log?.write(`${line}\n`);
        opts.onLine?.(name, line);
      },
    });
    processes.set(name, p);
    return p;
  };

  const stop = async () => {
    await Promise.all([...processes.values()].map((p) => p.stop()));
    for (const l of logs) l.end();
    await nats?.stop();
  };

  try {
    launch("supervisor", "@cadre/supervisor");
    for (let i = 1; i <= (opts.hosts ?? 2); i++) launch(`host-${i}`, "@cadre/agent-host", hostArgs(`host-${i}`));
    if (opts.monitor ?? true) launch("monitor", "@cadre/monitor");
    await Promise.all([...processes.values()].map((p) => p.ready));
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    natsUrl: url,
    nats,
    processes,
    startHost: async (hostId, o) => {
      const p = launch(hostId, "@cadre/agent-host", hostArgs(hostId), o?.natsUrl ?? url);
      await p.ready;
      return p;
    },
    stop,
  };
}
