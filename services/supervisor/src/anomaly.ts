/**
 * Anomalies in responses that pass their schema: a response whose size or latency is far from
 * what its kind usually produces is flagged for review (an event), never quarantined.
 *
 * The statistic: per kind and metric, the running mean and standard deviation (Welford's
 * algorithm) of every earlier response; a response is anomalous when |x - mean| / sd exceeds
 * `anomalyZ` (4), judged only once `anomalyMinSamples` (30) responses were seen. The deviation
 * is floored at 10% of the mean (and at 1), so a kind whose answers are all alike does not flag
 * every small difference. The sample joins the statistics after it is judged, so an outlier
 * does not hide itself. In memory: a restarted supervisor learns again.
 */

/** One flagged measurement. */
export interface Anomaly {
  metric: "bytes" | "latencyMs";
  value: number;
  mean: number;
  sd: number;
  z: number;
}

interface Running {
  n: number;
  mean: number;
  m2: number;
}

/** Running statistics of responses, per kind. */
export class ResponseStats {
  private readonly stats = new Map<string, Running>();

  constructor(private readonly opts: { z: number; minSamples: number }) {}

  /** Judges one response of `kind` against the kind's history, then adds it to it. */
  observe(kind: string, sample: { bytes: number; latencyMs: number }): Anomaly[] {
    const out: Anomaly[] = [];
    for (const metric of ["bytes", "latencyMs"] as const) {
      const key = `${kind}\u0000${metric}`;
      const r = this.stats.get(key) ?? { n: 0, mean: 0, m2: 0 };
      const x = sample[metric];
      if (r.n >= this.opts.minSamples) {
        const sd = Math.max(Math.sqrt(r.m2 / (r.n - 1)), Math.abs(r.mean) * 0.1, 1);
        const z = (x - r.mean) / sd;
        if (Math.abs(z) > this.opts.z) out.push({ metric, value: x, mean: r.mean, sd, z });
      }
      const n = r.n + 1;
      const delta = x - r.mean;
      const mean = r.mean + delta / n;
      this.stats.set(key, { n, mean, m2: r.m2 + delta * (x - mean) });
    }
    return out;
  }
}
