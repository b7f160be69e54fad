/** Small statistics for the benchmarks. */

import { readFileSync } from "node:fs";

/**
 * CPU time the whole machine has been busy so far, in ms, all cores together (from /proc/stat:
 * user, nice, system, irq and softirq; idle, iowait and time stolen by the hypervisor left out).
 * Every process counts: the system measured, its server, and this one.
 */
export function machineBusyMs(): number {
  const [, ...ticks] = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = ticks;
  // USER_HZ is 100 on Linux.
  return (user + nice + system + irq + softirq) * 10;
}

/** CPU time (user + system) one process has used so far, in ms (/proc/<pid>/stat; USER_HZ is 100). */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  // Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime the 13th.
  const rest = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(rest[11]) + Number(rest[12])) * 10;
}

/** The q-quantile (0..1) of a list of numbers (nearest rank). */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** Runs `op` sequentially for `ms` and returns each call's latency in ms. */
export async function sequential(op: () => Promise<unknown>, ms: number): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await op();
    out.push(performance.now() - t);
  }
  return out;
}

/** Keeps `inFlight` calls of `op` running for `ms`; returns completed calls per second. */
export async function throughput(op: () => Promise<unknown>, inFlight: number, ms: number): Promise<number> {
  let done = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await op();
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

/** Prints rows (the first is the header) as a Markdown table, ready to paste into the README. */
export function printTable(rows: string[][]): void {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(3, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${widths.map((w, i) => (r[i] ?? "").padEnd(w)).join(" | ")} |`;
  const [header, ...body] = rows;
  const rule = `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`;
  process.stdout.write(`\n${[line(header ?? []), rule, ...body.map(line)].join("\n")}\n`);
}
