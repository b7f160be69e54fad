/**
 * Trend (drift) detection for the monitor: a metric creeping up long before it crosses its
 * threshold. Two non-parametric tools, both robust to outliers and to noise that is not normal:
 * the Mann-Kendall test says whether there is a monotonic trend at all (significance), the
 * Theil-Sen estimator says how steep it is (magnitude). Pure; times are numbers of ms.
 */

/** One sample: time `t` (ms) and value `v`. */
export interface TrendPoint {
  t: number;
  v: number;
}

/** The median of `values` (the mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const upper = sorted[mid] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? Number.NaN) + upper) / 2;
}

/**
 * The Theil-Sen line through `points`: the slope is the median of the slopes of every pair of
 * points (pairs with equal `t` skipped), the intercept the median of `v - slope * t`. Up to ~29%
 * of the points can be arbitrarily wrong without moving it far, unlike least squares. O(n² log n).
 * @throws RangeError when fewer than two points have distinct times (no slope is defined).
 */
export function theilSen(points: readonly TrendPoint[]): { slope: number; intercept: number } {
  const slopes: number[] = [];
  for (const [i, a] of points.entries()) {
    for (const b of points.slice(i + 1)) if (b.t !== a.t) slopes.push((b.v - a.v) / (b.t - a.t));
  }
  if (slopes.length === 0) throw new RangeError("theilSen needs at least two points with distinct times");
  const slope = median(slopes);
  return { slope, intercept: median(points.map((p) => p.v - slope * p.t)) };
}

/**
 * The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7). Exported for
 * tests and for anyone needing a normal CDF: Φ(x) = (1 + erf(x / √2)) / 2.
 */
export function erf(x: number): number {
  return x < 0 ? -(1 - erfcNonNegative(-x)) : 1 - erfcNonNegative(x);
}

/** 1 - erf(x) for x >= 0, computed directly so small tail probabilities keep their precision. */
function erfcNonNegative(x: number): number {
  if (x === 0) return 1; // the polynomial's coefficients sum to 0.999999999, not 1
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return poly * Math.exp(-x * x);
}

/** The result of {@link mannKendall}. */
export interface MannKendallResult {
  /** Σ sign(x_j - x_i) over all i < j: positive when later values tend to be larger. */
  s: number;
  /** S's variance under "no trend", corrected for ties. */
  varS: number;
  /** The normal score of S with continuity correction (0 when S is 0). */
  z: number;
  /** Two-sided p-value of "no trend". */
  p: number;
  /** The trend when p <= alpha, else "none". */
  trend: "increasing" | "decreasing" | "none";
}

/**
 * The Mann-Kendall test for a monotonic trend in `values` (in time order, finite). The variance
 * is tie-corrected (n(n-1)(2n+5) - Σ t(t-1)(2t+5)) / 18 over groups of t equal values; z uses
 * the continuity correction (S ∓ 1) / √var; p is two-sided from the normal approximation, which
 * is close enough from about n = 8 on. O(n²).
 * @param alpha - the significance level of `trend`. @default 0.05
 */
export function mannKendall(values: readonly number[], alpha = 0.05): MannKendallResult {
  const s = kendallS(values);
  const varS = tieCorrectedVariance(values);
  const z = varS === 0 || s === 0 ? 0 : (s - Math.sign(s)) / Math.sqrt(varS);
  const p = Math.min(1, Math.max(0, erfcNonNegative(Math.abs(z) / Math.SQRT2)));
  const trend = p <= alpha && s !== 0 ? (s > 0 ? "increasing" : "decreasing") : "none";
  return { s, varS, z, p, trend };
}

function kendallS(values: readonly number[]): number {
  let s = 0;
  for (const [i, a] of values.entries()) {
    for (const b of values.slice(i + 1)) s += Math.sign(b - a);
  }
  return s;
}

function tieCorrectedVariance(values: readonly number[]): number {
  const term = (k: number) => k * (k - 1) * (2 * k + 5);
  const groups = new Map<number, number>();
  for (const v of values) groups.set(v, (groups.get(v) ?? 0) + 1);
  let ties = 0;
  for (const size of groups.values()) ties += term(size);
  return (term(values.length) - ties) / 18;
}

/** The settings of a {@link TrendDetector}: the parsed `MonitorThresholds["trend"]`. */
export interface TrendDetectorOptions {
  /** Samples per series in the sliding window; nothing is judged before it is full. */
  windowSize: number;
  /** 1 - p the Mann-Kendall test must reach, in (0, 1). */
  minConfidence: number;
  /** The smallest |relativeChange| that counts as drift (0.1: 10% over the window). */
  minRelativeSlope: number;
}

