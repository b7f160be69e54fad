import { describe, expect, it } from "vitest";
import { InvalidConfigError } from "./errors.js";
import { isToken } from "./subjects.js";
import { compileOutputSchema, type Kind, parseTeam, type TeamInput, teamId, validateOutput } from "./team.js";
import { thrown } from "./testing.js";

const summarySchema = { type: "object", required: ["summary"], properties: { summary: { type: "string" } } };

/** A fresh copy of a valid three-level team, for each test to change. */
function softwareTeam() {
  return {
    name: "software-team",
    root: "engineering-director",
    input: { feature: "login" },
    kinds: {
      "engineering-director": {
        role: "director",
        behaviour: { type: "script", delegate: [{ kind: "backend-lead" }], output: { summary: "done" } },
        output: summarySchema,
      },
      "backend-lead": {
        role: "lead",
        replicas: 3,
        behaviour: {
          type: "script",
          delegate: [{ kind: "backend-engineer", count: 2, input: { area: "{{input.feature}}" } }],
        },
      },
      "backend-engineer": {
        role: "agent",
        behaviour: { type: "command", run: 'echo \'{"summary":"ok"}\'' },
      },
    },
  } satisfies TeamInput;
}

/** Parses an arbitrary (possibly invalid) team value and returns the error. */
const invalid = (value: unknown) => thrown(() => parseTeam(value));

