/**
 * The dashboard's script, served as `/dashboard/app.js`: plain browser JavaScript, no framework
 * and no build step. It listens to `/dashboard/stream` (snapshots and event lines) and fetches
 * `/dashboard/api/workflow/<id>` for the chosen workflow's tree. Written without backquotes
 * or dollar-brace so it can live in this template string unchanged (client.test.ts parses it).
 */

/** The page's script. */
export const DASHBOARD_JS = String.raw`"use strict";
(function () {
  var MAX_LINES = 200;
  var selected = null;
  var lines = [];
  var lastSnapshot = null;
  var treeBusy = false;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (attrs[k] === null || attrs[k] === undefined) continue;
      if (k === "text") e.textContent = attrs[k];
      else if (k === "onclick") e.addEventListener("click", attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c !== null) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function $(id) { return document.getElementById(id); }
  function replace(parent, children) { parent.replaceChildren.apply(parent, children); }
  function badge(kind, value) { return el("span", { "class": "badge " + kind + "-" + value, text: value }); }
  function ago(ms, now) {
    if (ms === null || ms === undefined) return "never";
    var s = Math.max(0, Math.round((now - ms) / 1000));
    return s < 120 ? s + " s ago" : Math.round(s / 60) + " min ago";
  }
  function age(ms, now) {
    var s = Math.max(0, Math.round((now - ms) / 1000));
    return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
  }
  function num(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
  function td(text) { return el("td", { text: String(text) }); }

  function renderHosts(s) {
    replace($("hosts").tBodies[0], s.hosts.map(function (h) {
      var open = Object.keys(h.circuits).filter(function (k) { return h.circuits[k] !== "closed"; });
      return el("tr", { "data-host": h.hostId, "data-state": h.state }, [
        el("th", { scope: "row", text: h.hostId }),
        el("td", { "class": "host-state" }, [badge("state", h.state)]),
        td(num(h.phi, 2)), td(ago(h.lastHeartbeatAt, s.at)), td(num(h.load, 2)),
        td(h.actors + " (" + h.busy + "/" + h.maxActors + ")"), td(num(h.heapUsedMb, 0)),
        td(open.length ? open.join(", ") : "none"), td(h.cordoned ? "yes" : "no"),
      ]);
    }));
    replace($("metrics").tBodies[0], s.metrics.map(function (m) {
      return el("tr", { "data-metric": m.metric }, [
        el("th", { scope: "row", text: m.metric }), td(num(m.value, 3)), td(m.threshold),
        el("td", {}, [badge("state", m.state)]), td(m.action),
      ]);
    }));
    replace($("services").tBodies[0], s.services.map(function (r) {
      return el("tr", {}, [el("th", { scope: "row", text: r.service }), td(r.id), td(ago(r.at, s.at))]);
    }));
    $("nats-state").textContent = s.nats.connected ? "connected" : "disconnected";
    var errs = $("errors");
    errs.hidden = s.errors.length === 0;
    errs.textContent = s.errors.map(function (e) { return e.source + ": " + e.message; }).join("; ");
  }

  function renderWorkflows(s) {
    replace($("workflow-list").tBodies[0], s.workflows.map(function (w) {
      var done = w.tasks.completed + w.tasks.failed + w.tasks.cancelled;
      return el("tr", { "data-workflow": w.workflowId, "aria-selected": w.workflowId === selected ? "true" : "false" }, [
        el("th", { scope: "row" }, [el("button", { type: "button", "class": "link", text: w.workflowId,
          "aria-label": "show the delegation tree of " + w.workflowId,
          onclick: function () { select(w.workflowId); } })]),
        td(w.teamName), el("td", {}, [badge("status", w.status)]), td(w.priority === null ? "–" : w.priority),
        td(age(w.submittedAt, w.finishedAt || s.at)), td(done + "/" + w.tasks.total),
        td(w.tokens === null ? "–" : w.tokens), td(w.costUsd === null ? "–" : w.costUsd.toFixed(4)),
      ]);
    }));
  }

  function select(id) {
    selected = id;
    $("tree-note").textContent = "Loading the tree of " + id + "…";
    if (lastSnapshot) renderWorkflows(lastSnapshot);
    loadTree();
  }

  function loadTree() {
    if (selected === null || treeBusy) return;
    var id = selected;
    treeBusy = true;
    fetch("/dashboard/api/workflow/" + encodeURIComponent(id)).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (r) {
      if (id !== selected) return;
      if (!r.ok) { $("tree-note").textContent = "Cannot show " + id + ": " + r.body.error.message; return; }
      renderTree(r.body);
    }).catch(function (err) {
      $("tree-note").textContent = "Cannot show " + id + ": " + err.message;
    }).then(function () { treeBusy = false; });
  }

  function renderTree(t) {
    var children = {};
    t.tasks.forEach(function (n) {
      var p = n.parentTaskId === null ? "" : n.parentTaskId;
      (children[p] = children[p] || []).push(n);
    });
    var ids = {};
    t.tasks.forEach(function (n) { ids[n.taskId] = true; });
    function node(n) {
      var holder = n.holder ? n.holder.hostId + (n.holder.actorId ? "/" + n.holder.actorId : "") : "none";
      var title = "task " + n.taskId + "; epoch " + n.epoch + "; holder " + holder + "; attempts " + n.attempts +
        (n.error ? "; error " + n.error.code + ": " + n.error.message : "");
      var kids = children[n.taskId] || [];
      return el("li", {}, [
        el("span", { "class": "node status-" + n.status, "data-task": n.taskId, "data-status": n.status, title: title,
          text: n.kind + " · " + n.status }),
        kids.length ? el("ul", {}, kids.map(node)) : null,
      ]);
    }
    // Roots: no parent, or a parent not in the tree (a partial listing).
    var roots = t.tasks.filter(function (n) { return n.parentTaskId === null || !ids[n.parentTaskId]; });
    var counts = {};
    t.tasks.forEach(function (n) { counts[n.status] = (counts[n.status] || 0) + 1; });
    var summary = Object.keys(counts).map(function (k) { return counts[k] + " " + k; }).join(", ");
    $("tree-note").textContent = t.workflow.workflowId + " (" + t.workflow.status + "): " + t.tasks.length + " tasks, " + summary;
    replace($("tree-body"), [el("ul", { "class": "tree", "aria-label": "delegation tree of " + t.workflow.workflowId,
      "data-workflow": t.workflow.workflowId, "data-status": t.workflow.status }, roots.map(node))]);
  }

  function renderLines() {
    var f = $("event-filter").value.trim().toLowerCase();
    var shown = lines.filter(function (l) { return f === "" || l.line.toLowerCase().indexOf(f) >= 0; });
    replace($("event-list"), shown.slice().reverse().map(function (l) {
      return el("li", { "data-type": l.type, "data-scope": l.scope, text: l.line });
    }));
  }

  function addLine(l) {
    lines.push(l);
    if (lines.length > MAX_LINES) lines.shift();
    var f = $("event-filter").value.trim().toLowerCase();
    if (f === "" || l.line.toLowerCase().indexOf(f) >= 0) {
      var list = $("event-list");
      list.insertBefore(el("li", { "data-type": l.type, "data-scope": l.scope, text: l.line }), list.firstChild);
      while (list.children.length > MAX_LINES) list.removeChild(list.lastChild);
    }
    // A host's liveness shows at once, before the next snapshot.
    var marks = { HOST_SUSPECTED: "suspect", HOST_UNREACHABLE: "unreachable", HOST_HEALED: "alive" };
    if (marks[l.type]) {
      var row = document.querySelector("#hosts tr[data-host=\"" + CSS.escape(l.scope) + "\"]");
      if (row) {
        row.setAttribute("data-state", marks[l.type]);
        replace(row.querySelector(".host-state"), [badge("state", marks[l.type])]);
      }
    }
  }

  function connect() {
    var conn = $("conn");
    var es = new EventSource("/dashboard/stream");
    es.addEventListener("open", function () { conn.textContent = "live"; conn.setAttribute("data-state", "live"); });
    es.addEventListener("error", function () {
      conn.textContent = "connection to the monitor lost; retrying"; conn.setAttribute("data-state", "lost");
    });
    es.addEventListener("backlog", function (m) { lines = JSON.parse(m.data).slice(-MAX_LINES); renderLines(); });
    es.addEventListener("event", function (m) { addLine(JSON.parse(m.data)); });
    es.addEventListener("snapshot", function (m) {
      lastSnapshot = JSON.parse(m.data);
      renderHosts(lastSnapshot);
      renderWorkflows(lastSnapshot);
      loadTree();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("event-filter").addEventListener("input", renderLines);
    connect();
  });
})();
`;
