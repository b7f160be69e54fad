import {
  type CoordinateRequest,
  type Handover,
  parseTeam,
  ResourceExhaustedError,
  type TaskResult,
  UnavailableError,
} from "@cadre/protocol";
import { connectNats, createLogger, type NatsConnection, OperationServer, systemClock } from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Coordination } from "./coordinate.js";

const logger = createLogger("coordinate-test", "silent");

describe("Coordination: a partition holder's hand-overs to the lease holder", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "coordinate-test");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** A partition holder without the lease, and the lease holder's handler, here a recorder. */
  const holder = (active: () => boolean = () => false) =>
    new Coordination({
      nc,
      sender: "sup-p",
      clock: systemClock,
      logger,
      requestTimeoutMs: 1000,
      active,
      resources: () => ({ release: () => {}, waitsOn: () => {} }) as never,
      controls: () => ({ finished: () => {}, ended: () => {} }) as never,
      tally: () => ({ classified: () => {} }) as never,
      dependencies: () => ({ finished: () => {} }) as never,
      quarantine: async () => {},
      demand: async () => {},
      place: async () => {},
    });
  const result = (i: number) => ({ taskId: `w1-r-${i}`, workflowId: "w1", hostId: "host-1" }) as TaskResult;

  it("sends what queued while a request was answered in the next one, each once and in order", async () => {
    const requests: Handover[][] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const lease = await OperationServer.start(nc, { name: "lease-holder", id: "sup-l", description: "t", logger });
    lease.serve("sup.coordinate", async (req: CoordinateRequest) => {
      requests.push(req.items);
      // The first request is held until all 40 are queued: the rest must wait for it.
      if (requests.length === 1) await first;
      return { done: true };
    });
    try {
      const c = holder();
      const sent = Array.from({ length: 40 }, (_, i) => c.applied(result(i), "applied", undefined));
      release();
      await Promise.all(sent);
      expect(requests.map((r) => r.length)).toEqual([1, 39]);
      expect(requests.flat().map((h) => (h.kind === "applied" ? h.taskId : ""))).toEqual(
        Array.from({ length: 40 }, (_, i) => `w1-r-${i}`),
      );
      expect({ forwarded: c.forwarded, requests: c.requests }).toEqual({ forwarded: 40, requests: 2 });
    } finally {
      await lease.stop();
    }
  });

  it("hands over in-process, sending nothing, while it holds the lease", async () => {
    const c = holder(() => true);
    await c.delegated("w1-r", "team-1", ["w1-r-0"], ["worker"]);
    expect({ forwarded: c.forwarded, requests: c.requests }).toEqual({ forwarded: 0, requests: 0 });
  });

  it("sends a team's first submit served here with the team, alone; later ones ask only for the root kind", async () => {
    const requests: Handover[][] = [];
    const lease = await OperationServer.start(nc, { name: "lease-holder", id: "sup-l", description: "t", logger });
    lease.serve("sup.coordinate", async (req: CoordinateRequest) => {
      requests.push(req.items);
      const first = req.items[0];
      if (first?.kind === "submitted" && first.team?.name === "refused") {
        throw new ResourceExhaustedError("agents of team refused", 1, 1, { retryable: false });
      }
      return { done: true };
    });
    try {
      const c = holder();
      const team = parseTeam({
        name: "t",
        root: "lead",
        kinds: { lead: { role: "agent", replicas: 1, behaviour: { type: "script", output: {} } } },
      });
      await c.submitted("t-1", team);
      await c.submitted("t-1", team);
      expect(requests).toEqual([
        [{ kind: "submitted", teamId: "t-1", root: team.root, team }],
        [{ kind: "submitted", teamId: "t-1", root: team.root }],
      ]);
      // A refusal is the submit's own error, and the team stays unknown (its next submit sends it again).
      const refused = { ...team, name: "refused" };
      await expect(c.submitted("refused-1", refused)).rejects.toBeInstanceOf(ResourceExhaustedError);
      await expect(c.submitted("refused-1", refused)).rejects.toBeInstanceOf(ResourceExhaustedError);
      expect(requests.slice(2).map((r) => r[0]?.kind === "submitted" && r[0].team !== undefined)).toEqual([true, true]);
    } finally {
      await lease.stop();
    }
  });

  it("fails every hand-over of a request no lease holder answered, so each result goes back to the stream", async () => {
    const c = holder();
    const e = await c.quarantine("actor-1", { taskId: "w1-r-0", resultId: "r1", issues: [], at: 1 }).catch((x) => x);
    expect(e).toBeInstanceOf(UnavailableError);
  }, 30_000);
});
