/* The model page: the metric column picker (remembered per model in localStorage) and the traffic charts. */
(function () {
  "use strict";
  var picker = document.getElementById("metric-picker");
  if (picker) {
    var key = "roost.model.metrics." + picker.getAttribute("data-model");
    var defaults = JSON.parse(picker.getAttribute("data-default") || "[]");
    var boxes = Array.prototype.slice.call(picker.querySelectorAll("input[type=checkbox]"));
    var apply = function (shown) {
      boxes.forEach(function (b) { b.checked = shown.indexOf(b.value) >= 0; });
      document.querySelectorAll("#versions [data-col]").forEach(function (c) {
        c.hidden = shown.indexOf(c.getAttribute("data-col")) < 0;
      });
    };
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { saved = null; }
    if (Array.isArray(saved)) apply(saved);
    boxes.forEach(function (b) {
      b.addEventListener("change", function () {
        var shown = boxes.filter(function (x) { return x.checked; }).map(function (x) { return x.value; });
        try { localStorage.setItem(key, JSON.stringify(shown)); } catch (e) { /* private mode: not remembered */ }
        apply(shown);
      });
    });
    var reset = picker.querySelector("[data-reset]");
    if (reset) reset.addEventListener("click", function () { localStorage.removeItem(key); apply(defaults); });
  }
  document.querySelectorAll(".charts[data-charts]").forEach(function (box) {
    if (!window.roostCharts || box.getAttribute("data-ready")) return;  // chart.js drew it already
    JSON.parse(box.getAttribute("data-charts") || "[]").forEach(function (c) { window.roostCharts.draw(box, c); });
    box.setAttribute("data-ready", "1");
  });
})();
