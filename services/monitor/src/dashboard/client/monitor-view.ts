/**
 * The Monitor view of the dashboard script: a small chart per metric (its samples, its
 * threshold, its state) and per trend series, the trends the monitor found, the actions taken,
 * and each kind's bottleneck stage. Every chart has a text alternative: its caption says the
 * last value and the threshold.
 */

/** Draws the Monitor view. */
// biome-ignore lint/complexity/noUselessStringRaw: every part is raw, so an escape added later (a \n in a string) reaches the browser as written.
export const MONITOR_JS = String.raw`
  // How a trend series' values read: heap in bytes, latency in seconds, throughput per second.
  function seriesValue(series, v) {
    if (v === null || v === undefined) return "–";
    if (series.indexOf("heap:") === 0) return (v / 1048576).toFixed(1) + " MB";
    if (series === "task_latency") return amount(v) + " s";
    if (series === "throughput") return amount(v) + " /s";
    return amount(v);
  }

  function renderMetricCharts(s) {
    var h = s.history;
    replace($("metric-charts"), s.metrics.map(function (m) {
      var values = h.values[m.metric] || [];
      var samples = values.filter(function (v) { return typeof v === "number"; }).length;
      var label = m.metric + " over the last " + samples + " samples; now " + amount(m.value) + ", threshold " + m.threshold;
      return el("figure", { "class": "chart-card", "data-metric": m.metric, "data-state": m.state }, [
        el("figcaption", {}, [
          el("span", { "class": "chart-name", text: m.metric }), " ",
          el("span", { "class": "chart-facts" }, [
            badge("state", m.state), " now ", el("strong", { "class": "chart-value", text: amount(m.value) }),
            el("span", { "class": "muted", text: ", threshold " + m.threshold }),
          ]),
        ]),
        chart(label, h.at, values, m.threshold),
      ]);
    }));
  }

  function renderTrendCharts(s) {
    fillList($("trend-charts"), s.trends.map(function (t) {
      var last = t.values.length ? t.values[t.values.length - 1] : null;
      var label = t.series + " over the last " + t.values.length + " samples; now " + seriesValue(t.series, last);
      return el("figure", { "class": "chart-card", "data-series": t.series }, [
        el("figcaption", {}, [
          el("span", { "class": "chart-name", text: t.series }), " now ",
          el("strong", { "class": "chart-value", text: seriesValue(t.series, last) }),
        ]),
        chart(label, t.at, t.values, null),
      ]);
    }));
  }

  // One line for a trend event: which series moved, which way, by how much, over how long.
  function trendText(d) {
    if (!d || typeof d.series !== "string") return shortJson(d, 140);
    var text = d.series + " " + d.direction + " " + (d.relativeChange * 100).toFixed(0) + " % over " +
      duration(d.windowMs) + " (confidence " + num(d.confidence, 3) + ", " + d.samples + " samples)";
    if (typeof d.bytesPerMinute === "number") text += ", " + (d.bytesPerMinute / 1048576).toFixed(2) + " MB/min";
    return text;
  }

  function eventItem(l, description) {
    return el("li", { "data-type": l.type, "data-scope": l.scope, "data-class": l["class"] }, [
      timeEl(l.at), " ", el("strong", { text: l.type }), " ", el("span", { "class": "scope", text: l.scope }),
      el("span", { "class": "description", text: description }),
    ]);
  }

  function renderBottlenecks(s) {
    fillBody($("bottlenecks"), s.bottlenecks.map(function (k) {
      return el("tr", { "data-kind": k.kind }, [
        rowHead(k.kind), td(k.bottleneck === null ? "none measured" : k.bottleneck), td(pct(k.share)),
        td(amount(k.bottleneckSeconds)), td(amount(k.totalSeconds)), td(k.tasks),
      ]);
    }), "no stage times measured yet");
  }

  function renderMonitor(s) {
    renderMetricCharts(s);
    renderTrendCharts(s);
    fillList($("trends-found"), s.recent.trends.map(function (l) { return eventItem(l, trendText(l.data)); }));
    fillList($("actions-taken"), s.recent.actions.map(function (l) { return eventItem(l, shortJson(l.data, 140)); }));
    renderBottlenecks(s);
  }
`;
