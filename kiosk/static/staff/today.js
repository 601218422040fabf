// Today at a glance: fetch the figures every minute and put them in place.
// The page works without this script (the "Jetzt aktualisieren" link reloads it).
// The button pauses and resumes the updates (WCAG 2.2.1: timing adjustable).
(function () {
  "use strict";
  var live = document.getElementById("today-live");
  var button = document.getElementById("autorefresh");
  if (!live || !button || !window.fetch) {
    return;
  }
  var every = Math.max(10, Number(live.dataset.every) || 60) * 1000;
  var timer = null;

  function update() {
    fetch(live.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401) {  // the session ended
          // On the van's touchscreen the next person is a visitor: back to the check-in,
          // and never over the idle return's own logout already under way.
          var kiosk = document.querySelector("form.to-kiosk");
          if (!kiosk) {
            window.location.href = live.dataset.login;
          } else if (!kiosk.getAttribute("data-sent")) {
            window.location.href = kiosk.dataset.home || "/";
          }
          return null;
        }
        return resp.ok ? resp.text() : null;
      })
      .then(function (html) {
        if (html) {
          live.innerHTML = html;
        }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }

  function start() {
    timer = window.setInterval(update, every);
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Automatisch aktualisieren: an";
  }

  function stop() {
    window.clearInterval(timer);
    timer = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Automatisch aktualisieren: aus";
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    if (timer === null) {
      update();
      start();
    } else {
      stop();
    }
  });
  start();
}());
