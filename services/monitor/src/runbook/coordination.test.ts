import { describe, expect, it } from "vitest";
import { percentOf } from "./coordination.js";

describe("emergency-cleanup's target", () => {
  it("reads the seed's percent forms, and nothing else", () => {
    expect(percentOf("20_percent")).toBe(20);
    expect(percentOf("15percent")).toBe(15);
    expect(percentOf("12.5%")).toBe(12.5);
    expect(percentOf("30")).toBe(30);
    for (const bad of [undefined, "", "twenty", "20 MB", "-5%"]) expect(percentOf(bad), String(bad)).toBeUndefined();
  });
});
