/* roost step charts: small hand-written SVG line charts fed by /api/charts (no external library).
   The server splits curves by what their step counts (epoch, boosting round, mini-batch), picks the y range
   (never blown up for tiny differences) and leaves one-point metrics to bars. Here: the x-axis choice (step,
   epoch, wall time, relative time) and a log-scale y. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  var W = 640, H = 280, M = {l: 64, r: 16, t: 12, b: 36};

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function ticks(lo, hi, n) {
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = n / span * step;
    if (err <= 0.15) step *= 10; else if (err <= 0.35) step *= 5; else if (err <= 0.75) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "";
    var a = Math.abs(v);
    if (a !== 0 && a < 1e-3) return v.toExponential(2);
    if (a >= 1e4) return v.toLocaleString("en-US", {maximumFractionDigits: 0});  // 18,830 not 1.883e+04
    return String(+v.toPrecision(5));
  }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function fmtTime(ms, span) {
    var d = new Date(ms);
    var day = d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate());
    var hm = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
    if (span === undefined) return day + " " + hm + ":" + pad2(d.getUTCSeconds()) + " UTC";
    return span > 3 * 86400000 ? day : (span > 86400000 ? day.slice(5) + " " + hm : hm);
  }

  function domain(vals, pad) {  // pad: the half-width around a single value (default 10 % of it)
    var lo = Infinity, hi = -Infinity;
    vals.forEach(function (v) { if (v !== null) { if (v < lo) lo = v; if (v > hi) hi = v; } });
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { var d = pad || Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
    return [lo, hi];
  }

  function nearest(steps, s) {
    var a = 0, b = steps.length - 1;
    while (b - a > 1) { var m = (a + b) >> 1; if (steps[m] < s) a = m; else b = m; }
    return Math.abs(steps[a] - s) <= Math.abs(steps[b] - s) ? a : b;
  }

  // the x of each point under the chosen axis: {xs, label, isTime} or null when the series has no such x
  function xOf(chart, s, mode) {
    var kindLabel = chart.x_label || "step";
    if (mode === "wall" && s.times && s.times.length === s.steps.length) {
      return {xs: s.times, label: "wall time (UTC)", isTime: true};
    }
    if (mode === "relative" && s.times && s.times.length === s.steps.length) {
      var t0 = s.start !== null && s.start !== undefined ? s.start : s.times[0];
      return {xs: s.times.map(function (t) { return (t - t0) / 1000; }), label: "seconds since the run started", isTime: false};
    }
    if (mode === "epoch" && chart.kind === "batch" && s.steps_per_epoch) {
      return {xs: s.steps.map(function (st) { return st / s.steps_per_epoch; }), label: "epoch (from mini-batch steps)", isTime: false};
    }
    if (mode === "epoch" && chart.kind !== "epoch") {
      return {xs: s.steps, label: kindLabel + " (no epochs)", isTime: chart.x_type === "time"};
    }
    return {xs: s.steps, label: chart.x_label || (chart.x_type === "time" ? "time (UTC)" : "step"), isTime: chart.x_type === "time"};
  }

  function draw(container, chart, opts) {
    opts = opts || {};  // pages that embed payloads (traffic, monitoring) draw on the chart's own x-axis
    var key = chart.key, mode = opts.x || "step";
    var logY = !!opts.log && chart.log_ok;
    var series = chart.series.map(function (s) {
      var got = xOf(chart, s, mode);
      var vals = logY ? s.values.map(function (v) { return v === null ? null : Math.log10(v); }) : s.values;
      return {id: s.id, label: s.label, steps: got.xs, raw: s.values, values: vals, xlabel: got.label, isTime: got.isTime};
    });
    var isTime = series.length ? series[0].isTime : chart.x_type === "time";
    var xLabel = series.length ? series[0].xlabel : (chart.x_label || "step");
    var fig = document.createElement("figure");
    fig.className = "chart";
    fig.setAttribute("data-metric", key);
    fig.setAttribute("data-kind", chart.kind || "step");
    var cap = document.createElement("figcaption");
    cap.textContent = (chart.title || key) + (chart.split ? " · by " + (chart.x_label || "step") : "") + (logY ? " (log scale)" : "");
    fig.appendChild(cap);
    var allS = [], allV = [];
    series.forEach(function (s) { allS = allS.concat(s.steps); allV = allV.concat(s.values); });
    var xd = domain(allS, isTime ? 3600000 : 0), yd = logY ? domain(allV) : (chart.y_range || domain(allV));
    var xfmt = isTime ? function (t) { return fmtTime(t, xd[1] - xd[0]); } : fmt;
    var yfmt = logY ? function (t) { return fmt(Math.pow(10, t)); } : fmt;
    var x = function (v) { return M.l + (v - xd[0]) / (xd[1] - xd[0]) * (W - M.l - M.r); };
    var y = function (v) { return H - M.b - (v - yd[0]) / (yd[1] - yd[0]) * (H - M.t - M.b); };
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "class": "chart-svg",
                         "aria-label": key + " by " + xLabel, "data-x": isTime ? "time" : "step",
                         "data-xlabel": xLabel, "data-scale": logY ? "log" : "linear",
                         "data-xmin": xd[0], "data-xmax": xd[1], "data-ymin": yd[0], "data-ymax": yd[1]}, fig);
    var axes = el("g", {"class": "axes"}, svg);
    ticks(yd[0], yd[1], 5).forEach(function (t) {
      el("line", {x1: M.l, x2: W - M.r, y1: y(t), y2: y(t), "class": "grid"}, axes);
      el("text", {x: M.l - 6, y: y(t) + 4, "text-anchor": "end"}, axes).textContent = yfmt(t);
    });
    var wholeX = !isTime && mode !== "relative" && !(mode === "epoch" && chart.kind === "batch");
    ticks(xd[0], xd[1], isTime ? 4 : 6).filter(function (t) { return !wholeX || Math.round(t) === t; }).forEach(function (t) {
      el("line", {x1: x(t), x2: x(t), y1: H - M.b, y2: H - M.b + 4, "class": "tick"}, axes);
      el("text", {x: x(t), y: H - M.b + 16, "text-anchor": "middle"}, axes).textContent = xfmt(t);
    });
    el("line", {x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, "class": "axis"}, axes);
    el("line", {x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, "class": "axis"}, axes);
    el("text", {x: (M.l + W - M.r) / 2, y: H - 4, "text-anchor": "middle", "class": "label"}, axes).textContent = xLabel;
    (mode === "step" || (mode === "epoch" && chart.kind === "epoch") ? (chart.markers || []) : []).forEach(function (mk) {
      var i = series.findIndex(function (s) { return s.id === mk.id; });
      var color = COLORS[(i < 0 ? 0 : i) % COLORS.length];
      var g = el("g", {"class": "best-marker", "data-run": mk.id, "data-step": mk.step}, svg);
      el("line", {x1: x(mk.step), x2: x(mk.step), y1: M.t, y2: H - M.b, stroke: color, "stroke-dasharray": "2 4"}, g);
      var s = series[i < 0 ? 0 : i], j = s.steps.indexOf(mk.step);
      if (j >= 0 && s.values[j] !== null) {
        el("circle", {cx: x(mk.step), cy: y(s.values[j]), r: 4.5, fill: "#fff", stroke: color, "stroke-width": 2}, g);
      }
      el("title", {}, g).textContent = (series.length > 1 ? s.label + ": " : "") + mk.label;
    });
    (chart.thresholds || []).forEach(function (th) {  // a check's threshold: a dashed horizontal line
      var g = el("g", {"class": "threshold", "data-value": th.value}, svg);
      el("line", {x1: M.l, x2: W - M.r, y1: y(th.value), y2: y(th.value), stroke: "#b91c1c", "stroke-dasharray": "6 4",
                  "stroke-width": 1.5}, g);
      el("text", {x: W - M.r - 4, y: y(th.value) - 4, "text-anchor": "end", "class": "threshold-label"}, g).textContent = th.label || ("threshold " + fmt(th.value));
      el("title", {}, g).textContent = th.label || ("threshold " + fmt(th.value));
    });
    series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length], d = "", pen = "M", n = 0;
      s.steps.forEach(function (st, j) {
        var v = s.values[j];
        if (v === null) { pen = "M"; return; }
        d += pen + x(st).toFixed(1) + " " + y(v).toFixed(1) + " "; pen = "L"; n++;
      });
      var p = el("path", {d: d.trim(), stroke: color, fill: "none", "stroke-width": 1.8, "class": "series",
                          "data-run": s.id, "data-points": n}, svg);
      el("title", {}, p).textContent = s.label;
      if (chart.dots) {  // one dot per point (a monitor run each)
        s.steps.forEach(function (st, j) {
          if (s.values[j] === null) return;
          el("circle", {cx: x(st), cy: y(s.values[j]), r: 3.5, fill: color, "class": "series-point", "data-run": s.id}, svg);
        });
      } else if (n === 1) {
        var j = s.values.findIndex(function (v) { return v !== null; });
        el("circle", {cx: x(s.steps[j]), cy: y(s.values[j]), r: 3.5, fill: color, "class": "series-point"}, svg);
      }
    });
    var cursor = el("line", {y1: M.t, y2: H - M.b, "class": "cursor", visibility: "hidden"}, svg);
    var readout = document.createElement("div");
    readout.className = "readout muted";
    readout.textContent = "\u00a0";
    svg.addEventListener("mousemove", function (ev) {
      var r = svg.getBoundingClientRect(), px = (ev.clientX - r.left) * W / r.width;
      var step = xd[0] + (px - M.l) / (W - M.l - M.r) * (xd[1] - xd[0]);
      var parts = [];
      series.forEach(function (s) {
        if (!s.steps.length) return;
        var j = nearest(s.steps, step);
        var at = isTime ? fmtTime(s.steps[j]) : xLabel + " " + fmt(s.steps[j]);
        parts.push((series.length > 1 ? s.label + " " : "") + at + ": " + fmt(s.raw[j]));
      });
      cursor.setAttribute("x1", px); cursor.setAttribute("x2", px); cursor.setAttribute("visibility", "visible");
      readout.textContent = parts.join("   ·   ");
    });
    svg.addEventListener("mouseleave", function () { cursor.setAttribute("visibility", "hidden"); });
    fig.appendChild(readout);
    if (series.length > 1 || chart.split) {  // a split chart names its run even when it holds one
      var legend = document.createElement("div");
      legend.className = "legend";
      series.forEach(function (s, i) {
        var item = document.createElement("span");
        var sw = document.createElement("i");
        sw.style.background = COLORS[i % COLORS.length];
        item.appendChild(sw);
        item.appendChild(document.createTextNode(s.label));
        legend.appendChild(item);
      });
      fig.appendChild(legend);
    }
    container.appendChild(fig);
  }

  // one-point metrics (a final score): a bar per run with its value written on it, not a dot at step 0
  function drawBars(container, fin) {
    var fig = document.createElement("figure");
    fig.className = "chart finals";
    fig.setAttribute("data-metric", fin.key);
    var cap = document.createElement("figcaption");
    cap.textContent = fin.key + " · final value";
    fig.appendChild(cap);
    var vals = fin.values.map(function (v) { return v.value; });
    var lo = Math.min(0, Math.min.apply(null, vals)), hi = Math.max(0, Math.max.apply(null, vals));
    if (lo === hi) hi = lo + 1;
    var row = 22, LW = 150, BW = W - LW - 70, h = fin.values.length * row + 8;
    var svg = el("svg", {viewBox: "0 0 " + W + " " + h, width: W, height: h, role: "img", "class": "chart-svg bars",
                         "aria-label": fin.key + ": final value per run"}, fig);
    var zero = LW + (0 - lo) / (hi - lo) * BW;
    fin.values.forEach(function (v, i) {
      var yy = 4 + i * row, xv = LW + (v.value - lo) / (hi - lo) * BW;
      var label = v.label.length > 22 ? v.label.slice(0, 21) + "…" : v.label;
      el("text", {x: LW - 6, y: yy + 14, "text-anchor": "end"}, svg).textContent = label;
      var bar = el("rect", {x: Math.min(zero, xv), y: yy + 3, width: Math.max(1, Math.abs(xv - zero)), height: row - 8,
                            fill: COLORS[i % COLORS.length], "class": "bar", "data-run": v.id, "data-value": v.value}, svg);
      el("title", {}, bar).textContent = v.label + ": " + fmt(v.value);
      el("text", {x: Math.max(zero, xv) + 4, y: yy + 14}, svg).textContent = fmt(v.value);
    });
    container.appendChild(fig);
  }

  function controls(container, state, redraw) {
    var bar = document.createElement("div");
    bar.className = "chart-controls";
    var id = (container.id || "charts") + "-x";
    var lab = document.createElement("label");
    lab.setAttribute("for", id);
    lab.textContent = "x axis ";
    var sel = document.createElement("select");
    sel.id = id;
    [["step", "step (as logged)"], ["epoch", "epoch"], ["wall", "wall time"], ["relative", "relative time"]].forEach(function (o) {
      var opt = document.createElement("option");
      opt.value = o[0]; opt.textContent = o[1];
      sel.appendChild(opt);
    });
    sel.value = state.x;
    lab.appendChild(sel);
    var logLab = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox"; box.id = (container.id || "charts") + "-log"; box.checked = !!state.log;
    logLab.appendChild(box);
    logLab.appendChild(document.createTextNode(" log scale"));
    sel.addEventListener("change", function () { state.x = sel.value; redraw(); });
    box.addEventListener("change", function () { state.log = box.checked; redraw(); });
    bar.appendChild(lab);
    bar.appendChild(logLab);
    return bar;
  }

  function render(container, payload, state) {
    container.textContent = "";
    if (payload.charts.length) container.appendChild(controls(container, state, function () { render(container, payload, state); }));
    payload.charts.forEach(function (c) { draw(container, c, state); });
    var multi = JSON.parse(container.getAttribute("data-runs") || "[]").length > 1;
    (multi ? payload.finals || [] : []).forEach(function (f) { if (f.values.length > 1) drawBars(container, f); });
    if (!payload.charts.length) {
      var p = document.createElement("p");
      p.className = "empty";
      p.textContent = container.getAttribute("data-empty") || "No metric logged at more than one step.";
      container.appendChild(p);
    }
    if (payload.final.length) {
      var note = document.createElement("p");
      note.className = "muted final-note";
      note.textContent = "Single-value metrics (" + payload.final.join(", ") + ") are in the metrics table above.";
      container.appendChild(note);
    }
    if (state.log && payload.charts.some(function (c) { return !c.log_ok; })) {
      var warn = document.createElement("p");
      warn.className = "muted log-note";
      warn.textContent = "Charts with zero or negative values stay linear.";
      container.appendChild(warn);
    }
    container.setAttribute("data-ready", "1");
  }

  function load(container) {
    var runs = JSON.parse(container.getAttribute("data-runs") || "[]");
    var ids = runs.map(function (r) { return encodeURIComponent(r.id); }).join(",");
    fetch("/api/charts?runs=" + ids, {credentials: "same-origin"})
      .then(function (resp) { if (!resp.ok) throw new Error("HTTP " + resp.status); return resp.json(); })
      .then(function (payload) { render(container, payload, {x: "step", log: false}); })
      .catch(function (err) {
        container.textContent = "Could not load metrics: " + err.message;
        container.setAttribute("data-ready", "error");
      });
  }

  window.roostCharts = {draw: draw};  // for pages that embed their chart payloads (the model page's traffic)
  document.querySelectorAll(".charts[data-runs]").forEach(load);
  // charts the server put in the page (monitoring history): data-charts holds the payloads
  document.querySelectorAll(".charts[data-charts]").forEach(function (container) {
    if (container.getAttribute("data-ready")) return;
    container.textContent = "";
    JSON.parse(container.getAttribute("data-charts") || "[]").forEach(function (c) { draw(container, c); });
    container.setAttribute("data-ready", "1");
  });
})();
