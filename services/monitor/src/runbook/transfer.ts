/**
 * `/workflow-recovery transfer-context`: each failed actor's context given to its replacement,
 * then read back. For each failed agent:
 *
 * 1. who it was: its record (`sup.debug.actor`: a quarantined actor still has one), else its
 *    events (`ACTOR_SPAWNED`, `ACTOR_LOST`...: an actor lost with its host is forgotten by the
 *    supervisor), else a checkpoint; none of them: NOT_FOUND. An active actor on a live host has
 *    not failed: refused;
 * 2. its context, from the best source there is: a checkpoint (`checkpoint.<id>` in the registry
 *    bucket: kept at preemption or by an earlier transfer with rollback_capability), its host
 *    (a quarantined actor is still there: history and snapshot), else rebuilt from the events
 *    stream (the tasks of its TASK_STARTED, latest first, at most 50: rebuildHistory). An actor
 *    lost with its host leaves no snapshot: nothing kept it, and the reply says `none`;
 * 3. the supervisor's `sup.actor.transfer` gives it to the named replacement or the actor placed
 *    in its stead (or a new one) and records it;
 * 4. validation reads the replacement back from its host (`sup.debug.actor`): `basic`, every
 *    task given is in its history; `comprehensive`, also that it inherited from the failed
 *    actor and holds a snapshot exactly when one was given.
 *
 * Every failed agent and named replacement is checked before anything is transferred: a
 * refusal (NOT_FOUND, a replacement of another kind) changes nothing. A transfer that fails
 * later (a host that does not answer) is reported on its row and the others go on.
 * RECOVERY_VALIDATION_COMPLETED sums up the validation (scope success, or partial).
 */

import {
  BUCKETS,
  type InheritedContext,
  InheritedContextSchema,
  NotFoundError,
  type OpReply,
  ProtocolError,
  subjects,
  type TransferReply,
  type TransferRequest,
  toCadreError,
} from "@cadre/protocol";
import { readEventLog } from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";
import { rebuildHistory } from "./cascade-rules.js";
import { ask, type RunbookDeps } from "./resource-manager.js";

/** How far back a history is rebuilt when the actor's ACTOR_SPAWNED is no longer in the stream. */
export const HISTORY_LOOKBACK_MS = 3_600_000;
/** The most task events one history rebuild reads. */
const MAX_HISTORY_EVENTS = 200_000;

type Row = TransferReply["agents"][number];
type Debug = OpReply<"sup.debug.actor">;

/** A failed actor, as far as it is known. */
interface Failed {
  actorId: string;
  teamId: string;
  kind: string;
  /** When it failed (its event's time), or now when nothing says. */
  at: number;
  spawnedAt: number | undefined;
  record: Debug | null;
  checkpoint: InheritedContext | undefined;
}

const FAILURE_EVENTS = new Set([
  "ACTOR_LOST",
  "AGENT_QUARANTINED",
  "ACTOR_RETIRED",
  "AGENT_RETIRED",
  "AGENT_PREEMPTED",
]);

/** An actor's record, or null when the supervisor does not know it. */
async function recordOf(d: RunbookDeps, actorId: string): Promise<Debug | null> {
  try {
    return await ask(d, "sup.debug.actor", { actorId });
  } catch (err) {
    if (toCadreError(err).code === "NOT_FOUND") return null;
    throw err;
  }
}

