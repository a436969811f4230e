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

// The browser phone (issue 19): while "Take pages in this browser" is on, this tab keeps a WebSocket to the
// server (reconnecting after a reload, a network drop or a server restart), rings for a page and takes the page
// call over WebRTC: the same keys as on a phone, by button or keyboard.
(function () {
  "use strict";
  var root = document.getElementById("browser-phone");
  if (!root) return;
  var box = document.getElementById("phone-on");
  var status = document.getElementById("phone-status");
  var panel = document.getElementById("phone-call");
  var what = document.getElementById("phone-what");
  var ringing = panel.querySelector(".phone-ringing");
  var keys = panel.querySelector(".phone-keys");
  // The caller's voice: an element of its own, outside the page (which has its own players).
  var audio = new Audio();
  audio.autoplay = true;
  var ws = null, retry = 1000, leg = null, pc = null, mic = null, ring = null, notice = null, sound = null;
  var STORE = "oncall-browser-phone";

  function say(text, state) { status.textContent = text; if (state) root.setAttribute("data-state", state); }
  function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }

  function connect() {
    if (!box.checked || ws) return;
    say("Connecting…", "connecting");
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/phone/ws");
    ws.onmessage = function (e) {
      var m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m.type === "ready") { retry = 1000; say("Ready: pages for " + m.name + " ring here too.", "ready"); }
      else if (m.type === "ring") ringFor(m);
      else if (m.type === "answer" && m.leg === leg && pc) pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).catch(function (err) { hangUp("The call could not start: " + err); });
      else if (m.type === "ended" && m.leg === leg) endCall(m.reason);
    };
    ws.onclose = function (e) {
      ws = null;
      endCall(null);
      if (e.code >= 4400 && e.code < 4600) {
        // Refused for a reason a retry will not fix (logged out, another origin): say it and stop.
        box.checked = false;
        say(e.reason || "The server refused this browser phone.", "refused");
        return;
      }
      if (!box.checked) { say("Off: pages ring your phones only.", "off"); return; }
      say("Connection lost; reconnecting…", "connecting");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  function ringFor(m) {
    if (leg !== null) { send({ type: "hang_up", leg: m.leg }); return; }
    leg = m.leg;
    var secs = m.message_secs ? ", a " + m.message_secs + " s message" : "";
    what.textContent = "Page from " + (m.caller || "a caller") + (m.organization ? " (" + m.organization + ")" : "") + secs + ".";
    panel.hidden = false; ringing.hidden = false; keys.hidden = true;
    say("Ringing…", "ringing");
    startRingtone();
    if (window.Notification && Notification.permission === "granted" && document.hidden) {
      notice = new Notification("OnCall page", { body: what.textContent, requireInteraction: true });
      notice.onclick = function () { window.focus(); };
    }
  }

  function startRingtone() {
    try {
      sound = sound || new (window.AudioContext || window.webkitAudioContext)();
      var on = true;
      var beep = function () {
        if (!on) return;
        var o = sound.createOscillator(), g = sound.createGain();
        o.frequency.value = 480; g.gain.value = 0.1;
        o.connect(g); g.connect(sound.destination);
        o.start(); o.stop(sound.currentTime + 0.8);
      };
      beep();
      var timer = setInterval(beep, 2000);
      ring = function () { on = false; clearInterval(timer); };
    } catch (err) { ring = null; }
  }
  function stopRinging() { if (ring) ring(); ring = null; if (notice) notice.close(); notice = null; }

  function answer() {
    if (leg === null) return;
    stopRinging();
    say("Connecting the call…", "answering");
    var mine = leg;
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      mic = stream;
      pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
      stream.getTracks().forEach(function (t) { pc.addTrack(t, stream); });
      pc.ontrack = function (e) { audio.srcObject = e.streams[0] || new MediaStream([e.track]); };
      pc.onconnectionstatechange = function () {
        if (pc && pc.connectionState === "connected") say("On the call: listen, then press a key.", "in-call");
        if (pc && pc.connectionState === "failed") hangUp("The call's audio could not get through.");
      };
      return pc.createOffer().then(function (o) { return pc.setLocalDescription(o); }).then(gathered).then(function () {
        if (leg === mine) send({ type: "accept", leg: mine, offer: pc.localDescription.sdp });
      });
    }).catch(function (err) { hangUp("No microphone: " + err.message); });
    ringing.hidden = true; keys.hidden = false;
  }

  // The server is ICE-lite and takes no trickled candidates: the offer goes once gathering is done (or after 2 s).
  function gathered() {
    return new Promise(function (done) {
      if (pc.iceGatheringState === "complete") return done();
      var t = setTimeout(done, 2000);
      pc.addEventListener("icegatheringstatechange", function () { if (pc && pc.iceGatheringState === "complete") { clearTimeout(t); done(); } });
    });
  }

  function hangUp(reason) { if (leg !== null) send({ type: "hang_up", leg: leg }); endCall(reason); }
  function endCall(reason) {
    stopRinging();
    if (pc) pc.close();
    if (mic) mic.getTracks().forEach(function (t) { t.stop(); });
    pc = null; mic = null; leg = null;
    audio.srcObject = null;
    panel.hidden = true;
    if (reason) say(reason + (ws ? " Ready for the next page." : ""), ws ? "ready" : root.getAttribute("data-state"));
  }
  function key(k) { if (leg !== null && pc) send({ type: "key", leg: leg, key: k }); }

  document.getElementById("phone-answer").addEventListener("click", answer);
  document.getElementById("phone-decline").addEventListener("click", function () { hangUp("Declined."); });
  document.getElementById("phone-hangup").addEventListener("click", function () { hangUp("Hung up."); });
  keys.addEventListener("click", function (e) { var b = e.target.closest("[data-key]"); if (b) key(b.getAttribute("data-key")); });
  document.addEventListener("keydown", function (e) {
    if (leg === null || e.target.closest("input, textarea, select")) return;
    if (/^[0-9*#]$/.test(e.key) && pc) { key(e.key); e.preventDefault(); }
    else if (e.key === "Enter" && !ringing.hidden) { answer(); e.preventDefault(); }
  });
  box.addEventListener("change", function () {
    localStorage.setItem(STORE, box.checked ? "on" : "off");
    if (box.checked) {
      if (window.Notification && Notification.permission === "default") Notification.requestPermission();
      connect();
    } else if (ws) {
      hangUp(null);
      ws.close(1000);
    }
  });
  box.checked = localStorage.getItem(STORE) === "on";
  connect();
  // For support and tests: the call's WebRTC statistics (`window.oncallPhone.stats()` in the console).
  window.oncallPhone = { stats: function () { return pc ? pc.getStats() : Promise.resolve(null); } };
})();
