/**
 * A Cadre cluster for integration tests: a real nats-server on a random port with JetStream
 * in a temporary directory, and the supervisor and agent-hosts as real processes (the same
 * launcher `cadre up` uses). Service output is kept so a failing test can show it.
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Stack, startStack } from "@cadre/cli";
import type { ConfigInput, TeamInput } from "@cadre/protocol";
import { connectNats, type NatsConnection } from "@cadre/runtime";
import { type CadreClient, cadreClient, until } from "./client.js";

const cadre = createRequire(import.meta.url).resolve("@cadre/cli/main");

export { recordEvents, startGhostHost, type TimedEvent, until, waitForEvent } from "./client.js";

/** A running test cluster. */
export interface TestCluster extends CadreClient {
  readonly stack: Stack;
  /** Output lines of each service. */
  readonly logs: Map<string, string[]>;
  /** The last lines of every service's output, for failure messages. */
  tail(lines?: number): string;
  /** Runs the `cadre` command against this cluster and returns its standard output. */
  cli(...args: string[]): string;
  /** A connection of this process as one of the cluster's identities (`viewer`, `host-2`...). */
  connectAs(name: string): Promise<NatsConnection>;
  /** The environment a `cadre` command needs to reach this cluster (as the operator when authenticated). */
  cliEnv(): Record<string, string>;
  stop(): Promise<void>;
}

/** Settings that make failures show quickly in tests. */
export const fastConfig: ConfigInput = {
  tasks: { ackWaitMs: 1500, maxDeliver: 5, retryBackoffMs: 100 },
  heartbeat: { intervalMs: 200, hostDeadAfterMs: 1000 },
};

/**
 * Starts nats-server, a supervisor and `hosts` agent-hosts, authenticated (identities and
 * permissions per role, as `cadre up` runs) unless `security: false` or CADRE_TEST_SECURITY=0;
 * then the test's own connection and `cli()` are the operator.
 */
