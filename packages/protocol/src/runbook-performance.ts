/**
 * Seed 003's `/performance-monitor` commands, served by the monitor as
 * `mon.performance-monitor.<operation>`: their requests take the seed's JSON shapes (snake_case;
 * a field the schema does not know is refused by name), their replies say what was measured.
 * What each computes is in services/monitor/src/runbook/performance.ts.
 *
 * - `comprehensive-analysis` (and `emergency-assessment`, its alias): the six metrics, the
 *   trends the monitor announced within `time_horizon`, each service's heap and RSS, the stage
 *   bottlenecks, the hosts' load, and findings, each from one documented rule ({@link FINDING_RULES});
 * - `bottleneck-analysis`: per kind the stage holding the largest share of its tasks' time, with
 *   every stage's share, mean and p95, ranked; and the busiest host;
 * - `post-emergency-monitoring`: a watch for `monitoring_duration` at a raised sensitivity
 *   ({@link SENSITIVITY}) that reports the regressions it saw when it ends.
 */

import { z } from "zod";
import { Id, Millis } from "./messages.js";
import { METRIC_NAMES, MetricStateSchema } from "./monitoring.js";
import { NameSchema } from "./team.js";

const Count = z.number().int().nonnegative();
/** The seed's free-text fields (scope, focus...): taken, echoed, never interpreted. */
const Note = z.string().max(200);
const Notes = z.array(Note).max(20);

// --- durations -------------------------------------------------------------------------------

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/**
 * A duration as the seed writes it: `"2h"`, `"30m"`, `"90s"`, `"500ms"` (a decimal count is
 * taken: `"1.5h"`), or a number of milliseconds (an integer). The result is whole milliseconds,
 * above 0.
 * @throws RangeError naming what is wrong: no unit, an unknown unit, a compound (`"1h30m"`), a
 *   negative, zero or fractional number of ms, or anything that is not a string or a number.
 */
export function parseDuration(value: unknown): number {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value <= 0) {
      throw new RangeError(`a duration in ms is a whole number above 0, not ${value}`);
    }
    return value;
  }
  if (typeof value !== "string") throw new RangeError('a duration is "2h", "30m", "90s", "500ms" or a number of ms');
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!m?.[1] || !m[2]) {
    throw new RangeError(
      `"${value.slice(0, 40)}" is not a duration: write "2h", "30m", "90s", "500ms" or a number of ms`,
    );
  }
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
  if (!(ms > 0)) throw new RangeError(`"${value}" is not above 0 ms`);
  return ms;
}

/** A duration field: {@link parseDuration}, then within [min, max] ms. Its output is ms. */
const Duration = (min: number, max: number) =>
  z.union([z.number(), z.string().max(32)]).transform((v, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: "custom", message: `${ms} ms is outside ${min} ms to ${max} ms` });
      return z.NEVER;
    }
    return ms;
  });

/** The longest post-emergency watch (24 h): a longer one is refused, not shortened. */
export const MAX_MONITORING_MS = 24 * 3_600_000;
/** The shortest (1 s): less sees too few of the monitor's samples to say anything. */
export const MIN_MONITORING_MS = 1000;
/** The furthest back comprehensive-analysis looks for trends (7 days). */
export const MAX_HORIZON_MS = 7 * 24 * 3_600_000;
/** comprehensive-analysis' `time_horizon` when none is given: 1 h. */
export const DEFAULT_HORIZON_MS = 3_600_000;

// --- the analysis ----------------------------------------------------------------------------

/**
 * `/performance-monitor comprehensive-analysis` (and `emergency-assessment`, which takes the
 * same fields: the seed's `scope` and `focus` there, its other fields here).
 */
export const ComprehensiveRequestSchema = z
  .object({
    analysis_scope: Note.optional(),
    /** How far back the trends the monitor announced are read. @default 1h */
    time_horizon: Duration(1000, MAX_HORIZON_MS).optional(),
    /** No correlation statistic is computed: reported in `ignored` when true. */
    correlation_analysis: z.boolean().optional(),
    /** The stage bottlenecks (sup.perf.stages) and their findings. @default true */
    bottleneck_identification: z.boolean().default(true),
    /** A suggestion with each finding. @default true */
    optimization_opportunities: z.boolean().default(true),
    scope: Note.optional(),
    focus: Notes.optional(),
  })
  .strict()
  .prefault({});

