/** The agent pool failure's schemas and placement rule (runbook-recovery.ts). */

import { describe, expect, it } from "vitest";
import { formatIssues } from "./errors.js";
import { ActorTransferRequestSchema, inStead, TransferRequestSchema } from "./runbook-recovery.js";

const actor = (actorId: string, spawnedAt: number, extra: { replaces?: string; kindName?: string } = {}) => ({
  actorId,
  teamId: "t1",
  kindName: extra.kindName ?? "worker",
  spawnedAt,
  status: "active",
  ...(extra.replaces ? { replaces: extra.replaces } : {}),
});

describe("the actor placed in a failed one's stead", () => {
  it("is the one recorded as replacing it, else the earliest of its kind spawned after the failure", () => {
    const actors = [
      actor("worker-old", 100),
      actor("worker-q2", 5000, { replaces: "worker-q" }),
      actor("worker-new2", 6200),
      actor("worker-new1", 6100),
      actor("lead-x", 6000, { kindName: "lead" }),
    ];
    const failed = [
      { actorId: "worker-b", teamId: "t1", kind: "worker", at: 6050 },
      { actorId: "worker-a", teamId: "t1", kind: "worker", at: 6000 },
      { actorId: "worker-q", teamId: "t1", kind: "worker", at: 4000 },
      { actorId: "worker-c", teamId: "t1", kind: "worker", at: 6000 },
    ];
    const m = inStead(actors, failed);
    expect(m.get("worker-q")).toBe("worker-q2");
    // In the order they failed, each takes the earliest spawned after it not yet taken.
    expect(m.get("worker-a")).toBe("worker-new1");
    expect(m.get("worker-c")).toBe("worker-new2");
    // None left for the third loss: an older actor is not its replacement.
    expect(m.has("worker-b")).toBe(false);
  });
});

describe("transfer-context's request", () => {
  it("takes the seed's example", () => {
    const r = TransferRequestSchema.parse({
      failed_agents: ["agent_005", "agent_007", "agent_012"],
      replacement_agents: ["agent_015", "agent_016", "agent_017"],
      context_transfer: "complete_state_and_history",
      validation: "comprehensive",
      rollback_capability: "enabled",
    });
    expect(r.replacement_agents).toHaveLength(3);
  });

  it("refuses replacements that do not pair with the failed agents, repeats, and unknown fields, by name", () => {
    const issues = (v: unknown) => {
      const r = TransferRequestSchema.safeParse(v);
      return r.success ? [] : formatIssues(r.error.issues).map((i) => `${i.path}: ${i.message}`);
    };
    expect(issues({ failed_agents: ["a", "b"], replacement_agents: ["c"] })).toEqual([
      "replacement_agents: give one replacement per failed agent (2), in the same order, or leave it out",
    ]);
    expect(issues({ failed_agents: ["a", "a"] })).toEqual(["failed_agents: name each failed agent once"]);
    expect(issues({ failed_agents: ["a"], replacement_agents: ["a"] })[0]).toContain("also a failed agent");
    expect(issues({ failed_agents: ["a"], bogus: 1 })[0]).toContain("bogus");
  });

  it("has the supervisor refuse a context that is not the failed actor's", () => {
    const r = ActorTransferRequestSchema.safeParse({
      fromActorId: "a",
      teamId: "t1",
      kind: "worker",
      context: { fromActorId: "b", history: [] },
    });
    expect(r.success).toBe(false);
  });
});
