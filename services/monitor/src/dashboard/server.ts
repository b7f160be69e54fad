/**
 * The monitor's dashboard, served on its health port (runtime service.ts `RunningService.http`):
 * `/dashboard` (the page, its script and its style, inlined in assets.ts so the built service
 * needs no other files), `/dashboard/stream` (server-sent events: a `snapshot` every second
 * while someone watches, and each `event` line the monitor hears) and
 * `/dashboard/api/workflow/<id>` (the delegation tree, shared state and checkpoints: workflow.ts),
 * `/dashboard/api/incident?since=15m` (an incident report from the events stream: incident.ts)
 * and, only when operator actions are configured, `POST /dashboard/api/action` (actions.ts).
 * Otherwise read-only: it calls the supervisor's read operations. The browser never talks to NATS.
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { type OpReplyInput, type TypedEvent, toCadreError } from "@cadre/protocol";
import type { Logger, NatsConnection } from "@cadre/runtime";
import { classOf } from "../incident/classes.js";
import { DASHBOARD_CSS, DASHBOARD_HTML } from "./assets.js";
import { DASHBOARD_JS } from "./client.js";
import { incidentFromQuery } from "./incident.js";
import {
  type EventLine,
  type MetricHistory,
  RECENT_KEPT,
  type RecentEvents,
  type SlowSources,
  type Snapshot,
  slowSources,
  type TrendSeries,
  takeSnapshot,
} from "./snapshot.js";
import { workflowDetail } from "./workflow.js";

/** At most this many browsers stream at once; one more is answered 503. */
export const MAX_STREAM_CLIENTS = 20;
/** The newest event lines kept for a browser that connects (newest last). */
export const EVENT_BUFFER = 200;
/** A stream with this much written but not yet taken by its browser is closed. */
export const MAX_UNREAD_BYTES = 4 * 1024 * 1024;
/** How often a snapshot is sent while someone watches. */
export const SNAPSHOT_INTERVAL_MS = 1000;

/** What the dashboard reads from. */
export interface DashboardOptions {
  nc: NatsConnection;
  sender: string;
  timeoutMs: number;
  logger: Logger;
  now(): number;
  connected(): boolean;
  status(): OpReplyInput<"mon.status">;
  history(): MetricHistory;
  trends(): TrendSeries[];
  /** Operator actions (actions.ts); absent: the dashboard is read-only and POST is refused. */
  actions?: ActionHandler | undefined;
}

/** Answers POST /dashboard/api/action (actions.ts). */
export interface ActionHandler {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** The dashboard's routes, its stream clients and its buffer of event lines. */
export class Dashboard {
  private readonly clients = new Set<ServerResponse>();
  private readonly events: EventLine[] = [];
  private readonly phi = new Map<string, number>();
  private readonly recent: RecentEvents = { deadlocks: [], preemptions: [], trends: [], actions: [] };
  private readonly slow: () => Promise<SlowSources>;
  private last?: Snapshot;
  private timer?: NodeJS.Timeout;
  private inFlight = false;
  /** A snapshot was asked for while one was being taken: take another right after. */
  private again = false;
  private stopped = false;

  constructor(private readonly opts: DashboardOptions) {
    this.slow = slowSources(opts.nc, { sender: opts.sender, timeoutMs: opts.timeoutMs }, opts.now);
  }

  /** Browsers streaming now. */
  get streams(): number {
    return this.clients.size;
  }

  /** Records an event line and sends it to every browser; a host's liveness also refreshes the hosts now. */
  onEvent(event: TypedEvent, line: string): void {
    const e: EventLine = {
      at: this.opts.now(),
      type: event.type,
      category: event.category,
      scope: event.scope,
      class: classOf(event.type),
      line,
      data: event.data,
    };
    this.events.push(e);
    if (this.events.length > EVENT_BUFFER) this.events.shift();
    const kept = keptIn(this.recent, e);
    if (kept) {
      kept.unshift(e);
      if (kept.length > RECENT_KEPT) kept.pop();
    }
    const data = event.data as { phi?: unknown };
    if (event.category === "host" && typeof data.phi === "number") this.phi.set(event.scope, data.phi);
    // Guarded: this runs in the monitor's event subscription, which a throw would end.
    try {
      this.broadcast("event", e);
      if (event.category === "host" && this.clients.size > 0) this.refresh();
    } catch (err) {
      this.opts.logger.warn({ err }, "dashboard: cannot send an event line");
    }
  }

