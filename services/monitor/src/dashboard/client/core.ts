/**
 * The dashboard script's shared helpers: building elements (HTML and SVG), badges, the
 * formatting of times, numbers and JSON, keeping keyboard focus across a re-render, and the
 * small time-series chart every view draws. Part of the script client.ts assembles, so the same
 * rules hold: plain browser JavaScript, no backquotes, no dollar-brace.
 */

/** Helpers every other part of the script uses. */
export const CORE_JS = String.raw`
  var SVG_NS = "http://www.w3.org/2000/svg";

  function fill(e, attrs, children) {
    if (attrs) for (var k in attrs) {
      if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) continue;
      if (k === "text") e.textContent = attrs[k];
      else if (k === "onclick") e.addEventListener("click", attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function el(tag, attrs, children) { return fill(document.createElement(tag), attrs, children); }
  function svg(tag, attrs, children) { return fill(document.createElementNS(SVG_NS, tag), attrs, children); }
  function $(id) { return document.getElementById(id); }
  function replace(parent, children) { parent.replaceChildren.apply(parent, children); }
  function badge(kind, value) { return el("span", { "class": "badge " + kind + "-" + value, text: value }); }
  function td(text) { return el("td", { text: String(text) }); }
  function rowHead(text) { return el("th", { scope: "row", text: String(text) }); }

  // A table body that is empty says so in one row spanning its columns.
  function fillBody(table, rows, emptyText) {
    var body = table.tBodies[0];
    if (rows.length > 0) { replace(body, rows); return; }
    var cols = table.tHead ? table.tHead.rows[0].cells.length : 1;
    replace(body, [el("tr", { "class": "empty" }, [el("td", { colspan: cols, text: emptyText })])]);
  }

  // A list that is empty shows its note (the element with the list's id plus "-empty") instead.
  function fillList(list, items) {
    replace(list, items);
    var note = $(list.id + "-empty");
    if (note) note.hidden = items.length > 0;
  }

  // Re-rendering every second would take the focus from a button the keyboard is on: give it back
  // to the new element with the same data-focus.
  function keepFocus(container, render) {
    var active = document.activeElement;
    var key = active && container.contains(active) ? active.getAttribute("data-focus") : null;
    render();
    if (key === null) return;
    var again = container.querySelector("[data-focus=\"" + CSS.escape(key) + "\"]");
    if (again) again.focus();
  }

  function ago(ms, now) {
    if (ms === null || ms === undefined) return "never";
    var s = Math.max(0, Math.round((now - ms) / 1000));
    return s < 120 ? s + " s ago" : s < 7200 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
  }
  function age(ms, now) {
    var s = Math.max(0, Math.round((now - ms) / 1000));
    return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
  }
  function duration(ms) {
    if (ms < 1000) return Math.round(ms) + " ms";
    return ms < 120000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 60000) + " min";
  }
  function pad2(n) { return n < 10 ? "0" + n : String(n); }
  function clock(ms) {
    var d = new Date(ms);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }
  function timeEl(ms) {
    if (ms === null || ms === undefined) return el("span", { text: "–" });
    return el("time", { datetime: new Date(ms).toISOString(), title: new Date(ms).toString(), text: clock(ms) });
  }
  function num(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
  // As many decimals as a small value needs, none for a large one.
  function amount(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    var a = Math.abs(v);
    return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
  }
  function pct(fraction) { return (fraction * 100).toFixed(1) + " %"; }
  function shortJson(v, max) {
    var text = JSON.stringify(v);
    if (text === undefined) text = String(v);
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }
  // Task ids are paths under their workflow (wX-r-0-1): keep the start and the path's end.
  function shortId(id) { return id.length > 14 ? id.slice(0, 4) + "…" + id.slice(-8) : id; }

  var CHART_W = 240;
  var CHART_H = 60;
  var CHART_PAD = 4;

  // A small time-series chart: the finite values as one polyline (time along x), a dot at the
  // last one and, when there is a threshold, a dashed line at it. The y axis starts at 0 and
  // reaches above the higher of the values and the threshold.
  function chart(label, at, values, threshold) {
    var points = [];
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (typeof v === "number" && isFinite(v) && typeof at[i] === "number") points.push([at[i], v]);
    }
    var low = 0;
    var high = threshold === null ? 0 : threshold;
    points.forEach(function (p) { low = Math.min(low, p[1]); high = Math.max(high, p[1]); });
    if (high <= low) high = low + 1;
    high += (high - low) * 0.1;
    var t0 = points.length ? points[0][0] : 0;
    var t1 = points.length ? points[points.length - 1][0] : 0;
    function x(t) { return t1 === t0 ? CHART_W / 2 : CHART_PAD + ((t - t0) / (t1 - t0)) * (CHART_W - 2 * CHART_PAD); }
    function y(value) { return CHART_H - CHART_PAD - ((value - low) / (high - low)) * (CHART_H - 2 * CHART_PAD); }
    var parts = [svg("rect", { "class": "chart-box", x: 0, y: 0, width: CHART_W, height: CHART_H })];
    if (threshold !== null) {
      var ty = y(threshold).toFixed(1);
      parts.push(svg("line", { "class": "threshold", x1: 0, x2: CHART_W, y1: ty, y2: ty }));
    }
    if (points.length) {
      parts.push(svg("polyline", { "class": "series", points: points.map(function (p) {
        return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1);
      }).join(" ") }));
      var last = points[points.length - 1];
      parts.push(svg("circle", { "class": "last", cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 2.5 }));
    }
    return svg("svg", { "class": "chart", viewBox: "0 0 " + CHART_W + " " + CHART_H, role: "img", "aria-label": label }, parts);
  }
`;
