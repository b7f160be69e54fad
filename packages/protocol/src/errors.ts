/**
 * Cadre's typed errors. Every error that can cross a process boundary is a {@link CadreError}
 * with a stable string `code`, a `retryable` flag and structured `data`. Errors travel as
 * {@link WireError} (`{ code, message, data, retryable }`) and are rebuilt into their class by
 * {@link fromWire}; an unknown code becomes an {@link InternalError} that keeps the sender's code
 * and `retryable`. Every class is registered with how to rebuild it ({@link CadreError.register}):
 * the classes here register below, classes defined in other packages (the runtime's
 * `CircuitOpenError`, `OutboxFullError`, `OutboxCorruptError`) beside their definition. Match on
 * `code` across package boundaries, not on `instanceof` (a workspace can load two copies of a
 * package).
 */

/** The shape of an error on the wire. */
export interface WireError {
  code: string;
  message: string;
  data?: Record<string, unknown> | undefined;
  /** The sender's judgement: whether asking again can succeed. Absent from older senders. */
  retryable?: boolean | undefined;
}

/** An error class: a subclass of {@link CadreError} with its stable static `code`. */
export type ErrorClass = (abstract new (...args: never[]) => CadreError) & { readonly code: string };

/** How one class is rebuilt from its wire form. */
export type Rebuild = (w: WireError) => CadreError;

/** Every registered class by code, with its rebuild. */
const registry = new Map<string, { cls: ErrorClass; rebuild: Rebuild }>();

/** Base class of every Cadre error. */
export class CadreError extends Error {
  /** Stable machine-readable code, e.g. `CIRCULAR_DELEGATION`. */
  readonly code: string;
  /** Whether trying the same operation again may succeed. Retry and breaker decisions read it. */
  readonly retryable: boolean;
  /** Structured fields (a chain, a limit and a count, a field path...). */
  readonly data: Record<string, unknown>;

  constructor(
    code: string,
    message: string,
    opts: { retryable?: boolean; data?: Record<string, unknown> } & ErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.data = opts.data ?? {};
  }

  /** The error as it travels on the wire. */
  toWire(): WireError {
    return { code: this.code, message: this.message, data: this.data, retryable: this.retryable };
  }

  /**
   * Registers a class so {@link fromWire} rebuilds it from its code. Every subclass must be
   * registered where it is defined; the round-trip tests enumerate {@link CadreError.registered}.
   * A second class under a code already taken (by a class of another name) is a programming
   * error; the same class registered again (a second copy of its package) replaces the first.
   */
  static register<C extends ErrorClass>(cls: C, rebuild: (w: WireError) => InstanceType<C>): C {
    const taken = registry.get(cls.code);
    if (taken && taken.cls.name !== cls.name) {
      throw new TypeError(`error code ${cls.code} of ${cls.name} is already used by ${taken.cls.name}`);
    }
    registry.set(cls.code, { cls, rebuild });
    return cls;
  }

  /** Every registered class, in registration order. */
  static registered(): ErrorClass[] {
    return [...registry.values()].map((r) => r.cls);
  }
}

const chainText = (chain: readonly string[]): string => chain.join(" > ");

/** A frame could not be decoded: garbage, truncated, oversized, unknown type or bad fields. */
export class ProtocolError extends CadreError {
  static readonly code = "PROTOCOL_ERROR";
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ProtocolError.code, message, { data, ...options });
  }
}

/** The peer speaks another protocol version. */
export class ProtocolVersionMismatchError extends CadreError {
  static readonly code = "PROTOCOL_VERSION_MISMATCH";
  constructor(
    readonly expected: number,
    readonly received: unknown,
  ) {
    super(
      ProtocolVersionMismatchError.code,
      `protocol version ${String(received)} is not supported (expected ${expected}); run the same Cadre version on every service`,
      { data: { expected, received } },
    );
  }
}

/** A compare-and-set on state lost against another writer. Retry with the fresh revision. */
export class ConcurrentModificationError extends CadreError {
  static readonly code = "CONCURRENT_MODIFICATION";
  constructor(key: string, expectedRevision: number, options?: ErrorOptions) {
    super(
      ConcurrentModificationError.code,
      `state key "${key}" changed since revision ${expectedRevision}; read it again and retry`,
      { retryable: true, data: { key, expectedRevision }, ...options },
    );
  }
}

/**
 * A state write was refused because it would pass `max_state_size_mb` (the state bucket is
 * full) or the size NATS accepts for one message. Waiting does not help: the session's state has
 * to expire or the limit be raised.
 */
