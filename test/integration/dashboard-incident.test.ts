/**
 * The dashboard's incident report (services/monitor/src/dashboard/incident.ts, served as
 * `/dashboard/api/incident`) against a real cluster: after a workflow completes, the report of
 * the last five minutes counts it and has its text; a query it cannot use is a 400 that says
 * what to fix, and one that cannot read the stream a 503.
 */

import { randomUUID } from "node:crypto";
import type { IncidentReport } from "@cadre/monitor/incident";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The function itself, not through the monitor's HTTP port: the route only passes the query on.
import { incidentFromQuery } from "../../services/monitor/src/dashboard/incident.js";
import { chainTeam, startCluster, type TestCluster, until } from "../helpers/cluster.js";

/** A 400 reply's body. */
interface Refusal {
  error: { code: string; message: string };
}

describe("the dashboard's incident report", () => {
  let c: TestCluster;
  let workflowId: string;

  beforeAll(async () => {
    c = await startCluster({ hosts: 1 });
    workflowId = await c.submit(chainTeam(`dash-incident-${randomUUID().slice(0, 8)}`, 1));
    const w = await c.wait(workflowId, 30_000);
    expect(w.status, c.tail()).toBe("completed");
    // The report reads the stream: wait until the completion is stored there.
    await until("the workflow's WORKFLOW_COMPLETED in the events stream", async () =>
      (await c.events()).some((e) => e.type === "WORKFLOW_COMPLETED" && e.scope === workflowId),
    );
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("reports the last five minutes as text and JSON, counting the completed workflow", async () => {
    const now = Date.now();
    const r = await incidentFromQuery(c.nc, new URLSearchParams("since=5m"), now);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const { text, report } = r.body as { text: string; report: IncidentReport };
    expect(report.window).toMatchObject({ sinceMs: now - 5 * 60_000, untilMs: now });
    expect(report.counts.workflows).toMatchObject({ submitted: 1, completed: 1, failed: 0, unfinished: [] });
    // The chain's two tasks: the lead's and its agent's.
    expect(report.counts.tasksCompleted).toBeGreaterThanOrEqual(2);
    expect(report.counts.lost).toBe(0);
    expect(report.read).toMatchObject({ capped: false, skipped: 0 });
    // What `cadre incident report` prints, for this window.
    expect(text.startsWith(`Incident report ${report.window.since} .. ${new Date(now).toISOString()}`), text).toBe(
      true,
    );
    expect(text).toContain("Counts:");
  });

  it.each([
    ["since=bogus", /^since: expected an ISO 8601 time .*a duration ago .*15m.*got "bogus"/],
    ["", /^since: required: an ISO 8601 time .* or a duration ago such as 15m/],
    ["since=5m&until=10m", /^until \(.+\) is before since \(.+\); give an until after since/],
    ["since=5m&until=yesterday", /^until: expected an ISO 8601 time/],
    ["since=5m&max=0", /^max: expected a whole number of events from 1 to 200000, got "0"/],
  ])("refuses the query %j with a 400 that says what to fix", async (query, message) => {
    const r = await incidentFromQuery(c.nc, new URLSearchParams(query), Date.now());
    expect(r.status).toBe(400);
    const { error } = r.body as Refusal;
    expect(error.code).toBe("PROTOCOL_ERROR");
    expect(error.message).toMatch(message);
  });

  it("answers 503 UNAVAILABLE when the events stream cannot be read", async () => {
    const nc = await c.connectAs("viewer");
    await nc.close();
    const r = await incidentFromQuery(nc, new URLSearchParams("since=5m"), Date.now());
    expect(r.status).toBe(503);
    expect((r.body as Refusal).error).toMatchObject({
      code: "UNAVAILABLE",
      message: expect.stringMatching(/^could not read the events stream: /),
    });
  });
});
