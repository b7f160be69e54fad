export type { Behaviour, BehaviourContext, ChildOutcome } from "./behaviours/index.js";
export { createBehaviour } from "./behaviours/index.js";
export type { AgentHostOptions } from "./host.js";
export { AgentHost } from "./host.js";
export { agentMachine, directorMachine } from "./machines/index.js";
