/**
 * W3C trace context across delegations (runtime tracing.ts): with OTEL_EXPORTER_OTLP_ENDPOINT
 * set, one workflow is one trace across the client, the supervisor and the hosts, exported over
 * OTLP/HTTP JSON to a stand-in receiver; and a task redelivered to another host after its host
 * was killed stays in that trace.
 */

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { initTracing, SpanKind, type Tracing, withSpan } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";
import { ancestorsOf, OTLP_KIND, type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../helpers/otlp.js";

const SUPERVISOR = "cadre-supervisor";
const HOST = "cadre-agent-host";
const CLIENT = "cadre-test";
const cadre = createRequire(import.meta.url).resolve("@cadre/cli/main");
const run = promisify(execFile);

describe("tracing: one workflow, one trace", () => {
  let otlp: OtlpReceiver;
  let tracing: Tracing;
  let c: TestCluster;

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url };
    // This process is the client: its spans go to the same receiver.
    tracing = initTracing(CLIENT, { env });
    c = await startCluster({ hosts: 2, env });
  });
  afterAll(async () => {
    await c?.stop();
    await tracing?.shutdown();
    await otlp?.stop();
  });

  const ofWorkflow = (workflowId: string) => otlp.spans.filter((s) => s.attributes["cadre.workflow.id"] === workflowId);
  const named = (spans: readonly ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);
  const describeSpans = (spans: readonly ReceivedSpan[]) =>
    spans
      .map((s) => `${s.service}/${s.instance ?? "-"} ${s.name} ${s.spanId}<-${s.parentSpanId || "root"} ${s.traceId}`)
      .join("\n");

  it("the client, the supervisor and both hosts' spans of a delegating workflow share one trace id", async () => {
    const { workflowId, clientTrace } = await withSpan(
      "test.client",
      {},
      async (span) => {
        const id = await c.submit(fanTeam("traced", 2, 100));
        const w = await c.wait(id, 30_000);
        expect(w.status, c.tail()).toBe("completed");
        return { workflowId: id, clientTrace: span.spanContext().traceId };
      },
      { kind: SpanKind.CLIENT },
    );
    expect(clientTrace).toMatch(/^[0-9a-f]{32}$/);

    // Exported in batches (every 500 ms): wait for the last ones (the client's root, the last result's).
    await until(
      "the workflow's spans",
      () => {
        const mine = otlp.spans.filter((s) => s.traceId === clientTrace);
        return (
          named(mine, "test.client").length === 1 &&
          named(mine, "cadre.workflow").length === 1 &&
          named(mine, "cadre.task lead").length >= 1 &&
          named(mine, "cadre.task worker").length >= 2 &&
          named(mine, "cadre.result.apply").length >= 3
        );
      },
      20_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${describeSpans(otlp.spans)}`);
    });
    const trace = otlp.spans.filter((s) => s.traceId === clientTrace);
    const dump = describeSpans(trace);

    // Every span that names the workflow is in the client's trace.
    const tagged = ofWorkflow(workflowId);
    expect(tagged.length).toBeGreaterThan(5);
    expect(new Set(tagged.map((s) => s.traceId)), dump).toEqual(new Set([clientTrace]));

    const [client] = named(trace, "test.client");
    const [root] = named(trace, "cadre.workflow");
    expect(client?.parentSpanId).toBe("");
    expect(root?.parentSpanId).toBe(client?.spanId);
    expect(root?.service).toBe(CLIENT);

    // The supervisor answered the submit under the client's root span.
    const submit = named(trace, "cadre.op sup.submit").filter((s) => s.service === SUPERVISOR);
    expect(submit.length, dump).toBeGreaterThanOrEqual(1);
    expect(
      submit.every((s) => s.kind === OTLP_KIND.server && s.parentSpanId === root?.spanId),
      dump,
    ).toBe(true);

    // The lead's task span is a child of the submit's span (the task message's traceparent).
    const lead = named(trace, "cadre.task lead");
    expect(
      lead.every((s) => s.service === HOST && s.kind === OTLP_KIND.consumer),
      dump,
    ).toBe(true);
    const leadSpan = lead[0] as ReceivedSpan;
    expect(submit.map((s) => s.spanId)).toContain(leadSpan.parentSpanId);
    expect(leadSpan.attributes).toMatchObject({
      "messaging.system": "nats",
      "cadre.workflow.id": workflowId,
      "cadre.task.kind": "lead",
      "cadre.task.epoch": 1,
      "cadre.task.attempt": 1,
    });
    expect(leadSpan.attributes["cadre.host.id"]).toBe(leadSpan.instance);
    expect(String(leadSpan.attributes["cadre.actor.id"])).not.toBe("");

    // The lead's delegation is answered by the supervisor under the lead's span.
    const delegate = named(trace, "cadre.op sup.delegate");
    expect(delegate.length, dump).toBeGreaterThanOrEqual(1);
    expect(delegate.every((s) => s.service === SUPERVISOR && s.kind === OTLP_KIND.server)).toBe(true);
    expect(ancestorsOf(trace, delegate[0] as ReceivedSpan)).toContain(leadSpan);

    // Each worker's task span descends from the lead's task span, through the delegate span.
    const workers = named(trace, "cadre.task worker");
    expect(new Set(workers.map((s) => s.attributes["cadre.task.id"])).size).toBe(2);
    for (const w of workers) {
      const above = ancestorsOf(trace, w);
      expect(above, dump).toContain(leadSpan);
      expect(
        above.some((s) => s.name === "cadre.op sup.delegate"),
        dump,
      ).toBe(true);
      expect(w.attributes["cadre.task.kind"]).toBe("worker");
    }

    // The behaviours ran in spans under their tasks'.
    const behaviours = named(trace, "cadre.behaviour script");
    expect(behaviours.length, dump).toBeGreaterThanOrEqual(3);
    const taskSpanIds = new Set([...lead, ...workers].map((s) => s.spanId));
    expect(
      behaviours.every((s) => taskSpanIds.has(s.parentSpanId)),
      dump,
    ).toBe(true);

    // Each result was applied by the supervisor in a span under the attempt that sent it.
    const applies = named(trace, "cadre.result.apply");
    expect(
      applies.every((s) => s.service === SUPERVISOR && taskSpanIds.has(s.parentSpanId)),
      dump,
    ).toBe(true);
    expect(new Set(applies.map((s) => s.attributes["cadre.task.id"])).size).toBe(3);
    expect(applies.some((s) => s.attributes["cadre.result.outcome"] === "applied")).toBe(true);

    // From the client, the supervisor and at least one host (both, when the workers were spread).
    const sources = new Set(trace.map((s) => `${s.service}/${s.instance ?? ""}`));
    expect(sources.size, [...sources].join(", ")).toBeGreaterThanOrEqual(3);
    expect([...sources].some((s) => s.startsWith(SUPERVISOR))).toBe(true);
    expect([...sources].some((s) => s.startsWith(HOST))).toBe(true);
    const hosts = new Set([...lead, ...workers].map((s) => s.instance));
    expect([...hosts].every((h) => h === "host-1" || h === "host-2")).toBe(true);
  });

  it("cadre run begins the trace: its cadre.workflow span is the root, flushed before the command exits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cadre-trace-"));
    const file = join(dir, "team.json");
    writeFileSync(file, JSON.stringify(fanTeam("traced-cli", 2, 50)));
    // Not execFileSync: this process's receiver must answer the command's export before it exits.
    const { stdout } = await run(process.execPath, [cadre, "run", file, "--json"], {
      env: { ...process.env, ...c.cliEnv(), OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url },
    }).finally(() => rmSync(dir, { recursive: true, force: true }));
    const summary = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { workflowId: string; status: string };
    expect(summary.status).toBe("completed");
    // The command exported its span before it exited: it is here already.
    const root = otlp.spans.find(
      (s) => s.name === "cadre.workflow" && s.attributes["cadre.workflow.id"] === summary.workflowId,
    );
    expect(root?.service).toBe("cadre-cli");
    expect(root?.parentSpanId).toBe("");
    expect(root?.attributes["cadre.workflow.status"]).toBe("completed");
    await until(
      "the hosts' spans of the CLI's workflow",
      () => named(ofWorkflow(summary.workflowId), "cadre.result.apply").length >= 3,
      20_000,
    );
    const spans = ofWorkflow(summary.workflowId);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([root?.traceId]));
    const submit = otlp.spans.find((s) => s.name === "cadre.op sup.submit" && s.parentSpanId === root?.spanId);
    expect(submit?.service).toBe(SUPERVISOR);
  });

  /**
   * Submits a lead of 2 slow workers (2 replicas, one per host) under a client span, kills the
   * host of the first worker task that starts, and returns the survivor's span of that task
   * once received, with the client's trace id and the spans of that trace.
   */
  async function killAndFollow(cluster: TestCluster) {
    const team = {
      name: "traced-kill",
      root: "lead",
      kinds: {
        lead: {
          role: "lead" as const,
          behaviour: {
            type: "script" as const,
            delegate: [{ kind: "worker", count: 2, input: { n: "{{index}}" } }],
            output: { parts: "{{children}}" },
          },
        },
        worker: {
          role: "agent" as const,
          replicas: 2,
          behaviour: { type: "script" as const, sleepMs: 2000, output: { done: "{{input.n}}" } },
        },
      },
    };
    const rec = recordEvents(cluster.nc);
    try {
      let workflowId = "";
      let traceId = "";
      await withSpan("test.client", {}, async (span) => {
        traceId = span.spanContext().traceId;
        workflowId = await cluster.submit(team);
      });
      const started = await until("a worker task started", () =>
        rec.events.find(
          (e) => e.event.type === "TASK_STARTED" && e.event.scope === workflowId && e.event.data.kind === "worker",
        ),
      );
      const victim = String(started.event.data.hostId);
      const taskId = String(started.event.data.taskId);
      const survivor = victim === "host-1" ? "host-2" : "host-1";
      await cluster.stack.processes.get(victim)?.kill("SIGKILL");

      const w = await cluster.wait(workflowId, 60_000);
      expect(w.status, cluster.tail()).toBe("completed");
      const moved = (await cluster.taskRecords(workflowId)).find((r) => r.task.taskId === taskId);
      expect(moved?.applied?.hostId).toBe(survivor);

      const later = await until(
        "the survivor's span of the moved task",
        () =>
          otlp.spans.find(
            (s) =>
              s.name === "cadre.task worker" &&
              s.attributes["cadre.task.id"] === taskId &&
              s.attributes["cadre.host.id"] === survivor,
          ),
        20_000,
      );
      // Its result was applied in the same trace.
      await until(
        "the moved task's result applied in the trace",
        () =>
          otlp.spans.some(
            (s) =>
              s.name === "cadre.result.apply" &&
              s.attributes["cadre.task.id"] === taskId &&
              s.attributes["cadre.host.id"] === survivor &&
              s.traceId === traceId,
          ),
        20_000,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}\n${describeSpans(otlp.spans.filter((s) => s.traceId === traceId))}`);
      });
      const trace = otlp.spans.filter((s) => s.traceId === traceId);
      return { later, survivor, traceId, trace, dump: describeSpans(trace) };
    } finally {
      rec.stop();
    }
  }

  it("the trace id survives a redelivery to another host", async () => {
    const { later, survivor, traceId, trace, dump } = await killAndFollow(c);
    expect(later.traceId, dump).toBe(traceId);
    expect(later.instance).toBe(survivor);
    const epoch = Number(later.attributes["cadre.task.epoch"]);
    const attempt = Number(later.attributes["cadre.task.attempt"]);
    // Moved by JetStream's redelivery (the 1.5 s ack wait) or a reassignment, whichever came first.
    expect(epoch + attempt).toBeGreaterThan(2);
    const above = ancestorsOf(trace, later).map((s) => s.name);
    // Redelivered: the same message, so the delegate request's context; reassigned: published
    // again under the old message's context.
    expect(above, dump).toContain("cadre.op sup.delegate");
    if (epoch > 1) expect(above, dump).toContain("cadre.task.reassign");
  });

  it("and a reassignment at a new epoch (no redelivery before it) keeps the trace", async () => {
    // An ack wait far longer than detection + grace: the supervisor reassigns first.
    const slow = await startCluster({
      hosts: 2,
      config: { ...fastConfig, tasks: { ...fastConfig.tasks, ackWaitMs: 20_000 } },
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url },
    });
    try {
      const { later, traceId, trace, dump } = await killAndFollow(slow);
      expect(later.traceId, dump).toBe(traceId);
      expect(later.attributes["cadre.task.epoch"], dump).toBe(2);
      const [parent] = ancestorsOf(trace, later);
      expect(parent?.name, dump).toBe("cadre.task.reassign");
      expect(parent?.service).toBe(SUPERVISOR);
      expect(parent?.attributes["cadre.reassign.from_host"]).not.toBe(later.instance);
      expect(
        ancestorsOf(trace, later).map((s) => s.name),
        dump,
      ).toContain("cadre.op sup.delegate");
    } finally {
      await slow.stop();
    }
  });
});