/** The rules a finding comes from (what each means: FINDING_RULES in the monitor's performance.ts). */
export const FindingRuleSchema = z.enum([
  "metric_crossed",
  "metric_pending",
  "stage_bottleneck",
  "host_loaded",
  "host_unhealthy",
  "heap_high",
  "trend",
]);

/** One finding: the rule, what it is about, the measured value against the rule's limit. */
export const FindingSchema = z.object({
  rule: FindingRuleSchema,
  severity: z.enum(["critical", "warning", "info"]),
  /** A metric, `<kind>/<stage>`, a host id, `<service>/<id>` or a trend's series. */
  subject: z.string().max(300),
  value: z.number().nullable(),
  limit: z.number().nullable(),
  message: z.string().max(1000),
  /** What an operator could do about it (with `optimization_opportunities`). */
  suggestion: z.string().max(1000).optional(),
});

const MetricRow = MetricStateSchema;

/** A trend the monitor announced (PERFORMANCE_DEGRADATION_DETECTED or MEMORY_TREND): the latest of its series. */
export const TrendRowSchema = z.object({
  type: z.enum(["PERFORMANCE_DEGRADATION_DETECTED", "MEMORY_TREND"]),
  series: z.string().max(300),
  direction: z.enum(["increasing", "decreasing"]),
  slopePerSecond: z.number(),
  relativeChange: z.number(),
  confidence: z.number(),
  windowMs: z.number(),
  /** When the latest was stored (the events stream's time). */
  at: Millis,
  /** How many the monitor announced for this series and type within the horizon. */
  count: Count,
});

const HostRow = z.object({
  hostId: Id,
  state: z.string().max(20),
  /** The 1-minute load average over the host's CPUs. */
  load: z.number().nonnegative(),
  actors: Count,
  busy: Count,
  maxActors: Count,
  cordoned: z.boolean(),
});

/** A stage of a kind, as sup.perf.stages measures it, with its share of the kind's time. */
const StageRow = z.object({
  stage: z.string().max(20),
  count: Count,
  sumSeconds: z.number().nonnegative(),
  /** Of the kind's time in every stage. */
  share: z.number(),
  meanSeconds: z.number(),
  p50Seconds: z.number().nullable(),
  p95Seconds: z.number().nullable(),
});

/** One kind's stages, the largest share first. */
export const KindStagesSchema = z.object({
  kind: NameSchema,
  /** The stage holding the largest share (null: no time measured). */
  bottleneck: z.string().max(20).nullable(),
  share: z.number(),
  /** The seconds the bottleneck stage holds: what the kinds are ranked by. */
  bottleneckSeconds: z.number().nonnegative(),
  totalSeconds: z.number().nonnegative(),
  tasks: Count,
  stages: z.array(StageRow),
});

export const ComprehensiveReplySchema = z.object({
  at: Millis,
  /** The seed's fields, as given. */
  asked: z.object({ analysis_scope: Note.nullable(), scope: Note.nullable(), focus: Notes }),
  /** The six metrics, as the monitor holds them now (mon.status). */
  metrics: z.array(MetricRow),
  trends: z.object({
    horizonMs: Millis,
    series: z.array(TrendRowSchema),
    /** Why the events stream could not be read (the rest of the analysis stands). */
    error: z.string().max(1000).optional(),
  }),
  /** Each service reporting now: its heap and RSS. */
  services: z.array(
    z.object({
      service: z.string().max(20),
      id: Id,
      at: Millis,
      heapUsedBytes: Count,
      heapLimitBytes: Count,
      heapPercent: z.number(),
      rssBytes: Count,
    }),
  ),
  /** Per kind (null when `bottleneck_identification` is false). */
  bottlenecks: z.array(KindStagesSchema).nullable(),
  hosts: z.array(HostRow),
  /** Critical first, then warnings, then the rest. */
  findings: z.array(FindingSchema),
  /** Requested fields Cadre cannot act on, with why. */
  ignored: z.array(z.string()),
});

/** `/performance-monitor bottleneck-analysis`. */
export const BottleneckRequestSchema = z
  .object({ scope: Note.optional(), focus: Notes.optional(), analysis_scope: Note.optional() })
  .strict()
  .default({});
