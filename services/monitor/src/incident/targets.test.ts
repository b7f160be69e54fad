/** The targets, as seed 000 writes them (targets.ts). */

import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BREAKER_TARGETS, METRIC_CASES, RECOVERY_MATRIX } from "./targets.js";

describe("the targets", () => {
  it("are seed 000's recovery matrix and breaker timeouts, each citing its line", () => {
    expect(RECOVERY_MATRIX["network-partition"]).toMatchObject({
      case: "Network Partition",
      detect: { kind: "within", ms: 15_000 },
      recover: { kind: "on-heal" },
      source: "seeds/000_c4c521c85f6376de.txt:262",
    });
    expect(RECOVERY_MATRIX["delegation-loops"].recover).toEqual({ kind: "immediate", text: "Immediate" });
    expect(RECOVERY_MATRIX["memory-leaks"].recover).toMatchObject({ ms: 600_000 });
    expect(BREAKER_TARGETS.state_update.recover).toMatchObject({ ms: 30_000 });
    for (const c of Object.values(METRIC_CASES)) expect(RECOVERY_MATRIX[c]).toBeDefined();
  });

  // The seeds live beside the repository (/work/shared); where they are, each cited line says what the table does.
  const seed = "/work/shared/seeds/000_c4c521c85f6376de.txt";
  it.skipIf(!existsSync(seed))("say what the cited lines of the seed say", () => {
    const lines = readFileSync(seed, "utf8").split("\n");
    for (const t of [...Object.values(RECOVERY_MATRIX), ...Object.values(BREAKER_TARGETS)]) {
      const line = lines[Number(t.source.split(":")[1]) - 1] ?? "";
      if (t.case.startsWith("Circuit breaker ")) {
        const name = t.case.slice("Circuit breaker ".length);
        const timeout = /timeout=(\d+)/.exec(t.recover.text)?.[1];
        expect(line).toContain(`"${name}": CircuitBreaker(`);
        expect(line).toContain(`timeout=${timeout})`);
      } else {
        expect(line).toContain(`| ${t.case} |`);
        expect(line).toContain(`| ${t.detect?.text} | ${t.recover.text} |`);
      }
    }
  });
});
