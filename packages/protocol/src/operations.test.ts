import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors.js";
import {
  endpointName,
  messages,
  type OperationName,
  operationSubject,
  operations,
  operationsFor,
  operationsOf,
  PARTITIONED_OPERATIONS,
  ROLES,
  SUPERVISOR_QUEUE,
} from "./operations.js";
import { isToken } from "./subjects.js";
import { thrown } from "./testing.js";

const names = Object.keys(operations) as OperationName[];

describe("operation subjects", () => {
  it("puts a supervisor operation under cadre.v1.sup, with its path", () => {
    expect(operationSubject("sup.submit")).toBe("cadre.v1.sup.submit");
    expect(operationSubject("sup.status")).toBe("cadre.v1.sup.status");
    expect(operationSubject("sup.workflow.pause")).toBe("cadre.v1.sup.workflow.pause");
  });

  it("puts a partitioned supervisor operation under its partition, and refuses a partition that is no index", () => {
    expect(PARTITIONED_OPERATIONS).toEqual(["sup.delegate"]);
    expect(operationSubject("sup.delegate", 3)).toBe("cadre.v1.sup.part.3.delegate");
    expect(operationSubject("sup.delegate", "*")).toBe("cadre.v1.sup.part.*.delegate");
    expect(() => operationSubject("sup.delegate")).toThrow(
      "operation sup.delegate is answered by a partition's holder",
    );
    for (const bad of [-1, 1.5, "3", ">"]) {
      const err = thrown(() => operationSubject("sup.delegate", bad));
      expect(err).toBeInstanceOf(ProtocolError);
      expect(err.message).toContain("is not a non-negative integer");
    }
  });

  it("puts a host operation under the host's id", () => {
    expect(operationSubject("host.spawn", "host-1")).toBe("cadre.v1.host.host-1.spawn");
    expect(operationSubject("host.task", "host-1")).toBe("cadre.v1.host.host-1.task");
  });

  it("gives the wildcard form of a host operation for permissions", () => {
    expect(operationSubject("host.spawn", "*")).toBe("cadre.v1.host.*.spawn");
  });

  it("needs the host id for a host operation", () => {
    expect(() => operationSubject("host.spawn")).toThrow(TypeError);
    expect(() => operationSubject("host.spawn")).toThrow("operation host.spawn is answered by one host: give its id");
  });

  it("refuses a host id that is not a subject token", () => {
    const err = thrown(() => operationSubject("host.actor", "h.1"));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.data).toEqual({ what: "host id", value: "h.1" });
  });

  it("derives every operation's subject from its service and name", () => {
    for (const name of names) {
      const def = operations[name];
      const path = name.slice(name.indexOf(".") + 1);
      if ("partitioned" in def) {
        expect(operationSubject(name, 0)).toBe(`cadre.v1.sup.part.0.${path}`);
      } else if (def.service === "supervisor") {
        expect(name.startsWith("sup."), name).toBe(true);
        expect(operationSubject(name)).toBe(`cadre.v1.sup.${path}`);
      } else if (def.service === "monitor") {
        expect(name.startsWith("mon."), name).toBe(true);
        expect(operationSubject(name)).toBe(`cadre.v1.mon.${path}`);
      } else {
        expect(name.startsWith("host."), name).toBe(true);
        expect(operationSubject(name, "h1")).toBe(`cadre.v1.host.h1.${path}`);
      }
    }
  });

  it("writes no operation subject twice", () => {
    const all = names.map((n) => operationSubject(n, "partitioned" in operations[n] ? 0 : "h1"));
    expect(new Set(all).size).toBe(all.length);
    const wildcards = operationsOf("agent-host").map((n) => operationSubject(n, "*"));
    expect(new Set(wildcards).size).toBe(wildcards.length);
  });

  it("names each endpoint with a distinct token", () => {
    expect(endpointName("sup.workflow.pause")).toBe("workflow-pause");
    expect(endpointName("host.spawn")).toBe("spawn");
    for (const service of ["supervisor", "agent-host"] as const) {
      const endpoints = operationsOf(service).map(endpointName);
      expect(new Set(endpoints).size).toBe(endpoints.length);
      for (const e of endpoints) expect(isToken(e), e).toBe(true);
    }
  });

  it("uses a queue group name that is a token", () => {
    expect(isToken(SUPERVISOR_QUEUE)).toBe(true);
  });
});

describe("the operations table", () => {
  it("gives every operation a non-empty list of known roles and a summary", () => {
    for (const name of names) {
      const def = operations[name];
      expect(def.roles.length, name).toBeGreaterThan(0);
      for (const role of def.roles) expect(ROLES, `${name}: ${role}`).toContain(role);
      expect(def.summary.length, name).toBeGreaterThan(0);
    }
  });

  it("lets only the supervisor call host operations, but for the monitor's actions (an operator's too)", () => {
    const actions = ["host.cleanup", "host.hooks.bypass"];
    for (const name of operationsOf("agent-host")) {
      expect(operations[name].roles, name).toEqual(actions.includes(name) ? ["monitor", "operator"] : ["supervisor"]);
    }
  });

  it("splits the operations between the three services", () => {
    expect([...operationsOf("supervisor"), ...operationsOf("agent-host"), ...operationsOf("monitor")].sort()).toEqual(
      [...names].sort(),
    );
  });

  it("lists what each role may call", () => {
    for (const role of ROLES) {
      expect(operationsFor(role)).toEqual(names.filter((n) => operations[n].roles.includes(role)));
    }
    expect(operationsFor("agent-host")).toContain("sup.delegate");
    expect(operationsFor("viewer")).not.toContain("sup.workflow.cancel");
  });

  it("puts every request and reply type in messages, with the table's schemas", () => {
    for (const name of names) {
      const m = messages as Record<string, unknown>;
      expect(m[name], name).toBe(operations[name].request);
      expect(m[`${name}.ok`], `${name}.ok`).toBe(operations[name].reply);
    }
  });

  it("keeps the core messages beside the operations", () => {
    for (const core of ["task", "result", "event", "heartbeat", "report", "child.done", "error"]) {
      expect(Object.hasOwn(messages, core), core).toBe(true);
    }
    expect(Object.keys(messages)).toHaveLength(7 + 2 * names.length);
  });
});
