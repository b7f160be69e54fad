#!/usr/bin/env node
// Prints the last test run's counts as one plain line ("N passed, N failed, N skipped") from
// vitest's JSON report, so any CI log reader finds the totals.
import { readFileSync } from "node:fs";

try {
  const r = JSON.parse(readFileSync(new URL("../test/results/vitest.json", import.meta.url), "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // Suites (files and describe blocks) that failed: a setup failure skips its tests, which would
  // otherwise read as merely "skipped".
  const suites = r.numFailedTestSuites ?? 0;
  console.log(
    `${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped` +
      (suites > 0 ? `, ${suites} suite(s) failed` : ""),
  );
} catch (err) {
  console.log(`no test report (${err.message})`);
}
