/**
 * The team file: which agent kinds exist, their role, how many actors of each to run, their
 * behaviour and the JSON Schema their output must match.
 *
 * ```yaml
 * name: software-team
 * root: engineering-director
 * input: { feature: "login" }
 * kinds:
 *   engineering-director:
 *     role: director
 *     behaviour: { type: script, delegate: [{ kind: backend-engineer }], output: { summary: "done" } }
 *     output: { type: object, required: [summary] }
 *   backend-engineer:
 *     role: agent
 *     behaviour: { type: command, run: "echo '{\"summary\":\"ok\"}'" }
 * ```
 */

import { createHash } from "node:crypto";
import { z } from "zod";
import { formatIssues, InvalidConfigError } from "./errors.js";
import { BudgetSchema } from "./llm.js";

/** A kind or team name: lower case, digits and "-", usable as a subject token. */
export const NameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'use 1-48 lower-case letters, digits and "-" (starting with a letter or digit)');

const Probability = z.number().min(0).max(1);
/** Milliseconds: a fixed number or a [min, max] range picked with the behaviour's seeded random. */
const Duration = z.union([
  z.number().int().min(0),
  z.tuple([z.number().int().min(0), z.number().int().min(0)]).refine(([a, b]) => a <= b, "min must be <= max"),
]);

/** One delegation a script makes: `count` subtasks of `kind`, each with a templated input. */
export const DelegationSpecSchema = z
  .object({
    kind: NameSchema,
    input: z.record(z.string(), z.unknown()).default({}),
    count: z.number().int().min(1).max(1000).default(1),
    /** The subtasks' priority (it decides deadlock victims). @default the delegating task's */
    priority: z.number().int().optional(),
  })
  .strict();

/**
 * A deterministic behaviour for demos and tests. Each roll (fail, invalid output, sleep) uses a
 * random stream seeded from `seed`, the task id and the attempt, so a run can be replayed.
 */
export const ScriptBehaviourSchema = z
  .object({
    type: z.literal("script"),
    /** @default 1 */
    seed: z.number().int().default(1),
    /** Work time before answering. @default 0 */
    sleepMs: Duration.default(0),
    /**
     * A slowdown: each attempt an actor of this kind runs sleeps this much longer than its
     * previous one (the n-th attempt of an actor, from 0, sleeps `sleepMs + n × sleepGrowthMs`).
     * Counted per actor, so an actor placed anew (moved, replaced) starts again at `sleepMs`;
     * for demonstrating performance degradation. Absent is 0 (optional, not defaulted, so a team
     * that does not use it keeps its id: see {@link teamId}). @default 0
     */
    sleepGrowthMs: z.number().int().min(0).max(60_000).optional(),
    /**
     * A gate: each attempt first waits, re-reading every 100 ms, until the workflow's shared
     * state holds this name; work that must stay running until a demo or a test opens it.
     * Optional, not defaulted, like `sleepGrowthMs`. @default none
     */
    gate: NameSchema.optional(),
    /** Subtasks to delegate (directors and leads only). */
    delegate: z.array(DelegationSpecSchema).default([]),
    /** Output template: strings may hold `{{input.x}}`, `{{task.id}}`, `{{children}}`... */
    output: z.unknown().default({}),
    /** Probability that an attempt fails with a retryable error. @default 0 */
    failProbability: Probability.default(0),
    /** Probability that an attempt returns output that breaks the kind's schema. @default 0 */
    invalidProbability: Probability.default(0),
    /**
     * A broken agent: every answer of an actor of this kind breaks the schema, except from an
     * actor that replaced a quarantined one (for demonstrating quarantine). @default false
     */
    brokenUntilReplaced: z.boolean().default(false),
    /** Pause after acquiring each resource (see the kind's `acquire`), to make contention reproducible. @default 0 */
    acquireGapMs: z.number().int().min(0).max(60_000).default(0),
    /**
     * Names of the workflow's shared state this kind sets once its output is ready, all in one
     * transaction; values are templates like `output`, with `{{output}}` in scope too. @default {}
     */
    state: z.record(NameSchema, z.unknown()).default({}),
  })
  .strict();

/** Runs a shell command; its standard output (JSON if it parses, else `{ stdout }`) is the output. */
export const CommandBehaviourSchema = z
  .object({
    type: z.literal("command"),
    /** Run with `/bin/sh -c`; the task input is on standard input as JSON and in CADRE_INPUT. */
    run: z.string().min(1),
    /** @default 30000 */
    timeoutMs: z.number().int().min(1).max(3_600_000).default(30_000),
  })
  .strict();

