export type { EncodeOptions, Message } from "./codec.js";
export { decode, decodeAs, encode, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./codec.js";
export type { Config, ConfigInput, OrchestrationLimits } from "./config.js";
export { ConfigSchema, HOOK_EVENTS, OrchestrationLimitsSchema, parseConfig } from "./config.js";
export type { WireError } from "./errors.js";
export {
  BehaviourFailedError,
  BudgetExceededError,
  CadreError,
  CircularDelegationError,
  ConcurrentModificationError,
  DeadlockVictimError,
  DelegationDepthExceededError,
  errorClasses,
  formatIssues,
  fromWire,
  HookFailedError,
  InternalError,
  InvalidAgentResponseError,
  InvalidConfigError,
  NotFoundError,
  PermissionDeniedError,
  ProtocolError,
  ProtocolVersionMismatchError,
  ResourceExhaustedError,
  StateLimitError,
  ThrottledError,
  TimeoutError,
  toCadreError,
  UnavailableError,
} from "./errors.js";
export { formatEventLine, parseEventLine } from "./event-line.js";
export type {
  CriticalEventType,
  EventCategory,
  EventData,
  EventSpec,
  EventType,
  ParseFailure,
  TypedEvent,
} from "./events.js";
export {
  CRITICAL_EVENTS,
  EVENT_TYPES,
  eventSchema,
  events,
  isEventType,
  isParseFailure,
  parseEvent,
} from "./events.js";
export {
  childTaskId,
  newIncarnation,
  newWorkflowId,
  randomId,
  resultMessageId,
  rootTaskId,
  taskMessageId,
} from "./ids.js";
export type { Amount, Budget, JournalEntry, Ledger, RateBucket, ToolCall, Usage } from "./llm.js";
export {
  AmountSchema,
  addUsage,
  BudgetSchema,
  JournalEntrySchema,
  LedgerSchema,
  llmKeys,
  RateBucketSchema,
  ToolCallSchema,
  UsageSchema,
  ZERO_USAGE,
} from "./llm.js";
export type {
  ActorRecord,
  ActorSpec,
  CadreEvent,
  ChildNotice,
  Conflict,
  Heartbeat,
  HeldTask,
  Holding,
  HostRecord,
  InheritedContext,
  LeaseRecord,
  QuarantineReason,
  ServiceReport,
  SubtaskSpec,
  TaskCounts,
  TaskEnvelope,
  TaskRecord,
  TaskResult,
  WireErrorBody,
  WorkflowRecord,
} from "./messages.js";
export {
  ActorControlReplySchema,
  ActorControlRequestSchema,
  ActorRecordSchema,
  ActorSpecSchema,
  AfterSchema,
  ChildNoticeSchema,
  ConflictSchema,
  DelegateReplySchema,
  DelegateRequestSchema,
  ErrorReplySchema,
  EventSchema,
  HeartbeatSchema,
  HeldTaskSchema,
  HoldingSchema,
  HostRecordSchema,
  InheritedContextSchema,
  LeaseRecordSchema,
  MAX_AFTER,
  QuarantineReplySchema,
  QuarantineRequestSchema,
  ServiceReportSchema,
  SpawnReplySchema,
  SpawnRequestSchema,
  StatusRequestSchema,
  SubmitReplySchema,
  SubmitRequestSchema,
  SubtaskSpecSchema,
  TaskCountsSchema,
  TaskEnvelopeSchema,
  TaskRecordSchema,
  TaskResultSchema,
  WireErrorSchema,
  WorkflowRecordSchema,
} from "./messages.js";
export type {
  ClusterMetricName,
  MetricAction,
  MetricThreshold,
  MonitorThresholds,
  MonitorThresholdsInput,
} from "./monitoring.js";
export { METRIC_ACTIONS, METRIC_NAMES, MonitorThresholdsSchema } from "./monitoring.js";
export * from "./operations.js";
export * from "./partitions.js";
export type { Identity, Permissions } from "./permissions.js";
export { authorizationConfig, permissionsFor } from "./permissions.js";
export { checkDelegation } from "./policy.js";
export * from "./runbook.js";
export * from "./runbook-data.js";
export * from "./runbook-dependencies.js";
export * from "./runbook-performance.js";
export * from "./runbook-recovery.js";
export {
  BUCKETS,
  HEADERS,
  isToken,
  MAX_TOKEN_LENGTH,
  resultsConsumer,
  STREAMS,
  SUBJECT_PREFIX,
  subjects,
  taskConsumer,
  token,
} from "./subjects.js";
export type { Behaviour, CommandBehaviour, Kind, LlmBehaviour, ScriptBehaviour, Team, TeamInput } from "./team.js";
export {
  BehaviourSchema,
  CommandBehaviourSchema,
  compileOutputSchema,
  DelegationSpecSchema,
  KindSchema,
  NameSchema,
  parseTeam,
  ScriptBehaviourSchema,
  TeamSchema,
  teamId,
  validateOutput,
} from "./team.js";
