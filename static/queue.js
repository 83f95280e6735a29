/* Review queue: select-all and the selected count for bulk decisions, and live tier counts
 * (refetched from the JSON summary every few seconds, no page reload). No inline script (CSP). */
(function () {
  "use strict";

  /* ------------------------------------------------------------ bulk selection */

  var form = document.getElementById("bulk-form");
  if (form) {
    var all = document.getElementById("select-all");
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input.row-select"));
    var label = document.getElementById("selected-count");
    var buttons = Array.prototype.slice.call(form.querySelectorAll("button.bulk-action"));

    var sync = function () {
      var chosen = boxes.filter(function (b) { return b.checked; }).length;
      label.textContent = chosen ? chosen + " selected" : "None selected";
      buttons.forEach(function (button) { button.disabled = chosen === 0; });
      // With events ticked, the bar stays on screen while the list scrolls (row 40 is far below it).
      label.parentNode.classList.toggle("has-selection", chosen > 0);
      if (all) {
        all.checked = chosen > 0 && chosen === boxes.length;
        all.indeterminate = chosen > 0 && chosen < boxes.length;
      }
    };
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        sync();
      });
    }
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
    // Back to this page: the browser restores the ticks, so count them again.
    window.addEventListener("pageshow", sync);
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      // A decision on many events at once is asked about first: both become labels for
      // retraining (flagged = fraud, cleared = not fraud).
      var verbs = { flagged_fraud: "Flag {n} events as fraud?", cleared: "Clear {n} events as not fraud?" };
      if (submitter && verbs[submitter.value]) {
        var chosen = boxes.filter(function (b) { return b.checked; }).length;
        if (chosen > 1 && !window.confirm(verbs[submitter.value].replace("{n}", chosen))) { event.preventDefault(); }
      }
    });
    sync();
  }

  /* ------------------------------------------------------------ live tier counts */

  var cards = document.getElementById("tier-cards");
  if (!cards || !window.fetch) { return; }
  var seconds = Math.max(5, parseInt(cards.dataset.refresh || "20", 10));
  var number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var amount = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });  // as the page shows totals

  function moneyText(old, value) {
    // Keep the symbol and currency code the server rendered; replace only the figure.
    return old.replace(/[-\d][\d,.]*/, amount.format(value));
  }

  function refresh() {
    fetch(cards.dataset.summaryUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) {  // signed out in another tab: these counts are stale
          var notice = document.getElementById("summary-updated");
          if (notice) { notice.textContent = "You were signed out: reload the page to sign in again."; }
          return Promise.reject(401);
        }
        return response.ok ? response.json() : Promise.reject(response.status);
      })
      .then(function (summary) {
        Object.keys(summary).forEach(function (tier) {
          var card = cards.querySelector('[data-tier="' + tier + '"]');
          if (!card) { return; }
          var s = summary[tier];
          card.querySelector('[data-field="count"]').textContent = number.format(s.count || 0);
          card.querySelector('[data-field="unreviewed"]').textContent = number.format(s.unreviewed || 0);
          ["money_at_stake", "expected_loss"].forEach(function (field) {
            var cell = card.querySelector('[data-field="' + field + '"]');
            cell.textContent = moneyText(cell.textContent, s[field] || 0);
          });
        });
        var stamp = document.getElementById("summary-updated");
        if (stamp) { stamp.textContent = "Counts updated " + new Date().toISOString().slice(11, 19) + " UTC"; }
      })
      .catch(function () { /* keep the last counts; the next tick tries again */ });
    refreshRows();
  }

  /* What changed in the listed rows since the page loaded, refreshed with the counts: a
   * colleague's decision (the status badge), an organiser's edit after a decision ("Flagged as
   * fraud by alice; the event changed since"), and who has each event open ("open by bob"). */
  function refreshRows() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("#queue-table tr[data-object-id]"));
    if (!rows.length || !cards.dataset.rowsUrl) { return; }
    var ids = rows.map(function (row) { return row.dataset.objectId; }), asks = [];
    for (var i = 0; i < ids.length; i += 100) {  // 100 ids of up to 19 digits keep a URL well under 4 KB
      asks.push(fetch(cards.dataset.rowsUrl + "?ids=" + ids.slice(i, i + 100).join(","),
                      { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); }));
    }
    Promise.all(asks)
      .then(function (parts) {
        var found = Object.assign.apply(null, [{}].concat(parts));
        rows.forEach(function (row) {
          var now = found[row.dataset.objectId];
          if (!now) { return; }
          [[".open-by", now.open_by], [".changed-since", now.changed_since]].forEach(function (part) {
            var line = row.querySelector(part[0]);
            if (line) {
              line.textContent = part[1];
              line.hidden = !part[1];
            }
          });
          var badge = row.querySelector(".badge[data-status]");
          if (badge && badge.dataset.status !== now.status) {  // decided (or changed) since the page loaded
            var urgent = row.dataset.tier === "high" && now.status === "unreviewed";
            badge.dataset.status = now.status;
            badge.className = "badge status-" + now.status + (urgent ? " urgent" : "");
            badge.textContent = now.status_label;
            row.classList.toggle("attention", urgent);
          }
        });
      })
      .catch(function () { /* keep what is shown; the next tick tries again */ });
  }

  window.setInterval(refresh, seconds * 1000);
})();
