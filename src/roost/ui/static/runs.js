/* Runs table: the Compare button's count, nested runs that expand under their parent, a remembered column picker. */
(function () {
  "use strict";
  var form = document.getElementById("compare-form");
  if (!form) return;
  var btn = document.getElementById("compare-btn");
  function update() {
    var n = form.querySelectorAll("input[name=runs]:checked").length;
    btn.disabled = n < 2 || n > Number(btn.getAttribute("data-max") || 100);
    btn.textContent = n ? "Compare " + n + " selected" : "Compare selected";
  }
  form.addEventListener("change", function (ev) { if (ev.target.name === "runs") update(); });
  update();

  // nested runs: a parent's ▸ shows its children; collapsing hides the whole subtree
  function setOpen(id, open) {
    form.querySelectorAll("tr.child").forEach(function (tr) {
      if (tr.getAttribute("data-parent") !== id) return;
      tr.hidden = !open;
      var sub = tr.querySelector("button.expand");
      if (sub && !open) { setOpen(tr.getAttribute("data-run-id"), false); sub.setAttribute("aria-expanded", "false"); sub.textContent = sub.textContent.replace("▾", "▸"); }
    });
  }
  form.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button.expand") : null;
    if (!b) return;
    var open = b.getAttribute("aria-expanded") !== "true";
    b.setAttribute("aria-expanded", open ? "true" : "false");
    b.textContent = b.textContent.replace(open ? "▸" : "▾", open ? "▾" : "▸");
    setOpen(b.getAttribute("data-run"), open);
  });

  // column picker: choices kept in localStorage per experiment (key roost.runs.columns:<experiments, or *>:
  // {field: shown}), so each experiment keeps its own columns
  var table = document.getElementById("runs-table");
  var picker = document.getElementById("col-picker");
  if (!picker || !table) return;
  var KEY = "roost.runs.columns:" + (picker.getAttribute("data-scope") || "*");
  function load() { try { return JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; } }
  function show(field, on) {
    table.querySelectorAll("[data-col]").forEach(function (c) { if (c.getAttribute("data-col") === field) c.hidden = !on; });
  }
  var saved = load(), boxes = picker.querySelectorAll("input[data-col]"), defaults = {};
  boxes.forEach(function (box) {
    var f = box.getAttribute("data-col");
    defaults[f] = box.checked;
    if (Object.prototype.hasOwnProperty.call(saved, f)) box.checked = !!saved[f];
    show(f, box.checked);
  });
  picker.addEventListener("change", function (ev) {
    var box = ev.target, f = box.getAttribute("data-col");
    if (!f) return;
    ev.stopPropagation();
    var s = load();
    s[f] = box.checked;
    try { localStorage.setItem(KEY, JSON.stringify(s)); } catch (e) { /* private mode: not remembered */ }
    show(f, box.checked);
  });
  document.getElementById("col-reset").addEventListener("click", function () {
    var s = load();
    boxes.forEach(function (box) { var f = box.getAttribute("data-col"); delete s[f]; box.checked = defaults[f]; show(f, box.checked); });
    try { localStorage.setItem(KEY, JSON.stringify(s)); } catch (e) { /* not remembered */ }
  });
})();
