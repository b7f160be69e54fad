import { BehaviourFailedError, ScriptBehaviourSchema, type TaskEnvelope } from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import { ManualClock, type WorkflowState } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { createScriptBehaviour, INVALID_OUTPUT, renderTemplate, rollsFor, templateScope } from "./index.js";
import type { BehaviourContext, ChildOutcome } from "./types.js";

function task(taskId = "w1-r-0", input: Record<string, unknown> = { feature: "login" }): TaskEnvelope {
  return taskEnvelope({ taskId, input });
}

/** Records the transactions a behaviour asks for (the real store is tested in runtime and integration). */
function recordingState(): WorkflowState & { writes: Record<string, unknown>[] } {
  const writes: Record<string, unknown>[] = [];
  return {
    writes,
    get: async () => undefined,
    read: async () => ({}),
    transact: async (names, fn) => {
      writes.push(fn({}));
      return { txid: `tx${writes.length}`, names: [...names] };
    },
  };
}

function ctx(over: Partial<BehaviourContext> = {}): BehaviourContext {
  return {
    task: task(),
    attempt: 1,
    clock: new ManualClock(),
    signal: new AbortController().signal,
    state: recordingState(),
    ...over,
  };
}

const script = (spec: Record<string, unknown>) =>
  createScriptBehaviour(ScriptBehaviourSchema.parse({ type: "script", ...spec }));

