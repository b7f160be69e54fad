/** The actor state machines. Effects are provided by the host with `machine.provide`. */

export type { AgentContext, AgentEvent } from "./agent.js";
export { agentMachine } from "./agent.js";
export type { AggregateInput, DelegateInput, DirectorContext, DirectorEvent } from "./director.js";
export { childFailure, directorMachine } from "./director.js";
export type { ActiveTask, ActorMachineInput, AgentOutcome, ReportInput, StopEvent, TaskEvent } from "./shared.js";
export { isRetryableError } from "./shared.js";
