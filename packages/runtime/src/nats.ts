/**
 * The NATS connection and what tells a passing NATS failure from a lasting one. Typed
 * request/reply over the operations table is in operations.ts.
 */

import { CadreError, PermissionDeniedError, UnavailableError } from "@cadre/protocol";
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { Logger } from "./logger.js";
import { redactUrl } from "./logger.js";
import { withRequestMux } from "./request-mux.js";
import { authenticatorFor, credentialsFromUrls, type NatsAuth } from "./security.js";

export type { Msg, MsgHdrs, NatsConnection, Subscription };
export { headers };

/**
 * Connects to NATS, reconnecting forever; fails with UnavailableError if the first connect
 * fails, and with a non-retryable UNAVAILABLE naming the identity problem when the server
 * refuses the credentials. `auth.credentials` is a seed or `.creds` file; `user:password@` in
 * a URL is used too (nats.js would ignore it). Credentials are never logged.
 */
export async function connectNats(
  servers: string,
  name: string,
  logger?: Logger,
  auth: NatsAuth = {},
): Promise<NatsConnection> {
  let nc: NatsConnection;
  const parsed = credentialsFromUrls(servers.split(",").map((s) => s.trim()));
  const identity = auth.credentials ? authenticatorFor(auth.credentials) : undefined;
  try {
    nc = await connect({
      servers: parsed.servers,
      ...(parsed.user !== undefined ? { user: parsed.user, pass: parsed.pass ?? "" } : {}),
      ...(identity ? { authenticator: identity.authenticator, inboxPrefix: identity.inboxPrefix } : {}),
      ...(auth.tls ? { tls: { ...auth.tls } } : {}),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // A connection cut off by the network stays "open" until pings go unanswered; with the
      // default (2 min, 2 outstanding) a healed host would stay silent for minutes. Here a dead
      // connection is noticed within ~6 s and replaced as soon as the network lets it.
      pingInterval: 2000,
      maxPingOut: 3,
      noAsyncTraces: true,
      // A server that ends the session after TLS (a missing client certificate under TLS 1.3)
      // sends nothing; 5 s rather than the default 20 before that is reported.
      timeout: 5000,
    });
  } catch (err) {
    if (err instanceof CadreError) throw err;
    if (causeNames(err).some((n) => n === "AuthorizationError" || n === "UserAuthenticationExpiredError")) {
      throw new PermissionDeniedError(
        `NATS at ${redactUrl(servers)} refused this identity (${(err as Error).message}); pass the right --nats-creds (or CADRE_NATS_CREDS), see cadre security init`,
        { servers: redactUrl(servers) },
        { cause: err },
      );
    }
    throw new UnavailableError(
      `cannot reach NATS at ${redactUrl(servers)} (${(err as Error).message}); start nats-server or pass --nats-url`,
      { servers: redactUrl(servers) },
      { cause: err },
    );
  }
  void watchStatus(nc, logger);
  // Every request (operations, and JetStream's publishes, KV reads and writes) over one inbox.
  return withRequestMux(nc);
}

/** How long a stale connection may take to close itself before its socket is destroyed. */
const STALE_CLOSE_GRACE_MS = 2000;

/**
 * Logs connection changes, and works around a nats.js (transport-node 3.x) hang: on a stale
 * connection (pings unanswered) it closes the transport by first writing an empty frame and
 * waiting for the write to be accepted; when the network under the socket is gone (a host cut
 * off, then put back with a new address) the kernel's send buffer is full, the write never
 * completes and the client never reconnects. Found by the partition chaos test (the host
 * stayed silent after the heal; its socket held 121 KB unsent). If no disconnect follows a
 * stale connection within the grace, the socket is destroyed, which fails that write and
 * lets the client reconnect. It reaches into nats.js internals; if they change, it only logs.
 */
async function watchStatus(nc: NatsConnection, logger?: Logger): Promise<void> {
  let watchdog: NodeJS.Timeout | undefined;
  for await (const s of nc.status()) {
    if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error" || s.type === "staleConnection") {
      logger?.warn({ nats: s.type, server: "server" in s ? s.server : undefined }, `nats ${s.type}`);
    }
    if (s.type === "staleConnection") {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => destroyStaleSocket(nc, logger), STALE_CLOSE_GRACE_MS);
      watchdog.unref();
    } else if (s.type === "disconnect" || s.type === "reconnect") {
      clearTimeout(watchdog);
      watchdog = undefined;
    }
  }
  clearTimeout(watchdog);
}

function destroyStaleSocket(nc: NatsConnection, logger?: Logger): void {
  const socket = (nc as unknown as { protocol?: { transport?: { socket?: { destroy?: () => void } } } }).protocol
    ?.transport?.socket;
  if (typeof socket?.destroy !== "function") {
    logger?.warn("stale NATS connection did not close and its socket cannot be reached; waiting for the client");
    return;
  }
  logger?.warn({ graceMs: STALE_CLOSE_GRACE_MS }, "stale NATS connection did not close; destroying its socket");
  socket.destroy();
}

/**
 * Options for every JetStream pull (fetch or consume). A pull waits at its consumer's leader;
 * if that node dies the pull is silently gone, and nats.js notices only after two missed idle
 * heartbeats. Its default heartbeat is half the expiry (15 s for consume), which stalled the
 * supervisor's results for 30-50 s when a NATS node was killed; one beat a second makes it ~2 s.
 */
export const PULL_OPTIONS = { expires: 5000, idle_heartbeat: 1000 } as const;

/** NATS client errors that pass once the cluster settles (nats.js v3 class names). */
const TRANSIENT = new Set([
  "TimeoutError",
  "NoRespondersError",
  "NoResponders",
  "RequestError",
  "JetStreamNotEnabled",
  "ConnectionError",
]);

/**
 * Whether an error is one that passes once the NATS cluster settles: a request that timed out
 * or found no responder (a stream electing a new leader after a node died, a reconnect under
 * way), anywhere in its cause chain, or a Cadre error marked retryable. A closed connection is
 * not transient: it does not come back.
 */
export function isTransient(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e !== null && typeof e === "object"; depth++) {
    if ((e as { retryable?: unknown }).retryable === true) return true;
    if (TRANSIENT.has((e as Error).name)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Whether NATS itself failed somewhere in the error's cause chain (a timeout, no responders, a
 * connection error): no answer came. An error *reply* (even UNAVAILABLE) is an answer, so it is
 * not one; that is what breakers count.
 */
export function isTransportFailure(err: unknown): boolean {
  return causeNames(err).some((n) => TRANSIENT.has(n));
}

/** The names of an error and its causes. */
export function causeNames(err: unknown): string[] {
  const names: string[] = [];
  for (let e: unknown = err, depth = 0; depth < 6 && e !== null && typeof e === "object"; depth++) {
    names.push(String((e as Error).name));
    e = (e as { cause?: unknown }).cause;
  }
  return names;
}
