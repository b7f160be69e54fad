/**
 * Pino JSON logs with secrets redacted twice over: by key name (`password`, `token`,
 * `authorization`... at any depth: their values are replaced whatever they are) and by value
 * (every string of a line, the message and the bindings included, goes through `redact` of
 * ./redact.ts: bearer tokens, `password=` assignments, private keys, nkey seeds...).
 */

import { type DestinationStream, type Logger, pino } from "pino";
import { REDACTED, redact, redactDeep, redactProperty } from "./redact.js";

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

/** An error as pino serializes it (message, stack, code, data, causes), redacted. */
const redactError = (err: unknown): unknown => redactDeep(pino.stdSerializers.err(err as Error));

/**
 * A log line's fields with secrets removed. `err` is left to its serializer (above); an error
 * under another key is serialized the same way, so its text is scanned too.
 */
function redactFields(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = k === "err" ? v : v instanceof Error ? redactError(v) : redactProperty(k, v);
  }
  return out;
}

/** Creates a service logger: JSON lines with the service name and pid. */
export function createLogger(service: string, level = "info", destination?: DestinationStream): Logger {
  const logger = pino(
    {
      name: service,
      level,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: {
        err: redactError,
        // The message, once formatted (`logger.info("x %s", y)`, or an error's message).
        msg: (msg: unknown) => (typeof msg === "string" ? redact(msg) : msg),
      },
      formatters: { log: redactFields },
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  // A child's bindings are serialized once, when it is made (pino gives children no bindings
  // formatter), so they are redacted here; children inherit this `child` too.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, options) {
    return child.call(this, redactDeep(bindings) as typeof bindings, options);
  } as typeof logger.child;
  return logger;
}

/** A log call that a flood cannot turn into a flood of lines. */
export type ThrottledLog = (
  level: "info" | "warn" | "error",
  kind: string,
  fields: Record<string, unknown>,
  msg: string,
) => void;

/**
 * Logs at most `perWindow` lines of each kind (a short label: "bad heartbeat", "refused
 * request") per window and counts the rest, so bad input sent in a loop cannot fill a
 * service's log buffer (pino writes asynchronously: lines it has not written yet are memory).
 * The first line of a kind after some were held back says how many (`suppressed`).
 */
export function throttledLog(
  logger: Logger,
  {
    perWindow = 20,
    windowMs = 10_000,
    now = Date.now,
  }: { perWindow?: number; windowMs?: number; now?: () => number } = {},
): ThrottledLog {
  const kinds = new Map<string, { since: number; written: number; suppressed: number }>();
  return (level, kind, fields, msg) => {
    const t = now();
    let k = kinds.get(kind);
    if (!k || t - k.since >= windowMs) {
      k = { since: t, written: 0, suppressed: k?.suppressed ?? 0 };
      kinds.set(kind, k);
    }
    if (k.written >= perWindow) {
      k.suppressed++;
      return;
    }
    k.written++;
    const suppressed = k.suppressed;
    k.suppressed = 0;
    logger[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  };
}
