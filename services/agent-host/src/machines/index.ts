export type { ActiveTask, ActorInput, AgentOutcome, ReportInput } from "./agent.js";
export { agentMachine, failedOutcome, timeoutOutcome } from "./agent.js";
export { directorMachine } from "./director.js";