export class StateLimitError extends CadreError {
  static readonly code = "STATE_LIMIT_EXCEEDED";
  constructor(bucket: string, key: string, limit: string, options?: ErrorOptions) {
    super(
      StateLimitError.code,
      `state write of "${key}" refused: ${limit} in bucket ${bucket}; raise orchestration_limits.max_state_size_mb or store less`,
      { data: { bucket, key, limit }, ...options },
    );
  }
}

/** A delegation would name an agent kind that is already in its chain. */
export class CircularDelegationError extends CadreError {
  static readonly code = "CIRCULAR_DELEGATION";
  readonly chain: string[];
  constructor(chain: string[]) {
    super(
      CircularDelegationError.code,
      `delegation to "${chain.at(-1)}" closes a cycle (chain: ${chainText(chain)}); change the team so no kind delegates back to one of its delegators`,
      { data: { chain } },
    );
    this.chain = chain;
  }
}

/** A delegation would go deeper than `max_delegation_depth`. */
export class DelegationDepthExceededError extends CadreError {
  static readonly code = "DELEGATION_DEPTH_EXCEEDED";
  readonly chain: string[];
  constructor(chain: string[], depth: number, limit: number) {
    super(
      DelegationDepthExceededError.code,
      `delegation depth ${depth} exceeds max_delegation_depth ${limit} (chain: ${chainText(chain)}); flatten the team or raise the limit`,
      { data: { chain, depth, limit } },
    );
    this.chain = chain;
  }
}

/** A quota was reached. */
export class ResourceExhaustedError extends CadreError {
  static readonly code = "RESOURCE_EXHAUSTED";
  /** `retryable: false` when waiting cannot help (a request larger than its limit allows). */
  constructor(resource: string, limit: number, count: number, opts: { retryable?: boolean; fix?: string } = {}) {
    super(
      ResourceExhaustedError.code,
      `${resource} is at its limit (${count} of ${limit}); ${opts.fix ?? "wait for work to finish or raise the limit"}`,
      // Whether to retry travels in the data: the caller must not retry a refusal that waiting cannot lift.
      { retryable: opts.retryable ?? true, data: { resource, limit, count, retryable: opts.retryable ?? true } },
    );
  }
}

/** An agent's output does not match its kind's output schema. */
export class InvalidAgentResponseError extends CadreError {
  static readonly code = "INVALID_AGENT_RESPONSE";
  constructor(kind: string, issues: { path: string; message: string }[]) {
    super(
      InvalidAgentResponseError.code,
      `output of kind "${kind}" does not match its schema: ${issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`,
      { retryable: true, data: { kind, issues } },
    );
  }
}

/** A behaviour (script, command) failed while working on a task. */
export class BehaviourFailedError extends CadreError {
  static readonly code = "BEHAVIOUR_FAILED";
  /** Retryable unless `options.retryable` is false (trying again cannot help: a refused API key). */
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions & { retryable?: boolean }) {
    super(BehaviourFailedError.code, message, { data, ...options, retryable: options?.retryable ?? true });
  }
}

/**
 * A model call was not made because it could exceed a budget (a workflow's or a kind's): the
 * call's worst case (its prompt's size plus its `maxTokens`, and the cost of those at the
 * provider's prices), on top of what was spent and what calls in flight have reserved, would
 * pass the limit. Not retryable: the budget does not grow by waiting.
 */
export class BudgetExceededError extends CadreError {
  static readonly code = "BUDGET_EXCEEDED";
  /** The same as `data`, typed. */
  readonly details: {
    /** `workflow <id>` or `kind <name> of workflow <id>`. */
    budget: string;
    /** What ran out first: `tokens`, `costUsd` or `requests`. */
    dimension: string;
    limit: number;
    spent: number;
    /** Held by calls in flight. */
    reserved: number;
    /** The refused call's worst case. */
    requested: number;
  };
  constructor(data: BudgetExceededError["details"]) {
    super(
      BudgetExceededError.code,
      `the ${data.budget} budget allows ${data.limit} ${data.dimension}; ${data.spent} spent and ${data.reserved} held by calls in flight leave less than the ${data.requested} this call may use; raise the budget (team file or submit) or lower the kind's maxTokens`,
      { retryable: false, data },
    );
    this.details = data;
  }
}

/** Work did not finish within its time limit. */
export class TimeoutError extends CadreError {
  static readonly code = "TIMEOUT";
  constructor(what: string, timeoutMs: number) {
    super(TimeoutError.code, `${what} did not finish within ${timeoutMs} ms`, {
      retryable: true,
      data: { what, timeoutMs },
    });
  }
}

/**
 * A task waiting for a resource was chosen to break a deadlock (a cycle in the wait-for graph):
 * what it held was released and its attempt fails, to be retried after a backoff.
 */
