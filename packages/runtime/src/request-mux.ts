/**
 * Request/reply without nats.js's per-request cost. `nc.request()` (nats-core 3.4) builds a
 * `RequestError("cancelled")` after every successful reply (its cleanup rejects the settled
 * promise with a new Error), races a second timeout promise and makes a random token: the
 * Error's stack trace alone is about a quarter of a requester's CPU (shared/notes/nats-here.md:
 * a hand-written mux measured ~4x the request rate). Every JetStream publish, KV read and KV
 * write of nats.js's JetStream client is such a request, so Cadre's per-task round trips all pay it.
 *
 * {@link withRequestMux} wraps a connection so that `request()` publishes with a reply subject
 * under one wildcard inbox subscription, keeps the pending requests in a Map with one timer
 * each, and allocates an Error only when a request fails. The failures are nats.js's own
 * classes, so its JetStream client and Cadre's `call()` tell them apart as before: TimeoutError;
 * RequestError caused by NoRespondersError (a 503 status reply); RequestError caused by the
 * PermissionViolationError the server sent for the request's subject; RequestError when the
 * connection closes. Requests with their own `reply` or `noMux` go to nats.js unchanged.
 */

import {
  createInbox,
  errors,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  nuid,
  type Payload,
  RequestError,
  type RequestOptions,
  TimeoutError,
} from "@nats-io/nats-core";

interface Pending {
  subject: string;
  resolve: (m: Msg) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

class RequestMux {
  private readonly pending = new Map<string, Pending>();
  private readonly prefix: string;

  constructor(private readonly nc: NatsConnection) {
    // Under the identity's own inbox prefix (its permissions allow only that one: security.ts).
    const inboxPrefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.prefix = `${createInbox(inboxPrefix)}.`;
    nc.subscribe(`${this.prefix}*`, { callback: (err, m) => this.reply(err, m) });
    void this.watch();
    void nc.closed().then(() => this.failAll(new RequestError("connection closed")));
  }

  request(subject: string, payload?: Payload, opts?: RequestOptions): Promise<Msg> {
    if (opts?.noMux || opts?.reply) return this.nc.request(subject, payload, opts);
    // Unguessable, like nats.js's: a reply to a token is only the responder's to send.
    const token = nuid.next();
    const timeoutMs = opts?.timeout || 1000;
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(token)) reject(new TimeoutError());
      }, timeoutMs);
      this.pending.set(token, { subject, resolve, reject, timer });
      try {
        this.nc.publish(subject, payload, {
          reply: this.prefix + token,
          ...(opts?.headers ? { headers: opts.headers } : {}),
        });
      } catch (err) {
        this.settle(token)?.reject(err as Error);
      }
    });
  }

  private reply(err: Error | null, m: Msg): void {
    const p = this.settle(m.subject.slice(this.prefix.length));
    if (!p) return; // timed out already
    if (err) p.reject(new RequestError(err.message, { cause: err }));
    else if (m.data.length === 0 && m.headers?.code === 503) {
      p.reject(new RequestError("no responders", { cause: new NoRespondersError(p.subject) }));
    } else p.resolve(m);
  }

  private settle(token: string): Pending | undefined {
    const p = this.pending.get(token);
    if (!p) return undefined;
    this.pending.delete(token);
    clearTimeout(p.timer);
    return p;
  }

  /** The server refused a publish: the requests on that subject fail with its error (as nats.js's mux does). */
  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type !== "error" || !(s.error instanceof errors.PermissionViolationError)) continue;
      const pe = s.error;
      if (pe.operation !== "publish") continue;
      for (const [token, p] of this.pending) {
        if (p.subject === pe.subject) this.settle(token)?.reject(new RequestError(pe.message, { cause: pe }));
      }
    }
  }

  private failAll(err: Error): void {
    for (const token of [...this.pending.keys()]) this.settle(token)?.reject(err);
  }
}

/**
 * The connection with `request()` multiplexed (see the file's comment); every other member is
 * the connection's own, bound to it.
 */
export function withRequestMux(nc: NatsConnection): NatsConnection {
  const mux = new RequestMux(nc);
  const request = mux.request.bind(mux);
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === "request") return request;
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      let f = bound.get(prop);
      if (f === undefined) {
        f = (v as (...a: unknown[]) => unknown).bind(target);
        bound.set(prop, f);
      }
      return f;
    },
  });
}
