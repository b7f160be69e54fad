/**
 * The shared `main` of every Cadre service: `--help`, configuration from flags, file and
 * environment (exit 2 with the field named when it is wrong), a JSON logger, a `ready` log
 * line once serving, and a clean stop on SIGINT/SIGTERM.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type Config, toCadreError } from "@cadre/protocol";
import { Command } from "commander";
import { loadConfig } from "./config-loader.js";
import { createLogger, type Logger } from "./logger.js";
import { type CadreMetrics, metricsText } from "./metrics.js";
import { configureRedaction } from "./redact.js";
import { initTracing } from "./tracing.js";

/** A running service. */
export interface RunningService {
  stop(): Promise<void>;
  /** Whether it can do its job (connected to NATS); `/healthz` answers 200 or 503 from it. */
  healthy?(): boolean;
  /** Its metrics (metrics.ts); the health server serves them on `/metrics` (404 without). */
  metrics?: CadreMetrics;
  /**
   * More routes on the health server (the monitor's dashboard): called first for every request
   * but `/healthz` and `/metrics`; returns whether it answered, else the server answers 404.
   */
  http?(req: IncomingMessage, res: ServerResponse): boolean;
}

/** What a service's main provides. */
export interface ServiceDefinition {
  /** Executable name, e.g. `cadre-supervisor`. */
  name: string;
  description: string;
  /** Adds service-specific options to the command. */
  options?: (cmd: Command) => void;
  start(ctx: { config: Config; logger: Logger; options: Record<string, unknown> }): Promise<RunningService>;
}

/** The exact log message services print once they serve; process launchers wait for it. */
export const READY_MESSAGE = "ready";
/** How the health server's log line begins; it carries the bound `port` (process.ts reads it). */
export const HEALTH_MESSAGE = "health endpoint on";

