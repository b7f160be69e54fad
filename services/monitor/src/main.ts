#!/usr/bin/env node
import { runService } from "@cadre/runtime";
import { Monitor } from "./monitor.js";

await runService({
  name: "cadre-monitor",
  description: "Cadre monitor: listens to heartbeats and events and logs each event as its event line.",
  start: ({ config, logger }) => Monitor.start({ config, logger }),
});
