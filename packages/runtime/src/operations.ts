/**
 * Typed request/reply over the operations table (packages/protocol/src/operations.ts).
 *
 * - {@link call} sends one operation's request and returns its reply, both parsed with the
 *   table's schemas; an error reply is thrown as its typed error.
 * - {@link OperationServer} answers operations as a NATS micro service (`@nats-io/services`),
 *   so `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` discover every supervisor, host and monitor
 *   with their endpoints. Every request is decoded with its schema before a handler sees it;
 *   every failure is answered with a typed error (the Cadre error frame as the payload, and
 *   the micro-service error headers for standard tooling), so a bad request never crashes a
 *   service and the caller learns what to fix.
 */

import {
  CadreError,
  decode,
  decodeAs,
  encode,
  endpointName,
  type HostOperationName,
  type OperationDef,
  type OperationName,
  type Operations,
  type OpReply,
  type OpReplyInput,
  type OpRequest,
  type OpRequestInput,
  operationSubject,
  operations,
  PermissionDeniedError,
  PROTOCOL_VERSION,
  ProtocolError,
  SUPERVISOR_QUEUE,
  type SupervisorOperationName,
  toCadreError,
  UnavailableError,
} from "@cadre/protocol";
import { headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { type Service, type ServiceInfo, Svcm } from "@nats-io/services";
import { type Logger, type ThrottledLog, throttledLog } from "./logger.js";
import { causeNames, isTransient } from "./nats.js";
import {
  extractContext,
  injectContext,
  recordSpanError,
  SPAN_ATTR,
  SpanKind,
  setSpanAttributes,
  withSpan,
} from "./tracing.js";

export type { ServiceInfo };

/** Options of {@link call}. */
export interface CallOptions {
  sender: string;
  cid?: string;
  timeoutMs: number;
}

/** The operations a partition's holder answers (their subject carries the partition). */
export type PartitionedOperationName = {
  [K in OperationName]: Operations[K] extends { partitioned: true } ? K : never;
}[OperationName];

/** The supervisor operations the lease holder answers (all but the partitioned ones). */
export type LeaseHolderOperationName = Exclude<SupervisorOperationName, PartitionedOperationName>;

type CallArgs<N extends OperationName> = N extends HostOperationName
  ? [opts: CallOptions & { hostId: string }]
  : N extends PartitionedOperationName
    ? [opts: CallOptions & { partition: number }]
    : [opts: CallOptions];

/**
 * Calls an operation. A request larger than the server accepts is a ProtocolError naming the
 * limit (bad input, not a NATS failure); no responder or no answer in time is an
 * UnavailableError (retryable); an error reply is thrown as the typed error it carries.
 */
export async function call<N extends OperationName>(
  nc: NatsConnection,
  name: N,
  body: OpRequestInput<N>,
  ...[opts]: CallArgs<N>
): Promise<OpReply<N>> {
  const to = opts as { hostId?: string; partition?: number };
  const subject = operationSubject(name, to.hostId ?? to.partition);
  const data = encode(name, body as never, { sender: opts.sender, cid: opts.cid ?? "" });
  const limit = nc.info?.max_payload;
  if (limit !== undefined && data.byteLength > limit) {
    throw new ProtocolError(
      `the ${name} request is ${data.byteLength} bytes, over the NATS server's max_payload of ${limit} bytes; make it smaller`,
      { operation: name, size: data.byteLength, limit },
    );
  }
  let reply: Msg;
  try {
    // The caller's trace context (W3C traceparent) travels in the request's headers (tracing.ts).
    const hdrs = injectContext();
    reply = await nc.request(subject, data, { timeout: opts.timeoutMs, ...(hdrs ? { headers: hdrs } : {}) });
  } catch (err) {
    // nats.js wraps the reason (a RequestError whose cause is NoRespondersError): look down the chain.
    const names = causeNames(err);
    // The server refused the publish: this identity's role may not call the operation.
    if (names.includes("PermissionViolationError")) {
      throw new PermissionDeniedError(
        `this identity may not call ${name} (the server refused to publish on ${subject}); it needs one of the roles ${operations[name].roles.join(", ")}`,
        { operation: name, subject, roles: [...operations[name].roles] },
        { cause: err },
      );
    }
    if (names.some((n) => n === "NoRespondersError" || n === "NoResponders")) {
      throw new UnavailableError(
        `nothing answers ${name} on ${subject}; is the service running?`,
        { subject },
        { cause: err },
      );
    }
    if (names.some((n) => n === "TimeoutError" || n === "Timeout")) {
      throw new UnavailableError(`no answer to ${name} within ${opts.timeoutMs} ms`, { subject }, { cause: err });
    }
    if (isTransient(err)) {
      throw new UnavailableError(`${name}: NATS is not ready (${(err as Error).message})`, { subject }, { cause: err });
    }
    throw toCadreError(err);
  }
  return decodeAs(reply.data, `${name}.ok` as const).body as OpReply<N>;
}

/** Calls supervisor operations; what hosts and the CLI use. */
export class SupervisorClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: CallOptions,
  ) {}

  call<N extends LeaseHolderOperationName>(name: N, body: OpRequestInput<N>, timeoutMs?: number): Promise<OpReply<N>> {
    return call(this.nc, name, body, ...([{ ...this.opts, ...(timeoutMs ? { timeoutMs } : {}) }] as CallArgs<N>));
  }
}

