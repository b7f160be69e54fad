export type { MonitorOptions } from "./monitor.js";
export { Monitor } from "./monitor.js";
