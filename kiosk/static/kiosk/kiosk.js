/* The check-in's little helper: idle reset, heartbeat and self-reload, no double submits.
   Everything works without it (plain forms, <noscript> idle refresh). No external requests. */
(function () {
  "use strict";
  var body = document.body;
  var d = body.dataset;
  var idleMs = +d.idleMs || 60000;
  var beatMs = +d.heartbeatMs || 10000;
  var home = d.homeUrl || "/";
  var health = d.healthUrl || "/healthz";
  var isHome = d.isHome === "1";
  var refreshMs = +d.refreshMs || 900000;
  var last = Date.now();
  var down = false;
  var leaving = false;
  var note = document.querySelector(".offline-note");

  function touched() { last = Date.now(); }
  ["pointerdown", "touchstart", "keydown", "input", "wheel"].forEach(function (e) {
    window.addEventListener(e, touched, { passive: true, capture: true });
  });

  function go() {
    if (leaving) return;
    leaving = true;
    window.location.replace(home);
  }

  function setDown(v) {
    down = v;
    if (note) note.hidden = !v;
  }

  function beat() {
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, Math.max(1000, Math.min(beatMs, 5000)));
    return fetch(health, { cache: "no-store", signal: ctl && ctl.signal, credentials: "same-origin" })
      .then(function (r) {
        clearTimeout(timer);
        if (!r.ok) throw new Error("status " + r.status);
        if (down) { setDown(false); go(); return null; }  /* the server is back: start afresh */
        return r.json();
      })
      .then(function (h) {
        /* A new tour plan (a cancelled stop): the idle start page shows it at once. */
        if (h && isHome && d.plan !== undefined && h.plan !== undefined &&
            String(h.plan) !== d.plan && Date.now() - last > 3000) go();
      })
      .catch(function () { clearTimeout(timer); setDown(true); });
  }
  setInterval(beat, beatMs);

  /* Idle reset: back to the (German) start screen; never while the server is away. */
  setInterval(function () {
    var idle = Date.now() - last;
    if (down || leaving) return;
    if (!isHome && idle >= idleMs) go();
    else if (isHome && idle >= Math.max(idleMs, refreshMs)) go();
  }, 500);

  /* One submit per form: later taps on the same screen do nothing. */
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.getAttribute("data-sent")) { e.preventDefault(); return; }
    f.setAttribute("data-sent", "1");
    body.classList.add("busy");
  }, true);
  /* Back/forward cache: a page shown again must accept a submit again. */
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) {
      body.classList.remove("busy");
      document.querySelectorAll("form[data-sent]").forEach(function (f) { f.removeAttribute("data-sent"); });
      leaving = false;
      touched();
    }
  });
})();
