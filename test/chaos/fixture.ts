/**
 * A Cadre cluster of real containers for chaos tests: NATS nodes (one, or a three-node JetStream
 * cluster), supervisors and agent-hosts from the images infra/build-images.sh builds, on a network
 * of their own. Any member can be killed (SIGKILL), paused and resumed (a stall: the process is
 * frozen, its sockets stay open), cut off from the network and healed, or started again.
 *
 * The test process reaches NATS through the nodes' published ports on 127.0.0.1; nothing else
 * is ever a target. `stop()` removes every container and the network, pass or fail.
 *
 * Authenticated, like a deployment: each cluster gets its own identities (`initSecurity`), every
 * NATS node includes their `authorization` block (infra/nats/*.conf include
 * /etc/nats/security/authorization.conf), each service connects with its own seed
 * (`--nats-creds`: hosts as their host id, supervisors, a standby too, as "supervisor") and signs
 * its results, and the test's own client connects as the operator.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authorizationConfig, type ConfigInput } from "@cadre/protocol";
import { connectNats, initSecurity, natsTlsBlock, type SecurityFiles } from "@cadre/runtime";
import {
  GenericContainer,
  getContainerRuntimeClient,
  Network,
  type StartedNetwork,
  type StartedTestContainer,
  Wait,
} from "testcontainers";
import { stringify } from "yaml";
import { type CadreClient, cadreClient } from "../helpers/client.js";

const ROOT = join(import.meta.dirname, "..", "..");
const TAG = process.env.CADRE_IMAGE_TAG ?? "dev";
/** Every container a chaos cluster starts carries this label, valued with its network's name. */
const LABEL = "dev.cadre.chaos";

/** Force-removes containers carrying the chaos label (with `value`, only that cluster's). */
async function removeLabelled(value?: string): Promise<void> {
  const docker = (await getContainerRuntimeClient()).container.dockerode;
  const list = await docker.listContainers({ all: true, filters: { label: [value ? `${LABEL}=${value}` : LABEL] } });
  await Promise.all(
    list.map(async (info) => {
      const ctr = docker.getContainer(info.Id);
      await ctr.unpause().catch(() => {});
      await ctr.remove({ force: true }).catch(() => {});
    }),
  );
}

/** Fails with what to do when no container engine answers. */
export async function requireEngine(): Promise<void> {
  loadRuntimeEnv();
  try {
    await getContainerRuntimeClient();
  } catch (err) {
    throw new Error(
      `no container engine answers (${(err as Error).message}); the chaos tests need one: ` +
        "run 'bash scripts/install.sh --with-containers' (podman where no Docker engine runs), " +
        "or 'pnpm test:quick' to run everything else",
    );
  }
}

/** Removes what an earlier run left behind if it was itself killed before cleaning up. */
export async function removeLeftovers(): Promise<void> {
  loadRuntimeEnv();
  await removeLabelled();
}

/**
 * Reads infra/.runtime.env (written by infra/container-runtime.sh) into the environment, so
 * testcontainers finds the engine (DOCKER_HOST) and runs without Ryuk, which cannot be pulled here.
 */
export function loadRuntimeEnv(): void {
  const file = join(ROOT, "infra", ".runtime.env");
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && process.env[m[1]] === undefined) process.env[m[1]] = m[2];
  }
}

let imagesBuilt = false;
/** Builds the images from the current tree, once per test run (about 15 s). */
export function buildImages(): void {
  if (imagesBuilt || process.env.CADRE_SKIP_IMAGE_BUILD === "1") return;
  execFileSync("bash", [join(ROOT, "infra", "build-images.sh")], { stdio: "inherit" });
  imagesBuilt = true;
}

/** What a chaos cluster is made of. */
export interface ChaosClusterOptions {
  /** 1, or 3 for a JetStream cluster with every stream and bucket replicated 3 times. */
  natsNodes: 1 | 3;
  supervisors?: number;
  hosts: number;
  /** Cadre configuration for every service (natsUrl and storage.replicas are set here). */
  config?: ConfigInput;
  /**
   * Mutual TLS as compose runs it (infra/compose.tls.yaml): the server's certificate names the
   * NATS nodes, each service and the test present their identity's certificate.
   */
  tls?: boolean;
}

/** Where the TLS files are in the containers (as compose mounts them). */
const NATS_SECURITY = "/etc/nats/security";

/**
 * Settings that make failures show quickly. The ack wait stays longer than detection plus
 * `tasks.reassignGraceMs` (about 0.8 + 1 s here), so a lost host's tasks move by reassignment
 * with a new epoch, as they do with the defaults, rather than by JetStream's redelivery.
 */
export const chaosConfig: ConfigInput = {
  tasks: { ackWaitMs: 5000, maxDeliver: 20, retryBackoffMs: 100 },
  // The chaos team runs 14 actors, past the seed's default of 10 per orchestrator.
  orchestration_limits: { max_agents_per_orchestrator: 50, max_concurrent_agents: 200 },
  heartbeat: { intervalMs: 200, hostDeadAfterMs: 1000 },
};

