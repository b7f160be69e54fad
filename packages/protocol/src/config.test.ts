import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";
import { InvalidConfigError } from "./errors.js";
import { thrown } from "./testing.js";

describe("parseConfig", () => {
  it("defaults orchestration_limits to the seed's values", () => {
    expect(parseConfig({}).orchestration_limits).toEqual({
      max_concurrent_agents: 50,
      max_agents_per_orchestrator: 10,
      max_delegation_depth: 5,
      max_event_queue_size: 10_000,
      max_state_size_mb: 100,
      session_timeout_hours: 24,
    });
  });

  it("defaults Cadre's own settings", () => {
    const config = parseConfig({});
    expect(config.natsUrl).toBe("nats://127.0.0.1:4222");
    expect(config.logLevel).toBe("info");
    expect(config.requestTimeoutMs).toBe(5000);
    expect(config.tasks).toEqual({
      ackWaitMs: 30_000,
      maxDeliver: 5,
      retryBackoffMs: 500,
      attemptTimeoutMs: 600_000,
      reassignGraceMs: 1000,
    });
    expect(config.heartbeat).toEqual({
      intervalMs: 100,
      hostDeadAfterMs: 3000,
      suspectPhi: 1,
      unreachablePhi: 8,
      acceptablePauseMs: 200,
      minStdDevMs: 50,
    });
    expect(config.storage).toEqual({ replicas: 1, duplicateWindowMs: 120_000, txnTimeoutMs: 5000 });
    expect(config.host).toEqual({
      maxActors: 500,
      hooks: [],
      commands: { enabled: true, allow: [] },
      outbox: { dir: ".cadre/outbox", maxBytes: 64 * 1024 * 1024, replayRatePerSec: 500 },
    });
    expect(config.supervisor).toEqual({ leaseTtlMs: 3000, leaseRenewMs: 500, partitions: 4 });
  });

  it("refuses a host command allow-list entry that is not a regular expression, naming it", () => {
    const err = thrown(() => parseConfig({ host: { commands: { allow: ["^echo ", "(unclosed"] } } }));
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("host.commands.allow.1");
  });

  it("refuses a lease renewed less than twice per TTL, naming the block and saying why", () => {
    const err = thrown(() => parseConfig({ supervisor: { leaseTtlMs: 1000, leaseRenewMs: 600 } }));
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("supervisor");
    expect(err.message).toContain("leaseRenewMs must be at most half of leaseTtlMs");
  });

  it("treats a missing configuration as an empty one", () => {
    expect(parseConfig(undefined)).toEqual(parseConfig({}));
    expect(parseConfig(null)).toEqual(parseConfig({}));
  });

  it("keeps the defaults of the fields a partial block leaves out", () => {
    const config = parseConfig({ orchestration_limits: { max_delegation_depth: 3 }, tasks: { maxDeliver: 2 } });
    expect(config.orchestration_limits.max_delegation_depth).toBe(3);
    expect(config.orchestration_limits.max_concurrent_agents).toBe(50);
    expect(config.tasks.maxDeliver).toBe(2);
    expect(config.tasks.ackWaitMs).toBe(30_000);
  });

  it("returns a deeply frozen object", () => {
    const config = parseConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.orchestration_limits)).toBe(true);
    expect(Object.isFrozen(config.tasks)).toBe(true);
    expect(Reflect.set(config, "natsUrl", "nats://elsewhere:4222")).toBe(false);
    expect(Reflect.set(config.orchestration_limits, "max_delegation_depth", 99)).toBe(false);
    expect(config.orchestration_limits.max_delegation_depth).toBe(5);
  });

  it("does not freeze or change the input it was given", () => {
    const input = { orchestration_limits: { max_delegation_depth: 4 } };
    parseConfig(input);
    expect(Object.isFrozen(input)).toBe(false);
    expect(input).toEqual({ orchestration_limits: { max_delegation_depth: 4 } });
  });

  it("rejects max_delegation_depth 0 with INVALID_CONFIG naming the path", () => {
    const err = thrown(() => parseConfig({ orchestration_limits: { max_delegation_depth: 0 } }));
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toMatch(/^configuration is invalid: orchestration_limits\.max_delegation_depth: /);
    expect(err.data).toMatchObject({
      source: "configuration",
      issues: [{ path: "orchestration_limits.max_delegation_depth" }],
    });
  });

  it("rejects an unknown key inside a block, naming the block and the key", () => {
    const err = thrown(() => parseConfig({ orchestration_limits: { max_agents: 10 } }));
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("orchestration_limits: ");
    expect(err.message).toContain('"max_agents"');
  });

  it("rejects a misspelt top-level key, naming it", () => {
    const err = thrown(() => parseConfig({ natsURL: "nats://127.0.0.1:4222" }));
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("(root): ");
    expect(err.message).toContain('"natsURL"');
  });

  it("rejects a value of the wrong type, naming the path", () => {
    const err = thrown(() => parseConfig({ tasks: { ackWaitMs: "30s" } }));
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("tasks.ackWaitMs: ");
  });

  it.each(["garbage", "127.0.0.1:4222", "http://nats:4222", "nats://", "nats://a:4222,", "nats://a b:4222"])(
    "rejects natsUrl %j, naming the field",
    (natsUrl) => {
      const err = thrown(() => parseConfig({ natsUrl }));
      expect(err.code).toBe("INVALID_CONFIG");
      expect(err.message).toContain("natsUrl: expected nats://host:port");
    },
  );

  it("takes NATS URL lists: several servers, tls, credentials, IPv6", () => {
    for (const natsUrl of [
      "nats://127.0.0.1:4222",
      "nats://nats-1:4222,nats://nats-2:4222, nats://nats-3:4222",
      "tls://cadre:secret@nats.example.com:4443",
      "nats://[::1]:4222",
    ]) {
      expect(parseConfig({ natsUrl }).natsUrl).toBe(natsUrl);
    }
  });

  it("does not echo a bad natsUrl (it may hold a password)", () => {
    const err = thrown(() => parseConfig({ natsUrl: "nats//cadre:hunter2@host" }));
    expect(err.message).not.toContain("hunter2");
  });

  it("rejects a log level it does not know", () => {
    const err = thrown(() => parseConfig({ logLevel: "verbose" }));
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain("logLevel: ");
  });

  it("reports every bad field at once", () => {
    const err = thrown(() =>
      parseConfig({
        heartbeat: { intervalMs: 1 },
        storage: { replicas: 9 },
        orchestration_limits: { max_state_size_mb: -1 },
      }),
    );
    expect(err.code).toBe("INVALID_CONFIG");
    for (const path of ["heartbeat.intervalMs", "storage.replicas", "orchestration_limits.max_state_size_mb"]) {
      expect(err.message).toContain(`${path}: `);
    }
  });

  it("names the source it was given in the message", () => {
    const err = thrown(() => parseConfig({ requestTimeoutMs: 1 }, "/etc/cadre/cadre.yaml"));
    expect(err.message).toMatch(/^\/etc\/cadre\/cadre\.yaml is invalid: requestTimeoutMs: /);
    expect(err.data).toMatchObject({ source: "/etc/cadre/cadre.yaml" });
  });

  describe("host hooks in the configuration", () => {
    it("accepts a module hook and a command hook, with defaults", () => {
      const config = parseConfig({
        host: {
          hooks: [
            { name: "audit", event: "beforeTask", module: "/opt/hooks/audit.mjs" },
            { name: "notify", event: "afterTask", command: "logger done", critical: true, timeoutMs: 1000 },
          ],
        },
      });
      expect(config.host.hooks).toEqual([
        { name: "audit", event: "beforeTask", module: "/opt/hooks/audit.mjs", critical: false, timeoutMs: 5000 },
        { name: "notify", event: "afterTask", command: "logger done", critical: true, timeoutMs: 1000 },
      ]);
    });

    it("refuses a hook with both a module and a command, a relative module or an unknown event, naming the field", () => {
      const both = thrown(() =>
        parseConfig({ host: { hooks: [{ name: "x", event: "beforeTask", module: "/a.mjs", command: "true" }] } }),
      );
      expect(both.message).toContain("host.hooks.0: give exactly one of module and command");
      const relative = thrown(() =>
        parseConfig({ host: { hooks: [{ name: "x", event: "beforeTask", module: "a.mjs" }] } }),
      );
      expect(relative.message).toContain("host.hooks.0.module: a hook module is an absolute path");
      const unknown = thrown(() =>
        parseConfig({ host: { hooks: [{ name: "x", event: "beforeLunch", command: "true" }] } }),
      );
      expect(unknown.message).toContain("host.hooks.0.event");
    });
  });
});
