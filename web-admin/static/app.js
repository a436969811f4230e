// OnCall: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // Clicking a calendar day fills the override form in place instead of reloading the page:
  // the day number, a shift, or any empty part of the day's cell (issue 18 item 9).
  document.addEventListener("click", function (e) {
    var form = document.getElementById("override-form");
    var cell = form && e.target.closest && e.target.closest("#calendar[data-clickable] [data-date]");
    if (!cell) return;
    var link = e.target.closest("a, button, input, select, textarea");
    if (link && !link.matches("a.day-num, a.week-day-head")) return;
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
  // Request lists refresh themselves (issue 18 item 6): every `data-refresh` seconds the page is fetched again and
  // the table's rows replaced, unless the viewer is playing a message in it.
  document.querySelectorAll("table[data-refresh][id]").forEach(function (table) {
    var secs = parseInt(table.getAttribute("data-refresh"), 10);
    if (!(secs > 0)) return;
    setInterval(function () {
      if (document.hidden) return;
      var playing = Array.prototype.some.call(table.querySelectorAll("audio"), function (a) { return !a.paused; });
      if (playing) return;
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(table.id);
          var body = fresh && fresh.querySelector("tbody");
          if (body) table.querySelector("tbody").replaceWith(body);
        })
        .catch(function () {});
    }, secs * 1000);
  });
})();
