/* Every form of the dashboard: once sent, its buttons are disabled until the next page, so a
 * second click (a slow network, a double-click) cannot send the same decision or note twice.
 * No inline script (CSP). */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented) { return; }  // e.g. the analyst said no to "Flag 3 events?"
    var form = event.target;
    // After this event: the browser has already taken the pressed button's name and value.
    window.setTimeout(function () {
      Array.prototype.forEach.call(form.querySelectorAll("button[type=submit], button:not([type])"),
        function (button) {
          if (button.disabled) { return; }  // disabled by the page itself: it stays so after Back
          button.disabled = true;
          button.dataset.sent = "1";
        });
    }, 0);
  });

  // Back to a page kept in the browser's cache: its buttons work again.
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-sent]"), function (button) {
      button.disabled = false;
      delete button.dataset.sent;
    });
  });
})();
