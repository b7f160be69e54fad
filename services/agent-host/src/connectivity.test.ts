import { describe, expect, it } from "vitest";
import { createActor, fromPromise } from "xstate";
import { connectivityMachine } from "./connectivity.js";

/** A machine whose replay the test settles by hand. */
function start() {
  const replays: { resolve: (n: number) => void; reject: (e: Error) => void }[] = [];
  const actor = createActor(
    connectivityMachine.provide({
      actors: {
        replay: fromPromise<number>(() => new Promise<number>((resolve, reject) => replays.push({ resolve, reject }))),
      },
      delays: {},
    }),
  );
  actor.start();
  const flush = () => new Promise((r) => setTimeout(r, 0));
  return { actor, replays, flush, state: () => actor.getSnapshot().value };
}

describe("the host's connectivity machine", () => {
  it("goes offline on a disconnect and replays on reconnect before it is online again", async () => {
    const { actor, replays, flush, state } = start();
    expect(state()).toBe("online");
    actor.send({ type: "DISCONNECTED" });
    expect(state()).toBe("offline");
    actor.send({ type: "RECONNECTED" });
    expect(state()).toBe("reconciling");
    await flush();
    replays[0]?.resolve(12);
    await flush();
    expect(state()).toBe("online");
    expect(actor.getSnapshot().context).toMatchObject({ replays: 1, lastReplayed: 12 });
  });

  it("retries a replay that failed while still connected, instead of waiting for a disconnect", async () => {
    const { actor, replays, flush, state } = start();
    actor.send({ type: "RECONNECTED" }); // e.g. a result went to the outbox while online
    await flush();
    replays[0]?.reject(new Error("no responders: JetStream electing a leader"));
    await flush();
    expect(state()).toBe("retrying");
    actor.send({ type: "RECONNECTED" });
    await flush();
    expect(state()).toBe("reconciling");
    replays[1]?.resolve(1);
    await flush();
    expect(state()).toBe("online");
  });

  it("stops a replay when cut off again", async () => {
    const { actor, flush, state } = start();
    actor.send({ type: "RECONNECTED" });
    await flush();
    actor.send({ type: "DISCONNECTED" });
    expect(state()).toBe("offline");
  });
});
