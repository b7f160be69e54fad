/**
 * The monitor (first cut): listens to heartbeats and events. It logs every event as its event
 * line and notices hosts that fall silent or come back, independently of the supervisor. Each
 * event is parsed by the events table (protocol events.ts) first: one that does not decode, or
 * whose type is unknown or data breaks its schema, is skipped, counted and logged with the count.
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import {
  BUCKETS,
  type CadreEvent,
  type Config,
  decodeAs,
  formatEventLine,
  type Heartbeat,
  isParseFailure,
  parseEvent,
  randomId,
  subjects,
  TeamSchema,
  type TypedEvent,
} from "@cadre/protocol";
import {
  buildReport,
  type CadreMetrics,
  type Clock,
  closeBus,
  connectNats,
  createMetrics,
  type EventBus,
  eventBusFor,
  type Logger,
  type NatsConnection,
  natsAuthOf,
  OperationServer,
  StateStore,
  type Subscription,
  systemClock,
  type ThrottledLog,
  throttledLog,
} from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";
import { Actions } from "./actions.js";
import { type OperatorActions, startOperatorActions } from "./dashboard/actions.js";
import { Dashboard } from "./dashboard/server.js";
import { dataIntegrityAlerts } from "./runbook/announce-data.js";
import { actorsOnHost, NetworkAnnouncer } from "./runbook/announce-network.js";
import { poolFailureAlerts } from "./runbook/announce-pool.js";
import { serveRunbook } from "./runbook/index.js";
import { Watch } from "./watch.js";

/** Options of {@link Monitor.start}. */
export interface MonitorOptions {
  config: Config;
  logger: Logger;
  /** @default systemClock */
  clock?: Clock;
  /** The scale action's command (`--scale-command`), over `monitor.scale.command`. */
  scaleCommand?: string | undefined;
  /** Called with each event line (besides logging it). */
  onEventLine?: (line: string) => void;
}

interface HostView {
  last: Heartbeat;
  lastSeen: number;
  silent: boolean;
}

/** A running monitor. */
export class Monitor {
  private nc!: NatsConnection;
  private server?: OperationServer;
  private readonly subs: Subscription[] = [];
  private readonly hosts = new Map<string, HostView>();
  private timer?: NodeJS.Timeout;
  private readonly clock: Clock;
  private readonly id = `monitor-${randomId(6)}`;
  /** This process's metrics, served on /metrics (runtime metrics.ts). */
  readonly metrics: CadreMetrics = createMetrics({ service: "cadre-monitor" });
  private skipped = 0;
  private bus!: EventBus;
  private watch!: Watch;
  private tickTimer: unknown;
  private stopped = false;
  /** Logs what bad input causes, at most so many lines a window (runtime logger.ts). */
  private readonly noisy: ThrottledLog;
  /** COMMUNICATION_FAILURE and NETWORK_RECOVERY_COMPLETED (runbook/announce-network.ts). */
  private network?: NetworkAnnouncer;
  /** The dashboard on the health port (dashboard/server.ts). */
  private dashboard?: Dashboard;
  /** The dashboard's operator actions and their connection, as the operator (dashboard/actions.ts). */
  private operator?: { handler: OperatorActions; nc: NatsConnection };

  private constructor(private readonly opts: MonitorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.noisy = throttledLog(opts.logger);
  }

  /** Connects and starts listening. */
  static async start(opts: MonitorOptions): Promise<Monitor> {
    const m = new Monitor(opts);
    await m.init();
    return m;
  }

  /** Events skipped so far: not decoded, or not parsed by the events table. */
  get skippedEvents(): number {
    return this.skipped;
  }

  /** Hosts seen, with their last heartbeat and whether they are silent now. */
  hostTable(): { hostId: string; actors: number; busy: number; load: number; silentForMs: number; silent: boolean }[] {
    const now = this.clock.now();
    return [...this.hosts.values()].map((h) => ({
      hostId: h.last.hostId,
      actors: h.last.actors,
      busy: h.last.busy,
      load: h.last.load,
      silentForMs: now - h.lastSeen,
      silent: h.silent,
    }));
  }

