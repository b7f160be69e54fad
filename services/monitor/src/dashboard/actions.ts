/**
 * The dashboard's operator actions (`POST /dashboard/api/action`): pause, resume, cancel, freeze
 * or unfreeze a workflow, release or retire a quarantined actor. Off unless
 * `monitor.dashboard.actions.enabled`. A request must present the bearer token (from the
 * monitor's environment), be JSON and be small; it is then sent to the supervisor over a second
 * NATS connection with the operator's identity, never the monitor's: with security on, the
 * monitor's role may not cancel or release (protocol operations.ts), and a dashboard that could
 * would make the monitor's identity an operator's.
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  CancelRequestSchema,
  type Config,
  InvalidConfigError,
  PauseRequestSchema,
  QuarantineRequestSchema,
  toCadreError,
} from "@cadre/protocol";
import { call, connectNats, type Logger, type NatsConnection } from "@cadre/runtime";
import { z } from "zod";
import type { ActionHandler } from "./server.js";

/** A request body longer than this is refused (413) and not read further. */
export const MAX_ACTION_BODY_BYTES = 4 * 1024;
/** The reason a cancel from the dashboard records when the operator gives none. */
export const DASHBOARD_CANCEL_REASON = "cancelled from the dashboard";

/** The operations the dashboard offers. */
export const ACTION_OPS = ["pause", "resume", "cancel", "freeze", "unfreeze", "release", "retire"] as const;
/** One of {@link ACTION_OPS}. */
export type ActionOp = (typeof ACTION_OPS)[number];

const WORKFLOW_OPS: readonly ActionOp[] = ["pause", "resume", "cancel", "freeze", "unfreeze"];
// The supervisor's own request schemas say what an id and a reason are.
const WorkflowId = PauseRequestSchema.shape.workflowId;
const ActorId = QuarantineRequestSchema.shape.actorId.unwrap();
const Reason = CancelRequestSchema.shape.reason.unwrap();

/**
 * The body: `op` and the one target it takes (`workflowId`, or `actorId` for release and
 * retire), plus `reason` for cancel. A field the op does not take is refused rather than
 * ignored: it means the browser meant something else.
 */
export const ActionRequestSchema = z
  .object({
    op: z.enum(ACTION_OPS),
    workflowId: WorkflowId.optional(),
    actorId: ActorId.optional(),
    reason: Reason.optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    const target = WORKFLOW_OPS.includes(b.op) ? "workflowId" : "actorId";
    if (b[target] === undefined) ctx.addIssue({ code: "custom", path: [target], message: `${b.op} needs ${target}` });
    for (const field of ["workflowId", "actorId", "reason"] as const) {
      const takes = field === target || (field === "reason" && b.op === "cancel");
      if (!takes && b[field] !== undefined) {
        ctx.addIssue({ code: "custom", path: [field], message: `${b.op} takes no ${field}` });
      }
    }
  });
/** A parsed action request. */
export type ActionRequest = z.infer<typeof ActionRequestSchema>;

/** HTTP statuses of the error codes an operation may answer with; any other code is 500. */
const STATUS_OF_CODE: Record<string, number> = {
  NOT_FOUND: 404,
  PROTOCOL_ERROR: 400,
  // The supervisor's answer for a control on a workflow that is no longer running.
  INVALID_CONFIG: 409,
  PERMISSION_DENIED: 403,
  UNAVAILABLE: 503,
  TIMEOUT: 503,
};

/** Options of {@link OperatorActions}. */
export interface OperatorActionsOptions {
  /** A connection with the operator's identity (never the monitor's own). */
  nc: NatsConnection;
  /** The bearer token a request must present; not empty. */
  token: string;
  /** The requests' sender. */
  sender: string;
  timeoutMs: number;
  logger: Logger;
}

/** Answers `POST /dashboard/api/action`: checks the request, then calls the supervisor as the operator. */
export class OperatorActions implements ActionHandler {
  /** The token's digest: compared in constant time whatever length the presented one has. */
  private readonly digest: Buffer;

  constructor(private readonly opts: OperatorActionsOptions) {
    if (opts.token === "") throw new RangeError("operator actions need a non-empty token");
    this.digest = sha256(opts.token);
  }