export class DeadlockVictimError extends CadreError {
  static readonly code = "DEADLOCK_VICTIM";
  constructor(taskId: string, cycle: string[], resource: string) {
    super(
      DeadlockVictimError.code,
      `task ${taskId} was chosen to break a deadlock (${[...cycle, cycle[0]].join(" waits for ")}) while waiting for ${resource}; it released what it held and will be retried`,
      { retryable: true, data: { taskId, cycle, resource } },
    );
  }
}

/**
 * A critical hook failed, so the action it guards must not go ahead. Retryable unless the hook
 * itself threw: a throwing `beforeTask` hook is usually a veto, and a veto stays a veto.
 */
export class HookFailedError extends CadreError {
  static readonly code = "HOOK_FAILED";
  constructor(
    hook: string,
    event: string,
    reason: "error" | "timeout" | "bypassed",
    message: string,
    options?: ErrorOptions,
  ) {
    const what =
      reason === "bypassed" ? "is bypassed after failing too often" : reason === "timeout" ? "timed out" : "failed";
    super(
      HookFailedError.code,
      `critical hook "${hook}" for ${event} ${what}: ${message}; fix the hook or mark it non-critical`,
      { retryable: reason !== "error", data: { hook, event, reason, message }, ...options },
    );
  }
}

/** A configuration value or a team file is wrong. The message names the field. */
export class InvalidConfigError extends CadreError {
  static readonly code = "INVALID_CONFIG";
  constructor(source: string, issues: { path: string; message: string }[]) {
    super(
      InvalidConfigError.code,
      `${source} is invalid: ${issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`,
      { data: { source, issues } },
    );
  }
}

/** A request names something that does not exist (a kind, a workflow, a task). */
export class NotFoundError extends CadreError {
  static readonly code = "NOT_FOUND";
  constructor(what: string, id: string) {
    super(NotFoundError.code, `${what} "${id}" does not exist`, { data: { what, id } });
  }
}

/**
 * The cluster holds back new work below a priority for a while (the monitor's `throttle`
 * action, or an operator's): retryable, after `untilMs`, or now with a higher priority.
 */
export class ThrottledError extends CadreError {
  static readonly code = "THROTTLED";
  constructor(belowPriority: number, untilMs: number, reason: string) {
    super(
      ThrottledError.code,
      `the cluster refuses new workflows below priority ${belowPriority} until ${new Date(untilMs).toISOString()} (${reason}); submit again then, or with a priority of at least ${belowPriority}`,
      { retryable: true, data: { belowPriority, untilMs, reason } },
    );
  }
}

/** No service answered in time, or none is running. */
export class UnavailableError extends CadreError {
  static readonly code = "UNAVAILABLE";
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(UnavailableError.code, message, { retryable: true, data, ...options });
  }
}

/**
 * The sender's NATS identity may not do this: the server refused its credentials, or the
 * subject is outside its role's permissions. Not retryable: asking again changes nothing.
 */
export class PermissionDeniedError extends CadreError {
  static readonly code = "PERMISSION_DENIED";
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(PermissionDeniedError.code, message, { retryable: false, data, ...options });
  }
}

/**
 * Anything that is not one of the errors above; also what an unknown wire code becomes (then
 * `data.originalCode` is the sender's code and `retryable` the sender's judgement).
 */
export class InternalError extends CadreError {
  static readonly code = "INTERNAL";
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions & { retryable?: boolean }) {
    super(InternalError.code, message, { data, ...options });
  }
}

const str = (v: unknown, d = ""): string => (typeof v === "string" ? v : d);
const num = (v: unknown): number => (typeof v === "number" ? v : Number.NaN);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
const issueList = (v: unknown): { path: string; message: string }[] =>
  Array.isArray(v)
    ? v.map((i) => ({ path: str((i as { path?: unknown }).path), message: str((i as { message?: unknown }).message) }))
    : [];

