/**
 * The dashboard's style, served as `/dashboard/app.css` (inlined like the page, assets.ts):
 * a grid of views that collapses to one column on a phone, tables that scroll inside their box,
 * and the colours of states and statuses, which the page always pairs with a word or a mark.
 */

/** The style. */
export const DASHBOARD_CSS = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa;
  --queued: #6e7781; --running: #0969da; --completed: #1a7f37; --failed: #cf222e; --cancelled: #9a6700;
  --parked: #8250df; font-family: system-ui, sans-serif; font-size: 15px; color: var(--fg); }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; padding: 0.5rem 1rem;
  background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 1.3rem; }
header p { margin: 0; }
.note, .empty, .legend { color: var(--muted); font-size: 0.85rem; }
.empty { margin: 0.25rem 0; }
.muted { color: var(--muted); }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
nav ul { display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; list-style: none; margin: 0; padding: 0; }
#conn[data-state="live"] { color: var(--completed); }
#conn[data-state="lost"] { color: var(--failed); }
#operator { display: flex; flex-wrap: wrap; flex-basis: 100%; align-items: baseline; gap: 0.5rem; }
#operator input { font: inherit; width: min(100%, 16rem); }
#action-result { position: fixed; z-index: 1; right: 0.75rem; bottom: 0.75rem; max-width: min(32rem, calc(100% - 1.5rem));
  padding: 0.5rem 0.75rem; background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--running);
  border-radius: 6px; box-shadow: 0 2px 8px rgb(0 0 0 / 15%); overflow-wrap: anywhere; }