/** Parses the command line and runs the service until a signal stops it. */
export async function runService(def: ServiceDefinition, argv = process.argv): Promise<void> {
  const program = new Command(def.name)
    .description(def.description)
    .option("--nats-url <url>", "NATS server URL(s), comma-separated (env CADRE_NATS_URL)")
    .option("--config <file>", "YAML or JSON configuration file")
    .option("--nats-creds <file>", "NATS identity: an nkey seed or .creds file (env CADRE_NATS_CREDS)")
    .option("--nats-tls-ca <file>", "TLS to NATS: the CA to trust (env CADRE_NATS_TLS_CA)")
    .option("--nats-tls-cert <file>", "TLS client certificate (env CADRE_NATS_TLS_CERT)")
    .option("--nats-tls-key <file>", "TLS client key (env CADRE_NATS_TLS_KEY)")
    .option("--log-level <level>", "trace, debug, info, warn, error, fatal or silent (env CADRE_LOG_LEVEL)")
    .option(
      "--health-port <port>",
      "serve GET /healthz and GET /metrics on this port; 0: any free port, logged (env CADRE_HEALTH_PORT; default: off)",
    )
    .option(
      "--health-host <address>",
      "the address the health server listens on (env CADRE_HEALTH_HOST; default: 0.0.0.0)",
    )
    .addHelpText(
      "after",
      "\nExit codes: 0 stopped cleanly (SIGINT/SIGTERM); 1 could not start or serve; 2 bad input (an option or the configuration, the field named).",
    )
    .showHelpAfterError();
  def.options?.(program);
  program.parse(argv);
  const opts = program.opts<Record<string, unknown>>();

  let config: Config;
  try {
    config = loadConfig({
      file: opts.config as string | undefined,
      overrides: {
        natsUrl: opts.natsUrl,
        natsCredentials: opts.natsCreds,
        natsTls: opts.natsTlsCa
          ? { caFile: opts.natsTlsCa, certFile: opts.natsTlsCert, keyFile: opts.natsTlsKey }
          : undefined,
        logLevel: opts.logLevel,
      },
    });
  } catch (err) {
    process.stderr.write(`${def.name}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  // Configured secret patterns join the built-in ones (validated when the configuration was parsed).
  configureRedaction(config.host.redact?.patterns ?? []);
  const healthPort = parsePort(opts.healthPort ?? process.env.CADRE_HEALTH_PORT);
  if (healthPort === null) {
    process.stderr.write(`${def.name}: --health-port must be a port number (0-65535; 0: any free port)\n`);
    process.exit(2);
  }
  const logger = createLogger(def.name, config.logLevel);
  // Off (nothing registered) unless OTEL_EXPORTER_OTLP_ENDPOINT is set (tracing.ts).
  const instanceId = [opts.hostId, opts.id].find((v): v is string => typeof v === "string" && v !== "");
  const tracing = initTracing(def.name, instanceId ? { instanceId } : {});
  if (tracing.enabled) logger.info("tracing: spans exported over OTLP/HTTP");
  let running: RunningService;
  try {
    running = await def.start({ config, logger, options: opts });
  } catch (err) {
    const e = toCadreError(err);
    logger.fatal({ err: e, code: e.code }, `cannot start: ${e.message}`);
    process.stderr.write(`${def.name}: cannot start: ${e.message}\n`);
    // A setting that cannot work is bad input (exit 2); anything else is a failure to start (1).
    process.exit(e.code === "INVALID_CONFIG" ? 2 : 1);
  }
  let health: Server | undefined;
  if (healthPort !== undefined) {
    try {
      const host = (opts.healthHost as string | undefined) ?? (process.env.CADRE_HEALTH_HOST || "0.0.0.0");
      health = await serveHealth(healthPort, running, logger, host);
    } catch (err) {
      process.stderr.write(`${def.name}: cannot serve /healthz on port ${healthPort}: ${(err as Error).message}\n`);
      await running.stop().catch(() => {});
      process.exit(1);
    }
  }
  // Launchers wait for this line, so it is printed whatever the configured level.
  logger.child({}, { level: "info" }).info(READY_MESSAGE);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    health?.close();
    try {
      await running.stop();
    } catch (err) {
      logger.error({ err }, "error while stopping");
    }
    // The spans of the last moments (bounded wait).
    await tracing.shutdown();
    logger.flush?.();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

/** undefined when not given, null when given but not a port. */
function parsePort(v: unknown): number | undefined | null {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : null;
}

/**
 * The health endpoint container runtimes probe: 200 while the service is healthy, 503 when not.
 * Plain HTTP so a probe needs nothing but `node -e fetch(...)` or `wget`. It also serves the
 * service's metrics on `/metrics` for Prometheus to scrape (404 when the service has none).
 * Services listen on 0.0.0.0; tests pass `127.0.0.1` and port 0 (the bound port is in
 * `server.address()`).
 */
export function serveHealth(
  port: number,
  running: Pick<RunningService, "healthy" | "metrics" | "http">,
  logger: Logger,
  host = "0.0.0.0",
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = req.url?.split("?")[0];
    if (path === "/metrics") {
      void serveMetrics(running.metrics, res, logger);
      return;
    }
    if (path !== "/healthz" && running.http?.(req, res)) return;
    const ok = path === "/healthz" && (running.healthy?.() ?? true);
    res.writeHead(path === "/healthz" ? (ok ? 200 : 503) : 404, { "content-type": "text/plain" });
    res.end(ok ? "ok\n" : path === "/healthz" ? "unhealthy\n" : "not found\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      const bound = address !== null && typeof address === "object" ? address.port : port;
      logger.info({ port: bound }, `${HEALTH_MESSAGE} ${running.metrics ? "/healthz and /metrics" : "/healthz"}`);
      resolve(server);
    });
  });
}

/** Answers `/metrics`: the registry's text (200), 404 without metrics, 500 when collecting fails. */
async function serveMetrics(metrics: CadreMetrics | undefined, res: ServerResponse, logger: Logger): Promise<void> {
  if (!metrics) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
    return;
  }
  try {
    const text = await metricsText(metrics);
    res.writeHead(200, { "content-type": metrics.registry.contentType });
    res.end(text);
  } catch (err) {
    logger.warn({ err }, "cannot collect metrics");
    res.writeHead(500, { "content-type": "text/plain" });
    res.end("cannot collect metrics\n");
  }
}
