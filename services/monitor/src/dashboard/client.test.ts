import { Script } from "node:vm";
import { describe, expect, it } from "vitest";
import { DASHBOARD_HTML } from "./assets.js";
import { DASHBOARD_JS, DASHBOARD_PARTS } from "./client.js";

describe("the dashboard's assets", () => {
  it("serve a script that parses as plain browser JavaScript", () => {
    expect(() => new Script(DASHBOARD_JS, { filename: "app.js" })).not.toThrow();
  });

  it.each(Object.entries(DASHBOARD_PARTS))("keep the %s part free of backquotes and dollar-brace", (_name, part) => {
    expect(part).not.toContain("`");
    expect(part).not.toContain("${");
    expect(DASHBOARD_JS).toContain(part);
  });

  it("declare each function and variable of the script once (its parts share one scope)", () => {
    const names = [...DASHBOARD_JS.matchAll(/^ {2}(?:function|var) (\w+)/gm)].map((m) => m[1]);
    const twice = names.filter((n, i) => names.indexOf(n) !== i);
    expect(names.length).toBeGreaterThan(20);
    expect(twice).toEqual([]);
  });

  it("link the page to its script and style, with a live region for the events", () => {
    expect(DASHBOARD_HTML).toContain('src="/dashboard/app.js"');
    expect(DASHBOARD_HTML).toContain('href="/dashboard/app.css"');
    expect(DASHBOARD_HTML).toMatch(/id="event-list" aria-live="polite"/);
  });
});
