/**
 * A real Prometheus for tests: Debian's `prometheus` binary (apt-get install prometheus;
 * scripts/install.sh does it) started as a child process with a generated prometheus.yml and
 * its TSDB in a temporary directory, listening on 127.0.0.1 on a free port. It scrapes the given
 * loopback targets' `/metrics`; the test reads what it stored through the HTTP query API.
 * Nothing depends on the Debian package's own systemd service (which, where systemd runs it,
 * listens on 9090): this is a separate process on its own port.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { stringify } from "yaml";

/** Where Debian installs it. */
const PROMETHEUS_BINARY = "/usr/bin/prometheus";

/** One scrape target as `/api/v1/targets` reports it (the fields tests read). */
export interface PrometheusTarget {
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
  labels: Record<string, string>;
}

/** A running Prometheus. */
export interface TestPrometheus {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly process: ChildProcess;
  /**
   * Evaluates an instant PromQL query now: the value of its one series (or of a scalar),
   * undefined when it selects nothing. Throws when it selects several series (aggregate them).
   */
  query(promql: string): Promise<number | undefined>;
  /** The active targets (`/api/v1/targets`). */
  targets(): Promise<PrometheusTarget[]>;
  /** Resolves once every configured target has been scraped successfully; throws after `deadlineMs` (from now). */
  waitForTargetsUp(deadlineMs?: number): Promise<PrometheusTarget[]>;
  /** Output lines of the process, for failure messages. */
  tail(lines?: number): string;
  /** Stops the process (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions {
  /** `host:port` of each `/metrics` endpoint to scrape; loopback hosts only. */
  targets: string[];
  /** @default 1000 */
  scrapeIntervalMs?: number;
  /** How long to wait for `/-/ready`. @default 20000 */
  readyTimeoutMs?: number;
  /** @default /usr/bin/prometheus */
  binary?: string;
}

/** Starts Prometheus scraping `targets` and resolves once it answers `/-/ready`. */
export async function startPrometheus(opts: PrometheusOptions): Promise<TestPrometheus> {
  for (const t of opts.targets) {
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/.test(t)) {
      throw new Error(`prometheus target ${t} is not a loopback host:port`);
    }
  }
  const interval = opts.scrapeIntervalMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), "cadre-prometheus-"));
  const configFile = join(dir, "prometheus.yml");
  writeFileSync(
    configFile,
    stringify({
      global: {
        scrape_interval: `${interval}ms`,
        // Must not exceed the interval (Prometheus refuses the configuration otherwise).
        scrape_timeout: `${Math.min(interval, 10_000)}ms`,
        evaluation_interval: `${interval}ms`,
      },
      scrape_configs: [{ job_name: "cadre", metrics_path: "/metrics", static_configs: [{ targets: opts.targets }] }],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const binary = opts.binary ?? PROMETHEUS_BINARY;
  const child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      if (lines.length > 500) lines.shift();
    });
  }
  const tail = (n = 30) => lines.slice(-n).join("\n");
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null && !spawnError;

  const stop = async () => {
    if (running()) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; data?: T; error?: string };
    if (body.status !== "success" || body.data === undefined) {
      throw new Error(`prometheus ${path}: ${res.status} ${body.error ?? JSON.stringify(body)}`);
    }
    return body.data;
  };

  try {
    await poll(
      "prometheus to answer /-/ready",
      async () => {
        if (spawnError) {
          throw new Error(`cannot run ${binary} (${spawnError.message}); install it (apt-get install prometheus)`);
        }
        if (!running()) throw new Error(`prometheus exited during start-up:\n${tail()}`);
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        return res?.status === 200;
      },
      opts.readyTimeoutMs ?? 20_000,
      tail,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const targets = async () =>
    (await api<{ activeTargets: PrometheusTarget[] }>("/api/v1/targets?state=active")).activeTargets;
  return {
    url,
    process: child,
    tail,
    stop,
    targets,
    query: async (promql) => {
      const data = await api<
        | { resultType: "vector"; result: { metric: Record<string, string>; value: [number, string] }[] }
        | { resultType: "scalar"; result: [number, string] }
        | { resultType: "matrix" | "string"; result: unknown }
      >(`/api/v1/query?query=${encodeURIComponent(promql)}`);
      if (data.resultType === "scalar") return Number(data.result[1]);
      if (data.resultType !== "vector") throw new Error(`query ${promql} gave a ${data.resultType}, not a vector`);
      if (data.result.length > 1) {
        throw new Error(`query ${promql} selects ${data.result.length} series; aggregate them (sum, max...)`);
      }
      const sample = data.result[0];
      return sample ? Number(sample.value[1]) : undefined;
    },
    waitForTargetsUp: (deadlineMs = 30_000) =>
      poll(
        `every target up (${opts.targets.join(", ")})`,
        async () => {
          const active = await targets();
          const up = active.filter((t) => t.health === "up");
          return up.length >= opts.targets.length ? active : undefined;
        },
        deadlineMs,
        async () => {
          const active = await targets().catch(() => []);
          return active.map((t) => `${t.scrapeUrl}: ${t.health} ${t.lastError}`).join("\n");
        },
      ),
  };
}

/** A TCP port free on 127.0.0.1 now (bound on port 0, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

/** Calls `probe` every 50 ms until it returns a value (not undefined/false); throws after `timeoutMs`. */
async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs: number,
  explain: () => string | Promise<string>,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${await explain()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