describe("script behaviour", () => {
  it("renders its output template with the task's input, id and attempt", async () => {
    const b = script({
      output: { summary: "built {{input.feature}} in {{task.id}} (try {{attempt}})", raw: "{{input}}" },
    });
    await expect(b.run(ctx({ attempt: 2 }), [])).resolves.toEqual({
      summary: "built login in w1-r-0 (try 2)",
      raw: { feature: "login" },
    });
  });

  it("sets the workflow state it declares in one transaction, with its output in scope", async () => {
    const state = recordingState();
    const b = script({
      output: { summary: "built {{input.feature}}" },
      state: { status: "done", summary: "{{output.summary}}", by: "{{task.id}}" },
    });
    await expect(b.run(ctx({ state }), [])).resolves.toEqual({ summary: "built login" });
    expect(state.writes).toEqual([{ status: "done", summary: "built login", by: "w1-r-0" }]);
    // Nothing declared, nothing written.
    const quiet = recordingState();
    await script({}).run(ctx({ state: quiet }), []);
    expect(quiet.writes).toEqual([]);
  });

  it("plans count subtasks per delegation, in order, with templated inputs", () => {
    const b = script({
      delegate: [
        { kind: "backend-engineer", count: 2, input: { part: "{{input.feature}}-{{index}}" } },
        { kind: "qa-engineer", input: { check: "{{task.id}}" } },
      ],
    });
    expect(b.plan?.(ctx())).toEqual([
      { kind: "backend-engineer", input: { part: "login-0" } },
      { kind: "backend-engineer", input: { part: "login-1" } },
      { kind: "qa-engineer", input: { check: "w1-r-0" } },
    ]);
  });

  it("passes its children's outputs, in plan order, to the output template", async () => {
    const children: ChildOutcome[] = [
      { taskId: "w1-r-0-0", kind: "a", status: "completed", output: { summary: "api" } },
      { taskId: "w1-r-0-1", kind: "b", status: "completed", output: { summary: "ui" } },
    ];
    const b = script({ output: { first: "{{children.0.summary}}", all: "{{children}}" } });
    await expect(b.run(ctx(), children)).resolves.toEqual({
      first: "api",
      all: [{ summary: "api" }, { summary: "ui" }],
    });
  });

  it("fails with a retryable BEHAVIOUR_FAILED when failProbability is 1", async () => {
    const err = await rejection(script({ failProbability: 1 }).run(ctx(), []));
    expect(err).toBeInstanceOf(BehaviourFailedError);
    expect(err).toMatchObject({ code: "BEHAVIOUR_FAILED", retryable: true, data: { taskId: "w1-r-0", attempt: 1 } });
  });

  it("returns output that breaks an object schema when invalidProbability is 1", async () => {
    await expect(script({ invalidProbability: 1, output: { ok: true } }).run(ctx(), [])).resolves.toBe(INVALID_OUTPUT);
  });

  it("rolls the same dice for the same seed, task place and attempt, in any workflow", async () => {
    const outcome = async (workflowId: string, attempt: number) => {
      const t = { ...task(`${workflowId}-r-3`), workflowId };
      try {
        await script({ seed: 7, failProbability: 0.5 }).run(ctx({ task: t, attempt }), []);
        return "ok";
      } catch {
        return "failed";
      }
    };
    const attempts = [1, 2, 3, 4, 5, 6, 7, 8];
    const inA = await Promise.all(attempts.map((a) => outcome("wa", a)));
    const inB = await Promise.all(attempts.map((a) => outcome("wb", a)));
    expect(inA).toEqual(inB);
    // A retry rolls afresh: over eight attempts at p = 0.5 both outcomes appear.
    expect(new Set(inA)).toEqual(new Set(["ok", "failed"]));
  });

  it("fails close to failProbability of the time over many tasks", () => {
    // The fail roll is the second roll of an attempt's stream (sleep, fail, invalid).
    let failed = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const roll = rollsFor(11, `-r-${i}`, 1);
      roll();
      if (roll() < 0.3) failed++;
    }
    expect(failed / n).toBeGreaterThan(0.27);
    expect(failed / n).toBeLessThan(0.33);
  });

  it("sleeps on the clock it is given and answers only when that clock has moved", async () => {
    const clock = new ManualClock();
    let done = false;
    const p = script({ sleepMs: 500, output: { ok: true } })
      .run(ctx({ clock }), [])
      .then((v) => {
        done = true;
        return v;
      });
    await Promise.resolve();
    expect(clock.pending).toBe(1);
    clock.advance(499);
    await Promise.resolve();
    expect(done).toBe(false);
    clock.advance(1);
    await expect(p).resolves.toEqual({ ok: true });
  });

  it("picks a duration from a [min, max] range, deterministically", async () => {
    const durations: number[] = [];
    for (const id of ["w1-r-0", "w1-r-1", "w1-r-2", "w1-r-3", "w1-r-4"]) {
      const clock = new ManualClock();
      const p = script({ sleepMs: [100, 200] }).run(ctx({ clock, task: task(id) }), []);
      await Promise.resolve();
      const start = clock.now();
      while (clock.pending > 0) clock.advance(1);
      await p;
      durations.push(clock.now() - start);
    }
    for (const d of durations) {
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(200);
    }
    expect(new Set(durations).size).toBeGreaterThan(1);
  });

  it("with sleepGrowthMs, sleeps that much longer on each attempt this actor runs, failed ones included", async () => {
    const clock = new ManualClock();
    const b = script({ sleepMs: 100, sleepGrowthMs: 30, failProbability: 0 });
    const took = async (behaviour: typeof b, id: string) => {
      const p = behaviour.run(ctx({ clock, task: task(id) }), []);
      await Promise.resolve();
      const start = clock.now();
      while (clock.pending > 0) clock.advance(1);
      await p.catch(() => {});
      return clock.now() - start;
    };
    const times = [];
    for (const id of ["w1-r-0", "w1-r-1", "w1-r-2", "w1-r-3"]) times.push(await took(b, id));
    expect(times).toEqual([100, 130, 160, 190]);
    // Another actor (another behaviour) counts its own attempts; a failed attempt counts too.
    const failing = script({ sleepMs: 100, sleepGrowthMs: 30, failProbability: 1 });
    expect([await took(failing, "w2-r-0"), await took(failing, "w2-r-0")]).toEqual([100, 130]);
    // Absent: no growth (and the team's id is the same as before the option existed).
    const steady = script({ sleepMs: 100 });
    expect([await took(steady, "w3-r-0"), await took(steady, "w3-r-1")]).toEqual([100, 100]);
  });

  it("with a gate, waits until the workflow's state holds its name, and stops waiting when aborted", async () => {
    const clock = new ManualClock();
    const values = new Map<string, unknown>();
    const state: WorkflowState = { ...recordingState(), get: async (name) => values.get(name) };
    let done = false;
    const p = script({ gate: "go", output: { ok: true } })
      .run(ctx({ clock, state }), [])
      .then((out) => {
        done = true;
        return out;
      });
    const tick = async () => {
      clock.advance(100);
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    for (let i = 0; i < 5; i++) await tick();
    expect(done).toBe(false);
    values.set("go", true);
    while (!done) await tick();
    await expect(p).resolves.toEqual({ ok: true });

    const ac = new AbortController();
    const closed = script({ gate: "go" }).run(ctx({ clock, signal: ac.signal }), []);
    await tick();
    ac.abort(new Error("attempt abandoned"));
    await expect(closed).rejects.toThrow("attempt abandoned");
  });

  it("stops sleeping when its attempt is aborted", async () => {
    const clock = new ManualClock();
    const ac = new AbortController();
    const p = script({ sleepMs: 10_000 }).run(ctx({ clock, signal: ac.signal }), []);
    ac.abort(new Error("attempt abandoned"));
    await expect(p).rejects.toThrow("attempt abandoned");
    expect(clock.pending).toBe(0);
  });
});

describe("templates", () => {
  const scope = templateScope(task("w1-r-0", { n: 3, tags: ["a", "b"] }), 1, [{ summary: "x" }]);

  it("keeps the raw value of a whole-string placeholder and interpolates text otherwise", () => {
    expect(renderTemplate("{{input.tags}}", scope)).toEqual(["a", "b"]);
    expect(renderTemplate("n={{input.n}} tags={{input.tags}}", scope)).toBe('n=3 tags=["a","b"]');
    expect(renderTemplate(["{{children.0.summary}}", 5, null], scope)).toEqual(["x", 5, null]);
  });

  it("renders a missing path as null when whole and as empty text inside a string", () => {
    expect(renderTemplate("{{input.nope}}", scope)).toBeNull();
    expect(renderTemplate("<{{input.nope.deeper}}>", scope)).toBe("<>");
  });

  it("never reaches the prototype", () => {
    expect(renderTemplate("{{input.constructor}}", scope)).toBeNull();
    expect(renderTemplate("{{input.__proto__}}", scope)).toBeNull();
  });
});
