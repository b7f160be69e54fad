/**
 * Threshold crossing with hysteresis, one small state machine per metric. Pure: no timers, no
 * I/O; the caller passes each sample's time in ms (a driven clock), so tests replay any timeline.
 *
 *   ok ──value > threshold──▶ pending ──held forMs──▶ crossed ──value <= clear──▶ cooling ──cooldownMs──▶ ok
 *    ▲                          │                      (values between clear and
 *    └──value <= threshold──────┘                       threshold keep it crossed)
 *
 * The hysteresis band (clear < value <= threshold) stops a value hovering at the threshold from
 * flapping; the cooldown stops a value oscillating across the whole band from doing so.
 */

/**
 * One metric's rule. Structurally the parsed `MonitorThresholds["metrics"][name]` of
 * @cadre/protocol (whose schema fills in `clear`), declared here so this module needs nothing
 * beyond its input's shape.
 */
export interface MetricRule<A extends string = string> {
  /** Crosses when the value is strictly above this. */
  readonly threshold: number;
  /** Once crossed, clears when the value is at or below this (at most `threshold`). */
  readonly clear: number;
  /** The action the caller takes on a crossing; carried through untouched. */
  readonly action: A;
  /** After a clear, no new crossing until this long has passed. */
  readonly cooldownMs: number;
  /** How long the value must stay above the threshold (every sample) before it crosses. */
  readonly forMs: number;
}

/** A metric crossing its threshold, or clearing after one; returned by {@link ThresholdTracker.observe}. */
export interface Transition<A extends string = string> {
  kind: "crossed" | "cleared";
  metric: string;
  /** The sample that caused it. */
  value: number;
  threshold: number;
  clear: number;
  action: A;
  /** The sample's time (ms). */
  at: number;
}

/**
 * Where a metric stands: `ok` (at or below its threshold), `pending` (above, not yet for
 * `forMs`), `crossed` (held until it clears), `cooling` (cleared less than `cooldownMs` ago).
 */
export type ThresholdPhase = "ok" | "pending" | "crossed" | "cooling";

/** One row of {@link ThresholdTracker.state}, for the CLI's table. */
export interface MetricState<A extends string = string> {
  metric: string;
  /** The last sample taken into account; undefined before the first. */
  value: number | undefined;
  threshold: number;
  clear: number;
  action: A;
  state: ThresholdPhase;
  /** When the metric entered `state` (ms); undefined before the first sample. */
  since: number | undefined;
}

/** What the tracker remembers of one metric between samples. */
interface Track {
  value: number | undefined;
  /** The time of the last sample taken into account. */
  lastAt: number | undefined;
  /** Crossed and not yet cleared. */
  held: boolean;
  crossedAt: number | undefined;
  /** The first sample of the current unbroken run above the threshold (while not held). */
  overSince: number | undefined;
  clearedAt: number | undefined;
  /** The last time the metric became ok other than by its cooldown running out. */
  okSince: number | undefined;
}

const freshTrack = (): Track => ({
  value: undefined,
  lastAt: undefined,
  held: false,
  crossedAt: undefined,
  overSince: undefined,
  clearedAt: undefined,
  okSince: undefined,
});

/**
 * Tracks every configured metric's phase and reports crossings and clears.
 *
 * - A metric crosses when its value has been above `threshold` on every sample for at least
 *   `forMs`, counted from the first sample above it (`forMs` 0: on that first sample).
 * - Once crossed it stays crossed until a value at or below `clear` (hysteresis).
 * - After a clear it cannot cross again until `cooldownMs` after the clear. The `forMs` clock
 *   still runs during the cooldown, so a value that stayed high throughout crosses on the first
 *   sample after the cooldown.
 * - NaN and undefined samples are ignored (no transition, the last value kept), as are metrics
 *   without a rule.
 */
export class ThresholdTracker<A extends string = string> {
  private readonly rules: ReadonlyMap<string, MetricRule<A>>;
  private readonly tracks = new Map<string, Track>();

