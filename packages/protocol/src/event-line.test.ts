import { describe, expect, it } from "vitest";
import { formatEventLine, parseEventLine } from "./event-line.js";
import type { CadreEvent } from "./messages.js";
import { thrown } from "./testing.js";

describe("formatEventLine and parseEventLine", () => {
  it("formats an event as TYPE:category:scope:{json}", () => {
    const event: CadreEvent = {
      type: "DELEGATION_REFUSED",
      category: "delegation",
      scope: "w1a2b3",
      data: { code: "CIRCULAR_DELEGATION", chain: ["a", "b", "a"] },
    };
    expect(formatEventLine(event)).toBe(
      'DELEGATION_REFUSED:delegation:w1a2b3:{"code":"CIRCULAR_DELEGATION","chain":["a","b","a"]}',
    );
  });

  it("parses what it formats back to the same event", () => {
    const event: CadreEvent = {
      type: "HOST_SUSPECT",
      category: "liveness",
      scope: "host-2",
      data: { phi: 8.5, lastSeq: 41, actors: ["a1", "a2"], nested: { ok: false, none: null } },
    };
    expect(parseEventLine(formatEventLine(event))).toEqual(event);
  });

  it("keeps colons inside the JSON data, splitting only on the first three", () => {
    const event: CadreEvent = {
      type: "NATS_DISCONNECTED",
      category: "network",
      scope: "supervisor-1",
      data: { url: "nats://127.0.0.1:4222", at: "12:30:45", "odd:key": "a:b:c" },
    };
    const line = formatEventLine(event);
    expect(line.startsWith('NATS_DISCONNECTED:network:supervisor-1:{"url":"nats://127.0.0.1:4222"')).toBe(true);
    expect(parseEventLine(line)).toEqual(event);
  });

  it("formats an event with empty data as {}", () => {
    expect(formatEventLine({ type: "SUPERVISOR_STARTED", category: "system", scope: "global", data: {} })).toBe(
      "SUPERVISOR_STARTED:system:global:{}",
    );
  });

  it("refuses to format an invalid event with a PROTOCOL_ERROR naming the field", () => {
    const err = thrown(() => formatEventLine({ type: "host-suspect", category: "liveness", scope: "h1", data: {} }));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe("cannot format event: type: event types are UPPER_SNAKE_CASE");
    expect(err.data).toMatchObject({ issues: [{ path: "type" }] });
  });

  it("ignores surrounding whitespace such as the newline that ends a line", () => {
    expect(parseEventLine('  WORKFLOW_COMPLETED:workflow:w1:{"tasks":3}\n')).toEqual({
      type: "WORKFLOW_COMPLETED",
      category: "workflow",
      scope: "w1",
      data: { tasks: 3 },
    });
  });
});

describe("lines from the seed runbook", () => {
  it("parses RESOURCE_EXHAUSTION:system:global with its severity", () => {
    expect(parseEventLine('RESOURCE_EXHAUSTION:system:global:{"severity":"critical"}')).toEqual({
      type: "RESOURCE_EXHAUSTION",
      category: "system",
      scope: "global",
      data: { severity: "critical" },
    });
  });

  it.each(
    [
      'EMERGENCY_RESPONSE_ACTIVATED:system:resource_management:{"response_level":"critical","estimated_recovery_time":"15m","affected_workflows":3}',
      'AGENT_POOL_FAILURE:coordination:agent_management:{"failed_agents":["agent_005","agent_007","agent_012"],"affected_workflows":["impl_auth_001","debug_perf_002"],"failure_type":"cascade_failure","impact":"critical_path_blocked"}',
      'PERFORMANCE_DEGRADATION_DETECTED:performance:trend_analysis:{"degradation_rate":"15_percent_over_2h","affected_metrics":["response_time","throughput","efficiency"],"confidence":0.94}',
      'DATA_INTEGRITY_ALERT:coordination:state_synchronization:{"alert_type":"state_inconsistency","severity":"critical","affected_workflows":["migration_workflow_001"],"corruption_risk":"high","immediate_action_required":true}',
      'NETWORK_RECOVERY_COMPLETED:network:restoration:{"recovery_time":"12m","connectivity_restored":"100_percent","performance_impact":"minimal","redundancy_established":"comprehensive"}',
    ].map((line) => [line.slice(0, line.indexOf(":")), line]),
  )("parses the %s line and formats it back unchanged", (type, line) => {
    const event = parseEventLine(line);
    expect(event.type).toBe(type);
    expect(formatEventLine(event)).toBe(line);
  });

  it("rejects the runbook's first RESOURCE_EXHAUSTION line, whose data holds 19/20, as not JSON", () => {
    const line =
      'RESOURCE_EXHAUSTION:system:global:{"error_type":"memory_and_cpu_overload","severity":"critical","system_utilization":{"cpu":98.7,"memory":96.2,"agents":19/20}}';
    const err = thrown(() => parseEventLine(line));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe("event line data is not JSON");
    expect(err.data).toEqual({ line });
  });
});

describe("parseEventLine rejects bad lines with PROTOCOL_ERROR", () => {
  it.each([
    ["an empty line", ""],
    ["a type alone", "RESOURCE_EXHAUSTION"],
    ["a line without scope and data", "RESOURCE_EXHAUSTION:system"],
    ["a line without data", "RESOURCE_EXHAUSTION:system:global"],
  ])("rejects %s as not TYPE:category:scope:{json}", (_what, line) => {
    const err = thrown(() => parseEventLine(line));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe("event line must be TYPE:category:scope:{json}");
    expect(err.data).toEqual({ line });
  });

  it.each([
    ["unquoted keys", "RESOURCE_EXHAUSTION:system:global:{severity:critical}"],
    ["nothing after the third colon", "RESOURCE_EXHAUSTION:system:global:"],
    ["truncated JSON", 'RESOURCE_EXHAUSTION:system:global:{"severity":'],
  ])("rejects data with %s as not JSON", (_what, line) => {
    const err = thrown(() => parseEventLine(line));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe("event line data is not JSON");
    expect(err.data).toEqual({ line });
  });

  it.each([
    ["a lower-case type", 'resource_exhaustion:system:global:{"a":1}', "type: event types are UPPER_SNAKE_CASE"],
    [
      "an upper-case category",
      'RESOURCE_EXHAUSTION:SYSTEM:global:{"a":1}',
      "category: event categories are lower_snake_case",
    ],
    ["a scope with a dot", 'RESOURCE_EXHAUSTION:system:glo.bal:{"a":1}', "scope: event scopes are subject tokens"],
    ["an empty scope", 'RESOURCE_EXHAUSTION:system::{"a":1}', "scope: event scopes are subject tokens"],
    ["data that is an array", "RESOURCE_EXHAUSTION:system:global:[1,2]", "data: "],
    ["data that is null", "RESOURCE_EXHAUSTION:system:global:null", "data: "],
  ])("rejects %s, naming the part", (_what, line, expected) => {
    const err = thrown(() => parseEventLine(line));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toMatch(/^event line is invalid: /);
    expect(err.message).toContain(expected);
    expect(err.data).toEqual({ line });
  });
});
