export type { PlacementHost } from "./placement.js";
export { placeReplicas } from "./placement.js";
export type { SupervisorOptions } from "./supervisor.js";
export { Supervisor } from "./supervisor.js";
