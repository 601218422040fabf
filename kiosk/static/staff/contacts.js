// Counselling contact form (kiosk/staff_contacts.py): conveniences only, the form works
// without this. A ticked partner sets the outcome to "vermittelt" while the outcome is
// still the default; saving disables the button so a double tap sends the form once.
(function () {
  "use strict";
  var form = document.getElementById("contact-form");
  if (!form) { return; }
  var byDefault = form.getAttribute("data-default-outcome");
  var referred = form.querySelector('input[name="outcome"][value="vermittelt"]');
  form.addEventListener("change", function (e) {
    var t = e.target;
    if (t.name !== "referrals" || !t.checked || !referred) { return; }
    var current = form.querySelector('input[name="outcome"]:checked');
    if (!current || current.value === byDefault) { referred.checked = true; }
  });
  form.addEventListener("submit", function () {
    var b = document.getElementById("save");
    window.setTimeout(function () { b.disabled = true; }, 0);
  });
})();