export class ChaosCluster {
  /** Containers by member name: nats-1.., supervisor-1.., host-1.. */
  readonly members = new Map<string, StartedTestContainer>();
  client!: CadreClient;

  private constructor(
    readonly network: StartedNetwork,
    private readonly opts: ChaosClusterOptions,
    /** This cluster's identities and their seeds (a temporary directory, removed by `stop()`). */
    readonly security: SecurityFiles,
  ) {}

  /** Starts the NATS nodes, then the supervisors and hosts, and connects a client. */
  static async start(opts: ChaosClusterOptions): Promise<ChaosCluster> {
    loadRuntimeEnv();
    const security = initSecurity(mkdtempSync(join(tmpdir(), "cadre-chaos-security-")), {
      hosts: Array.from({ length: opts.hosts }, (_, i) => `host-${i + 1}`),
      ...(opts.tls
        ? { tls: true, serverNames: Array.from({ length: opts.natsNodes }, (_, i) => `nats-${i + 1}`) }
        : {}),
    });
    const network = await new Network().start();
    const c = new ChaosCluster(network, opts, security);
    try {
      await c.startNats();
      const config = c.serviceConfig();
      await Promise.all([
        ...Array.from({ length: opts.supervisors ?? 1 }, (_, i) =>
          c.startService(`supervisor-${i + 1}`, "supervisor", "supervisor", config, ["--id", `supervisor-${i + 1}`]),
        ),
        ...Array.from({ length: opts.hosts }, (_, i) =>
          c.startService(`host-${i + 1}`, "agent-host", `host-${i + 1}`, config, ["--host-id", `host-${i + 1}`]),
        ),
      ]);
      c.client = cadreClient(await c.connectAsOperator("cadre-chaos-test"));
    } catch (err) {
      const logs = await c.tail().catch(() => "");
      await c.stop();
      throw new Error(`chaos cluster did not start: ${(err as Error).message}\n${logs}`, { cause: err });
    }
    return c;
  }

  /**
   * A connection of the test process (through the published ports) as the operator, to the
   * nodes named (all by default). One to a single node that is not killed never moves: an
   * observer that must not miss what happens while the others' connections move.
   */
  connectAsOperator(name: string, nodes = this.natsNames()) {
    const urls = nodes.map((n) => `nats://${this.member(n).getHost()}:${this.member(n).getMappedPort(4222)}`);
    return connectNats(urls.join(","), name, undefined, {
      credentials: this.security.credentials("operator"),
      tls: this.security.tls?.("operator"),
    });
  }

  natsNames(): string[] {
    return Array.from({ length: this.opts.natsNodes }, (_, i) => `nats-${i + 1}`);
  }

  private serviceConfig(): string {
    const cfg = {
      ...chaosConfig,
      ...this.opts.config,
      natsUrl: this.natsNames()
        .map((n) => `nats://${n}:4222`)
        .join(","),
      storage: { replicas: this.opts.natsNodes },
    };
    return stringify(cfg);
  }

