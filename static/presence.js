/* The event page tells the server it is still open, and when it is left, so colleagues see
 * "open by alice" while she is on it and not after (dashboard.presence). Each word back names who
 * else has the event open, and the note under the title follows it. No inline script (CSP). */
(function () {
  "use strict";
  var note = document.getElementById("open-by-others");
  if (!note || !note.dataset.presenceUrl || !window.fetch || !window.FormData) { return; }
  var url = note.dataset.presenceUrl;
  var every = Math.max(2, parseInt(note.dataset.every || "60", 10)) * 1000;

  function form(state) {
    var body = new FormData();
    body.append("csrf_token", note.dataset.csrf);
    body.append("opened_at", note.dataset.openedAt);
    body.append("state", state);
    return body;
  }

  function stillOpen() {
    fetch(url, { method: "POST", body: form("open"), credentials: "same-origin",
                 headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (answer) {
        if (note.innerHTML !== answer.open_by) { note.innerHTML = answer.open_by; }  // escaped by the server's template
        note.hidden = !answer.count;
      })
      .catch(function () { /* signed out, or the server is away: the next beat tries again */ });
  }

  // The analyst's other pages of this event (another tab): the opening is one per analyst and
  // event, so when this page is left and ends it, they say at once that they are still open
  // (after a moment, so that this page's word reaches the server first).
  var others = null;
  function listen() {
    if (!window.BroadcastChannel) { return; }
    others = new BroadcastChannel("fraud-triage-presence");
    others.onmessage = function (message) {
      if (message.data === url) { window.setTimeout(stillOpen, 1000); }
    };
  }
  listen();

  window.setInterval(stillOpen, every);
  // Back from another tab, from sleep, or shown again from the browser's history (a page leaving
  // the back-forward cache becomes visible): say so at once, which opens it again if it was left.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { stillOpen(); }
  });
  window.addEventListener("pagehide", function () {
    if (navigator.sendBeacon) { navigator.sendBeacon(url, form("closed")); }
    if (others) {
      others.postMessage(url);
      others.close();  // an open channel can keep the page out of the back-forward cache
      others = null;
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !others) { listen(); }
  });
}());
