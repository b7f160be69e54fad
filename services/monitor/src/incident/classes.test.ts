/** The classification of the events table (classes.ts). */

import { EVENT_TYPES } from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import { classifiedTypes, classOf, isCommand } from "./classes.js";

describe("classifying the events table", () => {
  it("classifies every event type of the table once", () => {
    const named = classifiedTypes();
    expect(EVENT_TYPES.filter((t) => !named.includes(t))).toEqual([]);
    expect(named.length).toBe(new Set(named).size);
  });

  it("names no type that is not in the table", () => {
    expect(classifiedTypes().filter((t) => !(EVENT_TYPES as readonly string[]).includes(t))).toEqual([]);
  });

  it("puts faults, detections, actions, recoveries and operators' commands where the header says", () => {
    expect(classOf("HOST_UNREACHABLE")).toBe("fault");
    expect(classOf("HOST_SUSPECTED")).toBe("detection");
    expect(classOf("TASK_REASSIGNED")).toBe("action");
    expect(classOf("HOST_HEALED")).toBe("recovery");
    expect(classOf("WORKFLOW_PAUSED")).toBe("command");
    expect(classOf("TASK_COMPLETED")).toBe("routine");
    expect(classOf("SOMETHING_NEWER")).toBe("routine");
    expect(isCommand("EMERGENCY_RESPONSE_COMPLETED")).toBe(true);
    expect(isCommand("RESOURCE_EXHAUSTION")).toBe(true);
    expect(isCommand("TASK_REASSIGNED")).toBe(false);
  });
});
