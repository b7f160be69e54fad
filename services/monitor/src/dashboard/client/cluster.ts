/**
 * The Cluster view of the dashboard script: the agent-hosts, the six metrics as a table, the
 * services reporting, the supervisors (active or standby) and the monitor's NATS connection; and
 * the mark a host's liveness event puts on its row at once, before the next snapshot.
 */

/** Draws the Cluster view from a snapshot. */
export const CLUSTER_JS = String.raw`
  function renderCluster(s) {
    fillBody($("hosts"), s.hosts.map(function (h) {
      var open = Object.keys(h.circuits).filter(function (k) { return h.circuits[k] !== "closed"; });
      return el("tr", { "data-host": h.hostId, "data-state": h.state }, [
        rowHead(h.hostId),
        el("td", { "class": "host-state" }, [badge("state", h.state)]),
        td(num(h.phi, 2)), td(ago(h.lastHeartbeatAt, s.at)), td(num(h.load, 2)),
        td(h.actors + " (" + h.busy + "/" + h.maxActors + ")"), td(num(h.heapUsedMb, 0)),
        td(open.length ? open.join(", ") : "none"), td(h.cordoned ? "yes" : "no"),
      ]);
    }), "no agent-hosts registered");
    replace($("metrics").tBodies[0], s.metrics.map(function (m) {
      return el("tr", { "data-metric": m.metric }, [
        rowHead(m.metric), td(amount(m.value)), td(m.threshold),
        el("td", {}, [badge("state", m.state)]), td(m.action),
      ]);
    }));
    fillBody($("services"), s.services.map(function (r) {
      return el("tr", {}, [rowHead(r.service), td(r.id), td(ago(r.at, s.at))]);
    }), "no service has reported");
    fillBody($("supervisors"), s.supervisors.map(function (v) {
      return el("tr", { "data-supervisor": v.id, "data-role": v.role }, [
        rowHead(v.id), el("td", {}, [badge("role", v.role)]),
      ]);
    }), "no supervisor answered");
    var nats = $("nats-state");
    nats.textContent = s.nats.connected ? "connected" : "disconnected";
    nats.className = "badge state-" + (s.nats.connected ? "ok" : "unreachable");
    var errs = $("errors");
    errs.hidden = s.errors.length === 0;
    errs.textContent = s.errors.map(function (e) { return e.source + ": " + e.message; }).join("; ");
  }

  var HOST_MARKS = { HOST_SUSPECTED: "suspect", HOST_UNREACHABLE: "unreachable", HOST_HEALED: "alive" };

  // A host's liveness shows at once, before the next snapshot.
  function markHost(line) {
    var state = HOST_MARKS[line.type];
    if (!state) return;
    var row = document.querySelector("#hosts tr[data-host=\"" + CSS.escape(line.scope) + "\"]");
    if (!row) return;
    row.setAttribute("data-state", state);
    replace(row.querySelector(".host-state"), [badge("state", state)]);
  }
`;
