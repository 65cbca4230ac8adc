/* Runs table: keep the Compare button honest about how many runs are ticked (2 to 10). */
(function () {
  "use strict";
  var form = document.getElementById("compare-form");
  if (!form) return;
  var btn = document.getElementById("compare-btn");
  function update() {
    var n = form.querySelectorAll("input[name=runs]:checked").length;
    btn.disabled = n < 2 || n > 10;
    btn.textContent = n ? "Compare " + n + " selected" : "Compare selected";
  }
  form.addEventListener("change", update);
  update();
})();
