import { describe, expect, it } from "vitest";
import { childTaskId, newIncarnation, newWorkflowId, resultMessageId, rootTaskId } from "./ids.js";
import {
  BUCKETS,
  isToken,
  MAX_TOKEN_LENGTH,
  resultsConsumer,
  STREAMS,
  SUBJECT_PREFIX,
  subjects,
  taskConsumer,
  token,
} from "./subjects.js";
import { thrown } from "./testing.js";

describe("subject builders", () => {
  it("puts every subject under cadre.v1", () => {
    expect(SUBJECT_PREFIX).toBe("cadre.v1");
  });

  it("builds the task subject of one kind of one team", () => {
    expect(subjects.task("software-team-0123456789", "backend-engineer")).toBe(
      "cadre.v1.task.software-team-0123456789.backend-engineer",
    );
  });

  it("builds the result subject of one workflow under its partition, and the partition's filter", () => {
    expect(subjects.result(3, "w1abc")).toBe("cadre.v1.result.3.w1abc");
    expect(subjects.partitionResults(3)).toBe("cadre.v1.result.3.*");
    expect(resultsConsumer(3)).toBe("results_p3");
  });

  it.each([-1, 1.5, 4096, Number.NaN])("refuses partition %s, saying which range is valid", (p) => {
    const err = thrown(() => subjects.result(p, "w1abc"));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe(`a partition is an integer from 0 to 4095, got ${p}`);
  });

  it("builds an event subject from its category and scope", () => {
    expect(subjects.event("delegation", "w1abc")).toBe("cadre.v1.evt.delegation.w1abc");
  });

  it("builds the heartbeat subject of a host", () => {
    expect(subjects.heartbeat("host-1")).toBe("cadre.v1.hb.host-1");
  });

  it("builds the child notice subject of a parent task", () => {
    expect(subjects.child("w1abc-r-2")).toBe("cadre.v1.child.w1abc-r-2");
  });

  it("builds filters that cover every subject of a family", () => {
    expect(subjects.allTasks()).toBe("cadre.v1.task.>");
    expect(subjects.allResults()).toBe("cadre.v1.result.>");
    expect(subjects.allEvents()).toBe("cadre.v1.evt.>");
    expect(subjects.allHeartbeats()).toBe("cadre.v1.hb.*");
  });

  it("names the durable task consumer after the team and the kind", () => {
    expect(taskConsumer("software-team-0123456789", "backend-engineer")).toBe(
      "task_software-team-0123456789_backend-engineer",
    );
  });

  it("uses stream, bucket and consumer names without dots, spaces or wildcards", () => {
    for (const name of [...Object.values(STREAMS), ...Object.values(BUCKETS), resultsConsumer(0)]) {
      expect(isToken(name), name).toBe(true);
    }
  });

  it("accepts the ids Cadre generates as tokens", () => {
    const workflowId = newWorkflowId();
    const taskId = childTaskId(rootTaskId(workflowId), 3);
    expect(subjects.result(0, workflowId)).toBe(`cadre.v1.result.0.${workflowId}`);
    expect(subjects.child(taskId)).toBe(`cadre.v1.child.${workflowId}-r-3`);
    expect(isToken(newIncarnation())).toBe(true);
  });

  it("does not accept a result message id as a token, since it holds colons", () => {
    expect(isToken(resultMessageId("w1-r", 1, 2))).toBe(false);
  });
});

describe("token validation", () => {
  it.each([
    ["a dot", "team.x"],
    ["a space", "team x"],
    ["a * wildcard", "*"],
    ["a > wildcard", ">"],
    ["a wildcard after a dot", "w1.>"],
    ["a tab", "a\tb"],
    ["a newline", "a\nb"],
    ["nothing", ""],
  ])("refuses a token with %s, naming the bad value", (_what, value) => {
    const err = thrown(() => subjects.result(0, value));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe(
      `workflow id "${value}" is not a valid subject token; use letters, digits, "_" and "-" only, at most 200 characters`,
    );
    expect(err.data).toEqual({ what: "workflow id", value });
  });

  it("refuses a token over MAX_TOKEN_LENGTH, so no subject passes nats-server's control-line limit", () => {
    expect(token("host id", "h".repeat(MAX_TOKEN_LENGTH))).toHaveLength(MAX_TOKEN_LENGTH);
    const err = thrown(() => subjects.event("host", "h".repeat(5000)));
    expect(err.code).toBe("PROTOCOL_ERROR");
    // The value is echoed in part only, with its length.
    expect(err.message).toContain(`"${"h".repeat(64)}... (5000 characters)"`);
    expect(err.message.length).toBeLessThan(300);
    expect(isToken("h".repeat(MAX_TOKEN_LENGTH + 1))).toBe(false);
  });

  it("names which part of a task subject is bad", () => {
    expect(thrown(() => subjects.task("team.a", "kind")).data).toEqual({ what: "team id", value: "team.a" });
    expect(thrown(() => subjects.task("team", "kind b")).data).toEqual({ what: "kind", value: "kind b" });
  });

  it("refuses a wildcard host id that would subscribe to every host", () => {
    const err = thrown(() => subjects.heartbeat("*"));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain('host id "*"');
  });

  it("refuses bad tokens in event subjects and consumer names too", () => {
    expect(thrown(() => subjects.event("delegation", "a.b")).data).toEqual({ what: "event scope", value: "a.b" });
    expect(thrown(() => taskConsumer("team", "a>")).data).toEqual({ what: "kind", value: "a>" });
  });

  it("returns a valid token unchanged", () => {
    expect(token("kind", "Backend_engineer-2")).toBe("Backend_engineer-2");
  });

  it("tells valid tokens from invalid ones without throwing", () => {
    expect(isToken("w1abc-r_2")).toBe(true);
    expect(isToken("a.b")).toBe(false);
    expect(isToken("")).toBe(false);
  });
});
