import { ResourceExhaustedError } from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import { planSpawn, type QuotaActor } from "./quota.js";

const actor = (actorId: string, teamId: string, priority: number, spawnedAt = 0): QuotaActor => ({
  actorId,
  teamId,
  priority,
  spawnedAt,
});

function refused(f: () => unknown): ResourceExhaustedError {
  try {
    f();
  } catch (err) {
    if (err instanceof ResourceExhaustedError) return err;
    throw err;
  }
  throw new Error("expected RESOURCE_EXHAUSTED");
}

describe("quota arithmetic", () => {
  const base = { teamId: "t", priority: 0, maxPerTeam: 3, maxGlobal: 5 };

  it("allows a team up to exactly its limit, and refuses one more with the limit and the count", () => {
    const two = [actor("a", "t", 0), actor("b", "t", 0)];
    expect(planSpawn({ ...base, need: 1, actors: two })).toEqual([]);
    const e = refused(() => planSpawn({ ...base, need: 2, actors: two }));
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.retryable).toBe(false);
    expect(e.data).toMatchObject({ limit: 3, count: 2 });
    expect(e.message).toContain("max_agents_per_orchestrator");
  });

  it("needs nothing when nothing is wanted, whatever the counts", () => {
    const full = Array.from({ length: 9 }, (_, i) => actor(`a${i}`, "t", 0));
    expect(planSpawn({ ...base, need: 0, actors: full })).toEqual([]);
  });

  it("fills the cluster exactly to its limit without preempting", () => {
    const four = [actor("a", "x", 0), actor("b", "x", 0), actor("c", "y", 0), actor("d", "y", 0)];
    expect(planSpawn({ ...base, need: 1, actors: four })).toEqual([]);
  });

  it("at the cluster's limit preempts the lowest priority first, then the youngest", () => {
    const actors = [
      actor("old-p1", "x", 1, 100),
      actor("young-p1", "x", 1, 200),
      actor("p0", "y", 0, 50),
      actor("p3", "z", 3, 10),
      actor("mine", "t", 5, 0),
    ];
    const victims = planSpawn({ ...base, priority: 5, need: 2, actors });
    expect(victims.map((a) => a.actorId)).toEqual(["p0", "young-p1"]);
  });

  it("never preempts equal or higher priority: refused with the global limit and count", () => {
    const actors = [actor("a", "x", 5), actor("b", "x", 7), actor("c", "y", 5), actor("d", "y", 4), actor("e", "z", 9)];
    const victims = planSpawn({ ...base, priority: 5, need: 1, actors });
    expect(victims.map((a) => a.actorId)).toEqual(["d"]);
    const e = refused(() => planSpawn({ ...base, priority: 5, need: 2, actors }));
    expect(e.data).toMatchObject({ limit: 5, count: 5 });
    expect(e.message).toContain("only 1 belong to lower-priority teams");
  });

  it("breaks a full tie (same priority and age) on the actor id, so the choice is repeatable", () => {
    const actors = [actor("a1", "x", 0, 5), actor("a2", "x", 0, 5)];
    expect(planSpawn({ ...base, priority: 1, need: 1, maxGlobal: 2, actors }).map((a) => a.actorId)).toEqual(["a2"]);
  });

  describe("guarantees", () => {
    it("spares a guaranteed team's reserved actors from preemption by a higher priority", () => {
      // The low team's actors are the youngest: without the guarantee they would go first.
      const low = [actor("g1", "low", 0, 10), actor("g2", "low", 0, 11), actor("g3", "low", 0, 12)];
      const others = [actor("x1", "mid", 0, 1), actor("x2", "mid", 0, 2)];
      const victims = planSpawn({
        teamId: "high",
        priority: 9,
        need: 2,
        actors: [...low, ...others],
        maxPerTeam: 5,
        maxGlobal: 5,
        reserved: new Map([["low", 2]]),
      });
      // g1 and g2 (its oldest two) are reserved; the two youngest of the rest go.
      expect(victims.map((v) => v.actorId).sort()).toEqual(["g3", "x2"].sort());
    });

    it("refuses rather than take reserved actors, and says so", () => {
      const low = [actor("g1", "low", 0), actor("g2", "low", 0)];
      const e = refused(() =>
        planSpawn({
          teamId: "high",
          priority: 9,
          need: 2,
          actors: low,
          maxPerTeam: 5,
          maxGlobal: 2,
          reserved: new Map([["low", 2]]),
        }),
      );
      expect(e.message).toContain("reserved by guarantees");
    });

    it("holds the room a guaranteed team has not filled yet", () => {
      const low = [actor("g1", "low", 0)];
      // low is guaranteed 3 and has 1: 2 seats are held, so only 2 of 5 remain for others.
      expect(() =>
        planSpawn({
          teamId: "other",
          priority: 0,
          need: 3,
          actors: low,
          maxPerTeam: 5,
          maxGlobal: 5,
          reserved: new Map([["low", 3]]),
        }),
      ).toThrow(ResourceExhaustedError);
      expect(
        planSpawn({
          teamId: "other",
          priority: 0,
          need: 2,
          actors: low,
          maxPerTeam: 5,
          maxGlobal: 5,
          reserved: new Map([["low", 3]]),
        }),
      ).toEqual([]);
      // The guaranteed team itself may use its own held room.
      expect(
        planSpawn({
          teamId: "low",
          priority: 0,
          need: 2,
          actors: low,
          maxPerTeam: 5,
          maxGlobal: 5,
          reserved: new Map([["low", 3]]),
        }),
      ).toEqual([]);
    });
  });
});
