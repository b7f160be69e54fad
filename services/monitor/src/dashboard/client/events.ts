/**
 * The Events view of the dashboard script: the live event lines, newest first, with filters
 * that combine (type, category and class from what has been seen, a scope and free text), and
 * the incident report (`/dashboard/api/incident?since=<window>`) built on request. A fault is
 * marked by a word as well as a colour.
 */

/** Draws the Events view and its incident report. */
// biome-ignore lint/complexity/noUselessStringRaw: every part is raw, so an escape added later (a \n in a string) reaches the browser as written.
export const EVENTS_JS = String.raw`
  var MAX_LINES = 200;
  var lines = [];
  var seenTypes = {};
  var seenCategories = {};

  function eventFilter() {
    return {
      type: $("event-type").value,
      category: $("event-category").value,
      cls: $("event-class").value,
      scope: $("event-scope").value.trim().toLowerCase(),
      text: $("event-filter").value.trim().toLowerCase(),
    };
  }

  function shows(l, f) {
    return (f.type === "" || l.type === f.type) && (f.category === "" || l.category === f.category) &&
      (f.cls === "" || l["class"] === f.cls) && (f.scope === "" || l.scope.toLowerCase().indexOf(f.scope) >= 0) &&
      (f.text === "" || l.line.toLowerCase().indexOf(f.text) >= 0);
  }

  function lineItem(l) {
    return el("li", { "data-type": l.type, "data-scope": l.scope, "data-class": l["class"], "class": "class-" + l["class"] }, [
      timeEl(l.at), " ", l["class"] === "fault" ? el("span", { "class": "tag", text: "fault" }) : null,
      el("span", { "class": "line", text: l.line }),
    ]);
  }

  // The options a select offers: "all", then every value seen, sorted; the choice is kept.
  function offer(select, seen, allText) {
    var values = Object.keys(seen).sort();
    if (select.options.length === values.length + 1) return;
    var chosen = select.value;
    replace(select, [el("option", { value: "", text: allText })].concat(values.map(function (v) {
      return el("option", { value: v, text: v });
    })));
    select.value = chosen;
  }

  function see(l) {
    seenTypes[l.type] = true;
    seenCategories[l.category] = true;
  }

  function renderCount(shown) {
    $("event-count").textContent = "Showing " + shown + " of the last " + lines.length + " lines.";
  }

  function renderLines() {
    var f = eventFilter();
    var shown = lines.filter(function (l) { return shows(l, f); });
    replace($("event-list"), shown.slice().reverse().map(lineItem));
    renderCount(shown.length);
  }

  function setBacklog(backlog) {
    lines = backlog.slice(-MAX_LINES);
    lines.forEach(see);
    offer($("event-type"), seenTypes, "all types");
    offer($("event-category"), seenCategories, "all categories");
    renderLines();
  }

  function addLine(l) {
    lines.push(l);
    if (lines.length > MAX_LINES) lines.shift();
    see(l);
    offer($("event-type"), seenTypes, "all types");
    offer($("event-category"), seenCategories, "all categories");
    var list = $("event-list");
    if (shows(l, eventFilter())) {
      list.insertBefore(lineItem(l), list.firstChild);
      while (list.children.length > MAX_LINES) list.removeChild(list.lastChild);
    }
    renderCount(list.children.length);
  }

  var incidentBusy = false;

  function buildIncident() {
    if (incidentBusy) return;
    var since = $("incident-window").value;
    var error = $("incident-error");
    var status = $("incident-status");
    incidentBusy = true;
    $("incident-build").setAttribute("aria-busy", "true");
    error.hidden = true;
    status.textContent = "Building the report of the last " + since + "…";
    fetch("/dashboard/api/incident?since=" + encodeURIComponent(since)).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    }).then(function (r) {
      if (!r.ok) {
        var e = r.body && r.body.error;
        throw new Error(e ? e.code + ": " + e.message : "the monitor answered " + r.status);
      }
      $("incident-text").textContent = r.body.text;
      $("incident-text").hidden = false;
      status.textContent = "The report of the last " + since + ", built at " + clock(Date.now()) + ".";
    }).catch(function (err) {
      // The report shown before is of another window: take it away rather than leave it unlabelled.
      status.textContent = "";
      $("incident-text").hidden = true;
      error.textContent = "Cannot build the incident report: " + err.message;
      error.hidden = false;
    }).then(function () {
      incidentBusy = false;
      $("incident-build").removeAttribute("aria-busy");
    });
  }

  function setupEvents() {
    ["event-filter", "event-scope"].forEach(function (id) { $(id).addEventListener("input", renderLines); });
    ["event-type", "event-category", "event-class"].forEach(function (id) { $(id).addEventListener("change", renderLines); });
    $("event-filters").addEventListener("submit", function (e) { e.preventDefault(); });
    $("incident-build").addEventListener("click", buildIncident);
  }
`;
