#!/usr/bin/env node
/**
 * The README's chaos matrix, again, from the incident reports a chaos run wrote
 * (test/results/chaos/<scenario>.incident.json), with the incident library's renderer
 * (services/monitor/src/incident/matrix.ts, built): the newest run's scenarios, in the order they
 * ran. Prints the Markdown and writes it to <dir>/matrix.md, as the suite does at its end.
 *
 *   pnpm build && node test/chaos/matrix.mjs [dir]
 */

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chaosMatrix } from "@cadre/monitor/incident";

const dir = process.argv[2] ?? join(import.meta.dirname, "..", "results", "chaos");
const incidents = readdirSync(dir)
  .filter((f) => f.endsWith(".incident.json"))
  .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")));
const md = chaosMatrix(incidents);
writeFileSync(join(dir, "matrix.md"), md);
process.stdout.write(md);
