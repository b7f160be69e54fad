import { Script } from "node:vm";
import { describe, expect, it } from "vitest";
import { DASHBOARD_HTML } from "./assets.js";
import { DASHBOARD_JS } from "./client.js";

describe("the dashboard's assets", () => {
  it("serve a script that parses as plain browser JavaScript", () => {
    expect(() => new Script(DASHBOARD_JS, { filename: "app.js" })).not.toThrow();
  });

  it("link the page to its script and style, with a live region for the events", () => {
    expect(DASHBOARD_HTML).toContain('src="/dashboard/app.js"');
    expect(DASHBOARD_HTML).toContain('href="/dashboard/app.css"');
    expect(DASHBOARD_HTML).toMatch(/id="event-list" aria-live="polite"/);
  });
});