/** A handler of one operation. */
export type OperationHandler<N extends OperationName> = (
  body: OpRequest<N>,
  meta: { sender: string; cid: string },
) => Promise<OpReplyInput<N>>;

/** Options of {@link OperationServer.start}. */
export interface OperationServerOptions {
  /** The micro service's name: `cadre-supervisor`, `cadre-agent-host`, `cadre-monitor`. */
  name: string;
  /** This process's id (service metadata `id`); also the sender of replies. */
  id: string;
  description: string;
  logger: Logger;
  /** For a host's endpoints. */
  hostId?: string;
  metadata?: Record<string, string>;
}

/** HTTP-like status codes of the micro-service error header, by Cadre error code. */
const STATUS: Record<string, number> = {
  PROTOCOL_ERROR: 400,
  PROTOCOL_VERSION_MISMATCH: 400,
  INVALID_CONFIG: 400,
  NOT_FOUND: 404,
  CONCURRENT_MODIFICATION: 409,
  CIRCULAR_DELEGATION: 422,
  DELEGATION_DEPTH_EXCEEDED: 422,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
};

/** Error replies echo at most this much of a message (a reply must fit the payload limit). */
const MAX_ERROR_MESSAGE = 2000;

/** What answering a request needs of its message: a micro-service request or a plain one. */
interface Request {
  data: Uint8Array;
  headers?: unknown;
  respond(data: Uint8Array): boolean;
  respondError(code: number, description: string, data: Uint8Array): boolean;
}

/** A plain subscription's request, answered as a micro-service endpoint would (its error headers). */
const plainRequest = (m: Msg): Request => ({
  data: m.data,
  headers: m.headers,
  respond: (data) => m.respond(data),
  respondError: (code, description, data) => {
    const h = headers();
    h.set("Nats-Service-Error", description);
    h.set("Nats-Service-Error-Code", String(code));
    return m.respond(data, { headers: h });
  },
});

/**
 * Answers operations' requests: decoded with their schemas, each in a SERVER span, every
 * failure a typed error reply. One per process; what {@link OperationServer}'s endpoints and
 * partitions' subscriptions share.
 */
