/**
 * The dashboard's page, inlined so the built service (and its container image, which copies
 * only dist/) serves it without other files. The style is in assets-css.ts, the script in
 * client.ts; the page holds every view's static frame (headings, captions, table heads, the
 * filters), which the script fills.
 */

export { DASHBOARD_CSS } from "./assets-css.js";

/** The page: landmarks, one heading per view, captioned tables, live regions for events and replies. */
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
  <p class="note" id="mode-note"><span id="read-only-note">Read-only: this page has no operator actions; use the <code>cadre</code> command for those.</span><span id="actions-note" hidden>Operator actions are on: each needs the operator token, which this tab keeps until it closes.</span></p>
  <nav aria-label="Views">
    <ul>
      <li><a href="#cluster">Cluster</a></li>
      <li><a href="#workflows">Workflows</a></li>
      <li><a href="#monitor">Monitor</a></li>
      <li><a href="#agents">Agents</a></li>
      <li><a href="#events">Events</a></li>
    </ul>
  </nav>
  <form id="operator" hidden>
    <label for="operator-token">Operator token</label>
    <input id="operator-token" type="password" autocomplete="off" spellcheck="false">
  </form>
</header>
<div id="action-result" role="status"></div>
<main>
  <section id="cluster" aria-labelledby="cluster-h">
    <h2 id="cluster-h">Cluster</h2>
    <p id="nats">The monitor's NATS connection: <span id="nats-state" class="badge state-unknown">unknown</span></p>
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
      <table id="supervisors">
        <caption>Supervisors (one active, the others on standby)</caption>
        <thead><tr><th scope="col">Supervisor</th><th scope="col">Role</th></tr></thead>
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
      <div id="workflow-actions" role="group" aria-labelledby="workflow-actions-h" hidden>
        <span id="workflow-actions-h">Actions on <code id="workflow-actions-target"></code>:</span>
        <button type="button" data-op="pause">Pause</button>
        <button type="button" data-op="resume">Resume</button>
        <button type="button" data-op="cancel">Cancel</button>
        <button type="button" data-op="freeze">Freeze</button>
        <button type="button" data-op="unfreeze">Unfreeze</button>
      </div>
      <div id="tree-body" class="scroll"></div>
      <p class="legend">Colour: the task's status. <span class="mark">↻n</span> reassigned (epoch n);
        <span class="mark">⚠n</span> n late results of an older epoch conflicted. Hover a task for its holder and chain.</p>
    </section>
    <div id="workflow-detail" hidden>
      <div class="scroll">
        <table id="state">
          <caption>Shared state of the workflow</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Revision</th><th scope="col">Value</th></tr></thead>
          <tbody></tbody>
        </table>
      </div>
      <p id="state-note" class="note" hidden>Only the first values are shown.</p>
      <div class="scroll">
        <table id="checkpoints">
          <caption>Checkpoints of the workflow</caption>
          <thead><tr>
            <th scope="col">Position</th><th scope="col">At</th><th scope="col">Checksum</th><th scope="col">Replayable</th>
          </tr></thead>
          <tbody></tbody>
        </table>
      </div>
    </div>
  </section>
  <section id="monitor" aria-labelledby="monitor-h">
    <h2 id="monitor-h">Monitor</h2>
    <h3>Metrics over time</h3>
    <p class="note">Each chart: the samples, a dashed line at the threshold, the state now.</p>
    <div id="metric-charts" class="charts"></div>
    <h3>Trend series</h3>
    <div id="trend-charts" class="charts"></div>
    <p id="trend-charts-empty" class="empty">No series followed yet.</p>
    <div class="lists">
      <div>
        <h3 id="trends-found-h">Trends found</h3>
        <ul id="trends-found" class="events" aria-labelledby="trends-found-h"></ul>
        <p id="trends-found-empty" class="empty">None found.</p>
      </div>
      <div>
        <h3 id="actions-taken-h">Actions taken</h3>
        <ul id="actions-taken" class="events" aria-labelledby="actions-taken-h"></ul>
        <p id="actions-taken-empty" class="empty">None taken.</p>
      </div>
    </div>
    <div class="scroll">
      <table id="bottlenecks">
        <caption>Bottlenecks: the stage holding most of each kind's task time, worst first</caption>
        <thead><tr>
          <th scope="col">Kind</th><th scope="col">Bottleneck stage</th><th scope="col">Share</th>
          <th scope="col">Bottleneck s</th><th scope="col">Total s</th><th scope="col">Tasks</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
  <section id="agents" aria-labelledby="agents-h">
    <h2 id="agents-h">Agents</h2>
    <div class="scroll">
      <table id="quarantined">
        <caption>Quarantined agents (a response broke the kind's schema)</caption>
        <thead><tr>
          <th scope="col">Actor</th><th scope="col">Kind</th><th scope="col">Team</th><th scope="col">Host</th>
          <th scope="col">Task</th><th scope="col">Issues</th><th scope="col">Since</th><th scope="col">Replaced by</th>
          <th scope="col" id="quarantined-ops" hidden>Actions</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <div class="scroll">
      <table id="preemptions">
        <caption>Preemptions, newest first (an actor stopped for a higher-priority team)</caption>
        <thead><tr>
          <th scope="col">At</th><th scope="col">Actor</th><th scope="col">Kind</th><th scope="col">Team (priority)</th>
          <th scope="col">For team (priority)</th><th scope="col">Host</th><th scope="col">Task requeued</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <section id="waits" aria-labelledby="waits-h">
      <h3 id="waits-h">Wait-for graph</h3>
      <p id="waits-none" class="empty">No waits now, no deadlock resolved.</p>
      <div>
        <figure id="waits-figure" hidden>
          <svg id="waits-graph" viewBox="0 0 520 300" role="img" aria-label="wait-for graph"></svg>
          <figcaption id="waits-caption"></figcaption>
        </figure>
        <div id="waits-text" hidden>
          <h4 id="deadlock-cycle-h">Newest deadlock's cycle</h4>
          <ol id="deadlock-cycle" aria-labelledby="deadlock-cycle-h"></ol>
          <p id="deadlock-cycle-empty" class="empty">No deadlock resolved.</p>
          <h4 id="waits-list-h">Waiting now</h4>
          <ul id="waits-list" aria-labelledby="waits-list-h"></ul>
          <p id="waits-list-empty" class="empty">No task waits.</p>
        </div>
      </div>
    </section>
  </section>
  <section id="events" aria-labelledby="events-h">
    <h2 id="events-h">Events</h2>
    <div class="events-view">
      <div>
        <form id="event-filters" class="filters" role="search" aria-label="Filter the event lines">
          <label>Type <select id="event-type"><option value="">all types</option></select></label>
          <label>Category <select id="event-category"><option value="">all categories</option></select></label>
          <label>Class <select id="event-class">
            <option value="">all classes</option><option value="fault">fault</option>
            <option value="detection">detection</option><option value="action">action</option>
            <option value="recovery">recovery</option><option value="command">command</option>
            <option value="routine">routine</option>
          </select></label>
          <label>Scope <input id="event-scope" type="search" autocomplete="off" placeholder="e.g. host-2"></label>
          <label for="event-filter">Lines containing</label>
          <input id="event-filter" type="search" autocomplete="off" placeholder="e.g. HOST_ or host-2">
        </form>
        <p id="event-count" class="note"></p>
        <ol id="event-list" aria-live="polite" aria-relevant="additions" aria-label="Event lines, newest first"></ol>
      </div>
      <section id="incident" aria-labelledby="incident-h">
        <h3 id="incident-h">Incident report</h3>
        <p class="note">What <code>cadre incident report</code> prints, from the events stream.</p>
        <label for="incident-window">Of the last</label>
        <select id="incident-window">
          <option value="5m">5 minutes</option><option value="15m" selected>15 minutes</option>
          <option value="1h">hour</option><option value="6h">6 hours</option>
        </select>
        <button type="button" id="incident-build">Build incident report</button>
        <p id="incident-status" class="note" aria-live="polite"></p>
        <p id="incident-error" role="alert" hidden></p>
        <pre id="incident-text" tabindex="0" aria-label="Incident report" hidden></pre>
      </section>
    </div>
  </section>
</main>
</body>
</html>
`;
