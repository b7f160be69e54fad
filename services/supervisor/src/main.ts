#!/usr/bin/env node
import { runService } from "@cadre/runtime";
import { Supervisor } from "./supervisor.js";

await runService({
  name: "cadre-supervisor",
  description:
    "Cadre supervisor: accepts workflows, places actors on agent-hosts, enforces the delegation policy and applies results.",
  options: (cmd) => cmd.option("--id <id>", "supervisor id (default: supervisor-<random>)"),
  start: ({ config, logger, options }) =>
    Supervisor.start({ config, logger, ...(typeof options.id === "string" ? { id: options.id } : {}) }),
});
