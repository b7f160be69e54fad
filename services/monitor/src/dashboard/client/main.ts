/**
 * The dashboard script's start: it listens to `/dashboard/stream` (the backlog of event lines
 * on connect, each new line, a snapshot every second) and hands each message to the views.
 * Each view is drawn on its own, so one that cannot draw a snapshot leaves the others current.
 */

/** The stream and the dispatch to the views. */
// biome-ignore lint/complexity/noUselessStringRaw: every part is raw, so an escape added later (a \n in a string) reaches the browser as written.
export const MAIN_JS = String.raw`
  var lastSnapshot = null;

  var VIEWS = [
    ["Cluster", function (s) { renderCluster(s); }],
    ["Workflows", function (s) { renderWorkflows(s); loadTree(); }],
    ["Monitor", function (s) { renderMonitor(s); }],
    ["Agents", function (s) { renderAgents(s); }],
    ["operator", function (s) { renderOperator(s); }],
  ];

  function onSnapshot(s) {
    lastSnapshot = s;
    VIEWS.forEach(function (v) {
      try { v[1](s); } catch (err) { console.error("dashboard: cannot draw the " + v[0] + " view:", err); }
    });
  }

  function connect() {
    var conn = $("conn");
    var es = new EventSource("/dashboard/stream");
    es.addEventListener("open", function () { conn.textContent = "live"; conn.setAttribute("data-state", "live"); });
    es.addEventListener("error", function () {
      conn.textContent = "connection to the monitor lost; retrying"; conn.setAttribute("data-state", "lost");
    });
    es.addEventListener("backlog", function (m) { setBacklog(JSON.parse(m.data)); });
    es.addEventListener("event", function (m) {
      var line = JSON.parse(m.data);
      addLine(line);
      markHost(line);
    });
    es.addEventListener("snapshot", function (m) { onSnapshot(JSON.parse(m.data)); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupEvents();
    setupOperator();
    connect();
  });
`;