  /**
   * @param rules - by metric name, e.g. the parsed `MonitorThresholds["metrics"]`.
   * @throws RangeError for a rule whose clear is above its threshold or whose times are negative.
   */
  constructor(rules: Readonly<Record<string, MetricRule<A>>>) {
    for (const [name, rule] of Object.entries(rules)) checkRule(name, rule);
    this.rules = new Map(Object.entries(rules));
  }

  /**
   * Takes one sample of `name` at `nowMs` and returns the transition it causes, if any. Samples
   * of one metric are expected in time order.
   */
  observe(name: string, value: number | undefined, nowMs: number): Transition<A> | undefined {
    const rule = this.rules.get(name);
    if (rule === undefined || value === undefined || Number.isNaN(value)) return undefined;
    const track = this.trackOf(name, nowMs);
    track.value = value;
    track.lastAt = nowMs;
    const kind = track.held ? stepHeld(track, rule, value, nowMs) : stepFree(track, rule, value, nowMs);
    if (kind === undefined) return undefined;
    const { threshold, clear, action } = rule;
    return { kind, metric: name, value, threshold, clear, action, at: nowMs };
  }

  /**
   * Every configured metric's row, in the rules' order. With `nowMs`, phases are as of that time
   * (a cooldown that has run out shows as ok); without, as of each metric's last sample.
   */
  state(nowMs?: number): MetricState<A>[] {
    return [...this.rules].map(([name, rule]) => {
      const track = this.tracks.get(name) ?? freshTrack();
      const { state, since } = phaseOf(track, rule, nowMs ?? track.lastAt);
      const { threshold, clear, action } = rule;
      return { metric: name, value: track.value, threshold, clear, action, state, since };
    });
  }

  private trackOf(name: string, nowMs: number): Track {
    let track = this.tracks.get(name);
    if (track === undefined) {
      track = { ...freshTrack(), okSince: nowMs };
      this.tracks.set(name, track);
    }
    return track;
  }
}

function checkRule(name: string, rule: MetricRule): void {
  const bad = (what: string) => new RangeError(`metric ${name}: ${what}`);
  if (!Number.isFinite(rule.threshold) || !Number.isFinite(rule.clear)) throw bad("threshold and clear must be finite");
  if (rule.clear > rule.threshold) throw bad(`clear (${rule.clear}) must be at most threshold (${rule.threshold})`);
  if (!(rule.cooldownMs >= 0) || !(rule.forMs >= 0)) throw bad("cooldownMs and forMs must be >= 0");
}

/** A crossed metric: clears at or below `clear`, otherwise stays held. */
function stepHeld(track: Track, rule: MetricRule, value: number, nowMs: number): "cleared" | undefined {
  if (value > rule.clear) return undefined;
  track.held = false;
  track.clearedAt = nowMs;
  track.crossedAt = undefined;
  return "cleared";
}

/** A metric not crossed: runs the `forMs` clock and crosses when it has run out, outside a cooldown. */
function stepFree(track: Track, rule: MetricRule, value: number, nowMs: number): "crossed" | undefined {
  if (value <= rule.threshold) {
    if (track.overSince !== undefined) track.okSince = nowMs;
    track.overSince = undefined;
    return undefined;
  }
  track.overSince ??= nowMs;
  if (isCooling(track, rule, nowMs) || nowMs - track.overSince < rule.forMs) return undefined;
  track.held = true;
  track.crossedAt = nowMs;
  track.overSince = undefined;
  return "crossed";
}

function isCooling(track: Track, rule: MetricRule, nowMs: number): boolean {
  return track.clearedAt !== undefined && nowMs < track.clearedAt + rule.cooldownMs;
}

/** The phase of a track at `atMs` and when it began. */
function phaseOf(
  track: Track,
  rule: MetricRule,
  atMs: number | undefined,
): { state: ThresholdPhase; since: number | undefined } {
  if (track.held) return { state: "crossed", since: track.crossedAt };
  if (atMs !== undefined && isCooling(track, rule, atMs)) return { state: "cooling", since: track.clearedAt };
  if (track.overSince !== undefined) return { state: "pending", since: track.overSince };
  const cooledAt = track.clearedAt === undefined ? undefined : track.clearedAt + rule.cooldownMs;
  return { state: "ok", since: maxDefined(track.okSince, cooledAt) };
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}
