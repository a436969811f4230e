// OnCall: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // Clicking a calendar day fills the override form in place instead of reloading the page.
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.day-num, a.week-day-head");
    var form = document.getElementById("override-form");
    if (!a || !form) return;
    var cell = a.closest("[data-date]");
    if (!cell) return;
    e.preventDefault();
    var date = cell.getAttribute("data-date");
    var start = form.querySelector("input[name=start]");
    var end = form.querySelector("input[name=end]");
    var t = form.getAttribute("data-handoff") || "09:00";
    var d = new Date(date + "T00:00:00");
    d.setDate(d.getDate() + 1);
    var next = d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
    start.value = date + "T" + t;
    end.value = next + "T" + t;
    var details = document.getElementById("override");
    if (details) details.open = true;
    form.scrollIntoView({ behavior: "smooth", block: "center" });
    var who = form.querySelector("select[name=person]");
    if (who) who.focus();
  });
  // "Add override" button opens the details element.
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("[data-open]");
    if (!a) return;
    var el = document.getElementById(a.getAttribute("data-open"));
    if (el) el.open = true;
  });
  // Inline handlers would need 'unsafe-inline' in the Content-Security-Policy, so the two
  // one-liners the templates had live here. "Back" on error pages (its href is the dashboard
  // for when there is no history or no script):
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("[data-back]");
    if (!a || window.history.length < 2) return;
    e.preventDefault();
    window.history.back();
  });
  // The calendar feed address selects itself when clicked, ready to copy.
  document.addEventListener("click", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-select-on-click")) e.target.select();
  });
  // Confirm destructive forms.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
})();
