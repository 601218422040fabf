/* The check-in's little helper: idle reset, heartbeat and self-reload, no double submits,
   no double taps on a tile, and the service worker that shows the kiosk's own offline
   screen instead of a browser error. Everything works without it (plain forms, <noscript>
   idle refresh). No external requests. */
(function () {
  "use strict";
  var body = document.body;
  var d = body.dataset;
  var idleMs = +d.idleMs || 60000;
  var offline = d.offline === "1";  /* the "one moment" screen: poll every second */
  var beatMs = offline ? 1000 : (+d.heartbeatMs || 10000);
  var home = d.homeUrl || "/";
  var health = d.healthUrl || "/healthz";
  var isHome = d.isHome === "1";
  var refreshMs = +d.refreshMs || 900000;
  var last = Date.now();
  var down = offline;
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
        if (offline) { go(); return null; }  /* the box answers (healthy or not): start */
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
  if (offline) beat();

  /* The service worker keeps the offline screen ready (localhost is a secure context). */
  if (d.swUrl && "serviceWorker" in navigator) {
    navigator.serviceWorker.register(d.swUrl, { scope: "/" }).catch(function () {});
  }

  /* A double tap on a topic tile is one tap: a second change of the same tile within
     DOUBLE_MS is undone (a real second tap to clear it comes later than that). */
  var DOUBLE_MS = 350;
  var lastChange = { el: null, at: 0 };
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (!el || el.type !== "checkbox" || !el.closest(".tile")) return;
    var now = Date.now();
    if (lastChange.el === el && now - lastChange.at < DOUBLE_MS) {
      el.checked = !el.checked;
      lastChange = { el: null, at: 0 };
      return;
    }
    lastChange = { el: el, at: now };
  }, true);

  /* Idle reset: back to the (German) start screen; never while the server is away. */
  setInterval(function () {
    var idle = Date.now() - last;
    if (down || leaving) return;
    if (!isHome && idle >= idleMs) go();
    else if (isHome && idle >= Math.max(idleMs, refreshMs)) go();
  }, 500);

  /* The staff way in: a long press (LONG_MS) on the start screen's greeting opens the
     PIN keypad. A tap, a scroll or a short press does nothing. */
  var LONG_MS = 2000;
  var greeting = d.staffUrl && document.querySelector(".welcome h1");
  if (greeting) {
    var pressTimer = null;
    var cancel = function () { clearTimeout(pressTimer); pressTimer = null; };
    greeting.addEventListener("pointerdown", function () {
      cancel();
      pressTimer = setTimeout(function () { leaving = true; window.location.assign(d.staffUrl); }, LONG_MS);
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (e) { greeting.addEventListener(e, cancel); });
    greeting.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  }

  /* The PIN keypad: digits into the PIN field (no on-screen keyboard pops up). */
  var pin = document.getElementById("pin");
  document.querySelectorAll("[data-key]").forEach(function (b) {
    b.addEventListener("click", function () {
      var k = b.getAttribute("data-key");
      pin.value = k === "clear" ? "" : (pin.value + k).slice(0, 64);
    });
  });

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
