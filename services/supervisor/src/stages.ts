/**
 * Each kind's time per task stage, from the supervisor's `cadre_task_stage_seconds` histogram
 * (results.ts times the stages of every applied task): counts, sums and the buckets holding the
 * median and the 95th percentile. `cadre perf bottlenecks` names the stage with the largest share.
 */

import type { OpReplyInput } from "@cadre/protocol";
import type { CadreMetrics } from "@cadre/runtime";

type Reply = OpReplyInput<"sup.perf.stages">;
type Stage = Reply["kinds"][number]["stages"][number];

/** The stage table of one supervisor's metrics. */
export async function stageTable(metrics: CadreMetrics): Promise<Reply> {
  const byKey = new Map<string, { count: number; sum: number; buckets: [number, number][] }>();
  for (const v of (await metrics.taskStageSeconds.get()).values) {
    const k = `${v.labels.kind}\u0000${v.labels.stage}`;
    const e = byKey.get(k) ?? { count: 0, sum: 0, buckets: [] };
    if (v.metricName?.endsWith("_count")) e.count = v.value;
    else if (v.metricName?.endsWith("_sum")) e.sum = v.value;
    else if (v.metricName?.endsWith("_bucket")) {
      const le = (v.labels as { le?: number | string }).le;
      e.buckets.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), v.value]);
    }
    byKey.set(k, e);
  }
  const kinds = new Map<string, Stage[]>();
  for (const [k, e] of byKey) {
    const [kind = "", stage = ""] = k.split("\u0000");
    e.buckets.sort((x, y) => x[0] - y[0]);
    const at = (q: number): number | null => {
      const rank = q * e.count;
      const b = e.buckets.find(([, n]) => n >= rank && n > 0);
      return b && Number.isFinite(b[0]) ? b[0] : null;
    };
    const list = kinds.get(kind) ?? [];
    list.push({
      stage: stage as Stage["stage"],
      count: e.count,
      sumSeconds: e.sum,
      p50Seconds: at(0.5),
      p95Seconds: at(0.95),
    });
    kinds.set(kind, list);
  }
  return { kinds: [...kinds].map(([kind, stages]) => ({ kind, stages })) };
}
