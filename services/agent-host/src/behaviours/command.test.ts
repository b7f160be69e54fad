import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BehaviourFailedError, CommandBehaviourSchema, TimeoutError, toCadreError } from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import { createLogger, ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { createCommandBehaviour, MAX_STDOUT_BYTES, STDERR_TAIL_BYTES } from "./index.js";
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
    expect(command("true").plan?.(ctx())).toEqual([]);
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

  it("keeps secrets out of a failed command's result, error data and log lines", async () => {
    const lines: string[] = [];
    const logger = createLogger("agent-host", "info", { write: (l: string) => void lines.push(l) });
    const run = `curl -s "https://db.example/login?user=app&password=hunter2" >/dev/null 2>&1; echo 'request sent with Authorization: Bearer abc.def.ghi' >&2; exit 4`;
    const b = command(run);
    const err = await rejection(b.run(ctx(), []));
    expect(err).toBeInstanceOf(BehaviourFailedError);

    // What the host publishes: the failed result's error, and the logs it writes about it.
    const result = { status: "failed", error: toCadreError(err).toWire() };
    logger.warn({ err, taskId: task.taskId, result }, `attempt failed: ${err.message}`);
    logger.info({ kind: task.kind, command: run }, "the kind's command");
    const published = JSON.stringify(result);
    const logged = lines.join("");
    for (const text of [published, logged, err.message]) {
      expect(text).not.toContain("hunter2");
      expect(text).not.toContain("abc.def.ghi");
    }
    // Still useful: the key names stay, and so does the rest of the message.
    expect(result.error).toMatchObject({
      code: "BEHAVIOUR_FAILED",
      data: { exitCode: 4, stderr: "request sent with Authorization: Bearer [REDACTED]\n", attempt: 3 },
    });
    expect(result.error.data?.command).toContain("password=[REDACTED]");
    expect(err.message).toContain("exited with code 4");
    expect(logged).toContain("password=[REDACTED]");
    expect(logged).toContain("Bearer [REDACTED]");
  });

  it("drops the line the stderr tail was cut through, so half a secret is not passed on", async () => {
    // 38 bytes, then a 2038-byte line: the last 2048 bytes start inside the first line.
    const filler = STDERR_TAIL_BYTES - 10;
    const b = command(
      `printf 'Authorization: Bearer SECRETTOKEN.abc\\n' >&2; head -c ${filler - 1} /dev/zero | tr '\\0' y >&2; echo >&2; exit 1`,
    );
    const err = await rejection(b.run(ctx(), []));
    expect(err).toMatchObject({ data: { stderr: `${"y".repeat(filler - 1)}\n` } });
  });
});
