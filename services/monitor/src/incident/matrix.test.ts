/** The chaos suite's matrix, rendered from its incident reports (matrix.ts). */

import { describe, expect, it } from "vitest";
import { type ChaosIncident, type ChaosScenario, chaosMatrix } from "./matrix.js";
import { applied, report, silent, started, stream } from "./testing.js";

/** A host-kill scenario's report, from the run `run`, its window starting `offset` ms later. */
function incident(scenario: string, run: string, offset: number): ChaosIncident {
  const { list, add } = stream();
  add(offset, "TASK_STARTED", "w1", started("w1-0", "h1"));
  add(offset + 700, "HOST_UNREACHABLE", "h1", silent(650));
  add(offset + 1700, "TASK_STARTED", "w1", started("w1-0", "h2"));
  add(offset + 3000, "TASK_COMPLETED", "w1", applied("w1-0", "h2", "w1-0:2:1"));
  const r = report(list);
  r.window.sinceMs += offset;
  const chaos: ChaosScenario = {
    scenario,
    run,
    fault: "SIGKILL agent-host h1",
    injectedAt: r.window.sinceMs + 40,
    injectedBy: r.window.sinceMs + 60,
    faults: r.faults.map((f) => f.id),
    visibility: "HOST_UNREACHABLE.",
    figures: { detectMs: 690, recoverMs: 2990 },
    recoverDefinition: "until the last task it held was completed elsewhere.",
    checks: [
      { what: "detected", report: 660, figure: 690, tolerance: { min: -250, max: 250 }, basis: "same event", ok: true },
      { what: "redone", report: 2960, figure: 2990, tolerance: { min: -250, max: 250 }, basis: "same", ok: false },
    ],
  };
  return { ...r, chaos };
}

describe("the chaos matrix", () => {
  it("has a row per scenario of the newest run, in the order they ran: fault, times beside the suite's, targets, verdict", () => {
    const md = chaosMatrix([
      incident("second", "2026-05-02T00:00:00.000Z", 60_000),
      incident("old", "2026-05-01T00:00:00.000Z", 0),
      incident("first", "2026-05-02T00:00:00.000Z", 0),
    ]);
    const lines = md.split("\n");
    expect(lines[0]).toBe("Chaos run of 2026-05-02T00:00:00.000Z: 2 scenarios.");
    expect(lines[2]).toBe(
      "| Scenario | Fault injected | Report's fault | Detected in (report) | Detected in (suite) | Detection target | Recovered in (report) | Work done again (report) | Recovered in (suite) | Recovery target | Met | Report vs figures |",
    );
    expect(lines[4]).toBe(
      "| first | SIGKILL agent-host h1 | F1 HOST_UNREACHABLE host:h1 | 650 ms | 690 ms | < 15s | 1.00 s | 2.95 s | 2.99 s | On heal | met | 1 of 2 off |",
    );
    expect(lines[5]).toMatch(/^\| second \|/);
    expect(md).toContain(
      "- first: HOST_UNREACHABLE. The suite's recovery: until the last task it held was completed elsewhere.",
    );
    expect(md).toContain("Left out, from other runs: old (2026-05-01T00:00:00.000Z).");
  });

  it("a scenario whose fault is no fault of the report says how it shows instead, and lists the report's faults", () => {
    const i = incident("nats", "r", 0);
    i.chaos.faults = [];
    i.chaos.visibility = "No event names a NATS node.";
    const md = chaosMatrix([i]);
    expect(md).toContain("| nats | SIGKILL agent-host h1 | none | - | 690 ms | - | - | - | 2.99 s | - | - |");
    expect(md).toContain("- nats: No event names a NATS node. Also in its report: F1 HOST_UNREACHABLE host:h1 (met).");
  });
});