  private async init(): Promise<void> {
    const { config, logger } = this.opts;
    // First: a wrong setting fails the start before anything else connects.
    this.operator = await startOperatorActions({ config, id: this.id, logger });
    this.nc = await connectNats(config.natsUrl, this.id, logger, natsAuthOf(config));
    // Seed 003's alerts from what the services announce (runbook/announce-*.ts).
    const dataAlerts = dataIntegrityAlerts(this.clock, (e) => this.bus.emit(e));
    const poolAlerts = poolFailureAlerts({
      nc: this.nc,
      sender: this.id,
      config,
      clock: this.clock,
      logger,
      emit: (e) => this.bus.emit(e),
    });
    this.network = new NetworkAnnouncer({
      config,
      clock: this.clock,
      logger,
      emit: (e) => this.bus.emit(e),
      hosts: () => this.hostTable(),
      actorsOn: actorsOnHost(this.nc, this.id, config.requestTimeoutMs),
    });
    this.subs.push(
      this.nc.subscribe(subjects.allHeartbeats(), {
        callback: (_e, m) => {
          try {
            const hb = decodeAs(m.data, "heartbeat").body;
            const prev = this.hosts.get(hb.hostId);
            if (!prev || prev.silent || prev.last.incarnation !== hb.incarnation) {
              logger.info({ hostId: hb.hostId, incarnation: hb.incarnation }, prev ? "host is back" : "host seen");
            }
            this.hosts.set(hb.hostId, { last: hb, lastSeen: this.clock.now(), silent: false });
          } catch (err) {
            this.noisy("warn", "bad heartbeat ignored", { err }, "bad heartbeat ignored");
          }
        },
      }),
      this.nc.subscribe(subjects.allEvents(), {
        callback: (_e, m) => {
          let raw: CadreEvent;
          try {
            raw = decodeAs(m.data, "event").body;
          } catch (err) {
            this.skipped++;
            this.noisy(
              "warn",
              "undecodable event skipped",
              { err, skipped: this.skipped },
              "undecodable event skipped",
            );
            return;
          }
          const event = parseEvent(raw);
          if (isParseFailure(event)) {
            this.skipped++;
            this.noisy(
              "warn",
              "event skipped",
              { failure: event, skipped: this.skipped },
              `event skipped: ${event.message}`,
            );
            return;
          }
          // The line as received (parsing strips fields the table does not know yet). Guarded: a
          // throw in a subscription callback ends nats.js's reader and the monitor hears nothing more.
          let line: string;
          try {
            line = formatEventLine(raw);
          } catch (err) {
            this.skipped++;
            this.noisy(
              "warn",
              "unprintable event skipped",
              { err, skipped: this.skipped },
              "unprintable event skipped",
            );
            return;
          }
          logger.info({ event: line }, "event");
          this.opts.onEventLine?.(line);
          this.dashboard?.onEvent(event, line);
          dataAlerts(event);
          poolAlerts(event);
          this.network?.onEvent(event);
        },
      }),
    );
    this.timer = setInterval(() => this.sweep(), config.heartbeat.intervalMs);
    this.timer.unref();
    this.startWatch();
    this.dashboard = new Dashboard({
      nc: this.nc,
      sender: this.id,
      timeoutMs: config.requestTimeoutMs,
      logger,
      now: () => this.clock.now(),
      connected: () => this.healthy(),
      status: () => this.watch.status(this.clock.now()),
      history: () => this.watch.history(),
      trends: () => this.watch.trendSeries(),
      actions: this.operator?.handler,
    });
    // Discoverable like every Cadre service ($SRV.PING|INFO|STATS).
    this.server = await OperationServer.start(this.nc, {
      name: "cadre-monitor",
      id: this.id,
      description: "watches heartbeats, events and the services' reports; acts on thresholds",
      logger,
    });
    this.server.serve("mon.status", async () => this.watch.status(this.clock.now()));
    // Seed 003's runbook commands: the monitor measures, and acts through the supervisor.
    const teams = new StateStore(await new Kvm(this.nc).open(BUCKETS.registry), TeamSchema, "team");
    serveRunbook(this.server, {
      nc: this.nc,
      sender: this.id,
      config,
      clock: this.clock,
      emit: (e) => this.bus.emit(e),
      status: () => this.watch.status(this.clock.now()),
      reports: () => this.watch.reports(this.clock.now()),
      team: async (teamId) => (await teams.get(`team.${teamId}`))?.value,
    });
  }

  /**
   * The cluster metrics, thresholds, actions and trends (watch.ts): the services' reports feed
   * it, and every `monitor.intervalMs` it ticks (one tick at a time; a slow one delays the next).
   */
  private startWatch(): void {
    const { config, logger } = this.opts;
    this.bus = eventBusFor(this.nc, this.id, config, logger, this.clock, undefined, { metrics: this.metrics });
    const emit = (e: TypedEvent) => this.bus.emit(e);
    this.watch = new Watch({
      config,
      logger,
      emit,
      actions: (view) =>
        new Actions({
          nc: this.nc,
          config,
          logger,
          metrics: this.metrics,
          sender: this.id,
          emit,
          hosts: () =>
            view
              .sources(this.clock.now())
              .filter((r) => r.service === "agent-host")
              .map((r) => r.id),
          hookRates: () => view.hookRates(this.clock.now()),
          scaleCommand: this.opts.scaleCommand ?? config.monitor.scale.command,
        }),
    });
    this.subs.push(
      this.nc.subscribe(subjects.allReports(), {
        callback: (_e, m) => {
          try {
            this.watch.add(decodeAs(m.data, "report").body);
          } catch (err) {
            this.noisy("warn", "bad report", { err, subject: m.subject }, "bad report ignored");
          }
        },
      }),
    );
    const incarnation = randomId(12);
    const tick = () => {
      if (this.stopped) return;
      void buildReport(this.metrics, { service: "monitor", id: this.id, incarnation, now: this.clock.now() })
        // The monitor's own process counts too (its heap, its event queue).
        .then((own) => this.watch.add(own))
        .then(() => this.watch.tick(this.clock.now()))
        .catch((err) => logger.error({ err }, "monitor tick failed"))
        .finally(() => {
          if (!this.stopped) this.tickTimer = this.clock.setTimeout(tick, config.monitor.intervalMs);
        });
    };
    this.tickTimer = this.clock.setTimeout(tick, config.monitor.intervalMs);
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const h of this.hosts.values()) {
      if (!h.silent && now - h.lastSeen > this.opts.config.heartbeat.hostDeadAfterMs) {
        h.silent = true;
        this.opts.logger.warn({ hostId: h.last.hostId, lastSeenMsAgo: now - h.lastSeen }, "host silent");
      }
    }
  }

  /** Connected to NATS, or trying to reconnect (a closed connection does not come back). */
  healthy(): boolean {
    return !this.nc.isClosed();
  }

  /** The dashboard's routes on the health server (runtime service.ts); false for other paths. */
  http(req: IncomingMessage, res: ServerResponse): boolean {
    return this.dashboard?.http(req, res) ?? false;
  }

  /** Stops listening. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.dashboard?.stop();
    this.network?.stop();
    this.clock.clearTimeout(this.tickTimer);
    clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    await this.server?.stop();
    if (this.bus) await closeBus(this.bus);
    await this.nc.drain();
    await this.operator?.nc.close();
  }
}
