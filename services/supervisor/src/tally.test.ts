import type { CadreEvent } from "@cadre/protocol";
import { ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { ReconciliationTally } from "./tally.js";

function tally() {
  const clock = new ManualClock(1000);
  const events: CadreEvent[] = [];
  const t = new ReconciliationTally({ clock, emit: (e) => events.push(e), quietMs: 30_000 });
  return { clock, events, t };
}

describe("ReconciliationTally", () => {
  it("reports a batch once every replayed result is classified, with the counts by class", () => {
    const { clock, events, t } = tally();
    t.classified("h1", "b1:4", "applied");
    t.classified("h1", "b1:4", "conflict");
    clock.advance(250);
    t.classified("h1", "b1:4", "duplicate");
    expect(events).toHaveLength(0);
    t.classified("h1", "b1:4", "retried");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: "RECONCILIATION_REPORT",
      scope: "h1",
      data: {
        applied: 1,
        conflict: 1,
        duplicate: 1,
        invalid: 1,
        orphan: 0,
        total: 4,
        replayed: 4,
        complete: true,
        ms: 250,
      },
    });
    expect(t.open).toBe(0);
  });

  it("counts what JetStream de-duplicated as duplicates that complete the batch", () => {
    const { events, t } = tally();
    t.classified("h1", "b2:3", "applied");
    t.deduplicated("h1", "b2:3", 2);
    expect(events[0]?.data).toMatchObject({ applied: 1, duplicate: 2, total: 3, complete: true });
  });

  it("sends a partial report after the quiet time when the rest never comes", () => {
    const { clock, events, t } = tally();
    t.classified("h1", "b3:5", "applied");
    clock.advance(29_999);
    expect(events).toHaveLength(0);
    t.classified("h1", "b3:5", "orphan");
    clock.advance(29_999);
    expect(events).toHaveLength(0);
    clock.advance(1);
    expect(events[0]?.data).toMatchObject({ applied: 1, orphan: 1, total: 2, replayed: 5, complete: false });
    expect(t.open).toBe(0);
  });

  it("reports a batch without a count only when it goes quiet", () => {
    const { clock, events, t } = tally();
    t.classified("h2", "unknown", "applied");
    clock.advance(30_000);
    expect(events[0]?.data).toMatchObject({ applied: 1, replayed: null, complete: false });
  });
});