#action-result:empty { display: none; }
#action-result[data-result="ok"] { border-left-color: var(--completed); }
#action-result[data-result="error"] { border-left-color: var(--failed); }
main { display: grid; gap: 1rem; padding: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 36rem), 1fr)); }
main > section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 1rem 1rem; min-width: 0; }
#events { grid-column: 1 / -1; }
h2 { font-size: 1.1rem; margin: 0.5rem 0; }
h3 { font-size: 1rem; margin: 0.75rem 0 0.25rem; }
h4 { font-size: 0.9rem; margin: 0.5rem 0 0.25rem; }
.scroll { overflow-x: auto; max-width: 100%; margin-bottom: 0.75rem; container-type: inline-size; }
/* A wide table scrolls; its caption stays in view, wrapped to the box. */
.scroll caption { position: sticky; left: 0; max-width: 100cqw; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { text-align: left; padding: 0.2rem 0.5rem; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
tr.empty td { color: var(--muted); font-style: italic; }
td.issues, td.json { white-space: normal; overflow-wrap: anywhere; min-width: 14rem; }
td.issues ul { margin: 0; padding-left: 1rem; }
button { font: inherit; font-size: 0.85rem; }
.badge { display: inline-block; padding: 0 0.4rem; border-radius: 1rem; color: #fff; font-size: 0.8rem; background: var(--queued); }
.state-alive, .state-ok, .status-completed, .role-active, .checksum-ok { background: var(--completed); }
.state-suspect, .state-pending, .state-cooling, .status-waiting, .status-paused { background: var(--cancelled); }
.state-unreachable, .state-crossed, .status-failed, .checksum-bad { background: var(--failed); }
.state-unknown, .status-queued, .role-standby { background: var(--queued); }
.status-running { background: var(--running); }
.status-cancelled { background: #57606a; }
.status-parked { background: var(--parked); }
button.link { background: none; border: 0; padding: 0; color: var(--running); text-decoration: underline; cursor: pointer; font: inherit; }
tr[aria-selected="true"] { background: #ddf4ff; }
#workflow-actions { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.4rem; margin: 0.25rem 0 0.5rem; }
.tree, .tree ul { list-style: none; margin: 0; padding-left: 1.1rem; border-left: 1px dashed var(--line); }
.tree { padding-left: 0; border: 0; }
.tree li { margin: 0.2rem 0; white-space: nowrap; }
.node { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 4px; color: #fff; font-size: 0.85rem; }
.node.reassigned { outline: 2px dashed var(--cancelled); outline-offset: 1px; }
.node.conflict { outline: 2px solid var(--failed); outline-offset: 1px; }
.mark { font-weight: 700; }
.legend .mark { color: var(--fg); }
.charts { display: grid; gap: 0.5rem; grid-template-columns: repeat(auto-fill, minmax(min(100%, 10rem), 1fr)); }
.chart-card { margin: 0; padding: 0.35rem 0.5rem; border: 1px solid var(--line); border-radius: 4px; min-width: 0; }
.chart-card figcaption { font-size: 0.8rem; margin-bottom: 0.2rem; overflow-wrap: anywhere; }
.chart-name { font-family: ui-monospace, monospace; display: block; }
.chart { display: block; width: 100%; height: auto; }
.chart-box { fill: var(--bg); }
.chart .series { fill: none; stroke: var(--running); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.chart .last { fill: var(--running); }
.chart .threshold { stroke: var(--failed); stroke-width: 1; stroke-dasharray: 4 3; vector-effect: non-scaling-stroke; }
.chart-card[data-state="crossed"] { border-color: var(--failed); }
.lists { display: grid; gap: 0 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 16rem), 1fr)); }
ul.events { list-style: none; margin: 0 0 0.5rem; padding: 0; font-size: 0.85rem; max-height: 16rem; overflow-y: auto; }
ul.events li { padding: 0.15rem 0; border-bottom: 1px solid var(--bg); overflow-wrap: anywhere; }
ul.events .description { display: block; color: var(--muted); }
.scope { font-family: ui-monospace, monospace; }
#waits-figure { margin: 0 0 0.5rem; min-width: 0; }
#waits-graph { display: block; width: 100%; max-width: 34rem; height: auto; background: var(--bg); border-radius: 4px; }
#waits-caption { font-size: 0.85rem; margin-top: 0.25rem; overflow-wrap: anywhere; }
#waits-text { font-size: 0.85rem; overflow-wrap: anywhere; min-width: 0; }
#waits-text ol, #waits-text ul { margin: 0; padding-left: 1.25rem; }
.wait-node circle { fill: var(--queued); stroke: #fff; stroke-width: 1.5; }
.wait-node.in-cycle circle { fill: var(--parked); }
.wait-node.victim circle { fill: var(--failed); }
.wait-node text { font-size: 12px; fill: var(--fg); font-family: ui-monospace, monospace; }
.wait-node.victim text { fill: var(--failed); font-weight: 700; }
.wait-edge { stroke: var(--muted); stroke-width: 1.25; }
.cycle-edge { stroke: var(--failed); stroke-width: 2.5; }
#wait-edge-head path { fill: var(--muted); }
#cycle-edge-head path { fill: var(--failed); }
.events-view { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 30rem), 1fr)); align-items: start; }
.events-view > * { min-width: 0; }
.filters { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.4rem 0.75rem; margin-bottom: 0.25rem; }
.filters select, .filters input { font: inherit; font-size: 0.85rem; max-width: 100%; }
#event-filter { width: min(100%, 18rem); }
#event-scope { width: 9rem; }
#event-list { list-style: none; margin: 0; padding: 0; max-height: 28rem; overflow-y: auto; font-family: ui-monospace, monospace; font-size: 0.8rem; }
#event-list li { padding: 0.1rem 0.25rem; border-bottom: 1px solid var(--bg); border-left: 3px solid transparent; overflow-wrap: anywhere; }
#event-list li.class-fault { border-left-color: var(--failed); background: #fff5f5; }
#event-list time { color: var(--muted); }
.tag { display: inline-block; margin-right: 0.35rem; padding: 0 0.3rem; border-radius: 3px; background: var(--failed); color: #fff; font-family: system-ui, sans-serif; font-size: 0.75rem; }
#incident { border-top: 0; padding: 0; }
#incident select, #incident button { font: inherit; font-size: 0.9rem; }
#incident-text { max-height: 28rem; overflow: auto; margin: 0.5rem 0 0; padding: 0.5rem; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; font-size: 0.8rem; }
#errors, #incident-error { color: var(--failed); }
@media (max-width: 600px) { main { padding: 0.5rem; } main > section { padding: 0.5rem; } header { padding: 0.5rem; } }
`;
