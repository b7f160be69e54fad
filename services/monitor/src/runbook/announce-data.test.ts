import type { TypedEvent } from "@cadre/protocol";
import { ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { ALERT_EVERY_MS, dataIntegrityAlerts } from "./announce-data.js";

const corrupted = (key: string, restoredAs: number | null, scope = "state"): TypedEvent => ({
  type: "STATE_CORRUPTED",
  category: "state",
  scope,
  data: { key, revision: 7, reason: "checksum", restoredFrom: null, restoredAs },
});

describe("DATA_INTEGRITY_ALERT from hosts' STATE_CORRUPTED", () => {
  it("alerts once per workflow per interval for a value no read could restore, naming it", () => {
    const clock = new ManualClock(1000);
    const out: TypedEvent[] = [];
    const react = dataIntegrityAlerts(clock, (e) => out.push(e));
    react(corrupted("w1.ledger", null));
    react(corrupted("w1.ledger", null));
    react(corrupted("w2.notes", null));
    expect(out.map((e) => [e.type, e.scope])).toEqual([
      ["DATA_INTEGRITY_ALERT", "w1"],
      ["DATA_INTEGRITY_ALERT", "w2"],
    ]);
    expect(out[0]?.data).toMatchObject({
      damaged_keys: ["ledger"],
      corruption_risk: "high",
      affected_workflows: ["w1"],
    });
    clock.advance(ALERT_EVERY_MS);
    react(corrupted("w1.ledger", null));
    expect(out).toHaveLength(3);
  });

  it("does not alert for a value a read restored, nor for the supervisor's own records", () => {
    const out: TypedEvent[] = [];
    const react = dataIntegrityAlerts(new ManualClock(0), (e) => out.push(e));
    react(corrupted("w1.ledger", 9));
    react(corrupted("task.w1-0", null, "tasks"));
    expect(out).toEqual([]);
  });
});
