#!/usr/bin/env node
import { runService } from "@cadre/runtime";
import { AgentHost } from "./host.js";

await runService({
  name: "cadre-agent-host",
  description: "Cadre agent-host: runs agent and director actors placed on it by the supervisor and works their tasks.",
  options: (cmd) =>
    cmd
      .option("--host-id <id>", "host id, a subject token (default: host-<random>)")
      .option("--outbox-dir <dir>", "where results wait while cut off from NATS (default: host.outbox.dir)"),
  start: ({ config, logger, options }) => {
    const dir = typeof options.outboxDir === "string" ? options.outboxDir : undefined;
    return AgentHost.start({
      config: dir ? { ...config, host: { ...config.host, outbox: { ...config.host.outbox, dir } } } : config,
      logger,
      ...(typeof options.hostId === "string" ? { hostId: options.hostId } : {}),
    });
  },
});