export const BottleneckReplySchema = z.object({
  at: Millis,
  asked: z.object({ scope: Note.nullable(), focus: Notes, analysis_scope: Note.nullable() }),
  /** Ranked: the most seconds held by one stage first. */
  kinds: z.array(KindStagesSchema),
  /** The live host with the most busy actors (then the higher load, then the id); null: none live. */
  busiestHost: HostRow.nullable(),
  hosts: z.array(HostRow),
});

// --- post-emergency monitoring ---------------------------------------------------------------

/**
 * The share of a metric's threshold its value must pass (strictly) to count as a regression
 * during a post-emergency watch: high 50%, medium 75%, low 100% (the threshold itself, without
 * the monitor's hold time).
 */
export const SENSITIVITY = { high: 0.5, medium: 0.75, low: 1 } as const;
export type Sensitivity = keyof typeof SENSITIVITY;

const NO_AUTO_OPTIMIZATION =
  "Cadre does not optimise on its own here: post-emergency-monitoring watches and reports regressions; act on them with the runbook's commands (resource-manager emergency-reallocation, workflow-recovery gradual-resumption). Give false or leave it out";

/** `/performance-monitor post-emergency-monitoring`. */
export const PostEmergencyRequestSchema = z
  .object({
    /** `"2h"`, `"30m"`, `"90s"`, `"500ms"` or ms; 1 s to 24 h. */
    monitoring_duration: Duration(MIN_MONITORING_MS, MAX_MONITORING_MS),
    /** @default "high" */
    alert_sensitivity: z.enum(["high", "medium", "low"]).default("high"),
    /**
     * Entries naming one of the six metrics restrict the watch to those; the seed's other
     * entries (`resource_stability`...) are echoed. No metric named: all six are watched.
     */
    metrics_focus: Notes.optional(),
    /** Only false: Cadre does not optimise on its own (a true is refused, naming this field). */
    auto_optimization: z
      .boolean()
      .refine((v) => v === false, { message: NO_AUTO_OPTIMIZATION })
      .optional(),
  })
  .strict();

/** A metric that passed its regression level during the watch. */
export const RegressionSchema = z.object({
  metric: z.string().max(100),
  threshold: z.number(),
  /** threshold × the sensitivity's share: what the value passed. */
  level: z.number(),
  /** The highest value seen. */
  peak: z.number(),
  firstSeenAt: Millis,
  lastSeenAt: Millis,
  /** Samples whose value was above the level. */
  samplesOver: Count,
  /** Already above the level at the watch's first sample (it did not regress during the watch). */
  atStart: z.boolean(),
  /** Whether the monitor itself saw the metric cross its threshold during the watch. */
  crossed: z.boolean(),
});

export const PostEmergencyReplySchema = z.object({
  startedAt: Millis,
  endedAt: Millis,
  /** The watch's measured length (at least `durationMs`). */
  ms: Millis,
  durationMs: Millis,
  sensitivity: z.object({ level: z.enum(["high", "medium", "low"]), share: z.number() }),
  /** The metrics watched. */
  metrics: z.array(z.enum(METRIC_NAMES)),
  /** The seed's `metrics_focus` entries that name no metric, as given. */
  focus: Notes,
  /** Times the monitor's metrics were read (about every 100 ms). */
  samples: Count,
  regressions: z.array(RegressionSchema),
  health: z.enum(["stable", "regressed"]),
  auto_optimization: z.literal(false),
});

export type ComprehensiveRequest = z.infer<typeof ComprehensiveRequestSchema>;
export type ComprehensiveReply = z.infer<typeof ComprehensiveReplySchema>;
export type Finding = z.infer<typeof FindingSchema>;
export type TrendRow = z.infer<typeof TrendRowSchema>;
export type KindStages = z.infer<typeof KindStagesSchema>;
export type BottleneckRequest = z.infer<typeof BottleneckRequestSchema>;
export type BottleneckReply = z.infer<typeof BottleneckReplySchema>;
export type PostEmergencyRequest = z.infer<typeof PostEmergencyRequestSchema>;
export type PostEmergencyReply = z.infer<typeof PostEmergencyReplySchema>;
export type Regression = z.infer<typeof RegressionSchema>;
