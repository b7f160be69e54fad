/**
 * A stand-in OpenTelemetry collector: an OTLP/HTTP receiver on 127.0.0.1 (a random port) that
 * accepts `POST /v1/traces` with JSON bodies (what `@opentelemetry/exporter-trace-otlp-http`
 * sends: resourceSpans[].scopeSpans[].spans[]) and keeps every span with its resource's
 * `service.name`. Pass `url` as OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces).
 */

import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";

/** An attribute value as OTLP JSON encodes it. */
interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}

interface KeyValue {
  key: string;
  value?: AnyValue;
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: KeyValue[];
  status?: { code?: number; message?: string };
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

/** OTLP span kinds (SPAN_KIND_*). */
export const OTLP_KIND = { unspecified: 0, internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

/** A received span. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  service: string;
  /** `service.instance.id`, when the resource has one. */
  instance: string | undefined;
  attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: number;
  startNs: bigint;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** The base endpoint, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  /** Every span received so far, in arrival order. */
  readonly spans: ReceivedSpan[];
  /** Export requests received (and those it could not read). */
  readonly requests: { ok: number; bad: number };
  stop(): Promise<void>;
}

/** Trace and span ids arrive as hex (JSON encoding); base64 is accepted too. */
function hexId(id: string | undefined): string {
  if (!id) return "";
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, "base64").toString("hex");
}

function attributeValue(v: AnyValue | undefined): string | number | boolean | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return undefined;
}

function attributesOf(kvs: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of kvs ?? []) {
    const v = attributeValue(kv.value);
    if (v !== undefined) out[kv.key] = v;
  }
  return out;
}

/** Reads an export request's spans. */
export function spansOf(body: ExportRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attributesOf(rs.resource?.attributes);
    const service = String(resource["service.name"] ?? "unknown");
    const instance =
      resource["service.instance.id"] !== undefined ? String(resource["service.instance.id"]) : undefined;
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          parentSpanId: hexId(s.parentSpanId),
          name: s.name,
          kind: s.kind ?? 0,
          service,
          instance,
          attributes: attributesOf(s.attributes),
          status: s.status?.code ?? 0,
          startNs: BigInt(s.startTimeUnixNano ?? 0),
        });
      }
    }
  }
  return out;
}

/** Starts the receiver. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests = { ok: 0, bad: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url?.split("?")[0] !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const type = String(req.headers["content-type"] ?? "");
      if (!type.includes("json")) {
        // The protobuf exporter is not what the runtime installs; say so rather than guess.
        requests.bad++;
        res.writeHead(415, { "content-type": "application/json" }).end('{"message":"JSON only"}');
        return;
      }
      try {
        let raw = Buffer.concat(chunks);
        if (req.headers["content-encoding"] === "gzip") raw = gunzipSync(raw);
        spans.push(...spansOf(JSON.parse(raw.toString("utf8")) as ExportRequest));
        requests.ok++;
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch {
        requests.bad++;
        res.writeHead(400, { "content-type": "application/json" }).end('{"message":"bad request"}');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The spans above `span` (its parent, the parent's parent...) as far as they were received. */
export function ancestorsOf(spans: readonly ReceivedSpan[], span: ReceivedSpan): ReceivedSpan[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const out: ReceivedSpan[] = [];
  let cur = byId.get(span.parentSpanId);
  while (cur && !out.includes(cur)) {
    out.push(cur);
    cur = byId.get(cur.parentSpanId);
  }
  return out;
}
