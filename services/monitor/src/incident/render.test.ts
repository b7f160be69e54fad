/** The three outputs: the report as JSON, text and Markdown (report.ts, render.ts). */

import { describe, expect, it } from "vitest";
import { reportMarkdown, reportText } from "./render.js";
import { buildReport, type IncidentReport } from "./report.js";
import { breaker, counts, reassigned, report, silent, started, stream, T0 } from "./testing.js";

describe("the three outputs", () => {
  const sample = () => {
    const { list, add } = stream();
    add(0, "TASK_STARTED", "w1", started("w1-0", "h1"));
    add(1500, "HOST_UNREACHABLE", "h1", silent(1200));
    add(2500, "TASK_REASSIGNED", "w1", reassigned("w1-0", "h1"));
    add(3000, "WORKFLOW_PAUSED", "w1", { now: true, yielded: 1 });
    add(4000, "CIRCUIT_OPENED", "delegation", breaker("delegation", "h2", "closed", "open"));
    add(5000, "WORKFLOW_COMPLETED", "w1", { tasks: counts(1, 1), ms: 5000 });
    return buildReport(list, { sinceMs: T0, untilMs: T0 + 60_000, skipped: 2, cap: 6, capped: true });
  };

  it("JSON: one object with the window, the faults, the counts, the commands and the timeline", () => {
    const r = sample();
    const json = JSON.parse(JSON.stringify(r)) as IncidentReport;
    expect(json).toEqual(r);
    expect(json.window).toEqual({
      since: "2026-05-01T10:00:00.000Z",
      until: "2026-05-01T10:01:00.000Z",
      sinceMs: T0,
      untilMs: T0 + 60_000,
    });
    expect(json.read).toMatchObject({ events: 6, skipped: 2, cap: 6, capped: true });
    expect(json.faults.map((f) => [f.id, f.type, f.verdict])).toEqual([
      ["F1", "HOST_UNREACHABLE", "met"],
      ["F2", "CIRCUIT_OPENED", "open"],
    ]);
    expect(json.targets).toEqual({
      matrix: "seeds/000_c4c521c85f6376de.txt:251-262",
      breakers: "seeds/000_c4c521c85f6376de.txt:214-218",
      immediateMs: 1000,
    });
  });

  it("text: the faults with measured times, targets and verdicts, the counts, the commands and the timeline", () => {
    const text = reportText(sample());
    expect(text).toContain("Incident report 2026-05-01T10:00:00.000Z .. 2026-05-01T10:01:00.000Z: 6 events read");
    expect(text).toContain("2 skipped");
    expect(text).toContain("capped at 6 events");
    expect(text).toContain("Faults: 2 (1 met, 0 missed, 1 open, 0 without a target)");
    const row = text.split("\n").find((l) => l.startsWith("F1 "));
    expect(row).toMatch(/F1\s+HOST_UNREACHABLE\s+host:h1\s+2026-05-01T10:00:01\.500Z\s+1\.20 s\s+< 15s\s+met\s+/);
    expect(row).toMatch(/1\.00 s\s+On heal\s+met\s+met$/);
    expect(text).toContain("F1 host h1 unreachable");
    expect(text).toContain("recovered by TASK_REASSIGNED: its tasks reassigned");
    expect(text).toContain("F2 breaker delegation of h2 closed -> open (5 failures); not recovered by --until");
    expect(text).toContain("  tasks lost: 0");
    expect(text).toContain("  applied twice: 0");
    expect(text).toContain("  reassigned: 1 (1 tasks; host-lost 1)");
    expect(text).toContain("Commands operators ran: 1");
    expect(text).toContain("workflow w1 paused now (1 yielded)");
    expect(text).toMatch(/action\s+TASK_REASSIGNED\s+ends F1\s+task w1-0/);
  });

  it("Markdown: a faults table with target, measured and met columns, the counts, the commands, the timeline", () => {
    const md = reportMarkdown(sample());
    expect(md).toMatch(/^# Incident report\n/);
    expect(md).toContain(
      "| Fault | Type | Subject | Detected | Detection (measured) | Detection target | Detection | Recovered | Recovery (measured) | Recovery target | Recovery | Met | Recovered by |",
    );
    expect(md).toContain(
      "| F1 | HOST_UNREACHABLE | host:h1 | 2026-05-01T10:00:01.500Z | 1.20 s | < 15s | met | 2026-05-01T10:00:02.500Z | 1.00 s | On heal | met | met | TASK_REASSIGNED: its tasks reassigned |",
    );
    expect(md).toContain("| F2 | CIRCUIT_OPENED | breaker:h2:delegation |");
    expect(md).toContain("| < 120s (timeout=120) | open | open | open at --until |");
    expect(md).toContain(
      "- **F1** host h1 unreachable (silent 1.20 s, phi 9.1). Detection: silence since the host's last heartbeat (the failure detector's measure); target: Network Partition (`seeds/000_c4c521c85f6376de.txt:262`). Recovery is when the work moved; work done again: not yet, 1 of its tasks not applied by --until (w1-0).",
    );
    expect(md).toContain("- **F2** breaker delegation of h2 closed -> open (5 failures). Detection: opened after");
    expect(md).toContain("## Counts");
    expect(md).toContain("| tasks lost | 0 |");
    expect(md).toContain("| applied twice | 0 |");
    expect(md).toContain("## Commands operators ran");
    expect(md).toContain("| WORKFLOW_PAUSED | w1 | workflow w1 paused now (1 yielded) |");
    expect(md).toContain("## Timeline");
    expect(md).toContain("| fault | HOST_UNREACHABLE | h1 | F1 |");
  });

  it("Markdown cells escape pipes", () => {
    const { list, add } = stream();
    add(0, "WORKFLOW_CANCELLED", "w1", { reason: "a|b", cancelled: 0, tasks: counts(1, 1) });
    expect(reportMarkdown(report(list))).toContain("workflow w1 cancelled (a\\|b)");
  });
});
