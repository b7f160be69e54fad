export type { EncodeOptions, Message } from "./codec.js";
export { decode, decodeAs, encode, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./codec.js";
export type { Config, ConfigInput, OrchestrationLimits } from "./config.js";
export { ConfigSchema, OrchestrationLimitsSchema, parseConfig } from "./config.js";
export type { WireError } from "./errors.js";
export {
  BehaviourFailedError,
  CadreError,
  CircularDelegationError,
  ConcurrentModificationError,
  DelegationDepthExceededError,
  errorClasses,
  formatIssues,
  fromWire,
  InternalError,
  InvalidAgentResponseError,
  InvalidConfigError,
  NotFoundError,
  ProtocolError,
  ProtocolVersionMismatchError,
  ResourceExhaustedError,
  TimeoutError,
  toCadreError,
  UnavailableError,
} from "./errors.js";
export { formatEventLine, parseEventLine } from "./event-line.js";
export { childTaskId, newIncarnation, newWorkflowId, randomId, resultMessageId, rootTaskId } from "./ids.js";
export type {
  ActorRecord,
  ActorSpec,
  Body,
  BodyInput,
  CadreEvent,
  ChildNotice,
  Heartbeat,
  HostRecord,
  LeaseRecord,
  MessageTable,
  MessageType,
  SubtaskSpec,
  TaskCounts,
  TaskEnvelope,
  TaskRecord,
  TaskResult,
  WireErrorBody,
  WorkflowRecord,
} from "./messages.js";
export {
  ActorRecordSchema,
  ActorSpecSchema,
  ChildNoticeSchema,
  DelegateReplySchema,
  DelegateRequestSchema,
  ErrorReplySchema,
  EventSchema,
  HeartbeatSchema,
  HostRecordSchema,
  LeaseRecordSchema,
  messages,
  SpawnReplySchema,
  SpawnRequestSchema,
  StatusReplySchema,
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
export { checkDelegation } from "./policy.js";
export type { SupervisorOperation } from "./subjects.js";
export {
  BUCKETS,
  HEADERS,
  isToken,
  RESULTS_CONSUMER,
  STREAMS,
  SUBJECT_PREFIX,
  SUPERVISOR_QUEUE,
  subjects,
  taskConsumer,
  token,
} from "./subjects.js";
export type { Behaviour, CommandBehaviour, Kind, ScriptBehaviour, Team, TeamInput } from "./team.js";
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
