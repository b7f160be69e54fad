#!/usr/bin/env node
/**
 * The `cadre` command. Each family of commands is a module under commands/; this file holds the
 * global options and how commander's own errors exit (2, bad input, like every other one).
 */

import { initTracing } from "@cadre/runtime";
import { Command } from "commander";
import { registerCluster } from "./commands/cluster.js";
import { beforeExit, contextOf, documentExitCodes, EXIT } from "./commands/common.js";
import { registerDebug } from "./commands/debug.js";
import { registerIncident } from "./commands/incident.js";
import { registerObserve } from "./commands/observe.js";
import { registerOps } from "./commands/ops.js";
import { registerRun } from "./commands/run.js";
import { registerRunbook } from "./commands/runbook.js";
import { registerSecurity } from "./commands/security.js";
import { registerState } from "./commands/state.js";
import { registerWorkflow } from "./commands/workflow.js";
import { endWorkflowSpans } from "./workflow.js";

// Off (nothing registered) unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then `cadre run` begins
// the workflow's trace (workflow.ts), and the spans are flushed before the command exits.
const tracing = initTracing("cadre-cli");
if (tracing.enabled) {
  beforeExit(async () => {
    endWorkflowSpans();
    await tracing.shutdown();
  });
}

const program = new Command("cadre")
  .description("Operate a Cadre cluster: bring up a local stack, run team workflows, inspect and control them.")
  .option("--nats-url <url>", "NATS server URL (env CADRE_NATS_URL)")
  .option("--config <file>", "YAML or JSON configuration file")
  .option("--nats-creds <file>", "NATS identity: an nkey seed or .creds file (env CADRE_NATS_CREDS)")
  .option("--nats-tls-ca <file>", "TLS to NATS: the CA to trust (env CADRE_NATS_TLS_CA)")
  .option("--nats-tls-cert <file>", "TLS client certificate (env CADRE_NATS_TLS_CERT)")
  .option("--nats-tls-key <file>", "TLS client key (env CADRE_NATS_TLS_KEY)")
  // Inherited by every command added below: global options in each help, one way to exit on a usage error.
  .configureHelp({ showGlobalOptions: true })
  .configureOutput({ outputError: (text, write) => write(`cadre: ${text.replace(/^error: /, "")}`) })
  .showHelpAfterError("(add --help for usage)")
  // Help and --version exit 0; an unknown command or option, a missing argument or a bad value exit 2.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.badInput));

const ctx = contextOf(program);
registerRun(program, ctx);
registerWorkflow(program, ctx);
registerCluster(program, ctx);
registerDebug(program, ctx);
registerObserve(program, ctx);
registerOps(program, ctx);
registerState(program, ctx);
registerRunbook(program, ctx);
registerIncident(program, ctx);
registerSecurity(program);
documentExitCodes(program);

await program.parseAsync(process.argv);
