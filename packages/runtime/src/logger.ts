/** Pino JSON logs with secrets redacted. */

import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

/** Paths that may hold secrets: their values are replaced in every log line. */
export const REDACT_PATHS = [
  "password",
  "token",
  "secret",
  "authorization",
  "*.password",
  "*.token",
  "*.secret",
  "*.authorization",
  "*.nkey",
  "*.creds",
];

/** Strips credentials from a URL so it can be logged (`nats://u:p@h:4222` → `nats://***@h:4222`). */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]+@/g, "//***@");
}

/** Creates a service logger: JSON lines with the service name and pid. */
export function createLogger(service: string, level = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      name: service,
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
