/**
 * The operator actions of the dashboard script, offered only when the monitor has them on
 * (`snapshot.actions`): pause, resume, cancel, freeze or unfreeze the chosen workflow, release
 * or retire a quarantined agent. Each is a `POST /dashboard/api/action` with the operator's
 * token, kept in this tab's sessionStorage only; the destructive ones (cancel, retire) ask first.
 * The reply, or why it was refused, shows in one status region.
 */

/** Operator actions: the token, the buttons' requests and their replies. */
// biome-ignore lint/complexity/noUselessStringRaw: every part is raw, so an escape added later (a \n in a string) reaches the browser as written.
export const OPERATOR_JS = String.raw`
  var TOKEN_KEY = "cadre.dashboard.operator-token";
  var ACTION_REASON = "from the dashboard";

  function renderOperator(s) {
    $("operator").hidden = !s.actions;
    $("read-only-note").hidden = s.actions;
    $("actions-note").hidden = !s.actions;
    renderWorkflowActions();
  }

  function renderWorkflowActions() {
    var on = lastSnapshot !== null && lastSnapshot.actions && selected !== null;
    $("workflow-actions").hidden = !on;
    if (on) $("workflow-actions-target").textContent = selected;
  }

  function workflowAction(op) {
    if (selected === null) return;
    var id = selected;
    if (op === "cancel" && !confirm("Cancel workflow " + id + "? Its unfinished tasks end cancelled; this cannot be undone.")) return;
    // Only a cancel records a reason (the action's schema refuses a field an op does not take).
    var body = op === "cancel" ? { op: op, workflowId: id, reason: ACTION_REASON } : { op: op, workflowId: id };
    postAction(body, op + " " + id);
  }

  function actorAction(op, actorId) {
    if (op === "retire" && !confirm("Retire " + actorId + "? It is stopped for good and takes no more tasks.")) return;
    postAction({ op: op, actorId: actorId }, op + " " + actorId);
  }

  function postAction(body, what) {
    var field = $("operator-token");
    var token = field.value.trim();
    if (token === "") {
      showResult("error", what + ": enter the operator token first.");
      field.focus();
      return;
    }
    showResult("pending", what + "…");
    fetch("/dashboard/api/action", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + token },
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (b) { return { ok: r.ok, status: r.status, body: b }; });
    }).then(function (r) {
      if (r.ok && r.body && r.body.ok) {
        showResult("ok", what + ": done" + (r.body.result === undefined ? "." : ": " + shortJson(r.body.result, 200)));
        // Show what it changed without waiting for the next snapshot.
        lastDetail = null;
        loadTree();
        return;
      }
      var e = r.body && r.body.error;
      showResult("error", what + " refused (" + r.status + (e ? " " + e.code : "") + "): " + (e ? e.message : "no reason given"));
    }).catch(function (err) {
      showResult("error", what + " failed: " + err.message);
    });
  }

  function showResult(kind, text) {
    var box = $("action-result");
    box.setAttribute("data-result", kind);
    replace(box, [el("span", { text: text }), " ", el("button", { type: "button", "class": "link", text: "Dismiss",
      onclick: function () { replace(box, []); box.removeAttribute("data-result"); } })]);
  }

  // sessionStorage can be refused (a locked-down browser): the field then just is not kept.
  function setupOperator() {
    var field = $("operator-token");
    $("operator").addEventListener("submit", function (e) { e.preventDefault(); });
    try { field.value = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { /* not kept */ }
    field.addEventListener("input", function () {
      try { sessionStorage.setItem(TOKEN_KEY, field.value); } catch (e) { /* not kept */ }
    });
    Array.prototype.forEach.call(document.querySelectorAll("#workflow-actions button[data-op]"), function (b) {
      b.addEventListener("click", function () { workflowAction(b.getAttribute("data-op")); });
    });
  }
`;
