/**
 * What the agent-host's own tests share: a real nats-server with Cadre's streams and buckets,
 * task messages fetched from a real consumer, a stand-in supervisor answering the operations a
 * test needs over real NATS, and waiting for a condition with a deadline.
 */

import {
  type Config,
  type ConfigInput,
  encode,
  type OperationName,
  parseConfig,
  randomId,
  STREAMS,
  type SupervisorOperationName,
  subjects,
  type TaskEnvelope,
  taskConsumer,
} from "@cadre/protocol";
import {
  type Buckets,
  connectNats,
  createLogger,
  ensureInfrastructure,
  type Logger,
  type NatsConnection,
  type OperationHandler,
  OperationServer,
} from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import {
  AckPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";

const nanos = (ms: number): number => ms * 1_000_000;

/** A logger that writes nothing. */
export const quietLogger: Logger = createLogger("agent-host-test", "silent");

/** A nats-server with Cadre's infrastructure, and a connection to it. */
export interface NatsFixture {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  buckets: Buckets;
  config: Config;
  stop(): Promise<void>;
}

/** Starts a nats-server and creates Cadre's streams and buckets. */
export async function natsFixture(config: ConfigInput = {}): Promise<NatsFixture> {
  const server = await startNatsServer();
  const parsed = parseConfig({ ...config, natsUrl: server.url });
  const nc = await connectNats(server.url, `agent-host-test-${randomId(4)}`);
  const buckets = await ensureInfrastructure(nc, parsed);
  return {
    server,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    buckets,
    config: parsed,
    stop: async () => {
      await nc.close();
      await server.stop();
    },
  };
}

/** Creates the durable consumer of a (team, kind), as the supervisor does. */
export async function taskConsumerFor(
  fx: NatsFixture,
  teamId: string,
  kind: string,
  opts: { ackWaitMs?: number; maxDeliver?: number } = {},
): Promise<void> {
  await fx.jsm.consumers.add(STREAMS.tasks, {
    durable_name: taskConsumer(teamId, kind),
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(opts.ackWaitMs ?? 30_000),
    max_deliver: opts.maxDeliver ?? 5,
    filter_subject: subjects.task(teamId, kind),
  });
}

/** Publishes a task to its (team, kind) subject. */
export async function publishTask(fx: NatsFixture, task: TaskEnvelope): Promise<void> {
  await fx.js.publish(subjects.task(task.teamId, task.kind), encode("task", task, { sender: "test" }), {
    msgID: `${task.taskId}:e${task.epoch}`,
  });
}

/** Fetches the next delivery of a (team, kind) consumer, waiting up to `expiresMs` for it. */
export async function nextDelivery(
  fx: NatsFixture,
  teamId: string,
  kind: string,
  expiresMs = 5000,
): Promise<JsMsg | undefined> {
  const consumer = await fx.js.consumers.get(STREAMS.tasks, taskConsumer(teamId, kind));
  return (await consumer.next({ expires: expiresMs })) ?? undefined;
}

/** What a (team, kind) consumer has outstanding: waiting to be delivered and delivered but not settled. */
export async function pendingOf(
  fx: NatsFixture,
  teamId: string,
  kind: string,
): Promise<{ pending: number; unacked: number }> {
  const info = await fx.jsm.consumers.info(STREAMS.tasks, taskConsumer(teamId, kind));
  return { pending: info.num_pending, unacked: info.num_ack_pending };
}

/** A stand-in supervisor serving the operations a test gives it. */
export async function fakeSupervisor(
  nc: NatsConnection,
  handlers: Partial<{ [N in SupervisorOperationName]: OperationHandler<N> }>,
): Promise<OperationServer> {
  const srv = await OperationServer.start(nc, {
    name: `cadre-test-supervisor-${randomId(4)}`,
    id: `sup-${randomId(4)}`,
    description: "a test's stand-in supervisor",
    logger: quietLogger,
  });
  for (const [name, handler] of Object.entries(handlers)) {
    srv.serve(name as OperationName, handler as OperationHandler<OperationName>);
  }
  return srv;
}

/** Resolves once `ok()` holds; rejects naming `what` after `timeoutMs`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