/**
 * Asks a model (an OpenAI-compatible Chat Completions endpoint, declared in the configuration
 * under `llm.providers`: the API key never comes from the team file). The answer is the output:
 * parsed as JSON when it is JSON, else `{ text }`; the kind's output schema is sent as
 * `response_format: json_schema` where the provider supports it, and always checked by the
 * supervisor, so a model that breaks it is quarantined like any agent.
 *
 * A director or lead offers each kind of `delegates` to the model as a tool (the kind's name,
 * description and input schema). Its tool calls become subtasks, delegated through the
 * supervisor's policy; their outputs (or the typed refusal) go back to the model as tool
 * messages until it answers, for at most `maxTurns` model calls.
 */
export const LlmBehaviourSchema = z
  .object({
    type: z.literal("llm"),
    /** A provider of the configuration's `llm.providers`. */
    provider: NameSchema,
    model: z.string().min(1).max(200),
    /** The system message. @default none */
    system: z.string().max(100_000).default(""),
    /** The user message: a template over the task (`{{input.x}}`, `{{task.id}}`, `{{input}}`). */
    prompt: z.string().min(1).max(100_000),
    /** @default 1024 */
    maxTokens: z.number().int().min(1).max(1_000_000).default(1024),
    temperature: z.number().min(0).max(2).optional(),
    /** One call's time limit (the provider's answer, retries included). @default 60000 */
    timeoutMs: z.number().int().min(1).max(3_600_000).default(60_000),
    /** Kinds the model may delegate to, as tools (directors and leads). @default [] */
    delegates: z.array(NameSchema).max(128).default([]),
    /** Model calls of one task at most (a director's conversation). @default 8 */
    maxTurns: z.number().int().min(1).max(100).default(8),
  })
  .strict();

export const BehaviourSchema = z.discriminatedUnion("type", [
  ScriptBehaviourSchema,
  CommandBehaviourSchema,
  LlmBehaviourSchema,
]);

/** A JSON Schema object (checked by compiling it, see {@link compileOutputSchema}). */
const JsonSchemaObject = z.record(z.string(), z.unknown());

