/**
 * The dashboard's script, served as `/dashboard/app.js`: plain browser JavaScript, no framework
 * and no build step. Its parts (client/: shared helpers, one per view, the operator actions and
 * the stream) are joined here inside one function, so they share one scope and nothing leaks to
 * the page. Each part is written without backquotes or dollar-brace so it can live in a
 * template string unchanged (client.test.ts checks that, and parses the whole).
 */

import { AGENTS_JS } from "./client/agents.js";
import { CLUSTER_JS } from "./client/cluster.js";
import { CORE_JS } from "./client/core.js";
import { EVENTS_JS } from "./client/events.js";
import { MAIN_JS } from "./client/main.js";
import { MONITOR_JS } from "./client/monitor-view.js";
import { OPERATOR_JS } from "./client/operator.js";
import { WORKFLOWS_JS } from "./client/workflows.js";

/** The script's parts by name, in the order they are joined (helpers first, the stream last). */
export const DASHBOARD_PARTS: Readonly<Record<string, string>> = {
  core: CORE_JS,
  cluster: CLUSTER_JS,
  workflows: WORKFLOWS_JS,
  monitor: MONITOR_JS,
  agents: AGENTS_JS,
  events: EVENTS_JS,
  operator: OPERATOR_JS,
  main: MAIN_JS,
};

/** The page's script. */
export const DASHBOARD_JS = `"use strict";\n(function () {\n${Object.values(DASHBOARD_PARTS).join("\n")}})();\n`;