/** `checkpoint.<actorId>` in the registry bucket (registry.ts putCheckpoint), if there is a valid one. */
async function checkpointOf(d: RunbookDeps, actorId: string): Promise<InheritedContext | undefined> {
  const kv = await new Kvm(d.nc).open(BUCKETS.registry);
  const e = await kv.get(`checkpoint.${actorId}`);
  if (e?.operation !== "PUT") return undefined;
  try {
    const r = InheritedContextSchema.safeParse(JSON.parse(e.string()));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** Who a failed agent was: its record, its events, its checkpoint. */
async function identify(d: RunbookDeps, actorId: string): Promise<Failed> {
  const [record, log, checkpoint] = await Promise.all([
    recordOf(d, actorId),
    readEventLog(d.nc, { filter: subjects.event("actor", actorId), max: 1000 }),
    checkpointOf(d, actorId),
  ]);
  const spawned = log.events.find((s) => s.event.type === "ACTOR_SPAWNED");
  const failed = log.events.filter((s) => FAILURE_EVENTS.has(s.event.type)).at(-1);
  if (!record && !spawned && !failed && !checkpoint) {
    throw new NotFoundError("actor (no record, event or checkpoint names it)", actorId);
  }
  const data = { ...spawned?.event.data, ...failed?.event.data } as { teamId?: string; kind?: string };
  const teamId = record?.record.teamId ?? data.teamId;
  const kind = record?.record.kindName ?? data.kind;
  if (!teamId || !kind) {
    throw new NotFoundError("team and kind of actor (its events are no longer in the events stream)", actorId);
  }
  if (record && record.record.status === "active" && record.live) {
    throw new ProtocolError(
      `failed_agents: ${actorId} is active on live host ${record.record.hostId}: name actors that failed (lost with their host, quarantined or retired)`,
      { actorId },
    );
  }
  return {
    actorId,
    teamId,
    kind,
    at: failed?.at ?? record?.record.quarantine?.at ?? d.clock.now(),
    spawnedAt: spawned?.at ?? record?.record.spawnedAt,
    record,
    checkpoint,
  };
}

/** The context to give, and where it came from (see the module's comment). */
async function contextOf(
  d: RunbookDeps,
  f: Failed,
  mode: TransferRequest["context_transfer"],
): Promise<{ context: InheritedContext; source: Row["source"]; snapshot: Row["snapshot"] }> {
  let out: { context: InheritedContext; source: Row["source"]; snapshot: Row["snapshot"] };
  if (f.checkpoint) {
    out = {
      context: f.checkpoint,
      source: "checkpoint",
      snapshot: f.checkpoint.snapshot === undefined ? "none" : "checkpoint",
    };
  } else if (f.record?.live) {
    const { history, snapshot } = f.record.live;
    out = {
      context: { fromActorId: f.actorId, history, ...(snapshot === undefined ? {} : { snapshot }) },
      source: "live",
      snapshot: snapshot === undefined ? "none" : "live",
    };
  } else {
    const { events } = await readEventLog(d.nc, {
      filter: subjects.eventsOf("task"),
      sinceMs: f.spawnedAt ?? f.at - HISTORY_LOOKBACK_MS,
      untilMs: f.at,
      max: MAX_HISTORY_EVENTS,
    });
    out = {
      context: { fromActorId: f.actorId, history: rebuildHistory(events, f.actorId) },
      source: "rebuilt",
      snapshot: "none",
    };
  }
  if (mode === "history_only" && out.context.snapshot !== undefined) {
    const { snapshot: _left, ...context } = out.context;
    out = { ...out, context, snapshot: "none" };
  }
  return out;
}

/** Reads the replacement back from its host and checks it holds what was given. */
async function validate(
  d: RunbookDeps,
  to: string,
  context: InheritedContext,
  level: "basic" | "comprehensive",
): Promise<{ ok: boolean; reason?: string }> {
  const { record, live } = await ask(d, "sup.debug.actor", { actorId: to });
  if (!live) return { ok: false, reason: `its host ${record.hostId} did not answer for it` };
  const problems: string[] = [];
  const missing = context.history.filter((id) => !live.history.includes(id));
  if (missing.length > 0) {
    problems.push(
      `${missing.length} of the ${context.history.length} tasks given are not in its history (${missing.slice(0, 5).join(", ")})`,
    );
  }
  if (level === "comprehensive") {
    const inherited = live.inherited ?? null;
    if (inherited?.fromActorId !== context.fromActorId) {
      problems.push(`it inherited from ${inherited?.fromActorId ?? "nobody"}, not ${context.fromActorId}`);
    } else if (inherited.snapshot !== (context.snapshot !== undefined)) {
      problems.push(
        inherited.snapshot ? "it holds a snapshot none was given for" : "the snapshot given did not arrive",
      );
    }
  }
  return problems.length > 0 ? { ok: false, reason: problems.join("; ") } : { ok: true };
}

export async function transferContext(d: RunbookDeps, req: TransferRequest): Promise<TransferReply> {
  const began = d.clock.now();
  // Every failed agent and named replacement first: a refusal transfers nothing.
  const failed: Failed[] = [];
  for (const id of req.failed_agents) failed.push(await identify(d, id));
  const named = req.replacement_agents ?? [];
  for (const [i, id] of named.entries()) {
    const f = failed[i] as Failed;
    const { record } = await ask(d, "sup.debug.actor", { actorId: id });
    if (record.teamId !== f.teamId || record.kindName !== f.kind) {
      throw new ProtocolError(
        `replacement_agents.${i}: ${id} is of kind "${record.kindName}" of team ${record.teamId}, but ${f.actorId} was of kind "${f.kind}" of team ${f.teamId}: name an actor of that kind, or leave replacement_agents out for the ones placed in their stead`,
        { field: `replacement_agents.${i}`, actorId: id, kind: record.kindName, wanted: f.kind },
      );
    }
  }
  const rows: Row[] = [];
  for (const [i, f] of failed.entries()) {
    let base: Pick<Row, "from" | "source" | "history" | "snapshot"> = {
      from: f.actorId,
      source: "rebuilt",
      history: 0,
      snapshot: "none",
    };
    try {
      const { context, source, snapshot } = await contextOf(d, f, req.context_transfer);
      base = { from: f.actorId, source, history: context.history.length, snapshot };
      const r = await ask(d, "sup.actor.transfer", {
        fromActorId: f.actorId,
        ...(named[i] ? { toActorId: named[i] } : {}),
        teamId: f.teamId,
        kind: f.kind,
        lostAt: Math.floor(f.at),
        context,
        keep: req.rollback_capability === "enabled",
      });
      const v = req.validation === "none" ? null : await validate(d, r.toActorId, context, req.validation);
      rows.push({
        ...base,
        to: r.toActorId,
        hostId: r.hostId,
        created: r.created,
        kept: r.kept,
        validated: v?.ok ?? null,
        ...(v?.reason ? { reason: v.reason } : {}),
      });
    } catch (err) {
      const e = toCadreError(err);
      rows.push({
        ...base,
        to: named[i] ?? null,
        hostId: null,
        created: false,
        kept: false,
        validated: req.validation === "none" ? null : false,
        error: { code: e.code, message: e.message.slice(0, 500) },
      });
    }
  }
  const validated = rows.filter((r) => r.validated === true).length;
  const percent = Math.round((validated / rows.length) * 1000) / 10;
  const ms = d.clock.now() - began;
  if (req.validation !== "none") {
    d.emit({
      type: "RECOVERY_VALIDATION_COMPLETED",
      category: "coordination",
      scope: validated === rows.length ? "success" : "partial",
      data: { agents: rows.length, validated, context_transfer_percent: percent, recovery_time_ms: ms },
    });
  }
  return { ms, agents: rows, validated, percent };
}
