/**
 * The shared `main` of every Cadre service: `--help`, configuration from flags, file and
 * environment (exit 2 with the field named when it is wrong), a JSON logger, a `ready` log
 * line once serving, and a clean stop on SIGINT/SIGTERM.
 */

import { type Config, toCadreError } from "@cadre/protocol";
import { Command } from "commander";
import { loadConfig } from "./config-loader.js";
import { createLogger, type Logger } from "./logger.js";

/** A running service. */
export interface RunningService {
  stop(): Promise<void>;
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

/** Parses the command line and runs the service until a signal stops it. */
export async function runService(def: ServiceDefinition, argv = process.argv): Promise<void> {
  const program = new Command(def.name)
    .description(def.description)
    .option("--nats-url <url>", "NATS server URL(s), comma-separated (env CADRE_NATS_URL)")
    .option("--config <file>", "YAML or JSON configuration file")
    .option("--log-level <level>", "trace, debug, info, warn, error, fatal or silent (env CADRE_LOG_LEVEL)")
    .showHelpAfterError();
  def.options?.(program);
  program.parse(argv);
  const opts = program.opts<Record<string, unknown>>();

  let config: Config;
  try {
    config = loadConfig({
      file: opts.config as string | undefined,
      overrides: { natsUrl: opts.natsUrl, logLevel: opts.logLevel },
    });
  } catch (err) {
    process.stderr.write(`${def.name}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger(def.name, config.logLevel);
  let running: RunningService;
  try {
    running = await def.start({ config, logger, options: opts });
  } catch (err) {
    const e = toCadreError(err);
    logger.fatal({ err: e, code: e.code }, `cannot start: ${e.message}`);
    process.stderr.write(`${def.name}: cannot start: ${e.message}\n`);
    process.exit(1);
  }
  // Launchers wait for this line, so it is printed whatever the configured level.
  logger.child({}, { level: "info" }).info(READY_MESSAGE);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    try {
      await running.stop();
    } catch (err) {
      logger.error({ err }, "error while stopping");
    }
    logger.flush?.();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}
