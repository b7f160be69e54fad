/**
 * A TCP proxy on 127.0.0.1 the test controls, to cut one client off a server while everyone
 * else stays connected. Two kinds of cut:
 *
 * - `cut()` drops every connection and refuses new ones: the client notices at once;
 * - `blackhole()` keeps every socket open but forwards nothing, as a network partition does:
 *   the client notices only when its pings go unanswered.
 *
 * `heal()` ends either (and drops the blackholed sockets, which are dead to their clients).
 */

import { createConnection, createServer, type Server, type Socket } from "node:net";

/** A running proxy. */
export interface TcpProxy {
  /** `nats://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  readonly port: number;
  /** Drops every open connection and refuses new ones. */
  cut(): void;
  /** Forwards nothing, in either direction, on open and new connections. */
  blackhole(): void;
  /** Forwards again. */
  heal(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:<targetPort>` on a random port. */
export async function startProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let mode: "open" | "cut" | "blackhole" = "open";
  const server: Server = createServer((client) => {
    if (mode === "cut") {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
    const forward = (from: Socket, to: Socket) =>
      from.on("data", (chunk) => {
        if (mode === "open") to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("close", () => {
        open.delete(s);
        client.destroy();
        upstream.destroy();
      });
      s.on("error", () => s.destroy());
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no TCP address");
  const dropAll = () => {
    for (const s of open) s.destroy();
  };
  return {
    url: `nats://127.0.0.1:${address.port}`,
    port: address.port,
    cut: () => {
      mode = "cut";
      dropAll();
    },
    blackhole: () => {
      mode = "blackhole";
    },
    heal: () => {
      if (mode === "blackhole") dropAll();
      mode = "open";
    },
    close: async () => {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
