/**
 * The host's view of its NATS connection, as a state machine: `online` (results go straight to
 * JetStream), `offline` (cut off: results go to the durable outbox and actors keep working) and
 * `reconciling` (back: the outbox is replayed, in order and at a bounded rate, before results
 * go straight out again; a replay that fails while the connection is up is retried a second
 * later from `retrying`). Driven by the NATS client's status; the replay is an effect the host
 * provides, so the machine can be tested alone.
 */

import { assign, fromPromise, setup } from "xstate";

export type ConnectivityEvent = { type: "DISCONNECTED" } | { type: "RECONNECTED" };

export const connectivityMachine = setup({
  types: {
    context: {} as { replays: number; lastReplayed: number },
    events: {} as ConnectivityEvent,
  },
  actors: {
    replay: fromPromise<number>(async () => {
      throw new Error('actor "replay" is not provided');
    }),
  },
}).createMachine({
  id: "connectivity",
  context: { replays: 0, lastReplayed: 0 },
  initial: "online",
  states: {
    online: {
      // RECONNECTED while online: a reconnect whose disconnect went unnoticed, or a host that
      // started with records left in its outbox. Replaying an empty outbox costs nothing.
      on: { DISCONNECTED: "offline", RECONNECTED: "reconciling" },
    },
    offline: {
      on: { RECONNECTED: "reconciling" },
    },
    reconciling: {
      invoke: {
        src: "replay",
        onDone: {
          target: "online",
          actions: assign({
            replays: ({ context }) => context.replays + 1,
            lastReplayed: ({ event }) => event.output,
          }),
        },
        // A send failed with the connection still up (JetStream electing a leader after a node
        // died): try again shortly. Only the client's own disconnect means offline.
        onError: "retrying",
      },
      on: { DISCONNECTED: "offline" },
    },
    retrying: {
      after: { 1000: "reconciling" },
      on: { DISCONNECTED: "offline", RECONNECTED: "reconciling" },
    },
  },
});
