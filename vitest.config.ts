import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    // Verbose so a CI log shows every test; JSON so .ci/run can print one closing count line.
    reporters: ["verbose", ["json", { outputFile: "test/results/vitest.json" }]],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites each start their own nats-server and services; two cores.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
  },
});
