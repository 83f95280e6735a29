/* Charts page: draws every chart with D3 from the dashboard's JSON endpoints and redraws the
 * live ones every few seconds, without a page reload. No inline script (CSP): configuration comes
 * from data-* attributes on #charts and each .chart element. Every mark that stands for data is
 * an SVG element with the class "bar" (or "threshold" for a threshold line), so tests can count
 * them against the JSON. */
(function () {
  "use strict";

  var root = document.getElementById("charts");
  if (!root || typeof d3 === "undefined") { return; }

  var WIDTH = 640, HEIGHT = 270;
  var MARGIN = { top: 12, right: 16, bottom: 44, left: 58 };
  var TIERS = ["low", "medium", "high"];  // stacking order: low at the bottom, high on top
  var REVIEW_STATUSES = ["unreviewed", "needs_info", "flagged_fraud", "cleared"];
  var LABELS = {
    high: "High", medium: "Medium", low: "Low",
    unreviewed: "Not reviewed", needs_info: "Needs information", flagged_fraud: "Flagged as fraud",
    cleared: "Cleared", note: "Note added"
  };
  var count = d3.format(",");
  var dollars = d3.format(",.0f");
  function money(value) { return "$" + dollars(value); }  // the service's money is in US dollars
  var percent = d3.format(".1%");
  var refreshSeconds = Math.max(5, parseInt(root.dataset.refresh || "15", 10));

  /* ------------------------------------------------------------ helpers */

  function fetchJSON(url) {
    return fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) { throw new Error("You were signed out: reload the page to sign in again."); }
        if (!response.ok) { throw new Error("The server answered " + response.status + "."); }
        return response.json();
      });
  }

  /* An empty SVG as wide as its container (so text keeps its natural size) with a plot area. */
  function frame(container) {
    d3.select(container).selectAll("*").remove();
    var width = Math.max(360, Math.round(container.getBoundingClientRect().width) || WIDTH);
    var svg = d3.select(container).append("svg")
      .attr("viewBox", "0 0 " + width + " " + HEIGHT)
      .attr("preserveAspectRatio", "xMidYMid meet");
    var plot = svg.append("g").attr("transform", "translate(" + MARGIN.left + "," + MARGIN.top + ")");
    return {
      svg: svg, plot: plot, W: width,
      width: width - MARGIN.left - MARGIN.right,
      height: HEIGHT - MARGIN.top - MARGIN.bottom
    };
  }

  var siFormat = d3.format("~s");

  function message(container, text) {
    d3.select(container).selectAll("*").remove();
    d3.select(container).append("div").attr("class", "no-data").text(text);
    showNumbers(container, null);
  }

  /* The figures a chart draws, as a table under it ("The numbers"): exact values where a bar is
   * too thin to read or a colour is hard to tell apart, and the chart's content for a screen
   * reader. header: column titles; rows: arrays of cells, the first one naming the row. */
  function showNumbers(container, header, rows) {
    var holder = document.getElementById(container.id + "-numbers");
    if (!holder) { return; }
    var details = holder.closest("details");
    d3.select(holder).selectAll("*").remove();
    if (!header) { if (details) { details.hidden = true; } return; }
    if (details) { details.hidden = false; }
    var table = d3.select(holder).append("table").attr("class", "numbers");
    table.append("thead").append("tr").selectAll("th").data(header).join("th")
      .attr("scope", "col").text(function (h) { return h; });
    var tr = table.append("tbody").selectAll("tr").data(rows).join("tr");
    tr.selectAll("th").data(function (r) { return [r[0]]; }).join("th")
      .attr("scope", "row").text(function (c) { return c; });
    tr.selectAll("td").data(function (r) { return r.slice(1); }).join("td")
      .text(function (c) { return c; });
  }

  function thinTicks(domain, most) {  // every step-th label, counted back from the last (today)
    var step = Math.max(1, Math.ceil(domain.length / most)), last = domain.length - 1;
    return domain.filter(function (_, i) { return (last - i) % step === 0; });
  }

  function shortDay(day) { return String(day).slice(5, 10); }  // "2024-05-03" -> "05-03"

  /* Stacked bars over a band domain; rows are objects with a band key, a series key and a value. */
  function stackedBars(container, rows, opts) {
    var bands = Array.from(new Set(rows.map(function (r) { return String(r[opts.band]); }))).sort(opts.bandSort);
    var series = opts.series;
    var table = bands.map(function (b) {
      var entry = { band: b };
      series.forEach(function (s) { entry[s] = 0; });
      return entry;
    });
    var index = new Map(table.map(function (e) { return [e.band, e]; }));
    rows.forEach(function (r) {
      var entry = index.get(String(r[opts.band]));
      if (entry && series.indexOf(r[opts.key]) >= 0) { entry[r[opts.key]] += Number(r[opts.value]) || 0; }
    });
    var stacked = d3.stack().keys(series)(table);
    var f = frame(container);
    var horizontal = !!opts.horizontal;
    var band = d3.scaleBand().domain(bands).range(horizontal ? [0, f.height] : [0, f.width]).padding(0.2);
    var maxTotal = d3.max(table, function (e) { return d3.sum(series, function (s) { return e[s]; }); }) || 1;
    var value = d3.scaleLinear().domain([0, maxTotal]).nice().range(horizontal ? [0, f.width] : [f.height, 0]);

    var layers = f.plot.selectAll("g.layer").data(stacked).join("g")
      .attr("class", function (d) { return "layer " + opts.classPrefix + d.key; });
    var bars = layers.selectAll("rect.bar")
      .data(function (d) {
        return d.filter(function (seg) { return seg[1] - seg[0] > 0; })
          .map(function (seg) { return { key: d.key, band: seg.data.band, low: seg[0], high: seg[1] }; });
      })
      .join("rect")
      .attr("class", function (d) { return "bar " + opts.classPrefix + d.key; })
      .attr("data-band", function (d) { return d.band; })
      .attr("data-series", function (d) { return d.key; })
      .attr("data-value", function (d) { return d.high - d.low; });
    if (horizontal) {
      bars.attr("y", function (d) { return band(d.band); }).attr("height", band.bandwidth())
        .attr("x", function (d) { return value(d.low); })
        .attr("width", function (d) { return Math.max(1, value(d.high) - value(d.low)); });
    } else {
      bars.attr("x", function (d) { return band(d.band); }).attr("width", band.bandwidth())
        .attr("y", function (d) { return value(d.high); })
        .attr("height", function (d) { return Math.max(1, value(d.low) - value(d.high)); });
    }
    bars.append("title").text(function (d) {
      return (opts.bandLabel ? opts.bandLabel(d.band) : d.band) + " · " + LABELS[d.key] + ": " + opts.format(d.high - d.low);
    });

    if (horizontal) {
      f.plot.append("g").attr("class", "axis").call(d3.axisLeft(band).tickFormat(opts.bandLabel || String));
      f.plot.append("g").attr("class", "axis").attr("transform", "translate(0," + f.height + ")")
        .call(d3.axisBottom(value).ticks(6).tickFormat(siFormat));
    } else {
      f.plot.append("g").attr("class", "axis").attr("transform", "translate(0," + f.height + ")")
        .call(d3.axisBottom(band).tickValues(thinTicks(bands, 10)).tickFormat(opts.bandLabel || String));
      f.plot.append("g").attr("class", "axis").call(d3.axisLeft(value).ticks(6).tickFormat(siFormat));
    }
    if (horizontal) {  // each bar's total at its end, readable however thin an outlier makes it
      var totalOf = function (b) { return d3.sum(series, function (s) { return index.get(b)[s]; }); };
      f.plot.selectAll("text.total").data(bands).join("text").attr("class", "total")
        .attr("data-band", function (b) { return b; })
        .attr("y", function (b) { return band(b) + band.bandwidth() / 2; }).attr("dy", "0.35em")
        .each(function (b) {  // outside the bar, or inside its end when the bar fills the plot
          var end = value(totalOf(b)), inside = end > f.width * 0.7;
          d3.select(this).attr("x", inside ? end - 4 : end + 4).attr("text-anchor", inside ? "end" : "start")
            .classed("inside", inside);
        })
        .text(function (b) { return opts.format(totalOf(b)); });
    }
    // The table lists series in the legend's order (tiers high first) and days newest first.
    var columns = opts.series === TIERS ? series.slice().reverse() : series;
    var tableRows = opts.newestFirst ? table.slice().reverse() : table;
    showNumbers(container, [opts.bandTitle].concat(columns.map(function (s) { return LABELS[s]; }), ["Total"]),
      tableRows.map(function (e) {
        var cells = columns.map(function (s) { return e[s]; });
        return [(opts.rowLabel || opts.bandLabel || String)(e.band)]
          .concat(cells.map(opts.format), [opts.format(d3.sum(cells))]);
      }));
    if (opts.valueLabel) {
      f.svg.append("text").attr("class", "axis-label")
        .attr("x", horizontal ? MARGIN.left + f.width / 2 : 12)
        .attr("y", horizontal ? HEIGHT - 6 : MARGIN.top + f.height / 2)
        .attr("text-anchor", "middle")
        .attr("transform", horizontal ? null : "rotate(-90 12 " + (MARGIN.top + f.height / 2) + ")")
        .text(opts.valueLabel);
    }
    return bars.size();
  }

  /* ------------------------------------------------------------ the live charts */

  function drawScored(container, data) {
    if (!d3.sum(data.rows, function (r) { return r.count; })) {
      return message(container, "No events scored in the last " + data.days + " days.");
    }
    stackedBars(container, data.rows, {
      band: "day", key: "tier", value: "count", series: TIERS, classPrefix: "tier-",
      format: count, bandLabel: shortDay, rowLabel: String, newestFirst: true, bandTitle: "Day (UTC)", valueLabel: "events"
    });
  }

  function tierOf(p, thresholds) {
    if (p >= thresholds.high) { return "high"; }
    if (p >= thresholds.medium) { return "medium"; }
    return "low";
  }

  function drawHistogram(container, data) {
    var bins = data.bins;
    if (!bins.length || !d3.sum(bins, function (b) { return b.count; })) {
      return message(container, "No scored events yet.");
    }
    var f = frame(container);
    var x = d3.scaleLinear().domain([0, 1]).range([0, f.width]);
    var y = d3.scaleLinear().domain([0, d3.max(bins, function (b) { return b.count; }) || 1]).nice().range([f.height, 0]);
    // Each bin is stacked by the tier its events are in: a bin a threshold crosses shows both.
    var segments = [];
    bins.forEach(function (b) {
      var below = 0;
      TIERS.forEach(function (tier) {  // low at the bottom
        var n = b[tier] || 0;
        if (n > 0) { segments.push({ bin: b, tier: tier, low: below, high: below + n }); }
        below += n;
      });
    });
    f.plot.selectAll("rect.bar").data(segments).join("rect")
      .attr("class", function (s) { return "bar tier-" + s.tier; })
      .attr("data-tier", function (s) { return s.tier; })
      .attr("data-bin", function (s) { return s.bin.bin_start; })
      .attr("data-value", function (s) { return s.high - s.low; })
      .attr("x", function (s) { return x(s.bin.bin_start) + 1; })
      .attr("width", function (s) { return Math.max(1, x(s.bin.bin_end) - x(s.bin.bin_start) - 2); })
      .attr("y", function (s) { return y(s.high); })
      .attr("height", function (s) { return Math.max(1, y(s.low) - y(s.high)); })
      .append("title").text(function (s) {
        return percent(s.bin.bin_start) + "–" + percent(s.bin.bin_end) + ", " + LABELS[s.tier] + ": " +
          count(s.high - s.low) + " of " + count(s.bin.count) + " events";
      });
    ["medium", "high"].forEach(function (name) {
      var t = data.thresholds[name];
      f.plot.append("line").attr("class", "threshold threshold-" + name)
        .attr("x1", x(t)).attr("x2", x(t)).attr("y1", 0).attr("y2", f.height);
      // medium's label sits left of its line, high's right of it, so close thresholds never overlap
      f.plot.append("text").attr("class", "threshold-label").attr("y", 10)
        .attr("x", name === "high" ? x(t) + 4 : x(t) - 4).attr("text-anchor", name === "high" ? "start" : "end")
        .text(LABELS[name] + " ≥ " + percent(t));
    });
    f.plot.append("g").attr("class", "axis").attr("transform", "translate(0," + f.height + ")")
      .call(d3.axisBottom(x).ticks(10, "%"));
    f.plot.append("g").attr("class", "axis").call(d3.axisLeft(y).ticks(6).tickFormat(siFormat));
    f.svg.append("text").attr("class", "axis-label").attr("x", MARGIN.left + f.width / 2).attr("y", HEIGHT - 6)
      .attr("text-anchor", "middle").text("probability of fraud");
    showNumbers(container, ["Probability of fraud", "High tier", "Medium tier", "Low tier", "All"],
      bins.map(function (b) {
        return [percent(b.bin_start) + "–" + percent(b.bin_end)]
          .concat(["high", "medium", "low"].map(function (t) { return count(b[t] || 0); }), [count(b.count)]);
      }));
  }

  function drawMoney(container, data) {
    var rows = data.rows;  // every tier keeps its row on the axis; empty segments are not drawn
    if (!d3.sum(rows, function (r) { return r.money; })) { return message(container, "No money at stake recorded yet."); }
    stackedBars(container, rows, {
      band: "tier", key: "status", value: "money", series: REVIEW_STATUSES, classPrefix: "status-",
      horizontal: true, format: money, valueLabel: "money at stake", bandTitle: "Tier",
      bandSort: function (a, b) { return ["high", "medium", "low"].indexOf(a) - ["high", "medium", "low"].indexOf(b); },
      bandLabel: function (t) { return LABELS[t] || t; }
    });
  }

  function drawStatus(container, data) {
    if (!d3.sum(data.rows, function (r) { return r.count; })) {
      return message(container, "No events received in the last " + data.days + " days.");
    }
    stackedBars(container, data.rows, {
      band: "day", key: "status", value: "count", series: REVIEW_STATUSES, classPrefix: "status-",
      format: count, bandLabel: shortDay, rowLabel: String, newestFirst: true, bandTitle: "Day first received (UTC)", valueLabel: "events"
    });
  }

  var DRAW = { scored: drawScored, histogram: drawHistogram, money: drawMoney, status: drawStatus };

  function refresh(container) {
    return fetchJSON(container.dataset.endpoint)
      .then(function (data) {
        DRAW[container.dataset.kind](container, data);
        container.dataset.loaded = String(Date.now());
      })
      .catch(function (err) { message(container, "Could not load this chart: " + err.message); });
  }

  function refreshAll() {
    var charts = Array.prototype.slice.call(root.querySelectorAll(".chart[data-kind]"));
    return Promise.all(charts.map(refresh)).then(function () {
      var stamp = document.getElementById("charts-updated");
      if (stamp) { stamp.textContent = "Updated " + new Date().toISOString().slice(11, 19) + " UTC"; }
    });
  }

  /* ------------------------------------------------------------ what-if thresholds */

  function whatIf() {
    var body = document.getElementById("whatif-body");
    var empty = document.getElementById("whatif-empty");
    if (!body) { return; }
    var sliders = { medium: document.getElementById("slider-medium"), high: document.getElementById("slider-high") };
    var outputs = { medium: document.getElementById("out-medium"), high: document.getElementById("out-high") };
    var model = { medium: Number(root.dataset.thresholdMedium), high: Number(root.dataset.thresholdHigh) };
    var points = [];

    function set(id, text) { document.getElementById(id).textContent = text; }

    // A slider snaps to its step (0.001), so while a slider is at the model's threshold the
    // exact threshold is used: the counts then match the tiers the service really assigns.
    var exact = { medium: model.medium, high: model.high };

    function update(changed) {
      var m = exact.medium !== null ? exact.medium : Number(sliders.medium.value);
      var h = exact.high !== null ? exact.high : Number(sliders.high.value);
      if (m > h) {  // keep medium <= high: move the slider the analyst did not touch (then where it sits counts)
        if (changed === "high") { sliders.medium.value = h; m = h; exact.medium = null; }
        else { sliders.high.value = m; h = m; exact.high = null; }
      }
      outputs.medium.textContent = percent(m);
      outputs.high.textContent = percent(h);
      sliders.medium.setAttribute("aria-valuetext", percent(m));  // read out as shown, not "0.367"
      sliders.high.setAttribute("aria-valuetext", percent(h));
      var thresholds = { medium: m, high: h };
      var tiers = { high: { fraud: 0, legit: 0 }, medium: { fraud: 0, legit: 0 }, low: { fraud: 0, legit: 0 } };
      var fraudTotal = 0, fraudMoney = 0, missedMoney = 0;
      points.forEach(function (pt) {
        var tier = tierOf(pt.p, thresholds);
        tiers[tier][pt.fraud ? "fraud" : "legit"] += 1;
        if (pt.fraud) {
          fraudTotal += 1;
          fraudMoney += pt.money;
          if (tier === "low") { missedMoney += pt.money; }
        }
      });
      var reviewed = tiers.high.fraud + tiers.high.legit + tiers.medium.fraud + tiers.medium.legit;
      var caught = tiers.high.fraud + tiers.medium.fraud;
      set("m-reviewed", count(reviewed));
      set("m-reviewed-sub", percent(points.length ? reviewed / points.length : 0) + " of " + count(points.length) +
        " events · " + count(tiers.high.fraud + tiers.high.legit) + " high");
      set("m-caught", count(caught));
      set("m-caught-sub", percent(fraudTotal ? caught / fraudTotal : 0) + " of " + count(fraudTotal) + " fraud events");
      set("m-missed", count(tiers.low.fraud));
      set("m-missed-sub", "fraud events left in the low tier");
      set("m-money", money(missedMoney));
      set("m-money-sub", percent(fraudMoney ? missedMoney / fraudMoney : 0) + " of " + money(fraudMoney) + " fraud money at stake");
      drawWhatIf(tiers);
    }

    function drawWhatIf(tiers) {
      var container = document.getElementById("chart-whatif");
      var f = frame(container);
      var order = ["high", "medium", "low"], kinds = ["fraud", "legit"];
      var x0 = d3.scaleBand().domain(order).range([0, f.width]).padding(0.25);
      var x1 = d3.scaleBand().domain(kinds).range([0, x0.bandwidth()]).padding(0.08);
      var maxValue = d3.max(order, function (t) { return Math.max(tiers[t].fraud, tiers[t].legit); }) || 1;
      var y = d3.scaleLinear().domain([0, maxValue]).nice().range([f.height, 0]);
      var cells = [];
      order.forEach(function (t) { kinds.forEach(function (k) { cells.push({ tier: t, kind: k, value: tiers[t][k] }); }); });
      f.plot.selectAll("rect.bar").data(cells).join("rect")
        .attr("class", function (c) { return "bar " + c.kind; })
        .attr("data-value", function (c) { return c.value; })
        .attr("x", function (c) { return x0(c.tier) + x1(c.kind); })
        .attr("width", x1.bandwidth())
        .attr("y", function (c) { return y(c.value); })
        .attr("height", function (c) { return f.height - y(c.value); })
        .append("title").text(function (c) { return LABELS[c.tier] + " tier, " + (c.kind === "fraud" ? "fraud" : "not fraud") + ": " + count(c.value); });
      f.plot.selectAll("text.value").data(cells).join("text").attr("class", "value")
        .attr("x", function (c) { return x0(c.tier) + x1(c.kind) + x1.bandwidth() / 2; })
        .attr("y", function (c) { return y(c.value) - 4; }).attr("text-anchor", "middle")
        .text(function (c) { return count(c.value); });
      f.plot.append("g").attr("class", "axis").attr("transform", "translate(0," + f.height + ")")
        .call(d3.axisBottom(x0).tickFormat(function (t) { return LABELS[t] + " tier"; }));
      f.plot.append("g").attr("class", "axis").call(d3.axisLeft(y).ticks(6).tickFormat(siFormat));
      showNumbers(container, ["Tier", "Fraud", "Not fraud", "All"], order.map(function (t) {
        return [LABELS[t] + " tier", count(tiers[t].fraud), count(tiers[t].legit), count(tiers[t].fraud + tiers[t].legit)];
      }));
    }

    fetchJSON(body.dataset.endpoint).then(function (data) {
      points = data.points;
      if (!points.length) { body.hidden = true; empty.hidden = false; return; }
      body.dataset.points = String(points.length);
      update("high");
    }).catch(function (err) { message(document.getElementById("chart-whatif"), "Could not load the labelled events: " + err.message); });

    sliders.medium.addEventListener("input", function () { exact.medium = null; update("medium"); });
    sliders.high.addEventListener("input", function () { exact.high = null; update("high"); });
    document.getElementById("whatif-reset").addEventListener("click", function () {
      sliders.medium.value = model.medium;
      sliders.high.value = model.high;
      exact = { medium: model.medium, high: model.high };
      update("high");
    });
  }

  refreshAll();
  whatIf();
  window.setInterval(refreshAll, refreshSeconds * 1000);
})();
