/**
 * The dashboard's page and style, inlined so the built service (and its container image, which
 * copies only dist/) serves them without other files. The script is in client.ts.
 */

/** The page: landmarks, one heading per view, captioned tables, a live region for events. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cadre dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>Cadre</h1>
  <p id="conn" role="status" data-state="connecting">connecting to the monitor…</p>
  <p class="note">Read-only: this page has no operator actions; use the <code>cadre</code> command for those.</p>
  <nav aria-label="Views">
    <ul>
      <li><a href="#cluster">Cluster</a></li>
      <li><a href="#workflows">Workflows</a></li>
      <li><a href="#events">Events</a></li>
    </ul>
  </nav>
</header>
<main>
  <section id="cluster" aria-labelledby="cluster-h">
    <h2 id="cluster-h">Cluster</h2>
    <p id="nats">NATS: <span id="nats-state">unknown</span></p>
    <p id="errors" role="alert" hidden></p>
    <div class="scroll">
      <table id="hosts">
        <caption>Agent-hosts (the supervisor's view; phi from the last liveness event)</caption>
        <thead><tr>
          <th scope="col">Host</th><th scope="col">State</th><th scope="col">phi</th>
          <th scope="col">Last heartbeat</th><th scope="col">Load</th><th scope="col">Actors (busy/max)</th>
          <th scope="col">Heap MB</th><th scope="col">Open circuits</th><th scope="col">Cordoned</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <div class="scroll">
      <table id="metrics">
        <caption>The six cluster metrics</caption>
        <thead><tr>
          <th scope="col">Metric</th><th scope="col">Value</th><th scope="col">Threshold</th>
          <th scope="col">State</th><th scope="col">Action</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <div class="scroll">
      <table id="services">
        <caption>Services reporting to the monitor</caption>
        <thead><tr><th scope="col">Service</th><th scope="col">Id</th><th scope="col">Last report</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
  <section id="workflows" aria-labelledby="workflows-h">
    <h2 id="workflows-h">Workflows</h2>
    <div class="scroll">
      <table id="workflow-list">
        <caption>Workflows, newest first (choose one to see its delegation tree)</caption>
        <thead><tr>
          <th scope="col">Workflow</th><th scope="col">Team</th><th scope="col">Status</th>
          <th scope="col">Priority</th><th scope="col">Age</th><th scope="col">Progress</th>
          <th scope="col">Tokens</th><th scope="col">Cost (USD)</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <section id="tree" aria-labelledby="tree-h">
      <h3 id="tree-h">Delegation tree</h3>
      <p id="tree-note" aria-live="polite">Choose a workflow above.</p>
      <div id="tree-body"></div>
    </section>
  </section>
  <section id="events" aria-labelledby="events-h">
    <h2 id="events-h">Events</h2>
    <label for="event-filter">Show lines containing</label>
    <input id="event-filter" type="search" autocomplete="off" placeholder="e.g. HOST_ or host-2">
    <ol id="event-list" aria-live="polite" aria-relevant="additions" aria-label="Event lines, newest first"></ol>
  </section>
</main>
</body>
</html>
`;

/** The style: a grid of views that collapses to one column on a phone; tables scroll inside their box. */
export const DASHBOARD_CSS = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa;
  --queued: #6e7781; --running: #0969da; --completed: #1a7f37; --failed: #cf222e; --cancelled: #9a6700;
  --parked: #8250df; font-family: system-ui, sans-serif; font-size: 15px; color: var(--fg); }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; padding: 0.5rem 1rem;
  background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 1.3rem; }
header p { margin: 0; }
.note { color: var(--muted); font-size: 0.85rem; }
nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
#conn[data-state="live"] { color: var(--completed); }
#conn[data-state="lost"] { color: var(--failed); }
main { display: grid; gap: 1rem; padding: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 36rem), 1fr)); }
main > section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 1rem 1rem; min-width: 0; }
#events { grid-column: 1 / -1; }
h2 { font-size: 1.1rem; margin: 0.5rem 0; }
h3 { font-size: 1rem; margin: 0.75rem 0 0.25rem; }
.scroll { overflow-x: auto; max-width: 100%; margin-bottom: 0.75rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { text-align: left; padding: 0.2rem 0.5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
.badge { display: inline-block; padding: 0 0.4rem; border-radius: 1rem; color: #fff; font-size: 0.8rem; }
.state-alive, .state-ok, .status-completed { background: var(--completed); }
.state-suspect, .state-pending, .state-cooling, .status-waiting, .status-paused { background: var(--cancelled); }
.state-unreachable, .state-crossed, .status-failed { background: var(--failed); }
.state-unknown, .status-queued { background: var(--queued); }
.status-running { background: var(--running); }
.status-cancelled { background: #57606a; }
.status-parked { background: var(--parked); }
button.link { background: none; border: 0; padding: 0; color: var(--running); text-decoration: underline; cursor: pointer; font: inherit; }
tr[aria-selected="true"] { background: #ddf4ff; }
.tree, .tree ul { list-style: none; margin: 0; padding-left: 1.1rem; border-left: 1px dashed var(--line); }
.tree { padding-left: 0; border: 0; }
.tree li { margin: 0.2rem 0; }
.node { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 4px; color: #fff; font-size: 0.85rem; }
#event-filter { width: min(100%, 24rem); margin: 0 0 0.5rem 0.5rem; font: inherit; }
#event-list { list-style: none; margin: 0; padding: 0; max-height: 28rem; overflow-y: auto; font-family: ui-monospace, monospace; font-size: 0.8rem; }
#event-list li { padding: 0.1rem 0; border-bottom: 1px solid var(--bg); overflow-wrap: anywhere; }
#event-list li.critical { color: var(--failed); }
#errors { color: var(--failed); }
@media (max-width: 600px) { main { padding: 0.5rem; } main > section { padding: 0.5rem; } }
`;
