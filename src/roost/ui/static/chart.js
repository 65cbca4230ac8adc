/* roost step charts: small hand-written SVG line charts fed by /api/runs/<id>/metrics (no external library). */
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
    return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? v.toExponential(2) : String(+v.toPrecision(5));
  }

  function domain(vals) {
    var lo = Infinity, hi = -Infinity;
    vals.forEach(function (v) { if (v !== null) { if (v < lo) lo = v; if (v > hi) hi = v; } });
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { var d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
    return [lo, hi];
  }

  function nearest(steps, s) {
    var a = 0, b = steps.length - 1;
    while (b - a > 1) { var m = (a + b) >> 1; if (steps[m] < s) a = m; else b = m; }
    return Math.abs(steps[a] - s) <= Math.abs(steps[b] - s) ? a : b;
  }

  function draw(container, key, series) {
    var fig = document.createElement("figure");
    fig.className = "chart";
    fig.setAttribute("data-metric", key);
    var cap = document.createElement("figcaption");
    cap.textContent = key;
    fig.appendChild(cap);
    var allS = [], allV = [];
    series.forEach(function (s) { allS = allS.concat(s.steps); allV = allV.concat(s.values); });
    var xd = domain(allS), yd = domain(allV);
    var ypad = (yd[1] - yd[0]) * 0.05; yd = [yd[0] - ypad, yd[1] + ypad];
    var x = function (v) { return M.l + (v - xd[0]) / (xd[1] - xd[0]) * (W - M.l - M.r); };
    var y = function (v) { return H - M.b - (v - yd[0]) / (yd[1] - yd[0]) * (H - M.t - M.b); };
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "class": "chart-svg",
                         "aria-label": key + " by step"}, fig);
    var axes = el("g", {"class": "axes"}, svg);
    ticks(yd[0], yd[1], 5).forEach(function (t) {
      el("line", {x1: M.l, x2: W - M.r, y1: y(t), y2: y(t), "class": "grid"}, axes);
      el("text", {x: M.l - 6, y: y(t) + 4, "text-anchor": "end"}, axes).textContent = fmt(t);
    });
    ticks(xd[0], xd[1], 6).filter(function (t) { return Math.round(t) === t || xd[1] - xd[0] < 6; }).forEach(function (t) {
      el("line", {x1: x(t), x2: x(t), y1: H - M.b, y2: H - M.b + 4, "class": "tick"}, axes);
      el("text", {x: x(t), y: H - M.b + 16, "text-anchor": "middle"}, axes).textContent = fmt(t);
    });
    el("line", {x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, "class": "axis"}, axes);
    el("line", {x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, "class": "axis"}, axes);
    el("text", {x: (M.l + W - M.r) / 2, y: H - 4, "text-anchor": "middle", "class": "label"}, axes).textContent = "step";
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
      if (n === 1) {
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
        parts.push((series.length > 1 ? s.label + " " : "") + "step " + s.steps[j] + ": " + fmt(s.values[j]));
      });
      cursor.setAttribute("x1", px); cursor.setAttribute("x2", px); cursor.setAttribute("visibility", "visible");
      readout.textContent = parts.join("   ·   ");
    });
    svg.addEventListener("mouseleave", function () { cursor.setAttribute("visibility", "hidden"); });
    fig.appendChild(readout);
    if (series.length > 1) {
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

  function load(container) {
    var runs = JSON.parse(container.getAttribute("data-runs") || "[]");
    var names = {};
    runs.forEach(function (r) { names[r.name] = (names[r.name] || 0) + 1; });
    Promise.all(runs.map(function (r) {
      return fetch("/api/runs/" + encodeURIComponent(r.id) + "/metrics", {credentials: "same-origin"})
        .then(function (resp) { if (!resp.ok) throw new Error("HTTP " + resp.status); return resp.json(); });
    })).then(function (payloads) {
      container.textContent = "";
      var keys = {};
      payloads.forEach(function (p) { Object.keys(p.metrics).forEach(function (k) { keys[k] = true; }); });
      Object.keys(keys).sort().forEach(function (k) {
        var series = payloads.map(function (p, i) {
          var m = p.metrics[k] || {steps: [], values: []};
          var r = runs[i];
          return {id: r.id, label: names[r.name] > 1 ? r.name + " (" + r.id.slice(0, 8) + ")" : r.name,
                  steps: m.steps, values: m.values};
        });
        draw(container, k, series);
      });
      if (!Object.keys(keys).length) container.textContent = "No metric history.";
      container.setAttribute("data-ready", "1");
    }).catch(function (err) {
      container.textContent = "Could not load metrics: " + err.message;
      container.setAttribute("data-ready", "error");
    });
  }

  document.querySelectorAll(".charts[data-runs]").forEach(load);
})();