  private async startNats(): Promise<void> {
    const conf = this.opts.natsNodes === 3 ? "/etc/nats/cluster.conf" : "/etc/nats/single.conf";
    // Only the users (and TLS): the cluster and JetStream settings are the image's own (infra/nats/*.conf).
    const tls = this.security.tls !== undefined;
    const authorization = `${authorizationConfig(this.security.identities)}${tls ? natsTlsBlock(NATS_SECURITY) : ""}`;
    const tlsFiles = tls
      ? ["server.pem", "server.key", "ca.pem"].map((f) => ({
          content: readFileSync(join(this.security.dir, f)),
          target: `${NATS_SECURITY}/${f}`,
          mode: 0o644,
        }))
      : [];
    await Promise.all(
      this.natsNames().map(async (name) => {
        const ctr = await new GenericContainer(`cadre/nats:${TAG}`)
          .withName(`${this.network.getName()}-${name}`)
          .withLabels({ [LABEL]: this.network.getName() })
          .withNetwork(this.network)
          .withNetworkAliases(name)
          .withEnvironment({ NATS_SERVER_NAME: name })
          .withCopyContentToContainer([
            { content: authorization, target: `${NATS_SECURITY}/authorization.conf`, mode: 0o644 },
            ...tlsFiles,
          ])
          .withCommand(["-c", conf])
          .withExposedPorts(4222)
          .withWaitStrategy(Wait.forLogMessage("Server is ready"))
          .start();
        this.members.set(name, ctr);
      }),
    );
    if (this.opts.natsNodes === 3) {
      // JetStream answers only once the three nodes have elected a meta leader.
      const probe = await this.connectAsOperator("cadre-chaos-probe");
      try {
        const { jetstreamManager } = await import("@nats-io/jetstream");
        const end = Date.now() + 30_000;
        for (;;) {
          try {
            await (await jetstreamManager(probe, { timeout: 2000 })).getAccountInfo();
            break;
          } catch (err) {
            if (Date.now() > end) throw new Error(`JetStream cluster not ready: ${(err as Error).message}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      } finally {
        await probe.close();
      }
    }
  }

  /** Starts a service connecting as `identity`, whose seed is copied in (a test key, readable by its user). */
  private async startService(
    name: string,
    image: string,
    identity: string,
    config: string,
    args: string[],
  ): Promise<void> {
    const tls = this.security.tls?.(identity);
    const tlsFiles = tls
      ? [
          { content: readFileSync(tls.caFile), target: "/tmp/ca.pem" },
          { content: readFileSync(tls.certFile ?? ""), target: "/tmp/identity.pem" },
          { content: readFileSync(tls.keyFile ?? ""), target: "/tmp/identity.key", mode: 0o644 },
        ]
      : [];
    const tlsArgs = tls
      ? ["--nats-tls-ca", "/tmp/ca.pem", "--nats-tls-cert", "/tmp/identity.pem", "--nats-tls-key", "/tmp/identity.key"]
      : [];
    const ctr = await new GenericContainer(`cadre/${image}:${TAG}`)
      .withName(`${this.network.getName()}-${name}`)
      .withLabels({ [LABEL]: this.network.getName() })
      .withNetwork(this.network)
      .withNetworkAliases(name)
      .withCopyContentToContainer([
        { content: config, target: "/tmp/cadre.yaml" },
        { content: readFileSync(this.security.credentials(identity)), target: "/tmp/identity.nk", mode: 0o644 },
        ...tlsFiles,
      ])
      .withCommand(["--config", "/tmp/cadre.yaml", "--nats-creds", "/tmp/identity.nk", ...tlsArgs, ...args])
      .withWaitStrategy(Wait.forLogMessage(/"msg":"ready"/))
      .withStartupTimeout(60_000)
      .start();
    this.members.set(name, ctr);
  }

  member(name: string): StartedTestContainer {
    const m = this.members.get(name);
    if (!m) throw new Error(`no member ${name} (members: ${[...this.members.keys()].join(", ")})`);
    return m;
  }

  private async dockerode(name: string) {
    const client = await getContainerRuntimeClient();
    return { client, container: client.container.getById(this.member(name).getId()) };
  }

  /** SIGKILL: the process dies at once, with no chance to clean up. */
  async kill(name: string): Promise<void> {
    const { container } = await this.dockerode(name);
    await container.kill({ signal: "SIGKILL" });
  }

  /** Starts a killed member again (same container, same name and address). */
  async restart(name: string): Promise<void> {
    const { container } = await this.dockerode(name);
    await container.start();
  }

  /** Freezes every process of the member (cgroup freezer); its connections stay open. */
  async pause(name: string): Promise<void> {
    const { container } = await this.dockerode(name);
    await container.pause();
  }

  async resume(name: string): Promise<void> {
    const { container } = await this.dockerode(name);
    await container.unpause();
  }

  /** Cuts the member off the cluster's network: nothing reaches it, it reaches nothing. */
  async partition(name: string): Promise<void> {
    const { client } = await this.dockerode(name);
    const net = client.container.dockerode.getNetwork(this.network.getId());
    await net.disconnect({ Container: this.member(name).getId(), Force: true });
  }

  /** Connects a partitioned member again, under its alias. */
  async heal(name: string): Promise<void> {
    const { client } = await this.dockerode(name);
    const net = client.container.dockerode.getNetwork(this.network.getId());
    await net.connect({ Container: this.member(name).getId(), EndpointConfig: { Aliases: [name] } });
  }

  /** The last lines each container of this cluster wrote (started or not), for failure messages. */
  async tail(lines = 20): Promise<string> {
    const docker = (await getContainerRuntimeClient()).container.dockerode;
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL}=${this.network.getName()}`] } });
    const out: string[] = [];
    for (const info of list.sort((x, y) => (x.Names[0] ?? "").localeCompare(y.Names[0] ?? ""))) {
      try {
        const buf = (await docker
          .getContainer(info.Id)
          .logs({ stdout: true, stderr: true, tail: lines })) as unknown as Buffer;
        out.push(`--- ${info.Names[0]} (${info.State})\n${demux(buf)}`);
      } catch (err) {
        out.push(`--- ${info.Names[0]}: no logs (${(err as Error).message})`);
      }
    }
    return out.join("\n");
  }

  /**
   * Removes every container and the network. Safe after a failed start: it removes by label,
   * so a container whose start timed out (and was never returned to us) goes too.
   */
  async stop(): Promise<void> {
    await this.client?.nc.close().catch(() => {});
    await removeLabelled(this.network.getName());
    await this.network.stop().catch(() => {});
    rmSync(this.security.dir, { recursive: true, force: true });
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) as text. */
function demux(buf: Buffer): string {
  const parts: string[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len).toString("utf8"));
    i += 8 + len;
  }
  return parts.length > 0 ? parts.join("") : buf.toString("utf8");
}
