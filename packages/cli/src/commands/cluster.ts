/** `cadre team`, `cadre actor`, `cadre host`: what runs where, and taking things out of service. */

import type { OpReply } from "@cadre/protocol";
import type { Command } from "commander";
import { ago, table } from "../format.js";
import { action, type Ctx, changing, print, printJson, seconds, withSupervisor } from "./common.js";

type HostSummary = OpReply<"sup.host.cordon">;

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

const hostLine = (h: HostSummary): string =>
  `host ${h.hostId}: ${h.state}, ${h.cordoned ? "cordoned (no new actors)" : "not cordoned"}, ${plural(h.actors, "actor")}, ${h.busy} busy`;

export function registerCluster(program: Command, ctx: Ctx): void {
  // --- teams ---------------------------------------------------------------------------------
  const team = program.command("team").description("the teams the supervisor knows: list them, retire one");
  team
    .command("list")
    .description("teams with their priority, kinds, actors and running workflows")
    .option("--json", "one JSON object: { teams: [...] }")
    .action(
      action(async (o: { json?: boolean }) => {
        const reply = await withSupervisor(ctx, (sup) => sup.call("sup.team.list", {}));
        if (o.json) return void printJson(reply);
        print(
          table(
            ["TEAM", "NAME", "PRIORITY", "ACTORS", "RUNNING", "LAST ACTIVE", "KINDS"],
            reply.teams.map((t) => [
              t.teamId,
              t.name,
              String(t.priority),
              String(t.actors),
              String(t.running),
              ago(t.lastActiveAt),
              t.kinds.join(","),
            ]),
            "no teams",
          ),
        );
      }),
    );
  team
    .command("retire <team-id>")
    .description("stop the team's actors and forget the team (refused while it has running workflows, unless --force)")
    .option("--force", "retire it even with workflows running")
    .action(
      action(async (teamId: string, o: { force?: boolean }) => {
        const r = await withSupervisor(ctx, (sup) =>
          changing(() => sup.call("sup.team.retire", { teamId, force: !!o.force })),
        );
        print(
          `retired team ${r.teamId}: stopped ${plural(r.actors.length, "actor")}${r.actors.length ? ` (${r.actors.join(", ")})` : ""}`,
        );
      }),
    );

  // --- actors --------------------------------------------------------------------------------
  const actor = program.command("actor").description("the actors of every team: list them, retire one");
  actor
    .command("list")
    .description("actors with their team, kind, host and status")
    .option("--team <team-id>", "only this team's")
    .option("--host <host-id>", "only this host's")
    .option("--json", "one JSON object: { actors: [...] }")
    .action(
      action(async (o: { team?: string; host?: string; json?: boolean }) => {
        const reply = await withSupervisor(ctx, (sup) =>
          sup.call("sup.actor.list", { ...(o.team ? { teamId: o.team } : {}), ...(o.host ? { hostId: o.host } : {}) }),
        );
        if (o.json) return void printJson(reply);
        print(
          table(
            ["ACTOR", "TEAM", "KIND", "HOST", "STATUS", "PRIORITY", "SPAWNED"],
            reply.actors.map((a) => [
              a.actorId,
              a.teamId,
              a.kindName,
              a.hostId,
              a.status,
              String(a.priority),
              ago(a.spawnedAt),
            ]),
            "no actors",
          ),
        );
      }),
    );
  actor
    .command("retire <actor-id>")
    .description("stop one actor; the task it held goes back to the queue")
    .action(
      action(async (actorId: string) => {
        const r = await withSupervisor(ctx, (sup) => changing(() => sup.call("sup.actor.retire", { actorId })));
        print(`retired actor ${r.actorId}${r.requeued ? `; task ${r.requeued} requeued` : ""}`);
      }),
    );

  // --- hosts ---------------------------------------------------------------------------------
  const host = program
    .command("host")
    .description("the agent-hosts: list them with liveness and load; cordon, uncordon or drain one");
  host
    .command("list")
    .description("agent-hosts with their liveness, actors, load and open circuits")
    .option("--json", "one JSON object: { hosts: [...] }")
    .action(
      action(async (o: { json?: boolean }) => {
        const reply = await withSupervisor(ctx, (sup) => sup.call("sup.host.list", {}));
        if (o.json) return void printJson(reply);
        const now = Date.now();
        print(
          table(
            ["HOST", "STATE", "CORDONED", "ACTORS", "BUSY", "LOAD", "HEAP", "HEARTBEAT", "CIRCUITS"],
            reply.hosts.map((h) => [
              h.hostId,
              h.state,
              h.cordoned ? "yes" : "no",
              `${h.actors}/${h.maxActors}`,
              String(h.busy),
              h.load.toFixed(2),
              h.heapUsedMb === undefined ? "-" : `${h.heapUsedMb.toFixed(0)} MiB`,
              ago(h.lastHeartbeatAt, now),
              Object.entries(h.circuits)
                .map(([name, s]) => `${name}:${s}`)
                .join(",") || "-",
            ]),
            "no hosts",
          ),
        );
      }),
    );
  for (const [name, cordoned] of [
    ["cordon", true],
    ["uncordon", false],
  ] as const) {
    host
      .command(`${name} <host-id>`)
      .description(
        cordoned
          ? "keep new actors off the host (those it runs stay; cadre host drain moves them)"
          : "let new actors on the host again",
      )
      .action(
        action(async (hostId: string) => {
          const h = await withSupervisor(ctx, (sup) =>
            changing(() => sup.call("sup.host.cordon", { hostId, cordoned })),
          );
          print(hostLine(h));
        }),
      );
  }
  host
    .command("drain <host-id>")
    .description("cordon the host, start its actors elsewhere and give the tasks they held back to the queue")
    .option("--timeout <seconds>", "wait this long for the supervisor to answer (exit 3)", seconds, 60_000)
    .action(
      action(async (hostId: string, o: { timeout: number }) => {
        const r = await withSupervisor(ctx, (sup) => changing(() => sup.call("sup.host.drain", { hostId }, o.timeout)));
        const lines = [
          `drained host ${r.hostId}: moved ${plural(r.moved.length, "actor")}, requeued ${plural(r.requeued.length, "task")}`,
          ...r.moved.map((m) => `  ${m.from} -> ${m.to}`),
          ...(r.requeued.length ? [`  requeued: ${r.requeued.join(", ")}`] : []),
        ];
        print(lines.join("\n"));
      }),
    );
}