  /** Answers the request when its path is the dashboard's; false for any other path. */
  http(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "").split("?")[0] ?? "";
    if (path !== "/dashboard" && !path.startsWith("/dashboard/")) return false;
    if (path === "/dashboard/api/action") {
      if (req.method !== "POST") send(res, 405, "text/plain", "POST only\n", { allow: "POST" });
      else if (!this.opts.actions) {
        json(res, 403, {
          error: {
            code: "PERMISSION_DENIED",
            message: "operator actions are off: set monitor.dashboard.actions in the monitor's configuration",
          },
        });
      } else {
        this.opts.actions.handle(req, res).catch((err) => {
          this.opts.logger.warn({ err }, "dashboard action failed");
          if (!res.headersSent) json(res, 500, { error: { code: "INTERNAL", message: toCadreError(err).message } });
        });
      }
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain", "the dashboard is read-only: GET only\n", { allow: "GET, HEAD" });
      return true;
    }
    if (path === "/dashboard" || path === "/dashboard/") send(res, 200, "text/html; charset=utf-8", DASHBOARD_HTML);
    else if (path === "/dashboard/app.js") send(res, 200, "text/javascript; charset=utf-8", DASHBOARD_JS);
    else if (path === "/dashboard/app.css") send(res, 200, "text/css; charset=utf-8", DASHBOARD_CSS);
    else if (path === "/dashboard/stream") this.stream(req, res);
    else if (path.startsWith("/dashboard/api/workflow/")) {
      const o = this.opts;
      void workflowDetail(o.nc, path.slice(24), { sender: o.sender, timeoutMs: o.timeoutMs }).then(
        (r) => json(res, r.status, r.body),
        (err) => json(res, 500, { error: { code: "INTERNAL", message: toCadreError(err).message } }),
      );
    } else if (path === "/dashboard/api/incident") {
      const query = new URL(req.url ?? "", "http://dashboard").searchParams;
      void incidentFromQuery(this.opts.nc, query, this.opts.now()).then(
        (r) => json(res, r.status, r.body),
        (err) => json(res, 500, { error: { code: "INTERNAL", message: toCadreError(err).message } }),
      );
    } else
      send(
        res,
        404,
        "text/plain",
        "not found: the dashboard serves /dashboard, /dashboard/stream, /dashboard/api/workflow/<id>, /dashboard/api/incident?since=15m\n",
      );
    return true;
  }

  /** Ends every stream and stops taking snapshots. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.stopped || this.clients.size >= MAX_STREAM_CLIENTS) {
      send(res, 503, "text/plain", `at most ${MAX_STREAM_CLIENTS} dashboards stream at once; close one and retry\n`);
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    // The browser reconnects after this long when the monitor restarts.
    res.write("retry: 2000\n\n");
    this.clients.add(res);
    req.on("close", () => {
      this.clients.delete(res);
      if (this.clients.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    write(res, "backlog", this.events);
    if (this.last) write(res, "snapshot", this.last);
    this.refresh();
    if (!this.timer) {
      this.timer = setInterval(() => this.refresh(), SNAPSHOT_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Takes a snapshot and sends it; one at a time (a request during one queues one more). */
  private refresh(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    const o = this.opts;
    void takeSnapshot({
      ...o,
      phi: (hostId) => this.phi.get(hostId) ?? null,
      recent: () => this.recent,
      actions: o.actions !== undefined,
      slow: this.slow,
    })
      .then((s) => {
        this.last = s;
        this.broadcast("snapshot", s);
      })
      .catch((err) => o.logger.warn({ err }, "dashboard snapshot failed"))
      .finally(() => {
        this.inFlight = false;
        if (this.again && !this.stopped && this.clients.size > 0) {
          this.again = false;
          this.refresh();
        }
      });
  }

  private broadcast(name: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients) {
      // A browser that does not read its stream is dropped before its backlog grows unbounded.
      if (c.writableLength > MAX_UNREAD_BYTES) {
        this.clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(frame);
    }
  }
}

/** Which of the kept lists an event belongs to, if any. */
function keptIn(r: RecentEvents, e: EventLine): EventLine[] | undefined {
  if (e.type === "DEADLOCK_RESOLVED") return r.deadlocks;
  if (e.type === "AGENT_PREEMPTED") return r.preemptions;
  if (e.type === "PERFORMANCE_DEGRADATION_DETECTED" || e.type === "MEMORY_TREND") return r.trends;
  if (e.class === "action" || e.class === "command") return r.actions;
  return undefined;
}

function write(res: ServerResponse, name: string, data: unknown): void {
  res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, "application/json", JSON.stringify(body));
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", ...headers });
  res.end(body);
}