  /** Answers one request (its method is POST: server.ts checks that). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req.headers.authorization)) {
      fail(res, 401, "PERMISSION_DENIED", "operator actions need the header authorization: Bearer <token>", {
        "www-authenticate": 'Bearer realm="cadre-dashboard"',
      });
      return;
    }
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") {
      fail(res, 415, "PROTOCOL_ERROR", `send the action as content-type: application/json (got ${type || "none"})`);
      return;
    }
    const raw = await readBody(req, MAX_ACTION_BODY_BYTES);
    if (raw === undefined) {
      // The rest of the body is not read: the connection is closed after the answer.
      fail(res, 413, "PROTOCOL_ERROR", `an action body is at most ${MAX_ACTION_BODY_BYTES} bytes`, {
        connection: "close",
      });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(raw.toString("utf8"));
    } catch (err) {
      fail(res, 400, "PROTOCOL_ERROR", `the body is not JSON (${(err as Error).message})`);
      return;
    }
    const parsed = ActionRequestSchema.safeParse(value);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
      fail(res, 400, "PROTOCOL_ERROR", `not an action (${why}); send {op, workflowId} or {op, actorId}`);
      return;
    }
    const action = parsed.data;
    const target = action.workflowId !== undefined ? { workflowId: action.workflowId } : { actorId: action.actorId };
    const from = req.socket.remoteAddress;
    try {
      const result = await this.run(action);
      this.opts.logger.info({ op: action.op, ...target, from }, `dashboard action: ${action.op}`);
      json(res, 200, { ok: true, op: action.op, result });
    } catch (err) {
      const e = toCadreError(err);
      this.opts.logger.warn({ op: action.op, ...target, from, code: e.code }, `dashboard action refused: ${e.message}`);
      fail(res, STATUS_OF_CODE[e.code] ?? 500, e.code, e.message);
    }
  }

  /** The supervisor operation of an action, over the operator's connection. */
  private run(a: ActionRequest): Promise<unknown> {
    const { nc, sender, timeoutMs } = this.opts;
    const o = { sender, timeoutMs };
    // The schema made sure the op's target is present.
    const workflowId = a.workflowId ?? "";
    const actorId = a.actorId ?? "";
    switch (a.op) {
      case "pause":
        return call(nc, "sup.workflow.pause", { workflowId }, o);
      case "resume":
        return call(nc, "sup.workflow.resume", { workflowId }, o);
      case "cancel":
        return call(nc, "sup.workflow.cancel", { workflowId, reason: a.reason ?? DASHBOARD_CANCEL_REASON }, o);
      case "freeze":
      case "unfreeze":
        return call(nc, "sup.freeze", { workflowId, frozen: a.op === "freeze" }, o);
      case "release":
      case "retire":
        return call(nc, "sup.quarantine", { op: a.op, actorId }, o);
    }
  }

  private authorized(header: string | undefined): boolean {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
    return m?.[1] !== undefined && timingSafeEqual(sha256(m[1]), this.digest);
  }
}

/**
 * The operator actions the configuration asks for, connected: undefined when they are off.
 * Refuses (InvalidConfigError naming what to set) an empty token variable, and missing
 * operator credentials when the monitor itself has credentials (security on).
 */
export async function startOperatorActions(opts: {
  config: Config;
  /** The monitor's id; the connection's name and the requests' sender derive from it. */
  id: string;
  logger: Logger;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
}): Promise<{ handler: OperatorActions; nc: NatsConnection } | undefined> {
  const { config, id, logger } = opts;
  const token = actionsToken(config, opts.env ?? process.env);
  if (token === undefined) return undefined;
  const { credentials } = config.monitor.dashboard.actions;
  const nc = await connectNats(config.natsUrl, `${id}-operator`, logger, { credentials, tls: config.natsTls });
  const handler = new OperatorActions({
    nc,
    token,
    sender: `${id}-dashboard`,
    timeoutMs: config.requestTimeoutMs,
    logger,
  });
  logger.info(
    { tokenEnv: config.monitor.dashboard.actions.tokenEnv, operatorIdentity: credentials !== undefined },
    "dashboard: operator actions on",
  );
  return { handler, nc };
}

/** The token when actions are on and configured right; undefined when they are off. */
export function actionsToken(config: Config, env: NodeJS.ProcessEnv): string | undefined {
  const a = config.monitor.dashboard.actions;
  if (!a.enabled) return undefined;
  const issues: { path: string; message: string }[] = [];
  const token = env[a.tokenEnv] ?? "";
  if (token.trim() === "") {
    issues.push({
      path: "monitor.dashboard.actions.tokenEnv",
      message: `the environment variable ${a.tokenEnv} is empty or not set: set it to a long random secret (e.g. openssl rand -hex 32) in the monitor's environment; the browser presents it as authorization: Bearer <token>`,
    });
  }
  if (config.natsCredentials !== undefined && a.credentials === undefined) {
    issues.push({
      path: "monitor.dashboard.actions.credentials",
      message:
        "the monitor runs with natsCredentials (security on), and its own identity may not cancel, release or retire: set it to the operator's seed or .creds file (cadre security init writes identities/operator.nk)",
    });
  }
  if (issues.length > 0) throw new InvalidConfigError("configuration", issues);
  return token;
}

/**
 * The body, or undefined once it is longer than `limit` (a declared Content-Length over it is
 * refused before anything is read). Reading stops there: the caller answers and closes.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (Number(req.headers["content-length"] ?? 0) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (fn: () => void) => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
      fn();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        done(() => resolve(undefined));
      } else chunks.push(chunk);
    };
    const onEnd = () => done(() => resolve(Buffer.concat(chunks)));
    const onError = (err: Error) => done(() => reject(err));
    const onClose = () => done(() => reject(new Error("the browser closed the request before its body ended")));
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

function fail(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  json(res, status, { error: { code, message } }, headers);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}
