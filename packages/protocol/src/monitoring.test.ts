import { describe, expect, it } from "vitest";
import { METRIC_NAMES, MonitorThresholdsSchema } from "./monitoring.js";

/** The issues of a parse that must fail, as `path: message` pairs with the zod code. */
function issuesOf(input: unknown) {
  const r = MonitorThresholdsSchema.safeParse(input);
  if (r.success) throw new Error(`expected ${JSON.stringify(input)} to be refused`);
  return r.error.issues;
}

describe("MonitorThresholdsSchema", () => {
  it("parses {} to the seed's table and the documented defaults", () => {
    const t = MonitorThresholdsSchema.parse({});
    expect(t.intervalMs).toBe(5000);
    expect(t.throttle).toEqual({ belowPriority: 5, holdMs: 60_000 });
    expect(t.scale).toEqual({});
    expect(t.trend).toEqual({ windowSize: 30, minConfidence: 0.95, minRelativeSlope: 0.1 });
    expect(t.dashboard).toEqual({ actions: { enabled: false, tokenEnv: "CADRE_DASHBOARD_TOKEN" } });
    const seed = {
      state_conflicts_per_minute: [5, "alert"],
      delegation_depth_p99: [4, "warn"],
      active_agents_count: [45, "throttle"],
      event_queue_depth: [8000, "scale"],
      memory_usage_percent: [80, "cleanup"],
      hook_failure_rate: [0.1, "bypass"],
    } as const;
    expect(Object.keys(t.metrics)).toEqual([...METRIC_NAMES]);
    for (const name of METRIC_NAMES) {
      const [threshold, action] = seed[name];
      const m = t.metrics[name];
      expect({ name, threshold: m.threshold, action: m.action, cooldownMs: m.cooldownMs, forMs: m.forMs }).toEqual({
        name,
        threshold,
        action,
        cooldownMs: 60_000,
        forMs: 0,
      });
      expect(m.clear).toBeCloseTo(threshold * 0.9, 12);
    }
  });

  it("parses undefined like {}", () => {
    expect(MonitorThresholdsSchema.parse(undefined)).toEqual(MonitorThresholdsSchema.parse({}));
  });

  it("fills the rest of a partial metric and derives clear from the given threshold", () => {
    const t = MonitorThresholdsSchema.parse({ metrics: { event_queue_depth: { threshold: 1000, forMs: 2000 } } });
    expect(t.metrics.event_queue_depth).toEqual({
      threshold: 1000,
      clear: 900,
      action: "scale",
      cooldownMs: 60_000,
      forMs: 2000,
    });
    expect(t.metrics.active_agents_count.threshold).toBe(45);
  });

  it("keeps an explicit clear, including one equal to the threshold", () => {
    const t = MonitorThresholdsSchema.parse({
      metrics: { memory_usage_percent: { clear: 50 }, delegation_depth_p99: { threshold: 6, clear: 6 } },
    });
    expect(t.metrics.memory_usage_percent.clear).toBe(50);
    expect(t.metrics.delegation_depth_p99.clear).toBe(6);
  });

  it("refuses clear above threshold, naming the field", () => {
    const issues = issuesOf({ metrics: { memory_usage_percent: { threshold: 80, clear: 81 } } });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toEqual(["metrics", "memory_usage_percent", "clear"]);
    expect(issues[0]?.message).toMatch(/clear \(81\).*threshold \(80\)/);
  });

  it("refuses clear above the default threshold", () => {
    const issues = issuesOf({ metrics: { event_queue_depth: { clear: 9000 } } });
    expect(issues.map((i) => i.path)).toEqual([["metrics", "event_queue_depth", "clear"]]);
  });

  it("refuses an unknown key inside a metric with its path", () => {
    const issues = issuesOf({ metrics: { event_queue_depth: { threshold: 10, treshold: 10 } } });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({
      code: "unrecognized_keys",
      path: ["metrics", "event_queue_depth"],
      keys: ["treshold"],
    });
  });

  it("refuses an unknown metric, an unknown top-level key and an unknown trend key", () => {
    expect(issuesOf({ metrics: { cpu_percent: {} } })[0]).toMatchObject({
      code: "unrecognized_keys",
      path: ["metrics"],
      keys: ["cpu_percent"],
    });
    expect(issuesOf({ interval: 5000 })[0]).toMatchObject({ code: "unrecognized_keys", path: [], keys: ["interval"] });
    expect(issuesOf({ trend: { window: 10 } })[0]).toMatchObject({ path: ["trend"], keys: ["window"] });
  });

  it("refuses out-of-range values with their paths", () => {
    const paths = (input: unknown) => issuesOf(input).map((i) => i.path.join("."));
    expect(paths({ intervalMs: 99 })).toEqual(["intervalMs"]);
    expect(paths({ intervalMs: 1000.5 })).toEqual(["intervalMs"]);
    expect(paths({ metrics: { hook_failure_rate: { action: "reboot" } } })).toEqual([
      "metrics.hook_failure_rate.action",
    ]);
    expect(paths({ metrics: { hook_failure_rate: { cooldownMs: -1 } } })).toEqual([
      "metrics.hook_failure_rate.cooldownMs",
    ]);
    expect(paths({ metrics: { hook_failure_rate: { forMs: 1.5 } } })).toEqual(["metrics.hook_failure_rate.forMs"]);
    expect(paths({ trend: { windowSize: 7 } })).toEqual(["trend.windowSize"]);
    expect(paths({ trend: { minConfidence: 1 } })).toEqual(["trend.minConfidence"]);
    expect(paths({ trend: { minConfidence: 0 } })).toEqual(["trend.minConfidence"]);
    expect(paths({ scale: { command: "" } })).toEqual(["scale.command"]);
  });

  it("accepts a scale command and throttle settings", () => {
    const t = MonitorThresholdsSchema.parse({
      scale: { command: "kubectl scale deploy/agent-host --replicas=+1" },
      throttle: { belowPriority: 3 },
    });
    expect(t.scale.command).toBe("kubectl scale deploy/agent-host --replicas=+1");
    expect(t.throttle).toEqual({ belowPriority: 3, holdMs: 60_000 });
  });

  it("enables the dashboard's operator actions with the operator's credentials and a token variable", () => {
    const t = MonitorThresholdsSchema.parse({
      dashboard: {
        actions: { enabled: true, credentials: "/etc/cadre/identities/operator.nk", tokenEnv: "DASH_TOKEN" },
      },
    });
    expect(t.dashboard.actions).toEqual({
      enabled: true,
      credentials: "/etc/cadre/identities/operator.nk",
      tokenEnv: "DASH_TOKEN",
    });
  });

  it("refuses a misspelt dashboard key, an empty credentials path and a token variable that is not a name", () => {
    expect(issuesOf({ dashboard: { actions: { enable: true } } })[0]).toMatchObject({
      code: "unrecognized_keys",
      path: ["dashboard", "actions"],
      keys: ["enable"],
    });
    expect(issuesOf({ dashboard: { action: {} } })[0]).toMatchObject({ path: ["dashboard"], keys: ["action"] });
    const paths = (input: unknown) => issuesOf(input).map((i) => i.path.join("."));
    expect(paths({ dashboard: { actions: { credentials: "" } } })).toEqual(["dashboard.actions.credentials"]);
    expect(paths({ dashboard: { actions: { enabled: "yes" } } })).toEqual(["dashboard.actions.enabled"]);
    const bad = issuesOf({ dashboard: { actions: { tokenEnv: "$TOKEN" } } });
    expect(bad[0]?.path).toEqual(["dashboard", "actions", "tokenEnv"]);
    expect(bad[0]?.message).toContain("environment variable name");
  });
});
