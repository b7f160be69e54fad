import { BehaviourFailedError } from "@cadre/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger, throttledLog } from "./logger.js";
import { configureRedaction } from "./redact.js";

/** A logger whose JSON lines land in an array (a pino destination stream). */
function capture() {
  const lines: string[] = [];
  const logger = createLogger("logger-test", "info", { write: (s: string) => void lines.push(s) });
  return { logger, lines, text: () => lines.join(""), parsed: () => lines.map((l) => JSON.parse(l)) };
}

afterEach(() => configureRedaction([]));

describe("createLogger", () => {
  it("redacts secret-looking values in the message, the fields, errors and bindings", () => {
    const { logger, text, parsed } = capture();
    const cause = new Error("spawn failed for deploy --password=hunter2");
    const err = new BehaviourFailedError(
      "command failed",
      { stderr: "401: Authorization: Bearer abc.def.ghi" },
      { cause },
    );
    logger
      .child({ command: "PGPASSWORD=hunter2 psql" })
      .error(
        { err, url: "postgres://app:hunter2@db/app", nested: { list: ["token=hunter2"] } },
        "ran %s",
        "--password=hunter2",
      );
    logger.warn(new Error("login with Bearer abc.def.ghi refused"));

    expect(text()).not.toContain("hunter2");
    expect(text()).not.toContain("abc.def.ghi");
    const [first, second] = parsed();
    expect(first).toMatchObject({
      msg: "ran --password=[REDACTED]",
      command: "PGPASSWORD=[REDACTED] psql",
      url: "postgres://app:[REDACTED]@db/app",
      nested: { list: ["token=[REDACTED]"] },
      err: {
        code: "BEHAVIOUR_FAILED",
        message: "command failed: spawn failed for deploy --password=[REDACTED]",
        data: { stderr: "401: Authorization: Bearer [REDACTED]" },
      },
    });
    expect(second).toMatchObject({ msg: "login with Bearer [REDACTED] refused" });
  });

  it("redacts values of secret-named keys at any depth, and leaves other lines as they were", () => {
    const { logger, parsed } = capture();
    logger.info({ a: { b: { natsPassword: "p", clientSecret: { v: 1 } } }, token: "t" }, "deep");
    logger.info({ taskId: "w1-r-0", attempt: 2, maxTokens: 500, ok: true, tags: ["a", "b"] }, "plain text");
    const [deep, plain] = parsed();
    expect(deep).toMatchObject({
      a: { b: { natsPassword: "[REDACTED]", clientSecret: "[REDACTED]" } },
      token: "[REDACTED]",
    });
    expect(plain).toMatchObject({
      msg: "plain text",
      taskId: "w1-r-0",
      attempt: 2,
      maxTokens: 500,
      ok: true,
      tags: ["a", "b"],
    });
    expect(plain).toMatchObject({ service: "logger-test", pid: process.pid });
  });

  it("applies the configured patterns too", () => {
    const { logger, text } = capture();
    configureRedaction(["CORP-[0-9]{6}"]);
    logger.info({ ticket: "CORP-123456" }, "ticket CORP-654321 opened");
    expect(text()).not.toMatch(/CORP-[0-9]/);
    expect(text()).toContain('"ticket":"[REDACTED]"');
  });
});

describe("throttledLog", () => {
  it("writes at most perWindow lines of a kind per window, then says how many it held back", () => {
    const { logger, parsed } = capture();
    let t = 0;
    const log = throttledLog(logger, { perWindow: 3, windowMs: 1000, now: () => t });
    for (let i = 0; i < 100; i++) log("warn", "bad frame", { i }, "bad frame ignored");
    log("warn", "other", {}, "another kind is not held back by the first");
    expect(parsed().map((l) => l.i ?? l.msg)).toEqual([0, 1, 2, "another kind is not held back by the first"]);
    t = 1000;
    log("warn", "bad frame", { i: 100 }, "bad frame ignored");
    expect(parsed().at(-1)).toMatchObject({ i: 100, suppressed: 97 });
    log("warn", "bad frame", { i: 101 }, "bad frame ignored");
    expect(parsed().at(-1)).not.toHaveProperty("suppressed");
  });
});
