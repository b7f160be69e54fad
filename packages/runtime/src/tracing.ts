/**
 * Distributed tracing with OpenTelemetry: one workflow is one trace across the CLI, the
 * supervisor and the hosts. The W3C trace context (`traceparent`, `tracestate`) travels as NATS
 * message headers (nats.js has no instrumentation of its own; this is the convention NATS.Net
 * follows): requests carry it (operations.ts), task messages carry the span that published them
 * (the submit or delegate request's), results carry the attempt's.
 *
 * Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then
 * nothing is registered, the API's no-op tracer is used, and every helper here returns at once
 * (no span, no header, no context switch). When set, {@link initTracing} registers a
 * NodeTracerProvider exporting OTLP/HTTP JSON in batches, the AsyncLocalStorage context manager
 * and the W3C TraceContext propagator, once per process.
 */

import {
  type Attributes,
  type Context,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { headers, type MsgHdrs } from "./nats.js";

export type { Attributes, Context, Span, Tracer };
export { SpanKind, SpanStatusCode };

/** Span attribute names: OpenTelemetry's messaging conventions and Cadre's ids. */
export const SPAN_ATTR = {
  messagingSystem: "messaging.system",
  destination: "messaging.destination.name",
  operationType: "messaging.operation.type",
  workflowId: "cadre.workflow.id",
  taskId: "cadre.task.id",
  kind: "cadre.task.kind",
  epoch: "cadre.task.epoch",
  attempt: "cadre.task.attempt",
  hostId: "cadre.host.id",
  actorId: "cadre.actor.id",
} as const;

/** The tracing of this process. */
export interface Tracing {
  tracer: Tracer;
  /** Exports what is buffered and stops (bounded: a collector that is gone does not hold the exit). */
  shutdown(): Promise<void>;
  /** Whether spans are recorded and exported (an OTLP endpoint is configured). */
  enabled: boolean;
}

/** Options of {@link initTracing}. */
export interface TracingOptions {
  /** `service.instance.id`: which one of a service's processes (a host id, a supervisor id). */
  instanceId?: string;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** How long {@link Tracing.shutdown} waits for the last export. */
const SHUTDOWN_TIMEOUT_MS = 3000;
/** Batch delay: short, so a short-lived CLI or a test does not wait long for its spans. */
const EXPORT_DELAY_MS = 500;

/** Per process (a second copy of this module would find it too): the one initialised tracing. */
const STATE = Symbol.for("cadre.tracing");
type Global = { [STATE]?: Tracing };

const noopTracing = (service: string): Tracing => ({
  tracer: trace.getTracer(service),
  shutdown: async () => {},
  enabled: false,
});

/** This process's tracing: what {@link initTracing} set up, or the no-op one. */
function current(): Tracing | undefined {
  return (globalThis as Global)[STATE];
}

/** Whether this process records spans. */
export function tracingEnabled(): boolean {
  return current()?.enabled === true;
}

/**
 * Sets up tracing for this process, named `service` (`service.name`), when an OTLP endpoint is
 * configured; otherwise registers nothing and returns the no-op tracer. Idempotent: a second
 * call returns the first one's tracing.
 */
export function initTracing(service: string, opts: TracingOptions = {}): Tracing {
  const g = globalThis as Global;
  const existing = g[STATE];
  if (existing) return existing;
  const env = opts.env ?? process.env;
  // As the exporter reads them: the traces endpoint as it is, the base endpoint + /v1/traces.
  const url =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
    (env.OTEL_EXPORTER_OTLP_ENDPOINT ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, "")}/v1/traces` : "");
  if (!url || env.OTEL_SDK_DISABLED === "true") {
    const off = noopTracing(service);
    g[STATE] = off;
    return off;
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: service,
      ...(opts.instanceId ? { "service.instance.id": opts.instanceId } : {}),
    }),
    // OTLP/HTTP with JSON bodies; headers and timeout from the standard environment variables.
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: EXPORT_DELAY_MS })],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  let stopped: Promise<void> | undefined;
  const on: Tracing = {
    tracer: trace.getTracer(service),
    enabled: true,
    shutdown: () => {
      stopped ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS);
          timer.unref();
        });
        await Promise.race([provider.shutdown().catch(() => {}), timeout]);
        clearTimeout(timer);
      })();
      return stopped;
    },
  };
  g[STATE] = on;
  return on;
}

/** This process's tracer (the no-op one before {@link initTracing} or without an endpoint). */
export function tracer(): Tracer {
  return current()?.tracer ?? trace.getTracer("cadre");
}

const setter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const getter: TextMapGetter<MsgHdrs | undefined> = {
  get: (carrier, key) => {
    const v = carrier?.get(key);
    return v ? v : undefined;
  },
  keys: (carrier) => (carrier ? carrier.keys() : []),
};

/**
 * Puts `ctx`'s trace context (`traceparent`, `tracestate`) in NATS headers, creating them when
 * needed; returns `hdrs` unchanged when tracing is off or no span is active.
 */
export function injectContext(hdrs?: MsgHdrs, ctx: Context = context.active()): MsgHdrs | undefined {
  if (!tracingEnabled()) return hdrs;
  const span = trace.getSpan(ctx);
  if (!span || !trace.isSpanContextValid(span.spanContext())) return hdrs;
  const out = hdrs ?? headers();
  propagation.inject(ctx, out, setter);
  return out;
}

/** The trace context NATS headers carry (the active context when none, or tracing is off). */
export function extractContext(hdrs: MsgHdrs | undefined): Context {
  if (!tracingEnabled() || !hdrs) return context.active();
  return propagation.extract(context.active(), hdrs, getter);
}

/** The active context. */
export function activeContext(): Context {
  return context.active();
}

/** Runs `fn` with `ctx` active (at once, without a context switch, when tracing is off or `ctx` is undefined). */
export function withContext<T>(ctx: Context | undefined, fn: () => T): T {
  if (!ctx || !tracingEnabled()) return fn();
  return context.with(ctx, fn);
}

const NOOP_SPAN: Span = trace.wrapSpanContext({ traceId: "", spanId: "", traceFlags: 0 });

/** Options of {@link withSpan} and {@link startSpan}. */
export interface SpanOptions {
  /** @default the active context */
  parent?: Context;
  /** @default SpanKind.INTERNAL */
  kind?: SpanKind;
}

/**
 * Starts a span (not active) and returns it with the context it is active in; end it yourself
 * ({@link endSpan}). For work split across callbacks, where {@link withSpan} cannot wrap it.
 */
export function startSpan(name: string, attrs: Attributes, opts: SpanOptions = {}): { span: Span; ctx: Context } {
  if (!tracingEnabled()) return { span: NOOP_SPAN, ctx: context.active() };
  const parent = opts.parent ?? context.active();
  const span = tracer().startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes: attrs }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Ends a span, with an error status and the exception recorded when `err` is given. */
export function endSpan(span: Span, err?: unknown): void {
  if (!span.isRecording()) return;
  if (err !== undefined) failSpan(span, err);
  span.end();
}

/** Sets attributes on the active span (nothing when tracing is off or none is active). */
export function setSpanAttributes(attrs: Attributes): void {
  if (tracingEnabled()) trace.getActiveSpan()?.setAttributes(attrs);
}

/** Marks the active span failed with `err` (for work that answers an error rather than throwing it). */
export function recordSpanError(err: unknown): void {
  if (!tracingEnabled()) return;
  const span = trace.getActiveSpan();
  if (span?.isRecording()) failSpan(span, err);
}

/** Records `err` (an Error, or a Cadre wire error `{ code, message }`) on the span and marks it failed. */
function failSpan(span: Span, err: unknown): void {
  const fields = typeof err === "object" && err !== null ? (err as { code?: unknown; message?: unknown }) : {};
  const message = typeof fields.message === "string" ? fields.message : String(err);
  const code = typeof fields.code === "string" ? fields.code : undefined;
  span.recordException(err instanceof Error ? err : { name: code ?? "Error", message });
  if (code) span.setAttribute("cadre.error.code", code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 300) });
}

/**
 * Runs `fn` in a new active span (child of `opts.parent`, else of the active context): an error
 * it throws is recorded (exception event, error status) and rethrown; the span ends either way.
 * Without tracing, `fn` runs at once with a no-op span.
 */
export async function withSpan<T>(
  name: string,
  attrs: Attributes,
  fn: (span: Span) => Promise<T>,
  opts: SpanOptions = {},
): Promise<T> {
  if (!tracingEnabled()) return fn(NOOP_SPAN);
  const parent = opts.parent ?? context.active();
  return tracer().startActiveSpan(
    name,
    { kind: opts.kind ?? SpanKind.INTERNAL, attributes: attrs },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        failSpan(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