class Answerer {
  private readonly refusals: ThrottledLog;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: Pick<OperationServerOptions, "id" | "logger" | "hostId">,
  ) {
    this.refusals = throttledLog(opts.logger);
  }

  /** Handles one request on `subject`, concurrently with the others. */
  answer<N extends OperationName>(name: N, subject: string, m: Request, handler: OperationHandler<N>): void {
    // A SERVER span per request, child of the caller's (its traceparent header): what the
    // handler calls or publishes is part of the caller's trace.
    void withSpan(
      `cadre.op ${name}`,
      {
        [SPAN_ATTR.messagingSystem]: "nats",
        [SPAN_ATTR.destination]: subject,
        [SPAN_ATTR.operationType]: "process",
        "cadre.operation": name,
        ...(this.opts.hostId ? { [SPAN_ATTR.hostId]: this.opts.hostId } : {}),
      },
      () => this.handle(name, subject, m, handler),
      { parent: extractContext(m.headers as never), kind: SpanKind.SERVER },
    );
  }

  private async handle<N extends OperationName>(
    name: N,
    subject: string,
    m: Request,
    handler: OperationHandler<N>,
  ): Promise<void> {
    const sender = this.opts.id;
    let cid = "";
    try {
      // decode, not decodeAs: an `error` frame sent as a request is bad input, not an error of ours
      // to rethrow (and echo) as INTERNAL.
      const msg = decode(m.data);
      if (msg.type !== name) {
        throw new ProtocolError(`expected a "${name}" request, received "${msg.type}"`, {
          expected: name,
          received: msg.type,
        });
      }
      cid = msg.cid;
      // Cadre's callers send the workflow id as the correlation id.
      if (cid) setSpanAttributes({ [SPAN_ATTR.workflowId]: cid });
      const result = await handler(msg.body as OpRequest<N>, { sender: msg.sender, cid });
      m.respond(encode(`${name}.ok` as const, result as never, { sender, cid }));
    } catch (err) {
      // NATS itself failing under the handler (a stream electing a leader) is worth retrying,
      // not an internal error: the caller backs off and asks again.
      const e =
        !(err instanceof CadreError) && isTransient(err)
          ? new UnavailableError(`${subject}: NATS is not ready (${(err as Error).message})`, {}, { cause: err })
          : toCadreError(err);
      recordSpanError(e);
      const fields = { err: e, code: e.code, operation: name, cid };
      if (e.code === "INTERNAL") this.opts.logger.error(fields, `request refused: ${e.message}`);
      // Bad input sent in a loop must not become a loop of log lines.
      else this.refusals("info", `${name} ${e.code}`, fields, `request refused: ${e.message}`);
      const wire = e.toWire();
      const trimmed = { ...wire, message: wire.message.slice(0, MAX_ERROR_MESSAGE) };
      try {
        let frame = encode("error", { error: trimmed }, { sender, cid });
        const limit = this.nc.info?.max_payload ?? 1024 * 1024;
        // What an error echoes (issues, ids) must not make the reply too big to send.
        if (frame.byteLength > limit) frame = encode("error", { error: { ...trimmed, data: {} } }, { sender, cid });
        m.respondError(
          STATUS[e.code] ?? (e.retryable ? 503 : 500),
          trimmed.message.slice(0, 200).replace(/[\r\n]+/g, " "),
          frame,
        );
      } catch (replyErr) {
        this.opts.logger.error({ err: replyErr }, "could not send error reply");
      }
    }
  }
}

/** A NATS micro service answering Cadre operations. */
export class OperationServer {
  private constructor(
    private readonly service: Service,
    private readonly answerer: Answerer,
    private readonly opts: OperationServerOptions,
  ) {}

  /** Registers the service (`$SRV.PING|INFO|STATS` answer from now on). */
  static async start(nc: NatsConnection, opts: OperationServerOptions): Promise<OperationServer> {
    // @nats-io/services pins its own nats-core prerelease: the connection is the same object.
    const service = await new Svcm(nc as never).add({
      name: opts.name,
      version: `${PROTOCOL_VERSION}.0.0`,
      description: opts.description,
      metadata: { id: opts.id, ...(opts.hostId ? { hostId: opts.hostId } : {}), ...opts.metadata },
    });
    return new OperationServer(service, new Answerer(nc, opts), opts);
  }