/** How each class here is rebuilt from the wire. The message is kept as sent. */
const rebuilders: Record<string, Rebuild> = {
  [ProtocolError.code]: (w) => new ProtocolError(w.message, w.data),
  [ProtocolVersionMismatchError.code]: (w) => new ProtocolVersionMismatchError(num(w.data?.expected), w.data?.received),
  [ConcurrentModificationError.code]: (w) =>
    new ConcurrentModificationError(str(w.data?.key), num(w.data?.expectedRevision)),
  [StateLimitError.code]: (w) => new StateLimitError(str(w.data?.bucket), str(w.data?.key), str(w.data?.limit)),
  [CircularDelegationError.code]: (w) => new CircularDelegationError(strs(w.data?.chain)),
  [DelegationDepthExceededError.code]: (w) =>
    new DelegationDepthExceededError(strs(w.data?.chain), num(w.data?.depth), num(w.data?.limit)),
  [ResourceExhaustedError.code]: (w) =>
    new ResourceExhaustedError(str(w.data?.resource), num(w.data?.limit), num(w.data?.count), {
      retryable: w.data?.retryable !== false,
    }),
  [InvalidAgentResponseError.code]: (w) => new InvalidAgentResponseError(str(w.data?.kind), issueList(w.data?.issues)),
  [BehaviourFailedError.code]: (w) => new BehaviourFailedError(w.message, w.data, { retryable: w.retryable !== false }),
  [TimeoutError.code]: (w) => new TimeoutError(str(w.data?.what), num(w.data?.timeoutMs)),
  [BudgetExceededError.code]: (w) =>
    new BudgetExceededError({
      budget: str(w.data?.budget),
      dimension: str(w.data?.dimension),
      limit: num(w.data?.limit),
      spent: num(w.data?.spent),
      reserved: num(w.data?.reserved),
      requested: num(w.data?.requested),
    }),
  [HookFailedError.code]: (w) => {
    const reason = str(w.data?.reason);
    return new HookFailedError(
      str(w.data?.hook),
      str(w.data?.event),
      reason === "timeout" || reason === "bypassed" ? reason : "error",
      str(w.data?.message),
    );
  },
  [DeadlockVictimError.code]: (w) =>
    new DeadlockVictimError(str(w.data?.taskId), strs(w.data?.cycle), str(w.data?.resource)),
  [InvalidConfigError.code]: (w) => new InvalidConfigError(str(w.data?.source), issueList(w.data?.issues)),
  [NotFoundError.code]: (w) => new NotFoundError(str(w.data?.what), str(w.data?.id)),
  [UnavailableError.code]: (w) => new UnavailableError(w.message, w.data),
  [ThrottledError.code]: (w) =>
    new ThrottledError(num(w.data?.belowPriority), num(w.data?.untilMs), str(w.data?.reason)),
  [PermissionDeniedError.code]: (w) => new PermissionDeniedError(w.message, w.data),
  [InternalError.code]: (w) => new InternalError(w.message, w.data),
};

/**
 * Every error class of this package, for tests and documentation. {@link CadreError.registered}
 * lists these and the classes other loaded packages registered.
 */
export const errorClasses = [
  ProtocolError,
  ProtocolVersionMismatchError,
  ConcurrentModificationError,
  StateLimitError,
  CircularDelegationError,
  DelegationDepthExceededError,
  ResourceExhaustedError,
  InvalidAgentResponseError,
  BehaviourFailedError,
  BudgetExceededError,
  TimeoutError,
  DeadlockVictimError,
  HookFailedError,
  InvalidConfigError,
  NotFoundError,
  ThrottledError,
  UnavailableError,
  PermissionDeniedError,
  InternalError,
] as const;

for (const cls of errorClasses) {
  const rebuild = rebuilders[cls.code];
  if (!rebuild) throw new TypeError(`error class ${cls.name} has no rebuild`);
  CadreError.register(cls, rebuild as (w: WireError) => InstanceType<typeof cls>);
}

/**
 * Rebuilds a typed error from its wire form. The original message is kept (it was written for
 * the operator where the error happened), and so is the sender's `retryable` when it sent one
 * (it may run a newer version that judges otherwise). An unknown code becomes an InternalError
 * that keeps the message, the data, the code (as `data.originalCode`) and `retryable`.
 */
export function fromWire(w: WireError): CadreError {
  const known = registry.get(w.code);
  if (!known) {
    return new InternalError(w.message, { ...w.data, originalCode: w.code }, { retryable: w.retryable ?? false });
  }
  const err = known.rebuild(w);
  if (err.message !== w.message) Object.defineProperty(err, "message", { value: w.message });
  if (w.retryable !== undefined && err.retryable !== w.retryable) {
    Object.defineProperty(err, "retryable", { value: w.retryable });
  }
  return err;
}

/** Turns anything thrown into a CadreError (unknown errors become InternalError with the cause). */
export function toCadreError(err: unknown): CadreError {
  if (err instanceof CadreError) return err;
  if (err && typeof err === "object" && "code" in err && "message" in err && typeof err.code === "string") {
    const maybe = err as { code: string; message: string; data?: unknown; retryable?: unknown };
    if (registry.has(maybe.code)) {
      return fromWire({
        code: maybe.code,
        message: String(maybe.message),
        data: (maybe.data as Record<string, unknown>) ?? {},
        ...(typeof maybe.retryable === "boolean" ? { retryable: maybe.retryable } : {}),
      });
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, {}, { cause: err });
}

/** Formats zod issues as `{ path, message }` with dotted paths, for error data. */
export function formatIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): { path: string; message: string }[] {
  return issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
}
