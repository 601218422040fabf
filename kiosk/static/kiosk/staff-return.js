/* The staff area on the van's touchscreen (login "touchscreen"): after data-idle-ms
   without a touch it logs out and returns to the check-in, so no staff page is left
   on the screen for the next visitor. */
(function () {
  "use strict";
  var me = document.currentScript;
  var idleMs = +(me && me.getAttribute("data-idle-ms")) || 120000;
  var form = document.querySelector("form.to-kiosk");
  if (!form) return;
  var last = Date.now();
  ["pointerdown", "touchstart", "keydown", "input", "wheel"].forEach(function (e) {
    window.addEventListener(e, function () { last = Date.now(); }, { passive: true, capture: true });
  });
  setInterval(function () {
    if (Date.now() - last >= idleMs && !form.getAttribute("data-sent")) {
      form.setAttribute("data-sent", "1");
      form.submit();
    }
  }, 500);
})();
