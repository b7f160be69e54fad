import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, startCluster, type TestCluster, until, waitForEvent } from "../helpers/cluster.js";

const cadre = createRequire(import.meta.url).resolve("@cadre/cli/main");

/** What this test reads of `cadre incident report --json` (services/monitor/src/incident/report.ts IncidentReport). */
interface Report {
  window: { sinceMs: number; untilMs: number };
  read: { events: number; skipped: number; capped: boolean };
  faults: {
    id: string;
    type: string;
    key: string;
    scope: string;
    target: { case: string; source: string } | null;
    detectedAt: number;
    detectMs: number | null;
    detect: string;
    recoveredAt: number | null;
    recoveredBy: { type: string; how: string } | null;
    recover: string;
    verdict: string;
    detail: Record<string, unknown>;
  }[];
  counts: {
    lost: number;
    appliedTwice: number;
    reassigned: number;
    conflicts: number;
    duplicates: number;
    workflows: { submitted: number; completed: number; unfinished: string[] };
  };
  timeline: { type: string; fault?: string; recovers?: string[] }[];
}

describe("cadre incident report, after an agent-host is killed in the middle of a workflow", () => {
  let c: TestCluster;
  let victim: string;
  let workflowId: string;

  beforeAll(async () => {
    c = await startCluster({
      hosts: 2,
      // The ack wait is long so the killed host's tasks move by reassignment (detection, then the
      // 1 s grace), never by JetStream's redelivery first: the report's recovery is a TASK_REASSIGNED.
      config: {
        tasks: { ackWaitMs: 30_000, maxDeliver: 5, retryBackoffMs: 100 },
        heartbeat: { intervalMs: 200, hostDeadAfterMs: 1000 },
      },
    });
    const started = waitForEvent(c.nc, (e) => e.type === "TASK_STARTED" && e.data.kind === "worker");
    workflowId = await c.submit(fanTeam("incident", 6, 1500, 4));
    victim = String((await started).data.hostId);
    c.stack.processes.get(victim)?.kill("SIGKILL");
    const w = await c.wait(workflowId, 60_000);
    expect(w.status, c.tail()).toBe("completed");
    // The events are stored (critical: acknowledged by JetStream) by the time they are read here.
    await until(
      "the victim's HOST_UNREACHABLE and TASK_REASSIGNED in the events stream",
      async () => {
        const events = await c.events();
        return (
          events.some((e) => e.type === "HOST_UNREACHABLE" && e.scope === victim) &&
          events.some((e) => e.type === "TASK_REASSIGNED" && e.data.fromHostId === victim) &&
          events.some((e) => e.type === "WORKFLOW_COMPLETED" && e.scope === workflowId)
        );
      },
      20_000,
    );
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("has the host's HOST_UNREACHABLE fault, detected and recovered by the reassignment, against seed 000's target", async () => {
    const report = JSON.parse(c.cli("incident", "report", "--since", "5m", "--json")) as Report;
    const events = await c.events();
    const fault = report.faults.find((f) => f.type === "HOST_UNREACHABLE" && f.scope === victim);
    expect(fault, JSON.stringify(report.faults)).toBeDefined();
    if (!fault) return;
    expect(fault.key).toBe(`host:${victim}`);
    expect(fault.detectedAt).toBeGreaterThanOrEqual(report.window.sinceMs);
    expect(fault.detectMs).toBeGreaterThan(0);
    expect(fault.detect === "met" || fault.detect === "missed").toBe(true);
    expect(fault.target).toMatchObject({ case: "Network Partition", source: "seeds/000_c4c521c85f6376de.txt:262" });
    expect(fault.recoveredBy?.type).toBe("TASK_REASSIGNED");
    expect(fault.recoveredAt).toBeGreaterThanOrEqual(fault.detectedAt);
    expect(fault.recover).toBe("met");
    // Every task the victim held moved; the reassigned ones are the TASK_REASSIGNEDs from it.
    const fromVictim = events
      .filter((e) => e.type === "TASK_REASSIGNED" && e.data.fromHostId === victim)
      .map((e) => String(e.data.taskId));
    expect(fault.detail.reassigned).toEqual(fromVictim);
    expect(fault.detail.moved).toEqual(expect.arrayContaining(fault.detail.held as string[]));

    // The counts are what the events say.
    expect(report.counts.reassigned).toBe(events.filter((e) => e.type === "TASK_REASSIGNED").length);
    expect(report.counts.appliedTwice).toBe(0);
    expect(report.counts.lost).toBe(0);
    expect(report.counts.duplicates).toBe(events.filter((e) => e.type === "RESULT_DUPLICATE").length);
    expect(report.counts.conflicts).toBe(events.filter((e) => e.type === "RESULT_CONFLICT").length);
    expect(report.counts.workflows).toMatchObject({ submitted: 1, completed: 1, unfinished: [] });
    expect(report.read).toMatchObject({ capped: false, skipped: 0 });

    // On the timeline: the fault, and the reassignment that ended it.
    const ending = report.timeline.find((t) => t.recovers?.includes(fault.id));
    expect(ending?.type).toBe("TASK_REASSIGNED");
    expect(report.timeline.find((t) => t.fault === fault.id)?.type).toBe("HOST_UNREACHABLE");
  });

  it("--markdown has the fault's row in the faults table, and the counts", () => {
    const md = c.cli("incident", "report", "--since", "5m", "--markdown");
    expect(md).toMatch(/^# Incident report\n/);
    const row = md.split("\n").find((l) => l.includes(`| HOST_UNREACHABLE | host:${victim} |`));
    expect(row, md).toBeDefined();
    expect(row).toContain("| < 15s |");
    expect(row).toContain("| On heal | met |");
    expect(row).toContain("TASK_REASSIGNED: its tasks reassigned");
    expect(md).toContain("| applied twice | 0 |");
    expect(md).toContain("| tasks lost | 0 |");
  });

  it("with --until (an ISO time) at the detection, before any of the host's tasks moved, the same fault is open", () => {
    const full = JSON.parse(c.cli("incident", "report", "--since", "5m", "--json")) as Report;
    const f = full.faults.find((x) => x.key === `host:${victim}`);
    if (!f?.recoveredAt) throw new Error(`no recovered fault of ${victim}: ${JSON.stringify(full.faults)}`);
    // Reassignment waits tasks.reassignGraceMs (1 s) after the detection: nothing has moved at it.
    const until = new Date(f.detectedAt).toISOString();
    const cut = JSON.parse(
      c.cli("incident", "report", "--since", new Date(full.window.sinceMs).toISOString(), "--until", until, "--json"),
    ) as Report;
    expect(cut.window.untilMs).toBe(f.detectedAt);
    expect(cut.faults.find((x) => x.key === `host:${victim}`)).toMatchObject({
      detectedAt: f.detectedAt,
      recoveredAt: null,
      recover: "open",
      verdict: "open",
    });
    expect(cut.counts.reassigned).toBe(0);
  });

  it("stops at --max-events and says so", () => {
    const r = spawnSync(
      process.execPath,
      [cadre, "incident", "report", "--since", "5m", "--max-events", "3", "--json"],
      {
        env: { ...process.env, ...c.cliEnv() },
        encoding: "utf8",
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.read).toMatchObject({ capped: true });
    expect(report.read.events).toBeLessThanOrEqual(3);
    expect(r.stderr).toContain("stopped after 3 events");
  });

  it("the text report names the fault too", () => {
    const text = c.cli("incident", "report", "--since", "5m");
    expect(text).toContain(`host ${victim} unreachable`);
    expect(text).toMatch(new RegExp(`HOST_UNREACHABLE\\s+host:${victim}\\s`));
  });

  it.each([
    [["--since", "yesterday"], "expected an ISO 8601 time"],
    [["--since", "5m", "--until", "10m"], "is before --since"],
    [["--since", "5m", "--json", "--markdown"], "cannot be used with option"],
  ])("exits 2 with what is wrong for %j", (args, message) => {
    const r = spawnSync(process.execPath, [cadre, "incident", "report", ...args], {
      env: { ...process.env, ...c.cliEnv() },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^cadre: /);
    expect(r.stderr).toContain(message);
  });
});