/** A drift found by {@link TrendDetector.add}. */
export interface TrendFinding {
  series: string;
  direction: "increasing" | "decreasing";
  /** The Theil-Sen slope, in value units per second. */
  slopePerSecond: number;
  /** slope × window span / |median of the window|: the drift over the window as a fraction of its level. */
  relativeChange: number;
  /** The window's span: last sample's time minus the first's. */
  windowMs: number;
  /** 1 - p of the Mann-Kendall test. */
  confidence: number;
  /** Samples in the window. */
  samples: number;
}

interface SeriesWindow {
  points: TrendPoint[];
  /** The last finding's direction and the samples still to come before it may be repeated. */
  quiet: { direction: TrendFinding["direction"]; remaining: number } | undefined;
}

/**
 * Keeps a sliding window of the last `windowSize` samples per series and reports drift: when the
 * window is full, the Mann-Kendall test is significant at `minConfidence`, and the Theil-Sen
 * change over the window is at least `minRelativeSlope` of the window's median, in the same
 * direction. Both conditions matter: significance alone flags tiny but steady changes, size
 * alone flags noise.
 *
 * Once it reports a series in a direction, it does not report that series in that direction
 * again until the window has been entirely replaced, i.e. `windowSize` more samples: one drift
 * gives one finding per window's worth of evidence, not one per sample. A finding in the other
 * direction is reported at once (and starts its own quiet period).
 *
 * Samples with a non-finite time or value, or a time before the series' previous sample, are
 * ignored. A window whose median is 0, or whose samples all share one time, reports nothing
 * (there is no level, or no time span, to measure the drift against).
 */
export class TrendDetector {
  private readonly windows = new Map<string, SeriesWindow>();

  /** @throws RangeError for a windowSize below 2 or a minConfidence outside (0, 1). */
  constructor(private readonly options: Readonly<TrendDetectorOptions>) {
    const { windowSize, minConfidence, minRelativeSlope } = options;
    if (!Number.isInteger(windowSize) || windowSize < 2) throw new RangeError("windowSize must be an integer >= 2");
    if (!(minConfidence > 0 && minConfidence < 1)) throw new RangeError("minConfidence must be in (0, 1)");
    if (!(minRelativeSlope >= 0)) throw new RangeError("minRelativeSlope must be >= 0");
  }

  /** Adds the sample (`t` ms, `v`) to `series` and returns the drift it reveals, if any. */
  add(series: string, t: number, v: number): TrendFinding | undefined {
    if (!Number.isFinite(t) || !Number.isFinite(v)) return undefined;
    const window = this.windowOf(series);
    const last = window.points.at(-1);
    if (last !== undefined && t < last.t) return undefined;
    window.points.push({ t, v });
    if (window.points.length > this.options.windowSize) window.points.shift();
    if (window.quiet !== undefined) window.quiet.remaining--;
    if (window.points.length < this.options.windowSize) return undefined;
    const finding = this.judge(series, window.points);
    if (finding === undefined || isQuiet(window, finding.direction)) return undefined;
    window.quiet = { direction: finding.direction, remaining: this.options.windowSize };
    return finding;
  }

  /** Every series' current window, oldest sample first (what the dashboard draws). */
  windowsNow(): { series: string; points: readonly TrendPoint[] }[] {
    return [...this.windows].map(([series, w]) => ({ series, points: w.points }));
  }

  /** Forgets a series' window (e.g. a host that left). */
  forget(series: string): void {
    this.windows.delete(series);
  }

  private windowOf(series: string): SeriesWindow {
    let window = this.windows.get(series);
    if (window === undefined) {
      window = { points: [], quiet: undefined };
      this.windows.set(series, window);
    }
    return window;
  }

  /** The finding a full window supports, ignoring any quiet period. */
  private judge(series: string, points: readonly TrendPoint[]): TrendFinding | undefined {
    const first = points[0];
    const last = points.at(-1);
    if (first === undefined || last === undefined) return undefined;
    const windowMs = last.t - first.t;
    const values = points.map((p) => p.v);
    const level = Math.abs(median(values));
    if (windowMs <= 0 || level === 0) return undefined;
    const mk = mannKendall(values);
    const confidence = 1 - mk.p;
    if (mk.s === 0 || confidence < this.options.minConfidence) return undefined;
    const direction = mk.s > 0 ? "increasing" : "decreasing";
    const { slope } = theilSen(points);
    const relativeChange = (slope * windowMs) / level;
    if (Math.sign(relativeChange) !== Math.sign(mk.s)) return undefined;
    if (Math.abs(relativeChange) < this.options.minRelativeSlope) return undefined;
    return {
      series,
      direction,
      slopePerSecond: slope * 1000,
      relativeChange,
      windowMs,
      confidence,
      samples: points.length,
    };
  }
}

function isQuiet(window: SeriesWindow, direction: TrendFinding["direction"]): boolean {
  return window.quiet !== undefined && window.quiet.direction === direction && window.quiet.remaining > 0;
}
