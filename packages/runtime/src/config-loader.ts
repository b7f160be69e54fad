/** Loads the configuration from a YAML/JSON file, the environment and explicit overrides. */

import { readFileSync } from "node:fs";
import { type Config, InvalidConfigError, parseConfig } from "@cadre/protocol";
import { parse as parseYaml } from "yaml";

/** Where configuration comes from; later sources win. */
export interface ConfigSources {
  /** A YAML or JSON file. */
  file?: string | undefined;
  /** CADRE_NATS_URL, CADRE_NATS_CREDS and CADRE_LOG_LEVEL are read from it. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags. */
  overrides?: Record<string, unknown>;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && prev && typeof prev === "object" && !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Reads a YAML/JSON file into a value; InvalidConfigError if unreadable or unparsable. */
export function readYamlFile(file: string, what = "file"): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidConfigError(`${what} ${file}`, [{ path: "", message: (err as Error).message }]);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new InvalidConfigError(`${what} ${file}`, [
      { path: "", message: `not valid YAML: ${(err as Error).message}` },
    ]);
  }
}

/** Builds the frozen configuration; throws InvalidConfigError naming the source and field. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  let value: Record<string, unknown> = {};
  if (sources.file) {
    const fromFile = readYamlFile(sources.file, "configuration file") ?? {};
    if (typeof fromFile !== "object" || Array.isArray(fromFile)) {
      throw new InvalidConfigError(`configuration file ${sources.file}`, [{ path: "", message: "expected a mapping" }]);
    }
    value = merge(value, fromFile as Record<string, unknown>);
  }
  value = merge(value, {
    natsUrl: env.CADRE_NATS_URL,
    natsCredentials: env.CADRE_NATS_CREDS || undefined,
    natsTls: env.CADRE_NATS_TLS_CA
      ? {
          caFile: env.CADRE_NATS_TLS_CA,
          ...(env.CADRE_NATS_TLS_CERT ? { certFile: env.CADRE_NATS_TLS_CERT } : {}),
          ...(env.CADRE_NATS_TLS_KEY ? { keyFile: env.CADRE_NATS_TLS_KEY } : {}),
        }
      : undefined,
    logLevel: env.CADRE_LOG_LEVEL,
  });
  value = merge(value, sources.overrides ?? {});
  return parseConfig(value, sources.file ? `configuration (${sources.file})` : "configuration");
}
