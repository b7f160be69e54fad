/** The report's order and window (report.ts). */

import { describe, expect, it } from "vitest";
import { report, silent, started, stream, T0 } from "./testing.js";

describe("ordering and the window", () => {
  it("orders by stream sequence whatever the input order, and leaves out what is outside the window", () => {
    const { list, add } = stream();
    add(-5000, "HOST_UNREACHABLE", "h0", silent(1000));
    add(100, "WORKFLOW_PAUSED", "w1", { now: false, yielded: 0 });
    add(200, "HOST_SUSPECTED", "h1", silent(500));
    add(300, "TASK_STARTED", "w1", started("w1-0", "h1"));
    add(400, "WORKFLOW_RESUMED", "w1", { released: 2 });
    add(7_200_000, "HOST_UNREACHABLE", "h9", silent(1000));
    const r = report([...list].reverse());
    expect(r.timeline.map((t) => [t.type, t.class])).toEqual([
      ["WORKFLOW_PAUSED", "command"],
      ["HOST_SUSPECTED", "detection"],
      ["WORKFLOW_RESUMED", "command"],
    ]);
    expect(r.faults).toEqual([]);
    expect(r.commands.map((c) => c.text)).toEqual(["workflow w1 paused", "workflow w1 resumed (2 released)"]);
    expect(r.read).toMatchObject({ events: 4, firstAt: T0 + 100, lastAt: T0 + 400, capped: false });
  });
});