export const KindSchema = z
  .object({
    role: z.enum(["director", "lead", "agent"]),
    description: z.string().optional(),
    /** Actors of this kind to run, spread over hosts. @default 2 */
    replicas: z.number().int().min(1).max(256).default(2),
    /** Place actors of this kind only on these agent-hosts (by host id). @default any host */
    hosts: z
      .array(z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, "host ids are subject tokens of 1-200 characters"))
      .min(1)
      .max(256)
      .optional(),
    behaviour: BehaviourSchema,
    /** JSON Schema of the output. @default {} (anything) */
    output: JsonSchemaObject.default({}),
    /**
     * JSON Schema of the input: what a model delegating to this kind is told to pass (the
     * tool's parameters), and what its tool call is checked against. @default {} (anything)
     */
    input: JsonSchemaObject.default({}),
    /** What the model calls of all tasks of this kind in one workflow may spend. @default none */
    budget: BudgetSchema.optional(),
    /**
     * Resources (declared under the team's `resources`) each attempt acquires, in this order,
     * before it plans or works; held until the attempt ends. @default []
     */
    acquire: z.array(NameSchema).default([]),
    /**
     * How the kind's failed attempts are retried, in place of the configuration's `tasks`
     * settings: `attempts` is the most deliveries of one task (JetStream's `max_deliver` for the
     * kind's consumer; `tasks.maxDeliver` when absent), `backoffMs` the delay before the second
     * attempt, doubled for each one after (`tasks.retryBackoffMs` when absent). Only retryable
     * failures are retried. @default the configuration's
     */
    retry: z
      .object({
        attempts: z.number().int().min(1).max(100).optional(),
        backoffMs: z.number().int().min(0).max(600_000).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/**
 * A named resource tasks acquire: a pool of `capacity` slots, or an exclusive lock (capacity 1).
 * Names are shared by every team in the cluster; the first team to declare one sets its capacity.
 */
export const ResourceSchema = z.object({ capacity: z.number().int().min(1).max(10_000).default(1) }).strict();

export const TeamSchema = z
  .object({
    name: NameSchema,
    /** The kind that receives the workflow's root task. */
    root: NameSchema,
    /** Input of the root task. */
    input: z.record(z.string(), z.unknown()).default({}),
    /**
     * The team's actors' priority: at max_concurrent_agents, placing a team's actors preempts
     * actors of lower-priority teams (never equal or higher). @default 0
     */
    priority: z.number().int().default(0),
    /** Resources the kinds acquire (see KindSchema.acquire). @default {} */
    resources: z.record(NameSchema, ResourceSchema).default({}),
    /** What each workflow's model calls may spend (a submit may give its own). @default none */
    budget: BudgetSchema.optional(),
    kinds: z.record(NameSchema, KindSchema),
  })
  .strict()
  .superRefine((team, ctx) => {
    if (!(team.root in team.kinds)) {
      ctx.addIssue({ code: "custom", path: ["root"], message: `root kind "${team.root}" is not declared under kinds` });
    }
    for (const [name, kind] of Object.entries(team.kinds)) {
      kind.acquire.forEach((r, i) => {
        if (!(r in team.resources)) {
          ctx.addIssue({
            code: "custom",
            path: ["kinds", name, "acquire", i],
            message: `resource "${r}" is not declared under resources`,
          });
        }
      });
      for (const field of ["output", "input"] as const) {
        try {
          compileOutputSchema(kind[field]);
        } catch (err) {
          ctx.addIssue({
            code: "custom",
            path: ["kinds", name, field],
            message: `not a usable JSON Schema: ${(err as Error).message}`,
          });
        }
      }
      const b = kind.behaviour;
      if (b.type === "command") continue;
      const delegated = b.type === "script" ? b.delegate.map((d) => d.kind) : b.delegates;
      const field = b.type === "script" ? "delegate" : "delegates";
      delegated.forEach((k, i) => {
        if (!(k in team.kinds)) {
          ctx.addIssue({
            code: "custom",
            path: ["kinds", name, "behaviour", field, ...(b.type === "script" ? [i, "kind"] : [i])],
            message: `kind "${k}" is not declared under kinds`,
          });
        }
      });
      if (kind.role === "agent" && delegated.length > 0) {
        ctx.addIssue({
          code: "custom",
          path: ["kinds", name, "behaviour", field],
          message: 'an agent cannot delegate; give the kind role "lead" or "director"',
        });
      }
    }
  });

export type Team = z.infer<typeof TeamSchema>;
export type TeamInput = z.input<typeof TeamSchema>;
export type Kind = z.infer<typeof KindSchema>;
export type Behaviour = z.infer<typeof BehaviourSchema>;
export type ScriptBehaviour = z.infer<typeof ScriptBehaviourSchema>;
export type CommandBehaviour = z.infer<typeof CommandBehaviourSchema>;
export type LlmBehaviour = z.infer<typeof LlmBehaviourSchema>;

/** Parses a team (from YAML or the wire); throws InvalidConfigError naming each bad field. */
export function parseTeam(value: unknown, source = "team file"): Team {
  const r = TeamSchema.safeParse(value);
  if (!r.success) throw new InvalidConfigError(source, formatIssues(r.error.issues));
  return r.data;
}

/**
 * A team's identity: its name and a hash of its content. A changed team file is a new team, so
 * actors never run a definition other than the one their workflow was submitted with.
 */
export function teamId(team: Team): string {
  // Keyed by the plain JSON, which the engine writes several times faster than the canonical
  // form: the same JSON is the same content in the same key order, so the same id (the same
  // team in another key order is a miss, and hashes to the same id). 52 us a submit before.
  const json = JSON.stringify(team);
  let id = ids.get(json);
  if (id === undefined) {
    id = `${team.name}-${createHash("sha256").update(stableStringify(team)).digest("hex").slice(0, 10)}`;
    if (ids.size >= MAX_COMPILED) ids.delete(ids.keys().next().value as string);
    ids.set(json, id);
  }
  return id;
}

const ids = new Map<string, string>();

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    // Keys holding undefined are skipped, as JSON does: `{ a: undefined }` is the same team as `{}`.
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

const compiled = new Map<string, z.ZodType>();
const MAX_COMPILED = 1000;

/**
 * Compiles a kind's JSON Schema to a zod schema. Cached by content, not identity: every
 * decoded team is a fresh object, and compiling on each submit showed in the benchmark.
 */
export function compileOutputSchema(schema: Record<string, unknown>): z.ZodType {
  const key = stableStringify(schema);
  let s = compiled.get(key);
  if (!s) {
    s = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, s);
  }
  return s;
}

/** Checks an output against a kind's schema; returns the issues (empty when valid). */
export function validateOutput(kind: Kind, output: unknown): { path: string; message: string }[] {
  const r = compileOutputSchema(kind.output).safeParse(output);
  return r.success ? [] : formatIssues(r.error.issues);
}
