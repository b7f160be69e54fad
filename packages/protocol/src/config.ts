/**
 * The configuration schema. Parsed once at start-up into a frozen object; a bad value fails
 * fast with the field's path. The `orchestration_limits` block keeps the seed's names so
 * operators recognise them; Cadre's own settings are camelCase with their unit in the name.
 */

import { z } from "zod";
import { formatIssues, InvalidConfigError } from "./errors.js";
import { CRITICAL_EVENTS } from "./events.js";
import { MonitorThresholdsSchema } from "./monitoring.js";

/** One breaker's settings, defaulting to the seed's threshold and timeout. */
/**
 * The moments a hook can be registered for, in the order they occur in a task's life
 * (`onProgress`: a streamed model answer is arriving, at most once a second per task).
 */
export const HOOK_EVENTS = [
  "onSpawn",
  "beforeTask",
  "onDelegation",
  "onProgress",
  "afterTask",
  "onTaskFailed",
  "onTerminate",
] as const;

const breaker = (threshold: number, resetTimeoutMs: number) =>
  z
    .object({
      /** Consecutive failures that open the circuit. */
      threshold: z.number().int().min(1).default(threshold),
      /** The longest the circuit stays open (after repeated failed trials). */
      resetTimeoutMs: z.number().int().min(0).default(resetTimeoutMs),
      /** How long the first opening lasts; doubles with each failed trial. @default 1000 */
      firstResetMs: z.number().int().min(0).default(1000),
    })
    .strict()
    .prefault({});

/** The seed's limits (seeds/000), with its values as defaults. */
export const OrchestrationLimitsSchema = z
  .object({
    /** @default 50 */
    max_concurrent_agents: z.number().int().positive().default(50),
    /** @default 10 */
    max_agents_per_orchestrator: z.number().int().positive().default(10),
    /** @default 5 */
    max_delegation_depth: z.number().int().positive().default(5),
    /** @default 10000 */
    max_event_queue_size: z.number().int().positive().default(10_000),
    /** @default 100 */
    max_state_size_mb: z.number().positive().default(100),
    /** @default 24 */
    session_timeout_hours: z.number().positive().default(24),
  })
  .strict();

