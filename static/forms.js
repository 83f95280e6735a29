/* Every form of the dashboard: once sent, its buttons are disabled until the next page, so a
 * second click (a slow network, a double-click) cannot send the same decision or note twice.
 * No inline script (CSP). */
(function () {
  "use strict";

  var lastSubmit = null;  // the latest form sent: leaving the page to send a note loses nothing

  document.addEventListener("submit", function (event) {
    lastSubmit = event;
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

  // Note fields: a count of characters against the limit, in red once over it. The browser's
  // maxlength would cut a pasted note silently; the server refuses a long one whole instead.
  function countNote(field) {
    var max = parseInt(field.dataset.noteMax, 10);
    var counter = field.nextElementSibling;
    if (!counter || !counter.classList.contains("note-count")) {
      counter = document.createElement("span");
      counter.className = "note-count";
      counter.setAttribute("aria-live", "polite");
      field.insertAdjacentElement("afterend", counter);
    }
    var length = field.value.replace(/\r\n/g, "\n").trim().length;
    var over = length > max;
    counter.classList.toggle("over", over);
    counter.textContent = length.toLocaleString("en") + " / " + max.toLocaleString("en") + " characters" +
      (over ? ": too long to save, shorten it first" : "");
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-note-max]"), function (field) {
    countNote(field);
    field.addEventListener("input", function () { countNote(field); });
  });

  // A decision sent back with its note kept (not applied, refused): show the note, ready to edit.
  // Why it was not applied sits at the top of the page, out of sight on a phone: say it again
  // just above the note (a copy of the warnings; the originals stay where screen readers met them).
  var kept = document.querySelector("[data-kept]");
  if (kept) {
    var reasons = document.querySelectorAll(".flashes .flash-warning, .flashes .flash-error");
    if (reasons.length) {
      var copy = document.createElement("ul");
      copy.className = "flashes kept-reasons";
      Array.prototype.forEach.call(reasons, function (item) { copy.appendChild(item.cloneNode(true)); });
      var before = kept.closest(".bulk-bar") || (kept.labels && kept.labels[0]) || kept;
      before.parentNode.insertBefore(copy, before);
    }
    kept.scrollIntoView({block: "center"});
    kept.focus({preventScroll: true});
  }

  // "Copy the note" on the not-saved page.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var field = document.getElementById(button.dataset.copy);
    field.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });

  // A note typed (or kept from a decision not applied) and not sent: leaving the page by a link,
  // signing out or closing the tab asks first (the browser's own "Leave site?"), as the note
  // would be lost. Sending the form that holds it does not ask.
  window.addEventListener("beforeunload", function (event) {
    var sending = lastSubmit && !lastSubmit.defaultPrevented ? lastSubmit.target : null;
    var unsent = Array.prototype.some.call(document.querySelectorAll("[data-note-max], textarea.note-copy"), function (field) {
      return field.value.trim() !== "" && !(sending && sending.contains(field));
    });
    if (unsent) {
      event.preventDefault();
      event.returnValue = "";  // what older browsers need to ask
    }
  });

  // Back to a page kept in the browser's cache: its buttons work again.
  window.addEventListener("pageshow", function () {
    lastSubmit = null;
    Array.prototype.forEach.call(document.querySelectorAll("button[data-sent]"), function (button) {
      button.disabled = false;
      delete button.dataset.sent;
    });
  });
})();
