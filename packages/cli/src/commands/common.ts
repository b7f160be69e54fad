/**
 * What every `cadre` command shares: the exit codes and how an error maps to one, the
 * configuration from the global options, a connection with a {@link SupervisorClient}, and
 * option parsers that turn a bad value into exit code 2.
 */

import { type Budget, BudgetSchema, type CadreError, type Config, formatIssues, toCadreError } from "@cadre/protocol";
import {
  connectNats,
  isTransient,
  loadConfig,
  type NatsConnection,
  natsAuthOf,
  retry,
  SupervisorClient,
} from "@cadre/runtime";
import { type Command, InvalidArgumentError } from "commander";

/** The exit codes, one meaning each. */
export const EXIT = { ok: 0, failed: 1, badInput: 2, unavailable: 3, refused: 4, internal: 5 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Error codes by the exit code they give (anything else: {@link EXIT.internal}). */
const BY_CODE: Record<string, ExitCode> = {
  INVALID_CONFIG: EXIT.badInput,
  PROTOCOL_ERROR: EXIT.badInput,
  PROTOCOL_VERSION_MISMATCH: EXIT.badInput,
  NOT_FOUND: EXIT.badInput,
  CIRCULAR_DELEGATION: EXIT.badInput,
  DELEGATION_DEPTH_EXCEEDED: EXIT.badInput,
  UNAVAILABLE: EXIT.unavailable,
  TIMEOUT: EXIT.unavailable,
  CIRCUIT_OPEN: EXIT.unavailable,
  RESOURCE_EXHAUSTED: EXIT.refused,
  THROTTLED: EXIT.refused,
  CONCURRENT_MODIFICATION: EXIT.refused,
  STATE_LIMIT_EXCEEDED: EXIT.refused,
  PERMISSION_DENIED: EXIT.refused,
};

/** A refusal because the workflow is in data protection mode (sent as UNAVAILABLE: it waits, nothing is lost). */
export const isFrozenRefusal = (e: CadreError): boolean => e.data.frozen === true || /\bis frozen\b/.test(e.message);

/** The exit code an error gives. */
export function exitCodeOf(err: unknown): ExitCode {
  const e = toCadreError(err);
  if (e.code === "UNAVAILABLE" && isFrozenRefusal(e)) return EXIT.refused;
  // A code this CLI does not know arrives as INTERNAL keeping the sender's code.
  const code = e.code === "INTERNAL" && typeof e.data.originalCode === "string" ? e.data.originalCode : e.code;
  const byCode = BY_CODE[code];
  if (byCode !== undefined) return byCode;
  // A NATS failure that is not one of Cadre's errors (a JetStream read while a leader is elected).
  return isTransient(err) ? EXIT.unavailable : EXIT.internal;
}

/** The exit codes, as every command's help lists them. */
export const EXIT_HELP = `
Exit codes:
  0  done
  1  the workflow failed or was cancelled (cadre run, cadre demo)
  2  bad input: an unknown command or option, a bad value, an invalid team file or configuration,
     a request over the NATS server's max_payload, something that does not exist
     (INVALID_CONFIG, PROTOCOL_ERROR, PROTOCOL_VERSION_MISMATCH, NOT_FOUND, CIRCULAR_DELEGATION,
     DELEGATION_DEPTH_EXCEEDED)
  3  unreachable or timed out: no NATS server, no supervisor answering, no answer in time
     (UNAVAILABLE, TIMEOUT, CIRCUIT_OPEN)
  4  refused: a quota or throttle (RESOURCE_EXHAUSTED), a frozen workflow, a state limit
     (STATE_LIMIT_EXCEEDED), a concurrent change still in the way after retries
     (CONCURRENT_MODIFICATION), an identity the server refuses or whose role may not do this
     (PERMISSION_DENIED)
  5  an internal error (INTERNAL or an unexpected failure): the message says what
`;

/** Prints the error and exits with its code. */
export function fail(err: unknown): never {
  const e = toCadreError(err);
  process.stderr.write(`cadre: ${e.message}\n`);
  process.exit(exitCodeOf(err));
}

/** Global options and what is derived from them. */
export interface Ctx {
  config(): Config;
  /** The --config file, if given. */
  configFile(): string | undefined;
}

export function contextOf(program: Command): Ctx {
  let cached: Config | undefined;
  const opts = () =>
    program.opts<{
      natsUrl?: string;
      config?: string;
      natsCreds?: string;
      natsTlsCa?: string;
      natsTlsCert?: string;
      natsTlsKey?: string;
    }>();
  return {
    config: () => {
      cached ??= loadConfig({
        file: opts().config,
        overrides: {
          natsUrl: opts().natsUrl,
          natsCredentials: opts().natsCreds,
          natsTls: opts().natsTlsCa
            ? { caFile: opts().natsTlsCa, certFile: opts().natsTlsCert, keyFile: opts().natsTlsKey }
            : undefined,
        },
      });
      return cached;
    },
    configFile: () => opts().config,
  };
}

/** What must run before an {@link action} exits (flushing the trace's spans); registered by main.ts. */
const exitHooks: (() => Promise<void>)[] = [];

/** Registers a hook that {@link action} awaits before it exits. */
export function beforeExit(hook: () => Promise<void>): void {
  exitHooks.push(hook);
}

async function runExitHooks(): Promise<void> {
  await Promise.allSettled(exitHooks.splice(0).map((hook) => hook()));
}

/**
 * An action that prints an error and exits with its code, and exits with the code it returns
 * (a finished action that returns nothing exits 0).
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<unknown>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code: unknown;
    try {
      code = await fn(...args);
    } catch (err) {
      await runExitHooks();
      fail(err);
    }
    await runExitHooks();
    process.exit(typeof code === "number" ? code : EXIT.ok);
  };
}

/** Connects to NATS, runs `fn` with a supervisor client, closes the connection. */
export async function withSupervisor<T>(
  ctx: Ctx,
  fn: (client: SupervisorClient, nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const cfg = ctx.config();
  const nc = await connectNats(cfg.natsUrl, "cadre-cli", undefined, natsAuthOf(cfg));
  try {
    return await fn(new SupervisorClient(nc, { sender: "cadre-cli", timeoutMs: cfg.requestTimeoutMs }), nc);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/**
 * A change, tried again while another writer's change gets in the way (CONCURRENT_MODIFICATION);
 * still in the way after the last attempt it is a refusal (exit 4).
 */
export function changing<T>(fn: () => Promise<T>): Promise<T> {
  return retry(fn, {
    maxAttempts: 4,
    baseMs: 100,
    maxMs: 1000,
    isRetryable: (err) => toCadreError(err).code === "CONCURRENT_MODIFICATION",
  });
}

/** Writes a line (or lines) to standard output. */
export const print = (text: string): void => {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
};

/** Prints `value` as one JSON line. */
export const printJson = (value: unknown): void => print(JSON.stringify(value));

/** Option parser: a whole number of at least `min` (and at most `max`). */
export const intAtLeast =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected a whole number ${range}, got "${value}"`);
    }
    return n;
  };

/** Option parser: a budget as JSON (`{"requests":6,"tokens":20000,"costUsd":0.5}`), fields checked. */
export const budgetArg = (value: string): Budget => {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError(`expected a JSON object like '{"requests":6,"costUsd":0.5}', got "${value}"`);
  }
  const r = BudgetSchema.safeParse(raw);
  if (!r.success) {
    const issues = formatIssues(r.error.issues).map((i) => `${i.path || "budget"}: ${i.message}`);
    throw new InvalidArgumentError(`${issues.join("; ")} (fields: tokens, costUsd, requests)`);
  }
  return r.data;
};

/** Option parser: a positive number of seconds, as milliseconds. */
export const seconds = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number of seconds, got "${value}"`);
  return Math.round(n * 1000);
};

/** Adds the exit codes to the help of a command and of every command under it. */
export function documentExitCodes(cmd: Command): void {
  cmd.addHelpText("after", EXIT_HELP);
  for (const sub of cmd.commands) documentExitCodes(sub);
}
