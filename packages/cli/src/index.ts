export type { Stack, StackOptions } from "./stack.js";
export { natsReachable, startStack } from "./stack.js";
export { summaryJson, summaryText } from "./summary.js";
export type { SubmitOptions } from "./workflow.js";
export { submitWorkflow, waitForWorkflow } from "./workflow.js";
