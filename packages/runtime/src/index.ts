export type { ResultSigner } from "./authenticity.js";
export {
  heldProof,
  resultDigest,
  resultProof,
  resultSigner,
  sameProof,
  signedResultMessageId,
  taskToken,
  taskTokenKey,
  verifyResult,
} from "./authenticity.js";
export type { BackoffOptions, RetryOptions } from "./backoff.js";
export { backoffDelay, isRetryable, retry } from "./backoff.js";
export type {
  Breaker,
  BreakerName,
  BreakerOptions,
  BreakerState,
  BreakerTransition,
  CircuitEvent,
  FailureRateRule,
} from "./breaker.js";
export { Breakers, CircuitOpenError, createBreaker, isDependencyFailure } from "./breaker.js";
export { BUDGET_MARKS, type BudgetScope, Budgets, type Reservation } from "./budgets.js";
export { CallJournal } from "./call-journal.js";
export type { Clock } from "./clock.js";
export { ManualClock, sleep, systemClock } from "./clock.js";
export type { ConfigSources } from "./config-loader.js";
export { loadConfig, readYamlFile } from "./config-loader.js";
export type { Liveness, LivenessEvent, PhiAccrualOptions } from "./detector.js";
export { HostLiveness, PhiAccrualDetector, phiOf } from "./detector.js";
export type { EmitOptions, EventBusOptions, EventBusStats } from "./event-bus.js";
export { closeBus, EventBus, eventBusFor } from "./event-bus.js";
export { countEvent } from "./event-metrics.js";
export { type EventLog, type ReadEventsOptions, readEventLog, readEvents, type StoredEvent } from "./events.js";
export type {
  HookDefinition,
  HookEvent,
  HookFailureReason,
  HookLogger,
  HookOutcome,
  HookRunnerOptions,
  HookRunReport,
  HookStats,
  HookStatus,
} from "./hooks/index.js";
export {
  HOOK_EVENTS,
  HOOK_FAILURE_WINDOW,
  HOOK_MIN_SAMPLES,
  HookFailedError,
  HookRunner,
  isHookEvent,
} from "./hooks/index.js";
export type { Buckets } from "./infrastructure.js";
export { ensureInfrastructure, openInfrastructure } from "./infrastructure.js";
export type { Logger, ThrottledLog } from "./logger.js";
export { createLogger, REDACT_PATHS, redactUrl, throttledLog } from "./logger.js";
export * from "./metrics.js";
export type { Msg, MsgHdrs, NatsConnection, Subscription } from "./nats.js";
export { connectNats, headers, isTransient, isTransportFailure, PULL_OPTIONS } from "./nats.js";
export type {
  CallOptions,
  LeaseHolderOperationName,
  OperationHandler,
  OperationServerOptions,
  PartitionedOperationName,
  ServiceInfo,
} from "./operations.js";
export { call, discoverServices, OperationServer, PartitionServer, SupervisorClient } from "./operations.js";
export type { OutboxEntry, OutboxOptions, OutboxRecord, ReplayOptions } from "./outbox.js";
export { Outbox, OutboxCorruptError, OutboxFullError } from "./outbox.js";
export type { ServiceProcess, SpawnServiceOptions } from "./process.js";
export { spawnService } from "./process.js";
export type { Rolls } from "./random.js";
export { mulberry32 } from "./random.js";
export {
  compileRedactPatterns,
  configureRedaction,
  isSecretKey,
  MAX_REDACT_CHARS,
  REDACTED,
  redact,
  redactDeep,
  redactPatternProblem,
  redactProperty,
  redactSecret,
} from "./redact.js";
export { buildReport, Reporter } from "./report.js";
export type { InitSecurityOptions, NatsAuth, NatsTls, SecurityFiles } from "./security.js";
export { authenticatorFor, credentialsFromUrls, initSecurity, natsAuthOf, natsTlsBlock } from "./security.js";
export { KeyedSerial } from "./serial.js";
export type { RunningService, ServiceDefinition } from "./service.js";
export { READY_MESSAGE, runService } from "./service.js";
export type { ShellOutcome, ShellRun } from "./shell.js";
export { describeCommand, describeExit, parseShellOutput, runShell } from "./shell.js";
export type { CorruptionReport, StateStoreOptions, Versioned } from "./state-store.js";
export { bucketOf, listKeys, StateStore, safeJson, verifyChecksum } from "./state-store.js";
export * from "./tracing.js";
export type {
  Checkpoint,
  Committed,
  Envelope,
  LogEntry,
  RollbackReport,
  TxnFaultPoint,
  TxnRecord,
  TxStoreOptions,
  Writes,
} from "./transactions.js";
export { readLog, TxnRecordSchema, TxStore } from "./transactions.js";
export type { WorkflowState } from "./workflow-state.js";
export { controlKey, frozenKey, isFrozen, StateValueSchema, stateKey, workflowState } from "./workflow-state.js";
