/**
 * The Agents view of the dashboard script: quarantined agents with the issues that put them
 * there, the preemptions, and the wait-for graph (`sup.waits`: task A waits for task B) with
 * the newest resolved deadlock's cycle drawn over it and its victim marked. The graph's nodes sit
 * on a circle, cycle first and the rest by id, so the same graph is always drawn the same way;
 * the lists below it say in text what it shows.
 */

/** Draws the Agents view. */
// biome-ignore lint/complexity/noUselessStringRaw: every part is raw, so an escape added later (a \n in a string) reaches the browser as written.
export const AGENTS_JS = String.raw`
  function renderQuarantined(s) {
    var table = $("quarantined");
    $("quarantined-ops").hidden = !s.actions;
    keepFocus(table, function () {
      fillBody(table, s.quarantined.map(function (a) {
        var cells = [
          rowHead(a.actorId), td(a.kindName), td(a.teamId), td(a.hostId), td(a.taskId === null ? "–" : a.taskId),
          el("td", { "class": "issues" }, [el("ul", {}, a.issues.map(function (i) {
            return el("li", {}, [el("code", { text: i.path || "(root)" }), ": " + i.message]);
          }))]),
          el("td", {}, a.at === null ? ["–"] : [timeEl(a.at), " (" + ago(a.at, s.at) + ")"]), td(a.replacedBy === null ? "none yet" : a.replacedBy),
        ];
        if (s.actions) cells.push(el("td", { "class": "ops" }, [
          actorButton("release", "Release", a.actorId), " ", actorButton("retire", "Retire", a.actorId),
        ]));
        return el("tr", { "data-actor": a.actorId }, cells);
      }), "no agent is quarantined");
    });
  }

  function actorButton(op, label, actorId) {
    return el("button", { type: "button", "data-op": op, "data-actor": actorId, "data-focus": op + ":" + actorId,
      "aria-label": label + " " + actorId, text: label, onclick: function () { actorAction(op, actorId); } });
  }

  function renderPreemptions(s) {
    fillBody($("preemptions"), s.recent.preemptions.map(function (l) {
      var d = l.data || {};
      return el("tr", { "data-actor": d.actorId }, [
        el("td", {}, [timeEl(l.at)]), rowHead(d.actorId), td(d.kind), td(d.teamId + " (" + d.priority + ")"),
        td(d.byTeam + " (" + d.byPriority + ")"), td(d.hostId), td(d.requeued === null ? "none" : d.requeued),
      ]);
    }), "no preemptions");
  }

  var GRAPH_W = 520;
  var GRAPH_H = 300;
  var GRAPH_R = 100;
  var NODE_R = 9;

  // Nodes on a circle: the deadlock's cycle in its order, then every other task by id.
  function layout(ids) {
    var at = {};
    ids.forEach(function (id, i) {
      var a = -Math.PI / 2 + (2 * Math.PI * i) / ids.length;
      var r = ids.length === 1 ? 0 : GRAPH_R;
      at[id] = { x: GRAPH_W / 2 + r * Math.cos(a), y: GRAPH_H / 2 + r * Math.sin(a), cos: ids.length === 1 ? 0 : Math.cos(a),
        sin: ids.length === 1 ? 1 : Math.sin(a) };
    });
    return at;
  }

  // An arrow from a to b, ending at b's circle; set off a little to its left, so that a pair of
  // tasks waiting for each other shows two arrows.
  function arrow(a, b, cls) {
    var dx = b.x - a.x;
    var dy = b.y - a.y;
    var len = Math.sqrt(dx * dx + dy * dy) || 1;
    var ux = dx / len;
    var uy = dy / len;
    var ox = uy * 3;
    var oy = -ux * 3;
    return svg("line", { "class": cls, "marker-end": "url(#" + cls + "-head)",
      x1: (a.x + ux * NODE_R + ox).toFixed(1), y1: (a.y + uy * NODE_R + oy).toFixed(1),
      x2: (b.x - ux * (NODE_R + 3) + ox).toFixed(1), y2: (b.y - uy * (NODE_R + 3) + oy).toFixed(1) });
  }

  function arrowHead(id) {
    return svg("marker", { id: id, viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" }, [
      svg("path", { d: "M0,0 L8,4 L0,8 z" }),
    ]);
  }

  function renderWaits(s) {
    var edges = s.waits.edges;
    var newest = s.recent.deadlocks[0];
    var d = newest && newest.data && Array.isArray(newest.data.cycle) ? newest.data : null;
    var cycle = d ? d.cycle : [];
    var inCycle = {};
    cycle.forEach(function (t) { inCycle[t] = true; });
    var others = {};
    edges.forEach(function (e) { if (!inCycle[e[0]]) others[e[0]] = true; if (!inCycle[e[1]]) others[e[1]] = true; });
    if (d && !inCycle[d.victim]) others[d.victim] = true;
    var ids = cycle.concat(Object.keys(others).sort());
    var empty = ids.length === 0;
    $("waits-none").hidden = !empty;
    $("waits-figure").hidden = empty;
    $("waits-text").hidden = empty;
    if (empty) { replace($("waits-graph"), []); return; }

    var at = layout(ids);
    var cycleEdges = cycle.map(function (t, i) { return [t, cycle[(i + 1) % cycle.length]]; });
    var drawn = {};
    cycleEdges.forEach(function (e) { drawn[e[0] + " " + e[1]] = true; });
    var lines = edges.filter(function (e) { return !drawn[e[0] + " " + e[1]]; }).map(function (e) {
      return arrow(at[e[0]], at[e[1]], "wait-edge");
    }).concat(cycle.length > 1 ? cycleEdges.map(function (e) { return arrow(at[e[0]], at[e[1]], "cycle-edge"); }) : []);
    var nodes = ids.map(function (id) {
      var p = at[id];
      var victim = d !== null && id === d.victim;
      var anchor = p.cos > 0.3 ? "start" : p.cos < -0.3 ? "end" : "middle";
      var lx = p.x + p.cos * (NODE_R + 6);
      var ly = p.y + p.sin * (NODE_R + 6) + (Math.abs(p.cos) > 0.3 ? 4 : p.sin > 0 ? 10 : -2);
      // A label above its node grows upwards, so the victim's second line stays off the circle.
      if (victim && anchor === "middle" && p.sin < 0) ly -= 13;
      return svg("g", { "class": "wait-node" + (inCycle[id] ? " in-cycle" : "") + (victim ? " victim" : ""),
        "data-task": id, "data-in-cycle": inCycle[id] ? "true" : "false", "data-victim": victim ? "true" : "false" }, [
        svg("title", { text: id + (victim ? " (victim)" : "") }),
        svg("circle", { cx: p.x.toFixed(1), cy: p.y.toFixed(1), r: NODE_R }),
        svg("text", { x: lx.toFixed(1), y: ly.toFixed(1), "text-anchor": anchor }, [
          shortId(id), victim ? svg("tspan", { x: lx.toFixed(1), dy: "1.1em", text: "victim" }) : null,
        ]),
      ]);
    });
    var summary = ids.length + " tasks, " + edges.length + " waits now" +
      (d ? "; newest deadlock: " + cycle.join(" > ") + ", victim " + d.victim : "");
    replace($("waits-graph"), [
      svg("defs", {}, [arrowHead("wait-edge-head"), arrowHead("cycle-edge-head")]),
    ].concat(lines, nodes));
    $("waits-graph").setAttribute("aria-label", "wait-for graph: " + summary);
    $("waits-caption").textContent = d
      ? "Deadlock resolved at " + clock(newest.at) + " (" + ago(newest.at, s.at) + "): victim " + d.victim +
        " (priority " + d.priority + ") stopped waiting for " + d.waitingFor + " after " + duration(d.waitedMs) +
        "; released " + (d.released.length ? d.released.join(", ") : "nothing") +
        ". Red arrows: its cycle; the red task: its victim; grey arrows: waits now."
      : "No deadlock resolved yet. An arrow: a task waits for the task it points to.";
    renderWaitLists(s, d);
  }

  function renderWaitLists(s, d) {
    var cycle = d ? d.cycle : [];
    fillList($("deadlock-cycle"), cycle.map(function (t, i) {
      return el("li", { "data-task": t }, [
        el("code", { text: t }), t === d.victim ? el("strong", { text: " (victim)" }) : null,
        " waits for ", el("code", { text: cycle[(i + 1) % cycle.length] }),
      ]);
    }));
    fillList($("waits-list"), s.waits.waiting.map(function (w) {
      var holders = s.waits.holders[w.resource] || [];
      return el("li", { "data-task": w.taskId }, [
        el("code", { text: w.taskId }), " waits for " + w.resource + " (held by " +
          (holders.length ? holders.join(", ") : "nobody") + ") for " + duration(w.sinceMs),
      ]);
    }));
  }

  function renderAgents(s) {
    renderQuarantined(s);
    renderPreemptions(s);
    renderWaits(s);
  }
`;
