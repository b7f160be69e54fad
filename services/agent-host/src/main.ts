#!/usr/bin/env node
import { runService } from "@cadre/runtime";
import { AgentHost } from "./host.js";

await runService({
  name: "cadre-agent-host",
  description: "Cadre agent-host: runs agent and director actors placed on it by the supervisor and works their tasks.",
  options: (cmd) => cmd.option("--host-id <id>", "host id, a subject token (default: host-<random>)"),
  start: ({ config, logger, options }) =>
    AgentHost.start({ config, logger, ...(typeof options.hostId === "string" ? { hostId: options.hostId } : {}) }),
});
