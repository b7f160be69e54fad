#!/usr/bin/env node
import { runService } from "@cadre/runtime";
import { Monitor } from "./monitor.js";

await runService({
  name: "cadre-monitor",
  description:
    "Cadre monitor: logs each event as its event line, computes the cluster's six metrics from the services' reports and acts on their thresholds (monitor.* in the configuration).",
  options: (cmd) =>
    cmd.option(
      "--scale-command <command>",
      "run by the scale action (over monitor.scale.command); sh -c, with CADRE_SCALE_*",
    ),
  start: ({ config, logger, options }) =>
    Monitor.start({
      config,
      logger,
      ...(typeof options.scaleCommand === "string" ? { scaleCommand: options.scaleCommand } : {}),
    }),
});