export async function startCluster(
  opts: {
    hosts?: number;
    config?: ConfigInput;
    monitor?: boolean;
    natsUrl?: string;
    security?: boolean;
    /** Mutual TLS as well (implies security). */
    tls?: boolean;
    /** More environment for every service (StackOptions.env). */
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "cadre-test-"));
  const configFile = join(dir, "config.json");
  const config = opts.config ?? fastConfig;
  // Each cluster's hosts keep their outboxes in its own directory (host ids repeat across suites).
  const host = { ...config.host, outbox: { dir: join(dir, "outbox"), ...config.host?.outbox } };
  writeFileSync(configFile, JSON.stringify({ ...config, host }));
  const logs = new Map<string, string[]>();
  // Authenticated unless a test says otherwise (or CADRE_TEST_SECURITY=0 for a whole run).
  const secure = opts.tls || (opts.security ?? process.env.CADRE_TEST_SECURITY !== "0");
  const stack = await startStack({
    hosts: opts.hosts ?? 2,
    ...(secure ? { security: { dir: join(dir, "security"), tls: opts.tls ?? false } } : {}),
    ...(opts.natsUrl ? { natsUrl: opts.natsUrl } : {}),
    configFile,
    monitor: opts.monitor ?? false,
    ...(opts.env ? { env: opts.env } : {}),
    onLine: (service, line) => {
      const l = logs.get(service) ?? [];
      l.push(line);
      if (l.length > 2000) l.shift();
      logs.set(service, l);
    },
  });
  const operator = stack.security?.credentials("operator");
  const tls = stack.security?.tls?.("operator");
  const nc = await connectNats(stack.natsUrl, "cadre-test", undefined, { credentials: operator, tls });
  await everyHostHeard(nc, opts.hosts ?? 2);
  const cliEnv = () => ({
    CADRE_NATS_URL: stack.natsUrl,
    ...(operator ? { CADRE_NATS_CREDS: operator } : {}),
    ...(tls
      ? {
          CADRE_NATS_TLS_CA: tls.caFile,
          CADRE_NATS_TLS_CERT: tls.certFile ?? "",
          CADRE_NATS_TLS_KEY: tls.keyFile ?? "",
        }
      : {}),
  });
  return {
    ...cadreClient(nc),
    stack,
    logs,
    cliEnv,
    connectAs: (name) =>
      connectNats(stack.natsUrl, `test-${name}`, undefined, {
        credentials: stack.security?.credentials(name) ?? "",
        tls: stack.security?.tls?.(name),
      }),
    cli: (...args) =>
      execFileSync(process.execPath, [cadre, ...args], {
        env: { ...process.env, ...cliEnv() },
        encoding: "utf8",
      }),
    tail: (n = 30) => [...logs].map(([service, l]) => `--- ${service}\n${l.slice(-n).join("\n")}`).join("\n"),
    stop: async () => {
      await nc.close();
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits for a heartbeat from every host sent after this call. The supervisor subscribed to
 * heartbeats before it said ready, so it has received those too, and the first placement sees
 * every host (a host's first heartbeat can precede the supervisor's subscription).
 */
async function everyHostHeard(nc: NatsConnection, hosts: number): Promise<void> {
  const heard = new Set<string>();
  const sub = nc.subscribe("cadre.v1.hb.*", {
    callback: (_err, m) => {
      heard.add(m.subject);
    },
  });
  try {
    await until("a heartbeat from every host", () => heard.size >= hosts, 20_000);
  } finally {
    sub.unsubscribe();
  }
}

/** A chain of leads k0 > k1 > ... > k{depth}, each delegating to the next; the last is an agent. */
export function chainTeam(name: string, depth: number): TeamInput {
  const kinds: TeamInput["kinds"] = {};
  for (let i = 0; i <= depth; i++) {
    kinds[`k${i}`] =
      i < depth
        ? {
            role: "lead",
            replicas: 1,
            behaviour: { type: "script", delegate: [{ kind: `k${i + 1}` }], output: { level: i } },
          }
        : { role: "agent", replicas: 1, behaviour: { type: "script", output: { level: i } } };
  }
  return { name, root: "k0", kinds };
}

/**
 * A lead fanning out to `n` workers (`workers` replicas) that each sleep `sleepMs`; with `gate`,
 * the workers wait until the workflow's shared state holds that name (the test sets it to go on).
 */
export function fanTeam(
  name: string,
  n: number,
  sleepMs: number,
  workers = 2,
  opts: { leadState?: Record<string, unknown>; gate?: string } = {},
): TeamInput {
  return {
    name,
    root: "lead",
    kinds: {
      lead: {
        role: "lead",
        replicas: 1,
        behaviour: {
          type: "script",
          ...(opts.leadState ? { state: opts.leadState } : {}),
          delegate: [{ kind: "worker", count: n, input: { i: "{{index}}" } }],
          output: { parts: "{{children}}" },
        },
      },
      worker: {
        role: "agent",
        replicas: workers,
        behaviour: { type: "script", sleepMs, ...(opts.gate ? { gate: opts.gate } : {}), output: { ok: true } },
      },
    },
  };
}

/** A director and one coder whose original actor answers what breaks its schema until it is replaced (a quarantine). */
export function quarantineTeam(name: string): TeamInput {
  return {
    name,
    root: "lead",
    kinds: {
      lead: { role: "director", replicas: 1, behaviour: { type: "script", delegate: [{ kind: "coder" }], output: {} } },
      coder: {
        role: "agent",
        replicas: 1,
        behaviour: { type: "script", brokenUntilReplaced: true, output: { code: "ok" } },
        output: { type: "object", required: ["code"], properties: { code: { type: "string" } } },
      },
    },
  };
}

/**
 * A deadlock every run: two directors take the same two exclusive resources in opposite order,
 * pausing after each acquisition so both hold their first before either asks for its second;
 * dir-a has the higher priority. Each delegates to an engineer working `engineerMs`.
 */
export function deadlockTeam(name: string, engineerMs: number): TeamInput {
  const director = (first: string, second: string, by: string) => ({
    role: "director" as const,
    replicas: 1,
    acquire: [first, second],
    behaviour: { type: "script" as const, acquireGapMs: 500, delegate: [{ kind: "engineer" }], output: { by } },
  });
  return {
    name,
    root: "boss",
    resources: { "pool-x": { capacity: 1 }, "pool-y": { capacity: 1 } },
    kinds: {
      boss: {
        role: "director",
        replicas: 1,
        behaviour: {
          type: "script",
          delegate: [
            { kind: "dir-a", priority: 1 },
            { kind: "dir-b", priority: 0 },
          ],
          output: { done: true },
        },
      },
      "dir-a": director("pool-x", "pool-y", "a"),
      "dir-b": director("pool-y", "pool-x", "b"),
      engineer: {
        role: "agent",
        replicas: 2,
        behaviour: { type: "script", sleepMs: engineerMs, output: { ok: true } },
      },
    },
  };
}

/**
 * `cadre <family> <operation> ... --json` (and `extra`, e.g. a timeout) against the cluster: the
 * reply parsed, and kept as test/results/runbook/<family>-<operation>.json (the README's Runbook
 * section quotes these real outputs).
 */
export function runbookJson(c: Pick<TestCluster, "cli">, extra: string[] = []): <T>(...args: string[]) => T {
  const results = join(import.meta.dirname, "..", "results", "runbook");
  mkdirSync(results, { recursive: true });
  return <T>(...args: string[]): T => {
    const out = c.cli(...args, "--json", ...extra);
    writeFileSync(join(results, `${args[0]}-${args[1]}.json`), `${JSON.stringify(JSON.parse(out), null, 2)}\n`);
    return JSON.parse(out) as T;
  };
}
