import { describe, expect, expectTypeOf, it } from "vitest";
import { decode, decodeAs, encode, type Message } from "./codec.js";
import type { Config } from "./config.js";
import { type CadreError, fromWire, type WireError } from "./errors.js";
import type { CadreEvent, TaskEnvelope, TaskRecord, TaskResult, WireErrorBody, WorkflowRecord } from "./messages.js";
import type { Body, BodyInput, MessageType, OperationName, OpReply, OpRequest, WorkflowControl } from "./operations.js";
import type { Kind, Team } from "./team.js";

// These expectations are checked by the TypeScript compiler, not at run time: each `it` body
// only has to compile. A broken expectation is a type error in this file.

describe("message table types", () => {
  it("lists every message type: the core messages and each operation's request and reply", () => {
    expectTypeOf<MessageType>().toEqualTypeOf<
      | "task"
      | "result"
      | "event"
      | "heartbeat"
      | "report"
      | "child.done"
      | "error"
      | OperationName
      | `${OperationName}.ok`
    >();
    expectTypeOf<"sup.workflow.pause.ok">().toExtend<MessageType>();
    expectTypeOf<"host.task">().toExtend<MessageType>();
    expectTypeOf<Body<"sup.workflow.cancel">>().toEqualTypeOf<OpRequest<"sup.workflow.cancel">>();
    expectTypeOf<Body<"host.spawn.ok">>().toEqualTypeOf<OpReply<"host.spawn">>();
  });

  it("infers each body from its schema", () => {
    expectTypeOf<Body<"task">>().toEqualTypeOf<TaskEnvelope>();
    expectTypeOf<Body<"result">>().toEqualTypeOf<TaskResult>();
    expectTypeOf<Body<"event">>().toEqualTypeOf<CadreEvent>();
    expectTypeOf<Body<"sup.status.ok">>().toEqualTypeOf<{
      workflow: WorkflowRecord;
      control: WorkflowControl | null;
    }>();
    expectTypeOf<Body<"child.done">["record"]>().toEqualTypeOf<TaskRecord>();
    expectTypeOf<Body<"sup.submit">["team"]>().toEqualTypeOf<Team>();
  });

  it("makes fields with defaults required after parsing and optional for senders", () => {
    expectTypeOf<TaskEnvelope["priority"]>().toEqualTypeOf<number>();
    expectTypeOf<TaskEnvelope["deadline"]>().toEqualTypeOf<number | null>();
    expectTypeOf<TaskEnvelope["epoch"]>().toEqualTypeOf<number>();
    expectTypeOf<BodyInput<"task">["priority"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<BodyInput<"task">["epoch"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<BodyInput<"task">["taskId"]>().toEqualTypeOf<string>();
  });

  it("types a task's parent as nullable and its chain as a list of kinds", () => {
    expectTypeOf<TaskEnvelope["parentTaskId"]>().toEqualTypeOf<string | null>();
    expectTypeOf<TaskEnvelope["chain"]>().toEqualTypeOf<string[]>();
    expectTypeOf<TaskEnvelope["input"]>().toEqualTypeOf<Record<string, unknown>>();
  });

  it("types status fields as unions of their literal values", () => {
    expectTypeOf<TaskResult["status"]>().toEqualTypeOf<"completed" | "failed">();
    expectTypeOf<WorkflowRecord["status"]>().toEqualTypeOf<"running" | "completed" | "failed" | "cancelled">();
    expectTypeOf<TaskRecord["status"]>().toEqualTypeOf<"queued" | "completed" | "failed" | "cancelled">();
    expectTypeOf<Kind["role"]>().toEqualTypeOf<"director" | "lead" | "agent">();
  });

  it("gives an error reply the wire error shape that typed errors produce", () => {
    expectTypeOf<Body<"error">["error"]>().toEqualTypeOf<WireErrorBody>();
    expectTypeOf<ReturnType<CadreError["toWire"]>>().toEqualTypeOf<WireError>();
    expectTypeOf<WireError>().toExtend<WireErrorBody>();
    expectTypeOf<WireErrorBody>().toExtend<WireError>();
    expectTypeOf(fromWire).returns.toEqualTypeOf<CadreError>();
  });
});

describe("codec types", () => {
  it("takes the sender's form of the body for the given type", () => {
    expectTypeOf(encode<"task">)
      .parameter(1)
      .toEqualTypeOf<BodyInput<"task">>();
    expectTypeOf(encode).returns.toEqualTypeOf<Uint8Array>();
    expectTypeOf(encode).toBeCallableWith("sup.status", { workflowId: "w1" }, { sender: "cli" });
    // Checked on a direct call: through toBeCallableWith the type parameter can widen to every
    // message type, and some (sup.waits) take an empty body.
    const typeOnly = () => {
      // @ts-expect-error a status request needs a workflow id
      encode("sup.status", {}, { sender: "cli" });
      // @ts-expect-error a host reference is not a status request
      encode("sup.status", { hostId: "h1" }, { sender: "cli" });
    };
    expect(typeof typeOnly).toBe("function");
    // @ts-expect-error there is no such message type
    expectTypeOf(encode).toBeCallableWith("sup.cancel", { workflowId: "w1" }, { sender: "cli" });
    // @ts-expect-error the sender is required
    expectTypeOf(encode).toBeCallableWith("sup.status", { workflowId: "w1" }, {});
  });

  it("returns the parsed message of the asked type from decodeAs", () => {
    expectTypeOf(decodeAs<"result">).returns.toEqualTypeOf<Message<"result">>();
    expectTypeOf<Message<"result">["body"]>().toEqualTypeOf<TaskResult>();
    expectTypeOf<Message<"result">["type"]>().toEqualTypeOf<"result">();
    expectTypeOf<Message<"task">["body"]["chain"]>().toEqualTypeOf<string[]>();
  });

  it("returns a message of any type from decode", () => {
    expectTypeOf(decode).returns.toEqualTypeOf<Message>();
    expectTypeOf<Message["type"]>().toEqualTypeOf<MessageType>();
    expectTypeOf<Message["cid"]>().toEqualTypeOf<string>();
    expectTypeOf<Message["ts"]>().toEqualTypeOf<number>();
  });
});

describe("configuration types", () => {
  it("exposes the parsed configuration as read-only at the top level", () => {
    expectTypeOf<Config["orchestration_limits"]["max_delegation_depth"]>().toEqualTypeOf<number>();
    expectTypeOf<Config>().toHaveProperty("natsUrl").toEqualTypeOf<string>();
    const assign = (config: Config) => {
      // @ts-expect-error top-level settings are read-only
      config.natsUrl = "nats://elsewhere:4222";
    };
    expectTypeOf(assign).parameter(0).toEqualTypeOf<Config>();
  });
});