  /** Answers one operation from now on; each request is handled concurrently. */
  serve<N extends OperationName>(name: N, handler: OperationHandler<N>): void {
    const def: OperationDef = operations[name];
    // A partitioned operation served here is served for every partition.
    const subject = operationSubject(name, def.partitioned ? "*" : this.opts.hostId);
    this.service.addEndpoint(endpointName(name), {
      subject,
      ...(def.service === "supervisor" ? { queue: SUPERVISOR_QUEUE } : {}),
      metadata: { operation: name, roles: def.roles.join(",") },
      handler: (err, m) => {
        if (err) {
          this.opts.logger.error({ err }, `endpoint ${name} failed`);
          return;
        }
        this.answerer.answer(name, subject, m, handler);
      },
    });
  }

  /** Unregisters the service and its endpoints. */
  async stop(): Promise<void> {
    if (!this.service.isStopped) await this.service.stop();
  }
}

/**
 * Answers partitioned operations (see {@link PartitionedOperationName}) for the partitions this
 * process holds: one plain subscription per operation and partition, taken and given back as
 * partitions move, in the supervisors' queue group (a partition briefly held twice while it
 * moves is answered once per request; its operations are idempotent). Not micro-service
 * endpoints: a service's endpoints cannot be withdrawn one by one.
 */
export class PartitionServer {
  private readonly answerer: Answerer;
  private readonly subs = new Map<number, Subscription[]>();
  private handlers: { [N in PartitionedOperationName]?: OperationHandler<N> } = {};

  constructor(
    private readonly nc: NatsConnection,
    opts: Pick<OperationServerOptions, "id" | "logger">,
  ) {
    this.answerer = new Answerer(nc, opts);
  }

  /** Sets the handlers; served for every partition taken from now on. */
  handle(handlers: { [N in PartitionedOperationName]: OperationHandler<N> }): void {
    this.handlers = handlers;
  }

  /** Answers the partition's operations from now on. */
  take(partition: number): void {
    if (this.subs.has(partition)) return;
    const subs = (Object.keys(this.handlers) as PartitionedOperationName[]).map((name) => {
      const subject = operationSubject(name, partition);
      const handler = this.handlers[name] as OperationHandler<typeof name>;
      return this.nc.subscribe(subject, {
        queue: SUPERVISOR_QUEUE,
        callback: (err, m) => {
          if (!err) this.answerer.answer(name, subject, plainRequest(m), handler);
        },
      });
    });
    this.subs.set(partition, subs);
  }

  /** Stops answering the partition's operations. */
  give(partition: number): void {
    for (const sub of this.subs.get(partition) ?? []) sub.unsubscribe();
    this.subs.delete(partition);
  }

  /** The partitions answered now. */
  get held(): number[] {
    return [...this.subs.keys()].sort((a, b) => a - b);
  }

  private shared: Subscription[] = [];

  /**
   * Answers these unpartitioned operations too, on their own subjects in the supervisors' queue
   * group, beside the service endpoints of whoever else answers them, until {@link unshare}.
   */
  share(handlers: { [N in OperationName]?: OperationHandler<N> }): void {
    if (this.shared.length > 0) return;
    this.shared = (Object.entries(handlers) as [OperationName, OperationHandler<OperationName>][]).map(
      ([name, handler]) => {
        const subject = operationSubject(name);
        return this.nc.subscribe(subject, {
          queue: SUPERVISOR_QUEUE,
          callback: (err, m) => {
            if (!err) this.answerer.answer(name, subject, plainRequest(m), handler);
          },
        });
      },
    );
  }

  /** Stops answering what {@link share} answers. */
  unshare(): void {
    for (const sub of this.shared) sub.unsubscribe();
    this.shared = [];
  }

  stop(): void {
    for (const p of [...this.subs.keys()]) this.give(p);
    this.unshare();
  }
}

/**
 * Every Cadre service that answers `$SRV.INFO` (optionally only those of one name), as standard
 * NATS tooling (`nats micro ls`) would list them: waits up to `maxWaitMs` for the answers.
 */
export async function discoverServices(nc: NatsConnection, name?: string, maxWaitMs = 1000): Promise<ServiceInfo[]> {
  const replies = await new Svcm(nc as never).client({ strategy: "timer", maxWait: maxWaitMs } as never).info(name);
  const out: ServiceInfo[] = [];
  for await (const info of replies) out.push(info);
  return out;
}
