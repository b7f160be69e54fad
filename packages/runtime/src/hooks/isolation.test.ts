import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemClock } from "../clock.js";
import { runCommandHook } from "./command-hook.js";
import { HookAttemptError } from "./errors.js";
import { runModuleHook } from "./module-hook.js";

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}.mjs`, import.meta.url));

async function attemptError(p: Promise<unknown>): Promise<HookAttemptError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HookAttemptError) return err;
    throw err;
  }
  throw new Error("expected the hook run to fail");
}

/** Whether a process still runs (a zombie waiting to be reaped does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function until(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const base = { timeoutMs: 5_000, clock: systemClock };

describe("runModuleHook", () => {
  it("returns the default export's result for the payload", async () => {
    await expect(runModuleHook({ ...base, path: fixture("good"), payload: { taskId: "t-9" } })).resolves.toEqual({
      ok: true,
      taskId: "t-9",
    });
  });

  it("fails when the module has no default export function", async () => {
    const err = await attemptError(runModuleHook({ ...base, path: fixture("no-default"), payload: {} }));
    expect(err.reason).toBe("error");
    expect(err.message).toContain("the module has no default export function");
  });

  it("fails when the hook ends its thread", async () => {
    const err = await attemptError(runModuleHook({ ...base, path: fixture("exits"), payload: {} }));
    expect(err.reason).toBe("error");
    expect(err.message).toBe("the hook's thread exited with code 3 before a result");
  });

  it("fails when the module cannot be loaded", async () => {
    const err = await attemptError(runModuleHook({ ...base, path: "/nonexistent/hook.mjs", payload: {} }));
    expect(err.reason).toBe("error");
    expect(err.message).toContain("Cannot find module");
  });

  it("fails when the payload cannot be cloned into the worker", async () => {
    const err = await attemptError(runModuleHook({ ...base, path: fixture("good"), payload: { fn: () => 1 } }));
    expect(err.reason).toBe("error");
    expect(err.message).toContain("could not start the hook");
  });

  it("stops an endless loop at the timeout", async () => {
    const err = await attemptError(runModuleHook({ ...base, timeoutMs: 200, path: fixture("spins"), payload: {} }));
    expect(err.reason).toBe("timeout");
    expect(err.message).toBe("did not finish within 200 ms");
  });
});

describe("runCommandHook", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "cadre-hook-cmd-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const env = { CADRE_HOOK: "h", CADRE_HOOK_EVENT: "afterTask" };

  it("gets the payload as JSON on stdin and returns its JSON stdout", async () => {
    const payload = { taskId: "t-1", input: { n: [1, 2] } };
    await expect(runCommandHook({ ...base, env, command: "cat", payload })).resolves.toEqual(payload);
  });

  it("gets its name and event in the environment, and non-JSON stdout comes back as text", async () => {
    const result = await runCommandHook({ ...base, env, command: 'echo "$CADRE_HOOK $CADRE_HOOK_EVENT"', payload: {} });
    expect(result).toEqual({ stdout: "h afterTask" });
  });

  it("fails on a non-zero exit with the end of stderr in the message", async () => {
    const err = await attemptError(runCommandHook({ ...base, env, command: "echo nope >&2; exit 3", payload: {} }));
    expect(err.reason).toBe("error");
    expect(err.message).toBe("exited with code 3: nope");
  });

  it("redacts its stderr tail and drops the line the 2 KiB tail was cut through", async () => {
    // 38 + 2018 + 20 bytes: the last 2048 start 28 bytes into the first line, inside its token.
    const command = [
      "printf 'Authorization: Bearer SECRETTOKEN.abc\\n' >&2",
      "head -c 2017 /dev/zero | tr '\\0' y >&2",
      "printf '\\ndb password=hunter2\\n' >&2",
      "exit 3",
    ].join("; ");
    const err = await attemptError(runCommandHook({ ...base, env, command, payload: {} }));
    expect(err.message).toBe(`exited with code 3: ${"y".repeat(2017)}\ndb password=[REDACTED]`);
  });

  it("kills the whole process group at the timeout", async () => {
    const pidFile = join(dir, "child.pid");
    // The shell forks a long sleep and waits on it: killing only the shell would leave the sleep.
    const command = `sleep 30 & echo $! > '${pidFile}'; wait`;
    const err = await attemptError(runCommandHook({ ...base, env, timeoutMs: 300, command, payload: {} }));
    expect(err.reason).toBe("timeout");
    expect(err.message).toBe("did not finish within 300 ms");
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    expect(pid).toBeGreaterThan(0);
    await until(() => !alive(pid), 2_000, `the forked sleep (pid ${pid}) to die`);
  });
});