/** The same value with every object's keys in reverse order. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v)
        .reverse()
        .map(([k, x]) => [k, reverseKeys(x)]),
    );
  }
  return v;
}

describe("parseTeam", () => {
  it("accepts a valid team and applies the defaults", () => {
    const team = parseTeam(softwareTeam());
    expect(team.name).toBe("software-team");
    expect(team.root).toBe("engineering-director");
    expect(team.input).toEqual({ feature: "login" });

    const director = team.kinds["engineering-director"];
    expect(director?.replicas).toBe(2);
    expect(director?.output).toEqual(summarySchema);
    expect(director?.behaviour).toEqual({
      type: "script",
      seed: 1,
      sleepMs: 0,
      delegate: [{ kind: "backend-lead", input: {}, count: 1 }],
      output: { summary: "done" },
      failProbability: 0,
      invalidProbability: 0,
      brokenUntilReplaced: false,
      acquireGapMs: 0,
      state: {},
    });

    const lead = team.kinds["backend-lead"];
    expect(lead?.replicas).toBe(3);
    expect(lead?.output).toEqual({});
    expect(lead?.behaviour).toMatchObject({
      delegate: [{ kind: "backend-engineer", count: 2, input: { area: "{{input.feature}}" } }],
      output: {},
    });

    expect(team.kinds["backend-engineer"]?.behaviour).toEqual({
      type: "command",
      run: 'echo \'{"summary":"ok"}\'',
      timeoutMs: 30_000,
    });
  });

  it("defaults the root input to an empty object", () => {
    const { input: _none, ...team } = softwareTeam();
    expect(parseTeam(team).input).toEqual({});
  });

  it("rejects a root that is not declared under kinds", () => {
    const err = invalid({ ...softwareTeam(), root: "qa-director" });
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toBe('team file is invalid: root: root kind "qa-director" is not declared under kinds');
    expect(err.data).toEqual({
      source: "team file",
      issues: [{ path: "root", message: 'root kind "qa-director" is not declared under kinds' }],
    });
  });

  it("rejects a delegation to an undeclared kind, naming the delegation's path", () => {
    const team = softwareTeam();
    team.kinds["engineering-director"].behaviour.delegate.push({ kind: "frontend-lead" });
    const err = invalid(team);
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain(
      'kinds.engineering-director.behaviour.delegate.1.kind: kind "frontend-lead" is not declared under kinds',
    );
  });

  it("rejects a kind acquiring an undeclared resource, and accepts declared pools and locks", () => {
    const team = { ...softwareTeam(), resources: { "engineer-pool": { capacity: 3 }, "repo-lock": {} } };
    const ok = parseTeam({
      ...team,
      kinds: {
        ...team.kinds,
        "backend-engineer": { ...team.kinds["backend-engineer"], acquire: ["engineer-pool", "repo-lock"] },
      },
    });
    expect(ok.resources).toEqual({ "engineer-pool": { capacity: 3 }, "repo-lock": { capacity: 1 } });
    expect(ok.kinds["backend-engineer"]?.acquire).toEqual(["engineer-pool", "repo-lock"]);
    const err = invalid({
      ...team,
      kinds: { ...team.kinds, "backend-engineer": { ...team.kinds["backend-engineer"], acquire: ["db-lock"] } },
    });
    expect(err.message).toContain(
      'kinds.backend-engineer.acquire.0: resource "db-lock" is not declared under resources',
    );
  });

  it("rejects an agent that delegates", () => {
    const team = softwareTeam();
    const engineer = { role: "agent", behaviour: { type: "script", delegate: [{ kind: "backend-lead" }] } };
    const err = invalid({ ...team, kinds: { ...team.kinds, "backend-engineer": engineer } });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain(
      'kinds.backend-engineer.behaviour.delegate: an agent cannot delegate; give the kind role "lead" or "director"',
    );
  });

  it("rejects a kind name that is not lower-case letters, digits and dashes", () => {
    const team = softwareTeam();
    const err = invalid({ ...team, kinds: { ...team.kinds, Backend_Engineer: team.kinds["backend-engineer"] } });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("kinds.Backend_Engineer: ");
  });

  it("rejects a team name that cannot be a subject token, saying what to use", () => {
    const err = invalid({ ...softwareTeam(), name: "software team" });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain('name: use 1-48 lower-case letters, digits and "-"');
  });

  it("rejects an unknown behaviour type, naming the field", () => {
    const team = softwareTeam();
    const engineer = { role: "agent", behaviour: { type: "agi", model: "gpt" } };
    const err = invalid({ ...team, kinds: { ...team.kinds, "backend-engineer": engineer } });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("kinds.backend-engineer.behaviour.type: ");
  });

  it("rejects an unknown field in a kind, so a typo is not silently ignored", () => {
    const team = softwareTeam();
    const lead = { ...team.kinds["backend-lead"], replica: 4 };
    const err = invalid({ ...team, kinds: { ...team.kinds, "backend-lead": lead } });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("kinds.backend-lead: ");
    expect(err.message).toContain('"replica"');
  });

  it("accepts a kind's retry settings, either one alone, and leaves them absent by default", () => {
    const team = softwareTeam();
    const engineer = { ...team.kinds["backend-engineer"], retry: { attempts: 1, backoffMs: 600_000 } };
    const lead = { ...team.kinds["backend-lead"], retry: { attempts: 100 } };
    const parsed = parseTeam({ ...team, kinds: { ...team.kinds, "backend-engineer": engineer, "backend-lead": lead } });
    expect(parsed.kinds["backend-engineer"]?.retry).toEqual({ attempts: 1, backoffMs: 600_000 });
    expect(parsed.kinds["backend-lead"]?.retry).toEqual({ attempts: 100 });
    expect(parsed.kinds["engineering-director"]?.retry).toBeUndefined();
  });

  it("rejects retry settings out of range, naming each field", () => {
    const team = softwareTeam();
    const engineer = { ...team.kinds["backend-engineer"], retry: { attempts: 0, backoffMs: 600_001 } };
    const lead = { ...team.kinds["backend-lead"], retry: { attempts: 101, backoffMs: -1 } };
    const director = { ...team.kinds["engineering-director"], retry: { attempts: 2.5 } };
    const err = invalid({
      ...team,
      kinds: { ...team.kinds, "backend-engineer": engineer, "backend-lead": lead, "engineering-director": director },
    });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("kinds.backend-engineer.retry.attempts: ");
    expect(err.message).toContain("kinds.backend-engineer.retry.backoffMs: ");
    expect(err.message).toContain("kinds.backend-lead.retry.attempts: ");
    expect(err.message).toContain("kinds.backend-lead.retry.backoffMs: ");
    expect(err.message).toContain("kinds.engineering-director.retry.attempts: ");
  });

  it("rejects an unknown field in a kind's retry settings, naming it", () => {
    const team = softwareTeam();
    const engineer = { ...team.kinds["backend-engineer"], retry: { attempts: 3, backoff: 100 } };
    const err = invalid({ ...team, kinds: { ...team.kinds, "backend-engineer": engineer } });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("kinds.backend-engineer.retry: ");
    expect(err.message).toContain('"backoff"');
  });

  it("rejects an unknown role", () => {
    const team = softwareTeam();
    const lead = { ...team.kinds["backend-lead"], role: "manager" };
    const err = invalid({ ...team, kinds: { ...team.kinds, "backend-lead": lead } });
    expect(err.message).toContain("kinds.backend-lead.role: ");
  });

  it("rejects a probability above 1 and a sleep range whose minimum exceeds its maximum", () => {
    const team = softwareTeam();
    const director = team.kinds["engineering-director"];
    const behaviour = { ...director.behaviour, failProbability: 1.5, sleepMs: [500, 100] };
    const err = invalid({ ...team, kinds: { ...team.kinds, "engineering-director": { ...director, behaviour } } });
    expect(err.message).toContain("kinds.engineering-director.behaviour.failProbability: ");
    expect(err.message).toContain("kinds.engineering-director.behaviour.sleepMs");
  });

  it("rejects an output schema that cannot be compiled", () => {
    const team = softwareTeam();
    const director = { ...team.kinds["engineering-director"], output: { type: "nonsense" } };
    const err = invalid({ ...team, kinds: { ...team.kinds, "engineering-director": director } });
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("kinds.engineering-director.output: not a usable JSON Schema: ");
  });

  it("reports several problems at once", () => {
    const team = softwareTeam();
    const err = invalid({ ...team, name: "Software", kinds: { ...team.kinds, "backend-engineer": { role: "agent" } } });
    expect(err.data.issues).toEqual([
      { path: "name", message: expect.any(String) },
      { path: "kinds.backend-engineer.behaviour", message: expect.any(String) },
    ]);
    expect(err.message).toContain("name: ");
    expect(err.message).toContain("; kinds.backend-engineer.behaviour: ");
  });

  it("names the source it was given", () => {
    const err = thrown(() => parseTeam({ ...softwareTeam(), root: "x" }, "examples/software-team.yaml"));
    expect(err.message).toMatch(/^examples\/software-team\.yaml is invalid: root: /);
    expect(err.data).toMatchObject({ source: "examples/software-team.yaml" });
  });

  it("rejects a value that is not a team at all", () => {
    for (const value of [null, "software-team", [], 42]) {
      const err = invalid(value);
      expect(err.code).toBe("INVALID_CONFIG");
      expect(err.message).toContain("(root): ");
    }
  });
});

describe("teamId", () => {
  it("is the team's name followed by a short hash, usable as a subject token", () => {
    const id = teamId(parseTeam(softwareTeam()));
    expect(id).toMatch(/^software-team-[0-9a-f]{10}$/);
    expect(isToken(id)).toBe(true);
  });

  it("is the same for the same content whatever the order of the keys", () => {
    const team = softwareTeam();
    const reordered = reverseKeys(team);
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(team));
    expect(teamId(parseTeam(reordered))).toBe(teamId(parseTeam(team)));
  });

  it("is the same whether defaults were written out or left implicit", () => {
    const team = softwareTeam();
    const explicit = {
      ...team,
      kinds: { ...team.kinds, "backend-engineer": { ...team.kinds["backend-engineer"], replicas: 2, output: {} } },
    };
    expect(teamId(parseTeam(explicit))).toBe(teamId(parseTeam(team)));
  });

  it("is the same whether an optional field is absent or set to undefined", () => {
    const team = softwareTeam();
    const withUndefined = {
      ...team,
      kinds: { ...team.kinds, "backend-lead": { ...team.kinds["backend-lead"], description: undefined } },
    };
    expect(teamId(parseTeam(withUndefined))).toBe(teamId(parseTeam(team)));
  });

  it("changes when the content changes", () => {
    const base = teamId(parseTeam(softwareTeam()));

    const moreReplicas = softwareTeam();
    moreReplicas.kinds["backend-lead"].replicas = 4;
    expect(teamId(parseTeam(moreReplicas))).not.toBe(base);

    const otherOutput = softwareTeam();
    otherOutput.kinds["engineering-director"].behaviour.output = { summary: "finished" };
    expect(teamId(parseTeam(otherOutput))).not.toBe(base);

    const otherInput = softwareTeam();
    otherInput.input.feature = "logout";
    expect(teamId(parseTeam(otherInput))).not.toBe(base);
  });

  it("tells apart teams whose delegations are listed in another order", () => {
    const team = softwareTeam();
    team.kinds["engineering-director"].behaviour.delegate = [{ kind: "backend-lead" }, { kind: "backend-engineer" }];
    const swapped = softwareTeam();
    swapped.kinds["engineering-director"].behaviour.delegate = [{ kind: "backend-engineer" }, { kind: "backend-lead" }];
    expect(teamId(parseTeam(swapped))).not.toBe(teamId(parseTeam(team)));
  });
});

describe("validateOutput", () => {
  const kind = (output: Record<string, unknown>): Kind =>
    parseTeam({
      name: "t",
      root: "k",
      kinds: { k: { role: "agent", behaviour: { type: "command", run: "true" }, output } },
    }).kinds.k as Kind;

  it("returns no issues for an output that matches the kind's schema", () => {
    expect(validateOutput(kind(summarySchema), { summary: "done", extra: [1, 2] })).toEqual([]);
  });

  it("returns an issue naming the missing field", () => {
    const issues = validateOutput(kind(summarySchema), {});
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe("summary");
    expect(issues[0]?.message).toContain("expected string");
  });

  it("returns an issue for a field of the wrong type", () => {
    expect(validateOutput(kind(summarySchema), { summary: 42 })).toEqual([
      { path: "summary", message: expect.stringContaining("expected string") },
    ]);
  });

  it("returns an issue with an empty path when the whole output is of the wrong type", () => {
    const issues = validateOutput(kind(summarySchema), "done");
    expect(issues).toEqual([{ path: "", message: expect.stringContaining("expected object") }]);
  });

  it("accepts anything when the kind declares no output schema", () => {
    const any = kind({});
    for (const output of [{}, { x: 1 }, "text", 3, null]) expect(validateOutput(any, output)).toEqual([]);
  });

  it("compiles each schema object once", () => {
    const schema = { type: "object" };
    expect(compileOutputSchema(schema)).toBe(compileOutputSchema(schema));
  });

  it("takes an llm agent with its prompt, and an llm lead that delegates to declared kinds only", () => {
    const llm = { type: "llm", provider: "local", model: "m", prompt: "Summarise {{input.topic}}" } as const;
    const team = parseTeam({ name: "t", root: "a", kinds: { a: { role: "agent", behaviour: llm } } });
    expect(team.kinds.a?.behaviour).toMatchObject({ type: "llm", maxTokens: 1024, system: "", timeoutMs: 60_000 });
    expect(team.kinds.a?.behaviour).toMatchObject({ delegates: [], maxTurns: 8 });
    const lead = parseTeam({
      name: "t",
      root: "a",
      budget: { requests: 5 },
      kinds: {
        a: { role: "lead", behaviour: { ...llm, delegates: ["b"] } },
        b: { role: "agent", input: { type: "object" }, budget: { tokens: 100 }, behaviour: llm },
      },
    });
    expect(lead.kinds.b).toMatchObject({ input: { type: "object" }, budget: { tokens: 100 } });
    expect(lead.budget).toEqual({ requests: 5 });
    const unknown = thrown(() =>
      parseTeam({ name: "t", root: "a", kinds: { a: { role: "lead", behaviour: { ...llm, delegates: ["x"] } } } }),
    );
    expect(unknown).toBeInstanceOf(InvalidConfigError);
    expect(unknown.message).toContain("kinds.a.behaviour.delegates.0");
    const agent = thrown(() =>
      parseTeam({
        name: "t",
        root: "a",
        kinds: { a: { role: "agent", behaviour: { ...llm, delegates: ["a"] } } },
      }),
    );
    expect(agent.message).toContain("an agent cannot delegate");
    const budget = thrown(() =>
      parseTeam({ name: "t", root: "a", budget: { dollars: 1 }, kinds: { a: { role: "agent", behaviour: llm } } }),
    );
    expect(budget.message).toContain("dollars");
  });
});
