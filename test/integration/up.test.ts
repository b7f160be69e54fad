/**
 * `cadre up` as a user runs it: a process that starts nats-server and the services, prints
 * where their metrics are, and answers the monitor's scale action by starting one more
 * agent-host (the monitor's default scale command there is `kill -USR2 <cadre up's pid>`).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { until } from "../helpers/cluster.js";
import { freePort } from "../helpers/prometheus.js";

const require = createRequire(import.meta.url);

describe("cadre up", () => {
  const dir = mkdtempSync(join(tmpdir(), "cadre-up-"));
  let up: ChildProcess | undefined;
  afterAll(async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      const exited = new Promise((r) => up?.once("exit", r));
      up.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints every service's metrics URL, and starts one more host when the monitor asks to scale", async () => {
    const config = join(dir, "cadre.json");
    // Memory over 0.001%: crosses at the monitor's first tick; the action is scale, once.
    writeFileSync(
      config,
      JSON.stringify({
        monitor: {
          intervalMs: 200,
          metrics: { memory_usage_percent: { threshold: 0.001, action: "scale", cooldownMs: 600_000 } },
        },
      }),
    );
    const { CADRE_NATS_URL: _, CADRE_NATS_CREDS: __, ...env } = process.env;
    up = spawn(
      process.execPath,
      [
        require.resolve("@cadre/cli/main"),
        "up",
        "--hosts",
        "1",
        "--nats-url",
        `nats://127.0.0.1:${await freePort()}`,
        "--config",
        config,
        "--data-dir",
        join(dir, "data"),
        "--log-dir",
        join(dir, "logs"),
        "--security-dir",
        join(dir, "security"),
      ],
      { stdio: ["ignore", "pipe", "pipe"], env },
    );
    let out = "";
    up.stdout?.on("data", (d) => (out += d));
    up.stderr?.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => up?.once("exit", (code) => r(code)));
    await Promise.race([
      until("cadre up is up", () => out.includes("cadre is up"), 60_000),
      exited.then((code) => {
        throw new Error(`cadre up exited with ${code}:\n${out.slice(-3000)}`);
      }),
    ]).catch((err: Error) => {
      throw new Error(`${err.message}\n--- cadre up said:\n${out.slice(-3000)}`);
    });
    const urls = [...out.matchAll(/(supervisor|host-1|monitor) (http:\/\/127\.0\.0\.1:\d+\/metrics)/g)];
    expect(urls.map((m) => m[1]).sort()).toEqual(["host-1", "monitor", "supervisor"]);
    for (const [, , url] of urls) {
      const res = await fetch(url ?? "");
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("cadre_service_info");
    }
    await until("the scale action started host-2", () => out.includes("scaled: started host-2"), 30_000);
    expect(out).not.toContain("host-3");
  });
});
