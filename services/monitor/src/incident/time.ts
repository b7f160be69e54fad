/** Times given on the command line (`--since`, `--until`): {@link parseTime}. */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A time given on the command line: `now`, an ISO 8601 time (`2026-05-01T10:00:00Z`; without an
 * offset, local time; a date alone is midnight UTC), or a duration ago (`30s`, `15m`, `2h`, `1d`,
 * `500ms`, optionally followed by `ago`). Throws an Error saying what is accepted.
 */
export function parseTime(value: string, now: number): number {
  const v = value.trim();
  if (v === "now") return now;
  const rel = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)(?:\s+ago)?$/.exec(v);
  if (rel?.[1] && rel[2]) return now - Number(rel[1]) * (UNITS[rel[2]] ?? 0);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t;
  }
  throw new Error(
    `expected an ISO 8601 time (2026-05-01T10:00:00Z), a duration ago (30s, 15m, 2h, 1d) or "now", got "${value}"`,
  );
}
