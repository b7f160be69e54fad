import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TeamInput } from "@cadre/protocol";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const cadre = createRequire(import.meta.url).resolve("@cadre/cli/main");
const KINDS = 4;
const PER_KIND = 250; // 1,000 tasks, all in the host's hands when NATS goes away

describe("a host cut off from NATS (the server stopped) while it holds 1,000 tasks", () => {
  let c: TestCluster;
  let server: NatsServer;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "cadre-offline-"));
    server = await startNatsServer({ dataDir });
    // Anonymous: this test stops and restarts the server itself, which an authenticated stack
    // would not do (it starts its own, configured with the identities).
    c = await startCluster({
      security: false,
      hosts: 1,
      natsUrl: server.url,
      config: {
        ...fastConfig,
        tasks: { ackWaitMs: 30_000, maxDeliver: 5, retryBackoffMs: 100 },
        host: { maxActors: 2000 },
        orchestration_limits: { max_agents_per_orchestrator: 2000, max_concurrent_agents: 2000 },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps working, queues every result in its outbox, and replays them all when NATS is back", async () => {
    // A director hands 1,000 tasks to 1,000 agents on the one host (four kinds of 250).
    const kinds: TeamInput["kinds"] = {
      boss: {
        role: "director",
        replicas: 1,
        behaviour: {
          type: "script",
          delegate: Array.from({ length: KINDS }, (_, k) => ({ kind: `w${k}`, count: PER_KIND })),
          output: { done: true },
        },
      },
    };
    for (let k = 0; k < KINDS; k++) {
      // Long enough that no task can finish before the server is stopped, even on a slow run.
      kinds[`w${k}`] = {
        role: "agent",
        replicas: PER_KIND,
        behaviour: { type: "script", sleepMs: 10_000, output: { k } },
      };
    }
    let rec = recordEvents(c.nc);
    const id = await c.submit({ name: "offline", root: "boss", kinds });
    await until(
      "all 1,000 tasks started",
      () => rec.events.filter((e) => e.event.type === "TASK_STARTED").length >= KINDS * PER_KIND + 1,
      30_000,
    );
    rec.stop();
    // Every result must come through the outbox: none may have been sent while still online.
    expect(rec.events.filter((e) => e.event.type === "TASK_COMPLETED")).toEqual([]);

    // NATS goes away; the host's actors finish their tasks regardless.
    await server.stop();
    const queued = (n: number) => (c.logs.get("host-1") ?? []).some((l) => l.includes(`"outboxRecords":${n}`));
    await until("1,000 results in the outbox", () => queued(KINDS * PER_KIND), 30_000);

    // NATS is back, with its JetStream data: the host reconnects and replays.
    server = await startNatsServer({ dataDir, port: server.port });
    rec = recordEvents(c.nc);
    const report = await until(
      "the supervisor's reconciliation report",
      () => rec.events.find((e) => e.event.type === "RECONCILIATION_REPORT" && e.event.scope === "host-1")?.event,
      60_000,
    ).catch((err: Error) => {
      const interesting = (l: string) => !l.includes("outboxRecords") && !l.includes("actor spawned");
      const logs = [...c.logs].map(([s, l]) => `--- ${s}\n${l.filter(interesting).slice(-30).join("\n")}`).join("\n");
      throw new Error(`${err.message}\n${logs}`);
    });
    // The director's own result comes last: made while the host was replaying, it went to the
    // outbox behind the replay and needed a second one (a bug this test found).
    const w = await c.wait(id, 60_000);
    rec.stop();

    expect(w.status).toBe("completed");
    const records = await c.taskRecords(id);
    expect(records.filter((r) => r.status === "completed")).toHaveLength(KINDS * PER_KIND + 1); // lost 0
    const completions = new Map<string, number>();
    for (const e of await c.events()) {
      if (e.type === "TASK_COMPLETED") {
        completions.set(String(e.data.taskId), (completions.get(String(e.data.taskId)) ?? 0) + 1);
      }
    }
    expect(completions.size).toBe(KINDS * PER_KIND + 1);
    expect([...completions.values()].filter((n) => n > 1)).toEqual([]); // applied twice 0
    const replayed = (await c.events()).find((e) => e.type === "OUTBOX_REPLAYED" && e.scope === "host-1");
    // The first replay and its report: the 1,000 results made while the server was away.
    expect(replayed?.data.replayed).toBe(KINDS * PER_KIND);
    expect(report.data).toMatchObject({
      hostId: "host-1",
      complete: true,
      replayed: KINDS * PER_KIND,
      total: KINDS * PER_KIND,
      conflict: 0,
      orphan: 0,
    });
    expect(Number(report.data.applied) + Number(report.data.duplicate)).toBe(KINDS * PER_KIND);

    // What an operator sees: `cadre reconciliation`.
    const cli = execFileSync(process.execPath, [cadre, "reconciliation", "--host", "host-1", "--json"], {
      env: { ...process.env, CADRE_NATS_URL: server.url },
      encoding: "utf8",
    });
    const shown = JSON.parse(cli) as Record<string, unknown>[];
    expect(shown[0]).toEqual(report.data);
    const lines = execFileSync(process.execPath, [cadre, "reconciliation"], {
      env: { ...process.env, CADRE_NATS_URL: server.url },
      encoding: "utf8",
    });
    expect(lines).toContain("RECONCILIATION_REPORT:host:host-1:{");

    process.stdout.write(
      `offline outbox: ${KINDS * PER_KIND} replayed in ${replayed?.data.ms} ms; report ${JSON.stringify(report.data)}\n`,
    );
  }, 180_000);
});
