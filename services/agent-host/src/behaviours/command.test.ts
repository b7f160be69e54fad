import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BehaviourFailedError, CommandBehaviourSchema, TimeoutError } from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import { ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { createCommandBehaviour, MAX_STDOUT_BYTES } from "./index.js";
import type { BehaviourContext } from "./types.js";

const task = taskEnvelope({
  kind: "shell-agent",
  chain: ["director", "shell-agent"],
  input: { feature: "login", n: 2 },
});

/** Commands do not use the workflow state: any use of it fails the test. */
const noState = {
  get: () => Promise.reject(new Error("unexpected state read")),
  read: () => Promise.reject(new Error("unexpected state read")),
  transact: () => Promise.reject(new Error("unexpected state write")),
};

function ctx(signal = new AbortController().signal): BehaviourContext {
  return { task, attempt: 3, clock: new ManualClock(), signal, state: noState };
}

const command = (run: string, timeoutMs?: number) =>
  createCommandBehaviour(CommandBehaviourSchema.parse({ type: "command", run, timeoutMs }));

/** Polls a condition until it holds or the deadline passes (for facts outside this process). */
async function until(cond: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Running, as opposed to gone or a zombie waiting for whoever reaps orphans here (Linux). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

describe("command behaviour", () => {
  it("plans no subtasks", () => {
    expect(command("true").plan(ctx())).toEqual([]);
  });

  it("returns JSON stdout as the output", async () => {
    await expect(command(`echo '{"summary":"ok","n":[1,2]}'`).run(ctx(), [])).resolves.toEqual({
      summary: "ok",
      n: [1, 2],
    });
  });

  it("wraps plain stdout as { stdout }, trimmed", async () => {
    await expect(command("printf '  hello world\\n\\n'").run(ctx(), [])).resolves.toEqual({ stdout: "hello world" });
  });

  it("gives the task input on stdin and in CADRE_INPUT, with the task's id, kind and attempt", async () => {
    const b = command(
      `stdin=$(cat); printf '{"stdin":%s,"env":%s,"id":"%s","kind":"%s","attempt":%s}' "$stdin" "$CADRE_INPUT" "$CADRE_TASK_ID" "$CADRE_KIND" "$CADRE_ATTEMPT"`,
    );
    await expect(b.run(ctx(), [])).resolves.toEqual({
      stdin: task.input,
      env: task.input,
      id: "w1-r-0",
      kind: "shell-agent",
      attempt: 3,
    });
  });

  it("fails with BEHAVIOUR_FAILED, the exit code and the stderr tail on a non-zero exit", async () => {
    const err = await rejection(command("echo 'disk full' >&2; exit 3").run(ctx(), []));
    expect(err).toBeInstanceOf(BehaviourFailedError);
    expect(err).toMatchObject({
      code: "BEHAVIOUR_FAILED",
      retryable: true,
      data: { exitCode: 3, stderr: "disk full\n", taskId: "w1-r-0", attempt: 3 },
    });
  });

  it("fails with TIMEOUT past its time limit and kills the whole process group", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cadre-cmd-"));
    const pidFile = join(dir, "pid");
    // The shell forks a long sleep and waits on it: killing only the shell would leave it.
    const b = command(`sleep 30 & echo $! > ${pidFile}; wait`, 300);
    const err = await rejection(b.run(ctx(), []));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: "TIMEOUT", data: { timeoutMs: 300 } });
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(pid).toBeGreaterThan(0);
    await until(() => !alive(pid), 5000, `the forked sleep (pid ${pid}) to die`);
  });

  it("stops the command when its attempt is aborted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cadre-cmd-"));
    const pidFile = join(dir, "pid");
    const ac = new AbortController();
    const p = command(`echo $$ > ${pidFile}; exec sleep 30`).run(ctx(ac.signal), []);
    let pid = 0;
    await until(
      () => {
        try {
          pid = Number(readFileSync(pidFile, "utf8"));
        } catch {
          return false;
        }
        return pid > 0;
      },
      5000,
      "the command to start",
    );
    ac.abort(new Error("host shutting down"));
    await expect(p).rejects.toThrow("host shutting down");
    await until(() => !alive(pid), 5000, `the command (pid ${pid}) to die`);
  });

  it("kills a command that floods stdout past the limit", async () => {
    const err = await rejection(command("yes cadre").run(ctx(), []));
    expect(err).toBeInstanceOf(BehaviourFailedError);
    expect(err).toMatchObject({ data: { limitBytes: MAX_STDOUT_BYTES } });
  });
});
