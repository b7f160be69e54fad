/**
 * Runs a JS module hook in its own worker thread. A thread, not a promise in our event loop: a
 * hook stuck in `while (true) {}` would freeze a promise-based host, while a worker is stopped
 * with `terminate()` at the timeout and the host keeps serving meanwhile.
 *
 * The worker's code is an inline string (`eval: true`), so it works the same from `src` under
 * vitest and from `dist` after `tsc -b`, with no extra file to copy or locate.
 */

import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Clock } from "../clock.js";
import { HookAttemptError } from "./errors.js";

/**
 * The worker: imports the hook, calls its default export with the payload, posts the outcome.
 * The interval keeps the thread alive, so a hook whose promise never settles runs into the
 * timeout instead of letting the thread exit quietly.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const keepAlive = setInterval(() => {}, 1 << 30);
const describe = (err) => (err instanceof Error ? err.name + ": " + err.message : "threw " + String(err));
(async () => {
  try {
    const mod = await import(workerData.url);
    if (typeof mod.default !== "function") {
      throw new TypeError("the module has no default export function (export default async (payload) => result)");
    }
    const result = await mod.default(workerData.payload);
    parentPort.postMessage({ ok: true, result });
  } catch (err) {
    parentPort.postMessage({ ok: false, message: describe(err) });
  } finally {
    clearInterval(keepAlive);
  }
})();
`;

type WorkerReply = { ok: true; result: unknown } | { ok: false; message: string };

/** What {@link runModuleHook} needs. */
export interface ModuleHookRun {
  /** Absolute path of the ES module. */
  path: string;
  payload: unknown;
  timeoutMs: number;
  clock: Clock;
}

/**
 * Resolves with the hook's result, or rejects with a HookAttemptError. It settles only after
 * the worker has ended, so no hook thread outlives its run.
 */
export function runModuleHook({ path, payload, timeoutMs, clock }: ModuleHookRun): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { url: pathToFileURL(path).href, payload } });
    } catch (err) {
      // Typically a payload that cannot be cloned (a function, a socket).
      reject(new HookAttemptError("error", `could not start the hook: ${(err as Error).message}`));
      return;
    }

    let settled = false;
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      // An error from terminate means the thread is already gone, which is what we want.
      worker.terminate().then(settle, settle);
    };

    const timer = clock.setTimeout(() => {
      finish(() => reject(new HookAttemptError("timeout", `did not finish within ${timeoutMs} ms`)));
    }, timeoutMs);

    worker.on("message", (reply: WorkerReply) => {
      finish(() => (reply.ok ? resolve(reply.result) : reject(new HookAttemptError("error", reply.message))));
    });
    // An exception thrown outside the hook's promise (in a timer callback, say).
    worker.on("error", (err) => {
      finish(() => reject(new HookAttemptError("error", `${err.name}: ${err.message}`)));
    });
    // process.exit() in the hook.
    worker.on("exit", (code) => {
      finish(() => reject(new HookAttemptError("error", `the hook's thread exited with code ${code} before a result`)));
    });
  });
}
