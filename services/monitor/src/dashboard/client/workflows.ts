/**
 * The Workflows view of the dashboard script: the newest workflows, and for the chosen one
 * (`/dashboard/api/workflow/<id>`, fetched again with each snapshot) its delegation tree, its
 * shared state and its checkpoints. A node's colour is its status; a reassigned task (epoch
 * above 1) and one with conflicting late results carry a visible mark as well as a class, so
 * the difference does not rest on colour alone.
 */

/** Draws the Workflows view. */
// biome-ignore lint/complexity/noUselessStringRaw: every part is raw, so an escape added later (a \n in a string) reaches the browser as written.
export const WORKFLOWS_JS = String.raw`
  var selected = null;
  var treeBusy = false;
  var lastDetail = null;

  function renderWorkflows(s) {
    var table = $("workflow-list");
    keepFocus(table, function () {
      fillBody(table, s.workflows.map(function (w) {
        var done = w.tasks.completed + w.tasks.failed + w.tasks.cancelled;
        return el("tr", { "data-workflow": w.workflowId, "aria-selected": w.workflowId === selected ? "true" : "false" }, [
          el("th", { scope: "row" }, [el("button", { type: "button", "class": "link", text: w.workflowId,
            "aria-label": "show the delegation tree of " + w.workflowId, "data-focus": "tree:" + w.workflowId,
            onclick: function () { select(w.workflowId); } })]),
          td(w.teamName), el("td", {}, [badge("status", w.status)]), td(w.priority === null ? "–" : w.priority),
          td(age(w.submittedAt, w.finishedAt || s.at)), td(done + "/" + w.tasks.total),
          td(w.tokens === null ? "–" : w.tokens), td(w.costUsd === null ? "–" : w.costUsd.toFixed(4)),
        ]);
      }), "no workflows yet");
    });
  }

  function select(id) {
    selected = id;
    lastDetail = null;
    $("tree-note").textContent = "Loading the tree of " + id + "…";
    if (lastSnapshot) renderWorkflows(lastSnapshot);
    renderWorkflowActions();
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
      // The tree is fetched every second; redraw it only when it changed (a hovered title stays).
      var text = JSON.stringify(r.body);
      if (text === lastDetail) return;
      lastDetail = text;
      renderTree(r.body);
      renderState(r.body.state);
      renderCheckpoints(r.body.checkpoints);
      $("workflow-detail").hidden = false;
    }).catch(function (err) {
      $("tree-note").textContent = "Cannot show " + id + ": " + err.message;
    }).then(function () { treeBusy = false; });
  }

  function holderText(h) { return h ? h.hostId + (h.actorId ? "/" + h.actorId : "") : "none"; }

  function renderTree(t) {
    var children = {};
    var byId = {};
    t.tasks.forEach(function (n) { byId[n.taskId] = n; });
    t.tasks.forEach(function (n) {
      var p = n.parentTaskId === null ? "" : n.parentTaskId;
      (children[p] = children[p] || []).push(n);
    });
    // The kinds from the root down to n (as far up as this listing goes).
    function chain(n) {
      var kinds = [];
      for (var at = n; at && kinds.length <= t.tasks.length; at = at.parentTaskId === null ? null : byId[at.parentTaskId]) {
        kinds.unshift(at.kind);
      }
      return kinds.join(" > ");
    }
    function node(n) {
      var reassigned = n.epoch > 1;
      var conflicts = n.conflicts || 0;
      var title = "task " + n.taskId + "; epoch " + n.epoch + "; holder " + holderText(n.holder) + "; attempts " +
        n.attempts + "; chain " + chain(n) + (conflicts ? "; conflicts " + conflicts : "") +
        (n.error ? "; error " + n.error.code + ": " + n.error.message : "");
      var cls = "node status-" + n.status + (reassigned ? " reassigned" : "") + (conflicts ? " conflict" : "");
      var kids = children[n.taskId] || [];
      return el("li", {}, [
        el("span", { "class": cls, "data-task": n.taskId, "data-status": n.status, title: title,
          "data-reassigned": reassigned ? "true" : "false", "data-conflict": conflicts ? "true" : "false" }, [
          n.kind + " · " + n.status,
          reassigned ? el("span", { "class": "mark", "aria-hidden": "true", text: " ↻" + n.epoch }) : null,
          reassigned ? el("span", { "class": "sr-only", text: " (reassigned: epoch " + n.epoch + ")" }) : null,
          conflicts ? el("span", { "class": "mark", "aria-hidden": "true", text: " ⚠" + conflicts }) : null,
          conflicts ? el("span", { "class": "sr-only", text: " (" + conflicts + " conflicting results)" }) : null,
        ]),
        kids.length ? el("ul", {}, kids.map(node)) : null,
      ]);
    }
    // Roots: no parent, or a parent not in the tree (a partial listing).
    var roots = t.tasks.filter(function (n) { return n.parentTaskId === null || !byId[n.parentTaskId]; });
    var counts = {};
    t.tasks.forEach(function (n) { counts[n.status] = (counts[n.status] || 0) + 1; });
    var summary = Object.keys(counts).map(function (k) { return counts[k] + " " + k; }).join(", ");
    var w = t.workflow;
    $("tree-note").textContent = w.workflowId + " (" + w.status + (t.control && t.control.paused ? ", paused" : "") +
      "): " + t.tasks.length + " tasks, " + summary;
    replace($("tree-body"), [el("ul", { "class": "tree", "aria-label": "delegation tree of " + w.workflowId,
      "data-workflow": w.workflowId, "data-status": w.status }, roots.map(node))]);
  }

  function renderState(state) {
    var note = $("state-note");
    if (!state || state.error !== undefined) {
      fillBody($("state"), [], "cannot read the shared state: " + (state ? state.error : "not in the reply"));
      note.hidden = true;
      return;
    }
    fillBody($("state"), state.values.map(function (v) {
      var full = JSON.stringify(v.value);
      return el("tr", { "data-name": v.name }, [
        rowHead(v.name), td(v.revision), el("td", { "class": "json", title: full }, [el("code", { text: shortJson(v.value, 120) })]),
      ]);
    }), "no shared state");
    note.hidden = !state.truncated;
  }

  function renderCheckpoints(cps) {
    if (!cps || !Array.isArray(cps)) {
      fillBody($("checkpoints"), [], "cannot read the checkpoints: " + (cps ? cps.error : "not in the reply"));
      return;
    }
    fillBody($("checkpoints"), cps.map(function (c) {
      return el("tr", { "data-position": c.position, "data-checksum": c.checksum }, [
        rowHead(c.position), el("td", {}, [timeEl(c.at)]),
        el("td", {}, [badge("checksum", c.checksum)]), td(c.replayable ? "yes" : "no"),
      ]);
    }), "no checkpoints");
  }
`;
