/**
 * A local Cadre stack: a nats-server (started only when none answers at the URL), the
 * supervisor, agent-hosts and the monitor, each a separate process. Used by `cadre up`,
 * `cadre demo` and the integration tests, so all three run the same thing.
 *
 * With `security`, the stack is authenticated: the identities and the server configuration are
 * generated in its directory (runtime security.ts), the server admits only them, and each
 * service connects as its own identity with its role's permissions.
 */

import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { UnavailableError } from "@cadre/protocol";
import { initSecurity, type SecurityFiles, type ServiceProcess, spawnService } from "@cadre/runtime";
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
  /**
   * Authenticate everything: identities in this directory (made when missing), the started
   * server admitting only them. Needs a server this stack starts. @default none (anonymous)
   */
  security?: { dir: string; tls?: boolean };
  /** More environment for every service (over this process's), e.g. OTEL_EXPORTER_OTLP_ENDPOINT. */
  env?: NodeJS.ProcessEnv;
  /** Each service writes a V8 CPU profile, `<dir>/<name>.cpuprofile`, when it stops (the flow benchmark's `--cpu-prof`). */
  cpuProfileDir?: string;
  /** More arguments for the monitor (`cadre up` gives it its scale command). */
  monitorArgs?: string[];
}

/** A running stack. */
export interface Stack {
  readonly natsUrl: string;
  /** The server this stack started, if it started one. */
  readonly nats: NatsServer | undefined;
  readonly processes: Map<string, ServiceProcess>;
  /** Starts one more agent-host with this id (connected to `natsUrl`, by default the stack's). */
  startHost(hostId: string, opts?: { natsUrl?: string }): Promise<ServiceProcess>;
  /**
   * Starts one more supervisor with this id (`--id`), named so in `processes`. With another one
   * active it stands by (see the supervisor lease) and takes over when that one dies.
   */
  startSupervisor(id: string): Promise<ServiceProcess>;
  /** The identities, when the stack is authenticated. */
  readonly security: SecurityFiles | undefined;
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
  const hostIds = Array.from({ length: opts.hosts ?? 2 }, (_, i) => `host-${i + 1}`);
  let security: SecurityFiles | undefined;
  // An authenticated server keeps its JetStream data where its configuration says.
  const jetstreamDir = () => opts.dataDir ?? join(opts.security?.dir ?? ".", "jetstream");
  if (opts.security) {
    if (natsUrl && (await natsReachable(natsUrl))) {
      throw new UnavailableError(
        `a NATS server already answers at ${natsUrl}: an authenticated stack starts its own (stop that one, or run with --insecure)`,
      );
    }
    security = initSecurity(opts.security.dir, {
      hosts: hostIds,
      jetstreamDir: jetstreamDir(),
      tls: opts.security.tls ?? false,
    });
  }
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
    nats = await startNatsServer({
      ...(opts.dataDir || security ? { dataDir: jetstreamDir() } : {}),
      ...(port ? { port } : {}),
      ...(security ? { configFile: security.serverConfig } : {}),
    });
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
  const launch = (name: string, pkg: string, args: string[] = [], natsUrl = url, identity = name): ServiceProcess => {
    // Each service as its own identity (an agent-host's is its host id; every supervisor's is "supervisor").
    const tls = security?.tls?.(identity);
    const creds = [
      ...(security ? ["--nats-creds", security.credentials(identity)] : []),
      ...(tls
        ? ["--nats-tls-ca", tls.caFile, "--nats-tls-cert", tls.certFile ?? "", "--nats-tls-key", tls.keyFile ?? ""]
        : []),
    ];
    const log = opts.logDir ? createWriteStream(join(opts.logDir, `${name}.log`), { flags: "a" }) : undefined;
    if (log) logs.push(log);
    const p = spawnService({
      name,
      entry: entry(pkg),
      // /healthz and /metrics on a free loopback port each (logged; ServiceProcess.healthPort).
      args: ["--nats-url", natsUrl, ...config, ...creds, "--health-port", "0", "--health-host", "127.0.0.1", ...args],
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.cpuProfileDir
        ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfileDir}`, `--cpu-prof-name=${name}.cpuprofile`] }
        : {}),
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
    for (const hostId of hostIds) launch(hostId, "@cadre/agent-host", hostArgs(hostId));
    if (opts.monitor ?? true) launch("monitor", "@cadre/monitor", opts.monitorArgs ?? []);
    await Promise.all([...processes.values()].map((p) => p.ready));
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    natsUrl: url,
    nats,
    processes,
    get security() {
      return security;
    },
    startHost: async (hostId, o) => {
      if (security && nats && !hostIds.includes(hostId)) {
        // A new host needs its own identity: add it, and have the server read its users again.
        hostIds.push(hostId);
        security = initSecurity(security.dir, {
          hosts: hostIds,
          jetstreamDir: jetstreamDir(),
          tls: opts.security?.tls ?? false,
        });
        await nats.reload();
      }
      const p = launch(hostId, "@cadre/agent-host", hostArgs(hostId), o?.natsUrl ?? url);
      await p.ready;
      return p;
    },
    startSupervisor: async (id) => {
      const p = launch(id, "@cadre/supervisor", ["--id", id], url, "supervisor");
      await p.ready;
      return p;
    },
    stop,
  };
}
