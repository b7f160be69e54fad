/**
 * The monitor's thresholds: the six cluster metrics of seed 000's "Monitoring Requirements" table, each
 * with a threshold, a lower clearing level (hysteresis, so a value hovering at the threshold does
 * not flap), the action the monitor takes when it is crossed, a cooldown and a hold time; plus
 * the settings of those actions, of trend (drift) detection and of the dashboard's operator
 * actions (off by default). `{}` parses to the seed's values.
 */

import { z } from "zod";

/** The cluster metrics the monitor watches, in the seed table's order. */
export const METRIC_NAMES = [
  "state_conflicts_per_minute",
  "delegation_depth_p99",
  "active_agents_count",
  "event_queue_depth",
  "memory_usage_percent",
  "hook_failure_rate",
] as const;

/** One of {@link METRIC_NAMES}. */
export type ClusterMetricName = (typeof METRIC_NAMES)[number];

/** What the monitor does when a metric crosses its threshold. */
export const METRIC_ACTIONS = ["alert", "warn", "throttle", "scale", "cleanup", "bypass"] as const;

/** One of {@link METRIC_ACTIONS}. */
export type MetricAction = (typeof METRIC_ACTIONS)[number];

/** Where `clear` sits when it is not given: this fraction of the threshold. */
export const DEFAULT_CLEAR_RATIO = 0.9;

/**
 * One metric's rule, defaulting to the seed's threshold and action. `clear` is always present
 * once parsed (90% of the threshold unless given), so consumers never recompute the default.
 */
const metric = (threshold: number, action: MetricAction) =>
  z
    .object({
      /** The metric crosses when its value is above this (strictly). All six are non-negative. */
      threshold: z.number().min(0).default(threshold),
      /** Once crossed, the metric clears only at or below this. @default 90% of threshold */
      clear: z.number().min(0).optional(),
      action: z.enum(METRIC_ACTIONS).default(action),
      /** After a clear, the metric cannot cross again for this long. @default 60000 */
      cooldownMs: z.number().int().min(0).default(60_000),
      /** How long the value must stay above the threshold before it crosses. @default 0 (at once) */
      forMs: z.number().int().min(0).default(0),
    })
    .strict()
    .superRefine((m, ctx) => {
      if (m.clear !== undefined && m.clear > m.threshold) {
        ctx.addIssue({
          code: "custom",
          path: ["clear"],
          message: `clear (${m.clear}) must be at most threshold (${m.threshold})`,
        });
      }
    })
    .transform((m) => ({ ...m, clear: m.clear ?? m.threshold * DEFAULT_CLEAR_RATIO }))
    .prefault({});

/** The monitor's configuration block; `MonitorThresholdsSchema.parse({})` gives every default. */
export const MonitorThresholdsSchema = z
  .object({
    /** How often the services report and the monitor samples the metrics. @default 5000 */
    intervalMs: z.number().int().min(100).default(5000),
    /** The window rates and the depth percentile are computed over. @default 60000 */
    windowMs: z.number().int().min(100).default(60_000),
    /** The seed table (metric, threshold, action); each entry may be partial or absent. */
    metrics: z
      .object({
        state_conflicts_per_minute: metric(5, "alert"),
        delegation_depth_p99: metric(4, "warn"),
        active_agents_count: metric(45, "throttle"),
        event_queue_depth: metric(8000, "scale"),
        memory_usage_percent: metric(80, "cleanup"),
        hook_failure_rate: metric(0.1, "bypass"),
      })
      .strict()
      .prefault({}),
    /** The `throttle` action: hold back low-priority work while the metric is crossed. */
    throttle: z
      .object({
        /** Work with a priority below this is held back. @default 5 */
        belowPriority: z.number().int().default(5),
        /** The longest one throttle lasts without being renewed. @default 60000 */
        holdMs: z.number().int().min(0).default(60_000),
      })
      .strict()
      .prefault({}),
    /** The `scale` action. */
    scale: z
      .object({
        /** A command line (argv-ish, split on whitespace) the monitor runs to add capacity. @default none */
        command: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** The `bypass` action: how long each host skips a hook that fails too often cluster-wide. */
    bypass: z
      .object({
        /** @default 60000 */
        forMs: z.number().int().min(1).default(60_000),
      })
      .strict()
      .prefault({}),
    /** Drift detection: Mann-Kendall significance plus a Theil-Sen slope over a sliding window. */
    trend: z
      .object({
        /** Samples in the sliding window. @default 30 */
        windowSize: z.number().int().min(8).default(30),
        /** 1 - p at which the Mann-Kendall test counts as significant; in (0, 1). @default 0.95 */
        minConfidence: z.number().gt(0).lt(1).default(0.95),
        /** Relative change over the window (slope × span / median) that counts as drift. @default 0.1 */
        minRelativeSlope: z.number().min(0).default(0.1),
      })
      .strict()
      .prefault({}),
    /** The dashboard on the monitor's health port. */
    dashboard: z
      .object({
        /**
         * Operator actions (`POST /dashboard/api/action`: pause, resume, cancel, freeze, unfreeze,
         * release, retire), taken as the operator's NATS identity: the monitor's own role may not
         * cancel or release. Off by default, and the dashboard is read-only.
         */
        actions: z
          .object({
            /** @default false */
            enabled: z.boolean().default(false),
            /**
             * The operator's nkey seed or `.creds` file (`cadre security init` writes
             * `identities/operator.nk`); required when the monitor runs with credentials. Under
             * mutual TLS the connection presents the monitor's certificate (natsTls): the nkey
             * names the identity. @default none
             */
            credentials: z.string().min(1).optional(),
            /** The environment variable holding the bearer token the browser must present. @default "CADRE_DASHBOARD_TOKEN" */
            tokenEnv: z
              .string()
              .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name (letters, digits, '_')")
              .default("CADRE_DASHBOARD_TOKEN"),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

/** The parsed monitor configuration: every field present, each metric's `clear` filled in. */
export type MonitorThresholds = z.infer<typeof MonitorThresholdsSchema>;
/** What an operator may write: every field optional. */
export type MonitorThresholdsInput = z.input<typeof MonitorThresholdsSchema>;
/** One parsed metric rule. */
export type MetricThreshold = MonitorThresholds["metrics"][ClusterMetricName];

/** One cluster metric as the monitor sees it now (mon.status, the performance commands). */
export const MetricStateSchema = z.object({
  metric: z.string().max(100),
  value: z.number().nullable(),
  threshold: z.number(),
  clear: z.number(),
  action: z.string().max(20),
  state: z.enum(["ok", "pending", "crossed", "cooling"]),
  since: z.number().int().nullable(),
});
