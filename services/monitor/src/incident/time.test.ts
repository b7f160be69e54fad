/** Times on the command line (time.ts). */

import { describe, expect, it } from "vitest";
import { T0 } from "./testing.js";
import { parseTime } from "./time.js";

describe("times on the command line", () => {
  const now = T0;
  it.each([
    ["30s", now - 30_000],
    ["15m", now - 900_000],
    ["2h", now - 7_200_000],
    ["1d", now - 86_400_000],
    ["500ms", now - 500],
    ["1.5h ago", now - 5_400_000],
    ["now", now],
    ["2026-05-01T09:00:00Z", T0 - 3_600_000],
    ["2026-05-01T11:00:00.250+01:00", T0 + 250],
    ["2026-05-01", Date.parse("2026-05-01")],
  ])("%s", (text, expected) => {
    expect(parseTime(text, now)).toBe(expected);
  });

  it.each(["yesterday", "15", "-5m", "15 minutes", "2026-13-45T99:00:00Z", "", "1w"])(
    "refuses %j, saying what is accepted",
    (text) => {
      expect(() => parseTime(text, now)).toThrow(/expected an ISO 8601 time .* a duration ago \(30s, 15m, 2h, 1d\)/);
    },
  );
});