export const ConfigSchema = z
  .object({
    /** NATS server(s), comma-separated. @default "nats://127.0.0.1:4222" */
    natsUrl: z
      .string()
      .regex(
        /^\s*(?:nats|tls|ws|wss):\/\/(?:[^\s@/,]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?\/?(?:\s*,\s*(?:nats|tls|ws|wss):\/\/(?:[^\s@/,]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?\/?)*\s*$/,
        "expected nats://host:port (or tls://, ws://, wss://), several separated by commas",
      )
      .default("nats://127.0.0.1:4222"),
    /**
     * The NATS identity: an nkey user seed file or a `.creds` file (`cadre security init`
     * writes one per service). Absent: `user:password@` in natsUrl, or anonymous.
     */
    natsCredentials: z.string().min(1).optional(),
    /** TLS to NATS: the CA to trust and, for mutual TLS, this identity's certificate and key (`cadre security init --tls`). */
    natsTls: z
      .object({
        caFile: z.string().min(1),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
      })
      .strict()
      .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
        message: "give certFile and keyFile together",
      })
      .optional(),
    /** @default "info" */
    logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    orchestration_limits: OrchestrationLimitsSchema.prefault({}),
    tasks: z
      .object({
        /** How long JetStream waits for an ack before redelivering; a working actor extends it. @default 30000 */
        ackWaitMs: z.number().int().min(100).default(30_000),
        /** Deliveries of one task before it fails for good. @default 5 */
        maxDeliver: z.number().int().min(1).max(100).default(5),
        /** First delay before a failed attempt is redelivered; doubles per attempt. @default 500 */
        retryBackoffMs: z.number().int().min(0).default(500),
        /** Time limit for one attempt of a task. @default 600000 */
        attemptTimeoutMs: z.number().int().min(1).default(600_000),
        /**
         * How long after a host is declared unreachable the tasks its actors held are
         * reassigned to other hosts with a new epoch (its late results are then conflicts,
         * never applied). A heal within this time cancels it. @default 1000
         */
        reassignGraceMs: z.number().int().min(0).default(1000),
      })
      .strict()
      .prefault({}),
    heartbeat: z
      .object({
        /** How often hosts send heartbeats. @default 100 */
        intervalMs: z.number().int().min(10).default(100),
        /**
         * Silence after which a host counts as gone whatever the failure detector says (a
         * backstop; the detector usually decides well before). @default 3000
         */
        hostDeadAfterMs: z.number().int().min(50).default(3000),
        /** Phi at which a host is suspected (an event only). @default 1 */
        suspectPhi: z.number().positive().default(1),
        /** Phi at which a host is unreachable: its actors are placed elsewhere. @default 8 */
        unreachablePhi: z.number().positive().default(8),
        /** Lateness on top of the mean interval the detector tolerates. @default 200 */
        acceptablePauseMs: z.number().int().min(0).default(200),
        /** Floor of the detector's standard deviation. @default 50 */
        minStdDevMs: z.number().int().min(1).default(50),
      })
      .strict()
      .prefault({}),
    supervisor: z
      .object({
        /**
         * A standby supervisor takes over when the active one's lease has not been renewed for
         * this long (judged on the standby's own clock, so clock skew does not matter). @default 3000
         */
        leaseTtlMs: z.number().int().min(100).default(3000),
        /** How often the active supervisor renews and a standby looks. @default 500 */
        leaseRenewMs: z.number().int().min(10).default(500),
        /**
         * Partitions of the work (protocol partitions.ts): each workflow's results are applied by
         * the supervisor holding its partition, so several supervisors share them. Every supervisor
         * of a deployment must use the same number. @default 4
         */
        partitions: z.number().int().min(1).max(1024).default(4),
      })
      .strict()
      .refine((s) => s.leaseRenewMs * 2 <= s.leaseTtlMs, {
        message: "leaseRenewMs must be at most half of leaseTtlMs, or a live supervisor loses its lease",
      })
      .prefault({}),
    quarantine: z
      .object({
        /**
         * Attempts at a task whose responses break the kind's schema (each quarantines its actor
         * and retries on a replacement) before the delegator gets INVALID_AGENT_RESPONSE. @default 3
         */
        maxAttempts: z.number().int().min(1).max(20).default(3),
        /** A valid response this many standard deviations from its kind's mean size or latency is flagged. @default 4 */
        anomalyZ: z.number().positive().default(4),
        /** Responses of a kind seen before anomalies are judged. @default 30 */
        anomalyMinSamples: z.number().int().min(2).default(30),
      })
      .strict()
      .prefault({}),
    events: z
      .object({
        /** Events per second each (source, type) may publish; above it non-critical ones are dropped. @default 1000 */
        ratePerSec: z.number().positive().default(1000),
        /** Events a (source, type) may publish at once above its rate. @default 2000 */
        burst: z.number().int().min(1).default(2000),
        /**
         * Types never dropped: acknowledged by JetStream, retried, delayed (not dropped) when
         * their source is over its rate. @default the table's critical types (events.ts:
         * CRITICAL_EVENTS); TASK_STARTED is among them because reassignment needs it.
         */
        critical: z
          .array(z.string().regex(/^[A-Z][A-Z0-9_]*$/, "event types are UPPER_SNAKE_CASE"))
          .default([...CRITICAL_EVENTS]),
      })
      .strict()
      .prefault({}),
    resources: z
      .object({
        /** How long an attempt waits for a resource before it fails (retryably) with TIMEOUT. @default 10000 */
        acquireTimeoutMs: z.number().int().min(10).default(10_000),
        /** How often the supervisor looks for cycles in the wait-for graph (besides on every new wait). @default 1000 */
        sweepMs: z.number().int().min(10).default(1000),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        /** Replicas of Cadre's streams and buckets (3 on a three-node cluster). @default 1 */
        replicas: z.number().int().min(1).max(5).default(1),
        /** JetStream de-duplication window for task and result message ids. @default 120000 */
        duplicateWindowMs: z.number().int().min(1000).default(120_000),
        /**
         * How long a multi-key state transaction may stay undecided before any reader or writer
         * may abort it (its writer presumed dead). @default 5000
         */
        txnTimeoutMs: z.number().int().min(10).default(5000),
      })
      .strict()
      .prefault({}),
    /**
     * Circuit breakers (seed 000's table): after `threshold` consecutive failures of a
     * dependency its calls fail fast with CIRCUIT_OPEN for `firstResetMs`, then one trial call
     * decides; each failed trial doubles the open time up to `resetTimeoutMs` (the seed's
     * timeout). Only dependency failures count: NATS timeouts, no responders, UNAVAILABLE - not
     * a lost compare-and-set, a quota or a validation error.
     */
    breakers: z
      .object({
        /** Supervisor → one host's spawn endpoint (one breaker per host). */
        agent_spawn: breaker(10, 60_000),
        /** Writes to Cadre's KV buckets (tasks, workflows, workflow state), per process. */
        state_update: breaker(5, 30_000),
        /** Acknowledged (critical) event publishes to JetStream, per process. */
        event_publish: breaker(100, 10_000),
        /** Host → supervisor delegation requests, per host. */
        delegation: breaker(5, 120_000),
        /** Host → a model provider (5xx, timeouts, lost connections), per host and provider. */
        llm_provider: breaker(5, 60_000),
      })
      .strict()
      .prefault({}),
    requestTimeoutMs: z.number().int().min(10).default(5000),
    /**
     * Actor lifecycle (the active supervisor's sweep): a kind with no task queued or running for
     * `passivateAfterMs` has its actors stopped (passivated); a kind with queued work and no live
     * actor is placed again; a team with neither for `session_timeout_hours` is forgotten with
     * its consumers.
     */
    lifecycle: z
      .object({
        /** @default 1000 */
        sweepMs: z.number().int().min(10).default(1000),
        /** @default 300000 (5 min) */
        passivateAfterMs: z.number().int().min(0).default(300_000),
      })
      .strict()
      .prefault({}),
    /** The monitor: the seed's six cluster metrics, their thresholds and actions (monitoring.ts). */
    monitor: MonitorThresholdsSchema,
    /**
     * Model providers for `llm` behaviours: OpenAI-compatible Chat Completions endpoints
     * (OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio) by name. The API key comes from an
     * environment variable or a file of the host, never from a team file, and is redacted from
     * every log line. @default {} (no provider: kinds of type llm are refused at spawn)
     */
    llm: z
      .object({
        providers: z
          .record(
            z.string().regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'provider names: lower-case letters, digits and "-"'),
            z
              .object({
                /** e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` (Ollama). */
                baseURL: z.string().url(),
                /** An environment variable of the host that, when set, is the base URL instead. */
                baseURLEnv: z
                  .string()
                  .regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name")
                  .optional(),
                /** The environment variable holding the API key. */
                apiKeyEnv: z
                  .string()
                  .regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name")
                  .optional(),
                /** A file holding the API key (its first line). */
                apiKeyFile: z.string().min(1).optional(),
                /** Send the kind's output schema as `response_format: json_schema`. @default true */
                jsonSchema: z.boolean().default(true),
                /** Retries of a 429, 5xx or lost connection (honouring Retry-After). @default 2 */
                maxRetries: z.number().int().min(0).max(10).default(2),
                /**
                 * Ask for the answer as server-sent events: the partial text is progress for
                 * hooks and the monitor. Usage is asked for with `stream_options`. @default true
                 */
                stream: z.boolean().default(true),
                /** Prices per million tokens, by model, for costs and `costUsd` budgets. @default {} (free) */
                models: z
                  .record(
                    z.string().min(1).max(200),
                    z
                      .object({
                        inputUsdPerMTok: z.number().nonnegative().default(0),
                        outputUsdPerMTok: z.number().nonnegative().default(0),
                      })
                      .strict(),
                  )
                  .default({}),
                /**
                 * The provider's limits, shared by every host of the cluster (one bucket in
                 * NATS): calls wait for their share. @default none
                 */
                limits: z
                  .object({
                    requestsPerMinute: z.number().int().positive().optional(),
                    /** Counted at each call's worst case (prompt size plus maxTokens), then settled. */
                    tokensPerMinute: z.number().int().positive().optional(),
                    /** The share of a minute that may go at once. @default 1 (a minute's worth) */
                    burst: z.number().positive().max(1).default(1),
                  })
                  .strict()
                  .optional(),
              })
              .strict(),
          )
          .default({}),
      })
      .strict()
      .prefault({}),
    host: z
      .object({
        /** Actors one agent-host runs at most. @default 500 */
        maxActors: z.number().int().positive().default(500),
        /**
         * Hooks the host runs around its actors' work, each isolated (a worker thread for a JS
         * module, a process group for a command) and bounded by its timeout. @default []
         */
        hooks: z
          .array(
            z
              .object({
                name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "hook names use letters, digits, '_' and '-'"),
                event: z.enum(HOOK_EVENTS),
                /** Absolute path of an ES module: `export default async (payload) => result`. */
                module: z.string().startsWith("/", "a hook module is an absolute path").optional(),
                /** A shell command: the payload as JSON on stdin. */
                command: z.string().min(1).optional(),
                /** A failing critical hook stops what it guards (HOOK_FAILED). @default false */
                critical: z.boolean().default(false),
                /** @default 5000 */
                timeoutMs: z.number().int().min(1).max(600_000).default(5000),
              })
              .strict()
              .refine((h) => (h.module === undefined) !== (h.command === undefined), {
                message: "give exactly one of module and command",
              }),
          )
          .default([]),
        /**
         * Extra secret patterns, redacted (`[REDACTED]`) like the built-in ones (bearer tokens,
         * `password=`, private keys, nkey seeds...) from command text, command and hook stderr,
         * hook errors and log lines before they leave the host (runtime/src/redact.ts).
         * JavaScript regular expressions, case-sensitive; a match is replaced whole, or only its
         * first capture group when it has one. @default none
         */
        redact: z
          .object({
            patterns: z.array(
              z.string().superRefine((p, ctx) => {
                let re: RegExp;
                try {
                  re = new RegExp(p);
                } catch (err) {
                  ctx.addIssue({
                    code: "custom",
                    message: `not a valid regular expression: ${(err as Error).message}`,
                  });
                  return;
                }
                if (re.test("")) ctx.addIssue({ code: "custom", message: "matches the empty string" });
              }),
            ),
          })
          .strict()
          .optional(),
        /**
         * Shell commands (`command` behaviours) this host runs: `enabled: false` refuses every
         * actor of such a kind (PERMISSION_DENIED at spawn); `allow` lists regular expressions
         * a command must match (empty: any). Only operators may submit teams in the first place.
         */
        commands: z
          .object({
            /** @default true */
            enabled: z.boolean().default(true),
            /** @default [] (any command) */
            allow: z
              .array(
                z.string().refine(
                  (p) => {
                    try {
                      new RegExp(p);
                      return true;
                    } catch {
                      return false;
                    }
                  },
                  { message: "not a valid regular expression" },
                ),
              )
              .max(256)
              .default([]),
          })
          .strict()
          .prefault({}),
        /** Where results go while the host is cut off from NATS (see runtime/outbox.ts). */
        outbox: z
          .object({
            /** One file per host id in this directory. @default ".cadre/outbox" */
            dir: z.string().min(1).default(".cadre/outbox"),
            /** @default 67108864 (64 MiB) */
            maxBytes: z
              .number()
              .int()
              .min(1024)
              .default(64 * 1024 * 1024),
            /** Records replayed per second once the connection is back. @default 500 */
            replayRatePerSec: z.number().positive().default(500),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = Readonly<z.infer<typeof ConfigSchema>>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type OrchestrationLimits = z.infer<typeof OrchestrationLimitsSchema>;

/** Parses and freezes a configuration; throws InvalidConfigError naming each bad field. */
export function parseConfig(input: unknown, source = "configuration"): Config {
  const r = ConfigSchema.safeParse(input ?? {});
  if (!r.success) throw new InvalidConfigError(source, formatIssues(r.error.issues));
  return deepFreeze(r.data);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
