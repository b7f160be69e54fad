/** Where the time of one sequential workflow goes (from task record timestamps). Dev aid. */
import { startStack, submitWorkflow, waitForWorkflow } from "@cadre/cli";
import { BUCKETS, parseTeam, TaskRecordSchema } from "@cadre/protocol";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { Kvm } from "@nats-io/kv";

const server = await startNatsServer();
const stack = await startStack({ natsUrl: server.url, hosts: 2, monitor: false });
const nc = await connectNats(server.url, "prof");
const team = parseTeam({
  name: "prof",
  root: "director",
  kinds: {
    director: { role: "director", hosts: ["host-1"], behaviour: { type: "script", delegate: [{ kind: "noop" }] } },
    noop: { role: "agent", hosts: ["host-2"], behaviour: { type: "script" } },
  },
});
const kv = await new Kvm(nc).open(BUCKETS.tasks);
const rows: number[][] = [];
for (let i = 0; i < 40; i++) {
  const t0 = Date.now();
  const { workflowId } = await submitWorkflow(nc, { team });
  const t1 = Date.now();
  const w = await waitForWorkflow(nc, workflowId, { timeoutMs: 10000 });
  const t2 = Date.now();
  const root = TaskRecordSchema.parse((await kv.get(`${workflowId}-r`))?.json());
  const child = TaskRecordSchema.parse((await kv.get(`${workflowId}-r-0`))?.json());
  rows.push([
    t1 - t0,
    child.createdAt - w.submittedAt,
    (child.finishedAt ?? 0) - child.createdAt,
    (root.finishedAt ?? 0) - (child.finishedAt ?? 0),
    t2 - (root.finishedAt ?? 0),
    t2 - t0,
  ]);
}
const med = (k: number) => rows.map((r) => r[k] as number).sort((a, b) => a - b)[Math.floor(rows.length / 2)];
console.log(
  "submit rtt, submit->child created, child created->child finished, child finished->root finished, root finished->client saw, total",
);
console.log([0, 1, 2, 3, 4, 5].map(med).join("  "));
await nc.close();
await stack.stop();
await server.stop();
