"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

The app runs on a loopback port in a background thread (werkzeug's make_server) with the
session's tiny model and a temporary SQLite database of scored events, CSRF and the CSP on,
exactly as served. The flow: sign in, see the tiers, open an event, flag it, see the audit entry,
bulk-clear two events, see every chart drawn from its JSON, watch the live views refresh, and
prove a hostile event's text stays inert. Screenshots go to test-artifacts/ (git-ignored).

Without Chromium or Playwright these tests fail under CI (CI=true) and skip loudly elsewhere.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

import db
import predict
from tests.test_dashboard import HOSTILE_ID, PASSWORD, add_analysts, hostile_event, scored_events
from tests.processes import system_missing, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
REFRESH_SECONDS = 5  # the live views' refresh interval in this test (the JS floor)


@pytest.fixture(scope="module")
def server(tiny_model_path, tmp_path_factory):
    """The app on 127.0.0.1:<free port>, serving scored events, a hostile one and two analysts."""
    from werkzeug.security import generate_password_hash
    from werkzeug.serving import make_server

    from app import create_app

    folder = tmp_path_factory.mktemp("browser")
    app = create_app({
        "TESTING": True, "MODEL_PATH": str(tiny_model_path), "SECRET_KEY": "browser-test",
        "DATABASE_URL": f"sqlite:///{folder / 'dashboard.db'}", "SPOOL_DIR": str(folder / "spool"),
        "WTF_CSRF_ENABLED": True, "DASHBOARD_REFRESH_SECONDS": REFRESH_SECONDS,
    })
    engine = app.extensions["db_engine"]
    pairs = scored_events(app.extensions["fraud_model"], n=200, seed=11)
    db.save_scores(engine, pairs, source="test_set")
    db.save_scores(engine, [hostile_event(pairs[0][0])], source="stream")
    add_analysts(engine, generate_password_hash(PASSWORD, method="scrypt"))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="dashboard-under-test", daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{httpd.server_port}", "app": app, "engine": engine}
    httpd.shutdown()
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    if not Path(CHROMIUM).exists():
        system_missing("BROWSER", f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import Error as PlaywrightError, sync_playwright
    except ImportError as exc:
        system_missing("BROWSER", f"Playwright for Python is not installed ({exc}); pip install -r requirements-dev.txt")
    playwright = sync_playwright().start()
    try:
        # Playwright turns the back-forward cache off by default; analysts' browsers have it on,
        # and pages restored by Back must work (test_back_then_enter_in_the_bulk_note_sends_nothing).
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              ignore_default_args=["--disable-back-forward-cache"])
    except PlaywrightError as exc:
        playwright.stop()
        system_missing("BROWSER", f"Chromium would not start: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="module")
def session(browser, server):
    """A browser context signed in as alice through the real form; records dialogs and CSP errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15000)
    events = {"dialogs": [], "console_errors": []}
    page = context.new_page()
    _watch(page, events)
    page.goto(server["url"] + "/")
    assert "/login" in page.url  # signed out: the queue sends us to sign in
    page.fill("#name", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#queue-table")
    yield {"context": context, "page": page, "events": events, **server}
    context.close()


def _watch(page, events: dict) -> None:
    """Record every dialog (alert/confirm) and console error a page produces."""
    def on_dialog(dialog):
        if dialog.type == "beforeunload":  # "Leave site?" for a note left unsent: a test moving on leaves
            dialog.accept()
            return
        events["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: msg.type == "error" and events["console_errors"].append(msg.text))


def _count(page, selector: str) -> int:
    return page.locator(selector).count()


def _json(session, path: str) -> dict:
    """A dashboard JSON endpoint fetched with the signed-in browser's cookies."""
    response = session["context"].request.get(session["url"] + path)
    assert response.ok, path
    return response.json()


def test_queue_shows_three_tiers_with_counts(session):
    page = session["page"]
    page.goto(session["url"] + "/queue")
    summary = db.tier_summary(session["engine"])
    for tier in ("high", "medium", "low"):
        shown = page.text_content(f'.tier-card[data-tier="{tier}"] [data-field="count"]')
        assert int(shown.replace(",", "")) == summary[tier]["count"]
    assert _count(page, "#queue-table tbody tr") == min(50, summary["high"]["count"])
    first_page, _ = db.queue(session["engine"], tier="high", per_page=50)
    unreviewed = sum(1 for r in first_page if r["review_status"] == "unreviewed")
    assert _count(page, "#queue-table tbody tr.attention") == unreviewed > 0  # they stand out
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "queue.png"))


def test_open_an_event_flag_it_and_see_the_audit_entry(session):
    page, engine = session["page"], session["engine"]
    page.goto(session["url"] + "/queue?tier=high")
    row = page.locator(f"#queue-table tbody tr:not([data-object-id='{HOSTILE_ID}'])").first
    object_id = int(row.get_attribute("data-object-id"))
    row.locator("a.event-name").click()
    page.wait_for_selector("#decision")
    assert page.url.startswith(f"{session['url']}/events/{object_id}")
    assert _count(page, "#reasons li") > 0  # a reason for every score
    page.fill("#note", "brand-new account, no payouts, big ticket prices")
    page.click("#decision button[value=flagged_fraud]")
    page.wait_for_selector(".flash-success")
    assert "Flagged as fraud" in page.text_content(".flash-success")
    entry = page.text_content("#history li")
    assert "Flagged as fraud" in entry and "alice" in entry and "big ticket prices" in entry
    assert page.text_content("#review-status").strip() == "Flagged as fraud"
    assert db.get_prediction(engine, object_id)["review_status"] == "flagged_fraud"


def test_leaving_a_page_with_an_unsent_note_asks_first(session):
    """A typed note is lost if the analyst signs out or follows a link: the browser asks first
    (and staying keeps the note). Sending the note, or leaving with an empty box, asks nothing."""
    page = session["context"].new_page()
    asked = []

    def on_dialog(dialog):
        asked.append(dialog.type)
        dialog.dismiss()  # "stay on this page"

    page.on("dialog", on_dialog)
    target = db.queue(session["engine"], tier="low", per_page=1)[0][0]["object_id"]
    try:
        page.goto(session["url"] + f"/events/{target}")
        page.fill("#note", "organiser's phone number is disconnected")
        page.click("form[action$='/logout'] button")
        page.wait_for_timeout(500)
        assert asked == ["beforeunload"] and page.url.endswith(f"/events/{target}")
        assert page.input_value("#note") == "organiser's phone number is disconnected"
        page.click("#decision button[value=note]")  # sending it asks nothing
        page.wait_for_selector(".flash-success")
        assert asked == ["beforeunload"] and "phone number is disconnected" in page.text_content("#history")
        page.click(".event-nav a >> nth=0")  # an empty box: nothing to ask
        page.wait_for_selector("#queue-table")
        assert asked == ["beforeunload"]
    finally:
        page.close()
        with session["engine"].begin() as conn:  # other tests take this event as one nobody touched
            conn.execute(db.REVIEWS.delete().where(db.REVIEWS.c.object_id == target))
            conn.execute(db.EVENT_OPENS.delete())


def test_bulk_clear_two_events(session):
    """Clearing several events asks first (they become "not fraud" labels): no sends nothing."""
    engine = session["engine"]
    page, asked = session["context"].new_page(), []
    page.on("dialog", lambda d: (asked.append(d.message), d.dismiss() if len(asked) == 1 else d.accept()))
    try:
        page.goto(session["url"] + "/queue?tier=low")
        assert page.is_disabled("button.bulk-action[value=cleared]")  # nothing ticked yet
        assert page.text_content("button.bulk-action[value=cleared]") == "Clear: not fraud"
        boxes = page.locator("#queue-table input.row-select")
        ids = [int(boxes.nth(i).get_attribute("value")) for i in range(2)]
        boxes.nth(0).check()
        boxes.nth(1).check()
        assert page.text_content("#selected-count") == "2 selected"
        page.click("button.bulk-action[value=cleared]")  # answered "no"
        page.wait_for_timeout(500)
        assert asked == ["Clear 2 events as not fraud?"] and all(db.reviews_for(engine, i) == [] for i in ids)
        page.click("button.bulk-action[value=cleared]")  # answered "yes"
        page.wait_for_selector(".flash-success")
        assert "Cleared: 2 events." in page.text_content(".flash-success")
        assert [db.get_prediction(engine, i)["review_status"] for i in ids] == ["cleared", "cleared"]
        assert all(len(db.reviews_for(engine, i)) == 1 for i in ids)
    finally:
        page.close()


def test_the_bulk_bar_stays_in_view_with_events_ticked_far_down(session):
    """Ticking the 40th event, the buttons that act on it are on screen, not 40 rows up; a bulk
    note typed and not sent asks before the page is left."""
    page, asked = session["context"].new_page(), []
    page.on("dialog", lambda d: (asked.append(d.type), d.dismiss()))
    in_view = "() => { const r = document.querySelector('.bulk-bar').getBoundingClientRect(); " \
              "return r.top >= 0 && r.bottom <= window.innerHeight; }"
    try:
        page.set_viewport_size({"width": 1400, "height": 700})
        page.goto(session["url"] + "/queue?tier=all&per_page=50")
        box = page.locator("#queue-table input.row-select").nth(39)
        box.scroll_into_view_if_needed()
        assert not page.evaluate(in_view)  # scrolled past it, nothing ticked: it stays in its place
        box.check()
        assert page.evaluate(in_view) and page.is_enabled("button.bulk-action[value=needs_info]")
        page.fill("#bulk-note", "same organiser as the flagged one")
        page.click("nav a[href='/charts']")
        page.wait_for_timeout(500)
        assert asked == ["beforeunload"] and "/queue" in page.url
    finally:
        page.close()


def test_enter_in_the_bulk_note_sends_nothing(session):
    """Enter in a text field presses the form's first button; in the queue that was "Flag as
    fraud", so a note saying "looks legitimate" flagged the ticked event. Now Enter does nothing."""
    page, engine = session["page"], session["engine"]
    page.goto(session["url"] + "/queue?tier=low&status=unreviewed")
    box = page.locator("#queue-table input.row-select").first
    object_id = int(box.get_attribute("value"))
    box.check()
    page.fill("#bulk-note", "checked the venue, looks legitimate")
    page.press("#bulk-note", "Enter")
    page.wait_for_timeout(700)
    assert page.input_value("#bulk-note") == "checked the venue, looks legitimate"  # same page
    assert db.reviews_for(engine, object_id) == []


def test_back_then_enter_in_the_bulk_note_sends_nothing(session):
    """After a bulk decision, Back restores the queue from the browser's cache with its buttons
    re-enabled; the hidden default button must stay disabled, or Enter sends a form with no action."""
    page, engine = session["page"], session["engine"]
    page.goto(session["url"] + "/queue?tier=low&status=unreviewed")
    boxes = page.locator("#queue-table input.row-select")
    first = int(boxes.nth(0).get_attribute("value"))
    boxes.nth(0).check()
    page.click("button.bulk-action[value=needs_info]")
    page.wait_for_selector(".flash-success")
    page.go_back(wait_until="commit")  # a page from the cache fires no new "load"
    page.wait_for_selector("#bulk-note")
    restored = page.evaluate("() => performance.getEntriesByType('navigation')[0].type")
    posts = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    second = int(page.locator("#queue-table input.row-select").nth(1).get_attribute("value"))
    page.locator("#queue-table input.row-select").nth(1).check()
    page.fill("#bulk-note", "typed after going back")
    page.press("#bulk-note", "Enter")
    page.wait_for_timeout(700)
    assert posts == [], f"Enter sent the form (page restored by {restored})"
    assert page.input_value("#bulk-note") == "typed after going back"
    assert [r["action"] for r in db.reviews_for(engine, first)] == ["needs_info"]
    assert db.reviews_for(engine, second) == []


def test_a_decision_is_sent_once_however_often_it_is_clicked(session):
    """A second click while the first is on its way (a slow network, a double-click) sends
    nothing: the form's buttons are disabled once it is sent. (The form posts into a hidden
    frame here, so the page stays to be clicked again, as it does while a slow answer comes.)"""
    # A page of its own: the frame's answer is refused by the CSP (frame-ancestors 'none'), an
    # error the shared page's watcher would count against the dashboard.
    page, engine = session["context"].new_page(), session["engine"]
    rows, _ = db.queue(engine, tier="low", filters={"status": "unreviewed"}, per_page=1)
    target = rows[0]["object_id"]
    page.goto(session["url"] + f"/events/{target}")
    page.evaluate("""() => {
        const sink = document.createElement("iframe");
        sink.name = "sink"; sink.hidden = true; document.body.appendChild(sink);
        document.querySelector("#decision form").target = "sink";
    }""")
    posts = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    page.fill("#note", "called the organiser twice")
    page.click("#decision button[value=note]")
    page.wait_for_function("() => document.querySelector('#decision button[value=note]').disabled")
    page.click("#decision button[value=note]", force=True)  # the second click of a double-click
    page.wait_for_timeout(500)
    assert posts == [f"{session['url']}/events/{target}/review"]
    wait_for(lambda: db.reviews_for(engine, target), timeout=10, what="the note stored")
    assert [r["note"] for r in db.reviews_for(engine, target)] == ["called the organiser twice"]
    page.goto(session["url"] + f"/events/{target}")
    assert not page.is_disabled("#decision button[value=note]")  # a new page's buttons work
    page.close()


def test_every_chart_is_drawn_from_its_json(session):
    page, engine = session["page"], session["engine"]
    # A labelled event between the model's medium threshold and where its slider snaps (steps of
    # 0.001): the what-if view must count it as the service tiers it, medium.
    medium = session["app"].extensions["fraud_model"].thresholds["medium"]
    assert round(medium, 3) != medium  # a threshold on a step would test nothing
    rows, _ = db.queue(engine, tier="low", per_page=1)
    raw = {**db.get_prediction(engine, rows[0]["object_id"])["raw_payload"], "object_id": 990000088,
           "acct_type": "fraudster_event"}
    p = (medium + round(medium, 3)) / 2  # counted in one tier at the exact threshold, the other at the snapped one
    score = {**predict.score_records(session["app"].extensions["fraud_model"], [raw])[0],
             "fraud_probability": p, "risk_tier": "medium" if p >= medium else "low"}
    db.save_scores(engine, [(raw, score)], source="test_set")
    page.goto(session["url"] + "/charts")
    for chart in ("#chart-scored", "#chart-histogram", "#chart-money", "#chart-status", "#chart-whatif"):
        page.wait_for_selector(f"{chart} svg rect.bar")

    scored = _json(session, "/api/charts/scored-over-time?days=30")
    assert _count(page, "#chart-scored rect.bar") == sum(1 for r in scored["rows"] if r["count"] > 0) > 0
    histogram = _json(session, "/api/charts/probabilities?bins=20")
    assert len(histogram["bins"]) == 20
    assert _count(page, "#chart-histogram line.threshold") == 2
    # one bar segment per bin and tier holding events, coloured by that tier
    drawn = page.eval_on_selector_all(
        "#chart-histogram rect.bar", "els => els.map(e => [+e.dataset.bin, e.dataset.tier, +e.dataset.value, e.classList.contains('tier-' + e.dataset.tier)])")
    assert drawn == [[b["bin_start"], tier, b[tier], True] for b in histogram["bins"]
                     for tier in ("low", "medium", "high") if b[tier] > 0]
    money = _json(session, "/api/charts/money")
    assert _count(page, "#chart-money rect.bar") == sum(1 for r in money["rows"] if r["money"] > 0) > 0
    status = _json(session, "/api/charts/status-over-time?days=30")
    assert _count(page, "#chart-status rect.bar") == sum(1 for r in status["rows"] if r["count"] > 0) > 0

    # What-if on the labelled test split: the figures follow the sliders, computed in the page.
    labelled = _json(session, "/api/charts/labelled")
    points, thresholds = labelled["points"], labelled["thresholds"]
    assert _count(page, "#chart-whatif rect.bar") == 6
    reviewed = sum(1 for pt in points if pt["p"] >= thresholds["medium"])
    assert page.text_content("#m-reviewed") == f"{reviewed:,}"
    page.fill("#slider-medium", "0")
    assert page.text_content("#m-reviewed") == f"{len(points):,}"
    assert page.text_content("#m-missed") == "0" and page.text_content("#m-money") == "$0"
    page.fill("#slider-high", "1")
    page.fill("#slider-medium", "1")
    missed = sum(1 for pt in points if pt["fraud"] and pt["p"] < 1)
    assert page.text_content("#m-missed") == f"{missed:,}"
    missed_money = sum(pt["money"] for pt in points if pt["fraud"] and pt["p"] < 1)
    assert page.text_content("#m-money") == f"${missed_money:,.0f}"  # the service's money is in US dollars
    page.click("#whatif-reset")
    assert page.text_content("#m-reviewed") == f"{reviewed:,}"
    # one slider pushing the other: the pushed one counts where it now sits, as its label says
    assert thresholds["high"] < 0.95
    page.fill("#slider-medium", "0.95")
    page.fill("#slider-medium", "0")
    assert page.text_content("#out-high") == page.get_attribute("#slider-high", "aria-valuetext")
    assert float(page.text_content("#out-high").rstrip(" %")) == 95.0
    high = sum(1 for pt in points if pt["p"] >= 0.95)
    assert page.text_content("#m-reviewed-sub").endswith(f" · {high:,} high")
    page.click("#whatif-reset")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "charts.png"), full_page=True)


def _numbers(page, chart: str) -> list[list[str]]:
    """The rows of a chart's "The numbers" table, header first, as the page shows them."""
    return page.eval_on_selector_all(
        f"#{chart}-numbers tr", "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")


def test_each_chart_shows_its_numbers_and_an_outlier_flattens_no_total(session):
    page, engine = session["page"], session["engine"]
    # One event with money at the cap: every other tier's bar becomes a sliver, but its total is
    # still written beside it, and the table under the chart holds every figure.
    model = session["app"].extensions["fraud_model"]
    [(raw, score)] = scored_events(model, n=1, seed=97)
    raw["object_id"] = score["object_id"] = 990000097
    raw["ticket_types"] = [{"cost": 1e6, "quantity_total": 1e6, "quantity_sold": 0}]
    db.save_scores(engine, [(raw, {**score, "money_at_stake": 1e12})], source="stream")
    try:
        _check_chart_numbers(session, page)
    finally:  # the outlier would top the cost-ordered queue other tests read
        with engine.begin() as conn:
            conn.execute(db.PREDICTIONS.delete().where(db.PREDICTIONS.c.object_id == 990000097))


def _check_chart_numbers(session, page):
    page.goto(session["url"] + "/charts")
    for chart in ("chart-scored", "chart-histogram", "chart-money", "chart-status", "chart-whatif"):
        page.wait_for_selector(f"#{chart}-numbers table", state="attached")
    assert page.is_hidden("#chart-money-numbers")  # folded until asked for
    # a screen reader listing the page's controls can tell the five tables apart
    summaries = page.eval_on_selector_all("details.chart-numbers summary", "s => s.map(x => x.textContent)")
    assert len(summaries) == 5 and len(set(summaries)) == 5 and all(t.startswith("The numbers") for t in summaries)
    page.click("#chart-money + .legend + details summary")
    assert page.is_visible("#chart-money-numbers table")

    money = _json(session, "/api/charts/money")["rows"]
    statuses = ("unreviewed", "needs_info", "flagged_fraud", "cleared")
    total = {t: sum(r["money"] for r in money if r["tier"] == t) for t in ("high", "medium", "low")}
    assert max(total.values()) >= 1e12 and sum(1 for v in total.values() if 0 < v < 1e10) >= 1
    assert _numbers(page, "chart-money") == [
        ["Tier", "Not reviewed", "Needs information", "Flagged as fraud", "Cleared", "Total"],
        *[[t.capitalize(), *[f"${next(r['money'] for r in money if r['tier'] == t and r['status'] == s):,.0f}"
                             for s in statuses], f"${total[t]:,.0f}"] for t in ("high", "medium", "low")]]
    width = page.eval_on_selector("#chart-money svg", "svg => svg.viewBox.baseVal.width")
    labels = page.eval_on_selector_all(
        "#chart-money text.total",
        "els => els.map(e => { const b = e.getBBox(); return [e.dataset.band, e.textContent, b.x, b.width]; })")
    left = 58  # the plot's left margin in charts.js
    assert sorted(band for band, *_ in labels) == ["high", "low", "medium"]
    for band, text, x, w in labels:
        assert text == f"${total[band]:,.0f}"
        assert x >= 0 and left + x + w <= width, (band, x, w, width)  # inside the chart, not cut off

    histogram = _json(session, "/api/charts/probabilities?bins=20")["bins"]
    rows = _numbers(page, "chart-histogram")
    assert rows[0] == ["Probability of fraud", "High tier", "Medium tier", "Low tier", "All"]  # as the legend
    assert [[int(c.replace(",", "")) for c in r[1:]] for r in rows[1:]] == [
        [b["high"], b["medium"], b["low"], b["count"]] for b in histogram]
    scored = _json(session, "/api/charts/scored-over-time?days=30")["rows"]
    rows = _numbers(page, "chart-scored")
    last_tick = page.evaluate(
        "() => Array.from(document.querySelectorAll('#chart-scored g.axis')[0].querySelectorAll('.tick text')).pop().textContent")
    assert last_tick == max(r["day"] for r in scored)[5:10]  # today's bar is labelled
    days = sorted({r["day"] for r in scored}, reverse=True)  # newest first
    assert rows[0] == ["Day (UTC)", "High", "Medium", "Low", "Total"]
    assert [r[0] for r in rows[1:]] == days
    assert sum(int(r[-1].replace(",", "")) for r in rows[1:]) == sum(r["count"] for r in scored)
    # the what-if table follows the sliders with the figures above it
    page.click("#chart-histogram + .legend + details summary")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "charts-numbers.png"), full_page=True)
    # a refresh redraws the table without losing the reader's place in it
    page.evaluate("""() => { const h = document.getElementById("chart-histogram-numbers");
        h.scrollTop = 60; h.firstChild.dataset.old = "1"; }""")
    page.wait_for_function("() => !document.querySelector('#chart-histogram-numbers table').dataset.old",
                           timeout=REFRESH_SECONDS * 3 * 1000)
    assert page.eval_on_selector("#chart-histogram-numbers", "h => h.scrollTop") == 60
    page.fill("#slider-medium", "0")
    rows = _numbers(page, "chart-whatif")
    reviewed = sum(int(r[-1].replace(",", "")) for r in rows[1:3])
    assert rows[3][-1] == "0" and f"{reviewed:,}" == page.text_content("#m-reviewed")
    page.click("#whatif-reset")

    # on a phone, an open table scrolls in its panel: the page does not widen
    phone = session["context"].new_page()
    phone.set_viewport_size({"width": 390, "height": 800})
    phone.goto(session["url"] + "/charts")
    phone.wait_for_selector("#chart-money-numbers table", state="attached")
    for chart in ("chart-money", "chart-status", "chart-histogram"):
        phone.click(f"#{chart} + .legend + details summary")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
    phone.close()


def test_an_event_a_colleague_has_open_is_marked_in_the_queue_and_on_its_page(session):
    page, engine = session["page"], session["engine"]
    rows, _ = db.queue(engine, tier="high", per_page=1)
    target = rows[0]["object_id"]
    db.note_open(engine, target, "bob")
    page.goto(session["url"] + "/queue?tier=high")
    marker = page.locator(f'tr[data-object-id="{target}"] .open-by')
    assert marker.is_visible() and marker.text_content() == "open by bob (just now)"
    # a colleague opening another listed event shows without a reload, with the counts' refresh
    later = db.queue(engine, tier="high", per_page=2)[0][1]["object_id"]
    assert page.locator(f'tr[data-object-id="{later}"] .open-by').is_hidden()
    db.note_open(engine, later, "cy")
    page.wait_for_function(
        "id => document.querySelector(`tr[data-object-id='${id}'] .open-by`).textContent === 'open by cy (just now)'",
        arg=later, timeout=REFRESH_SECONDS * 3 * 1000)
    assert page.locator(f'tr[data-object-id="{later}"] .open-by').is_visible()
    # a long page asks in parts (a URL of 200 ids could pass a server's limit): the last rows too
    rows, _ = db.queue(engine, per_page=200)
    assert len(rows) > 150
    page.goto(session["url"] + "/queue?tier=all&per_page=200")
    db.note_open(engine, rows[150]["object_id"], "dee")
    page.wait_for_function(
        "id => document.querySelector(`tr[data-object-id='${id}'] .open-by`).textContent === 'open by dee (just now)'",
        arg=rows[150]["object_id"], timeout=REFRESH_SECONDS * 3 * 1000)
    page.goto(session["url"] + "/queue?tier=high")
    page.click(f'tr[data-object-id="{target}"] a.event-name')
    notice = page.locator("#open-by-others")
    assert notice.is_visible()
    assert re.sub(r"\s+", " ", notice.text_content()) == (
        "Also open by bob (opened just now): they may be reviewing it too. Check with them before you decide.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "event-open-by-colleague.png"))
    with engine.begin() as conn:  # bob's opening would mark this event for the tests after this one
        conn.execute(db.EVENT_OPENS.delete())


def test_a_colleagues_decision_shows_in_an_open_queue_without_a_reload(session):
    """An open queue does not leave a colleague's decision looking undone, nor an organiser's edit
    after it looking never decided: the row follows both, with the counts' refresh."""
    page, engine = session["page"], session["engine"]
    [(raw, score)] = scored_events(session["app"].extensions["fraud_model"], n=1, seed=96)
    target = raw["object_id"] = score["object_id"] = 990000096
    score = {**score, "risk_tier": "high", "fraud_probability": 0.99, "expected_loss": 9e11}  # tops the queue
    db.save_scores(engine, [(raw, score)], source="stream")
    row_at = "id => document.querySelector(`tr[data-object-id='${id}'] ${'%s'}`)"
    try:
        page.goto(session["url"] + "/queue?tier=high")
        row = page.locator(f"tr[data-object-id='{target}']")
        assert "attention" in row.get_attribute("class") and row.locator(".changed-since").is_hidden()
        db.add_review(engine, [target], "flagged_fraud", "bob")
        page.wait_for_function(f"{row_at % '.badge[data-status]'}.textContent === 'Flagged as fraud'",
                               arg=target, timeout=REFRESH_SECONDS * 3 * 1000)
        assert "attention" not in (row.get_attribute("class") or "")
        assert "status-flagged_fraud" in row.locator(".badge[data-status]").get_attribute("class")
        db.save_scores(engine, [({**raw, "name": raw.get("name", "") + " (edited)"}, score)], source="stream")
        page.wait_for_function(f"{row_at % '.badge[data-status]'}.textContent === 'Not reviewed'",
                               arg=target, timeout=REFRESH_SECONDS * 3 * 1000)
        assert row.locator(".changed-since").is_visible()
        assert row.locator(".changed-since").text_content() == "Flagged as fraud by bob; the event changed since"
        db.add_review(engine, [target], "cleared", "bob")  # decided again, on what it says now
        page.wait_for_function(f"{row_at % '.badge[data-status]'}.textContent === 'Cleared'",
                               arg=target, timeout=REFRESH_SECONDS * 3 * 1000)
        assert row.locator(".changed-since").is_hidden()
    finally:  # other tests read this queue
        with engine.begin() as conn:
            conn.execute(db.REVIEWS.delete().where(db.REVIEWS.c.object_id == target))
            conn.execute(db.PREDICTIONS.delete().where(db.PREDICTIONS.c.object_id == target))


def test_an_event_page_is_open_while_it_is_shown_and_not_after(session):
    """Colleagues see "open by alice" while her event page is open, however long, and not once she
    leaves it; her page names a colleague who opens the event meanwhile."""
    page, engine, app = session["page"], session["engine"], session["app"]
    target = db.queue(engine, tier="medium", per_page=1)[0][0]["object_id"]
    alice_on = lambda: db.open_by_others(engine, [target], "bob", since=time.time() - 300)  # noqa: E731
    app.config["DASHBOARD_PRESENCE_SECONDS"] = 2
    try:
        page.goto(session["url"] + f"/events/{target}")
        assert alice_on() and page.locator("#open-by-others").is_hidden()
        with engine.begin() as conn:  # as if her page had last said so 10 minutes ago
            conn.execute(db.EVENT_OPENS.update().values(seen_at=time.time() - 600))
        assert not alice_on()
        wait_for(alice_on, timeout=10, what="the open page saying it is still open")
        db.note_open(engine, target, "bob")  # a colleague opens it too: her page says so
        page.wait_for_function("() => !document.getElementById('open-by-others').hidden", timeout=10_000)
        assert re.sub(r"\s+", " ", page.locator("#open-by-others").text_content()).strip().startswith(
            "Also open by bob (opened just now)")
        app.config["DASHBOARD_PRESENCE_SECONDS"] = 60  # from here on, no beat comes in the test's time
        # the same event in a second tab, closed: it ends the (one) opening, and the first tab
        # says at once that it is still open (its opening again, not the second tab's)
        page.goto(session["url"] + f"/events/{target}")
        first_opened = float(page.get_attribute("#open-by-others", "data-opened-at"))
        second = session["context"].new_page()
        second.goto(session["url"] + f"/events/{target}")
        second_opened = float(second.get_attribute("#open-by-others", "data-opened-at"))
        assert alice_on()[target][0]["opened_at"] == second_opened
        second.close(run_before_unload=True)
        wait_for(lambda: (alice_on().get(target) or [{}])[0].get("opened_at") == first_opened, timeout=10,
                 what="the first tab saying at once that it is still open")
        page.goto(session["url"] + f"/events/{target}")
        page.evaluate("window.__before = true")
        page.click(".event-nav a >> nth=0")  # back to the queue: she left the event
        page.wait_for_selector("#queue-table")
        wait_for(lambda: not alice_on(), timeout=10, what="leaving the page ending the opening")
        page.go_back(wait_until="commit")  # shown again from the back-forward cache: open again
        page.wait_for_selector("#open-by-others", state="attached")
        assert page.evaluate("window.__before === true"), "the page was loaded again, not restored"
        wait_for(alice_on, timeout=10, what="a page shown again being open again")
    finally:
        app.config["DASHBOARD_PRESENCE_SECONDS"] = 60
        page.goto(session["url"] + "/queue")
        with engine.begin() as conn:
            conn.execute(db.EVENT_OPENS.delete())


def test_live_views_refresh_without_reloading(session):
    page, engine = session["page"], session["engine"]
    page.goto(session["url"] + "/charts")
    page.wait_for_selector("#chart-histogram rect.bar")
    page.evaluate("window.__sameDocument = true")
    before = db.count_predictions(engine)
    model = session["app"].extensions["fraud_model"]
    fresh = scored_events(model, n=5, seed=99)
    for raw, score in fresh:  # ids no other test uses
        raw["object_id"] = score["object_id"] = 880000000 + raw["object_id"] % 1000000
    db.save_scores(engine, fresh, source="stream")
    page.wait_for_function(
        "n => Array.from(document.querySelectorAll('#chart-histogram rect.bar'))"
        "       .reduce((s, e) => s + Number(e.dataset.value), 0) === n",
        arg=before + 5, timeout=(REFRESH_SECONDS * 3) * 1000)
    assert page.evaluate("window.__sameDocument") is True  # redrawn in place, not reloaded
    assert re.fullmatch(r"Updated \d\d:\d\d:\d\d UTC", page.text_content("#charts-updated").strip())

    page.goto(session["url"] + "/queue?tier=low")
    page.evaluate("window.__sameDocument = true")
    total = sum(s["count"] for s in db.tier_summary(engine).values())
    more = scored_events(model, n=3, seed=98)
    for raw, score in more:
        raw["object_id"] = score["object_id"] = 870000000 + raw["object_id"] % 1000000
    db.save_scores(engine, more, source="stream")
    page.wait_for_function(
        "n => Array.from(document.querySelectorAll('.tier-card [data-field=count]'))"
        "       .reduce((s, e) => s + Number(e.textContent.replace(/,/g, '')), 0) === n",
        arg=total + 3, timeout=(REFRESH_SECONDS * 3) * 1000)
    assert page.evaluate("window.__sameDocument") is True


def test_hostile_event_is_shown_as_inert_text(session):
    page, events = session["page"], session["events"]
    page.goto(session["url"] + f"/queue?tier=high&q={HOSTILE_ID}")  # its name, in the queue
    assert "<script>" in page.text_content(f"tr[data-object-id='{HOSTILE_ID}'] a.event-name")
    page.goto(session["url"] + f"/events/{HOSTILE_ID}")
    page.wait_for_selector("#description")
    assert page.evaluate("window.__pwned === undefined")
    assert events["dialogs"] == []
    assert "<script>window.__pwned" in page.text_content("#event-name")  # the name, as typed
    assert "<img src=x onerror=" in page.text_content("#event-organiser")
    assert _count(page, "#description script, #description img, #description svg, #description a") == 0
    assert _count(page, "#org-desc script, #org-desc a") == 0
    assert page.text_content("#description b") == "party"  # harmless formatting survives
    page.click("#description")  # nothing is lurking behind a click either
    assert page.evaluate("window.__pwned === undefined") and events["dialogs"] == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "event-hostile.png"), full_page=True)


def test_no_content_security_policy_violations(session):
    """Our own pages never need inline code, so the browser never had to block anything."""
    assert not [e for e in session["events"]["console_errors"] if "Content Security Policy" in e]


@pytest.mark.parametrize("width", [390, 1400])
def test_an_event_page_fits_the_screen(session, width):
    """At 390 px the event page's one column is as wide as the screen: wide tables scroll inside
    their panel, and nothing pushes the page sideways; nor does an organiser's name of 400
    letters without a space, on a phone or on a desktop."""
    engine = session["engine"]
    rows, _ = db.queue(engine, tier="low", per_page=1)
    long_name = "Supercalifragilisticexpialidocious" * 12
    raw = {**db.get_prediction(engine, rows[0]["object_id"])["raw_payload"],
           "object_id": 990000077, "org_name": long_name, "name": "Gig by " + long_name}
    model = session["app"].extensions["fraud_model"]
    db.save_scores(engine, [(raw, predict.score_records(model, [raw])[0])], source="stream")
    page = session["context"].new_page()
    try:
        page.set_viewport_size({"width": width, "height": 800})
        for event_id in (rows[0]["object_id"], 990000077):
            page.goto(session["url"] + f"/events/{event_id}")
            page.wait_for_selector("#decision")
            shown = page.evaluate("document.documentElement.scrollWidth")
            assert shown <= width, f"event {event_id} is {shown} px wide on a {width} px screen"
        assert page.text_content("#event-organiser") == long_name
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"event-long-name-{width}.png"), full_page=True)
        # on a narrow screen the decision is below every field: a link at the top goes down to it
        in_view = "() => { const r = document.getElementById('decision').getBoundingClientRect(); " \
                  "return r.top >= 0 && r.top < window.innerHeight; }"
        if width < 900:
            assert not page.evaluate(in_view)
            page.click("#jump-decision")
            page.wait_for_function(in_view)
        else:  # beside the fields, in view
            assert page.evaluate(in_view) and page.is_hidden("#jump-decision")
    finally:
        page.close()


def test_a_long_note_is_counted_kept_whole_and_refused_whole(session):
    """A pasted note over the limit is not cut by the browser: the count turns red, and sent
    anyway it is refused with nothing saved, the whole note back in the box, in view."""
    page, engine = session["page"], session["engine"]
    rows, _ = db.queue(engine, tier="low", filters={"status": "unreviewed"}, per_page=1)
    object_id = rows[0]["object_id"]
    trail = db.reviews_for(engine, object_id)
    page.goto(session["url"] + f"/events/{object_id}")
    page.wait_for_selector("#decision")
    note = "Rang the venue; nobody there. " * 70  # 2,100 characters
    page.fill("#note", note)
    assert page.input_value("#note") == note  # not cut at 2,000
    counter = page.locator("#note + .note-count")
    assert "2,099 / 2,000 characters: too long" in counter.text_content()
    assert "over" in counter.get_attribute("class")
    page.click("#decision button[value=cleared]")
    page.wait_for_selector(".flash-error")
    assert "Nothing was saved" in page.text_content(".flash-error")
    assert page.input_value("#note") == note.strip()
    assert page.evaluate("document.activeElement.id") == "note"  # ready to shorten
    assert db.reviews_for(engine, object_id) == trail  # nothing saved
    page.fill("#note", "Rang the venue; nobody there.")
    assert "29 / 2,000 characters" == counter.text_content()


def _in_view(page, selector: str) -> bool:
    return page.eval_on_selector(selector, """e => { const r = e.getBoundingClientRect();
        return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }""")


def test_on_a_phone_a_decision_not_applied_says_why_beside_the_kept_note(session):
    """A colleague decided first: the page scrolls to the kept note, so the reason, at the top of
    a long page, is said again just above it, in view."""
    page, engine = session["context"].new_page(), session["engine"]
    page.set_viewport_size({"width": 390, "height": 800})
    rows, _ = db.queue(engine, tier="low", filters={"status": "unreviewed"}, per_page=3)
    object_id = rows[2]["object_id"]
    page.goto(session["url"] + f"/events/{object_id}")
    db.add_review(engine, [object_id], "cleared", "bob")  # meanwhile
    page.fill("#note", "organiser could not be reached")
    page.click("#decision button[value=flagged_fraud]")
    page.wait_for_selector(".kept-reasons .flash-warning")
    assert page.text_content(".kept-reasons .flash-warning") == page.text_content(".flashes .flash-warning")
    assert "bob" in page.text_content(".kept-reasons .flash-warning")
    assert not _in_view(page, "main > .flashes")  # the original, at the top, is out of sight
    assert _in_view(page, ".kept-reasons") and _in_view(page, "#note")
    assert page.input_value("#note") == "organiser could not be reached"
    page.close()


def test_the_queue_reads_as_cards_on_a_phone(session):
    """At 390 px each queue row is a card: the page does not scroll sideways, and a row's
    probability, tier and status are on the screen, each with its label."""
    page = session["context"].new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto(session["url"] + "/queue?tier=high")
        page.wait_for_selector("#queue-table")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the queue is {width} px wide on a 390 px screen"
        row = page.locator("#queue-table tbody tr").first
        for label in ("Probability", "Tier", "Review status"):
            cell = row.locator(f'td[data-label="{label}"]')
            box = cell.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (label, box)
            assert page.evaluate("c => getComputedStyle(c, '::before').content", cell.element_handle()) == f'"{label}: "'
        name = row.locator("a.event-name").bounding_box()
        assert name["width"] > 150  # the name reads across the card, not a letter per line
        assert page.locator("#queue-table thead th.sortable a").count() == 4  # the sorts stay
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "queue-phone.png"), full_page=True)
    finally:
        page.close()


def test_signed_out_while_deciding_sign_in_from_the_page_and_send(browser, server):
    """Bob signs out in another tab while writing a note. Flagging then is not applied; the page
    that says so signs him in and hands the decision back, note and all, for one click to send."""
    engine = server["engine"]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15000)
    try:
        page = context.new_page()
        page.goto(server["url"] + "/login")
        page.fill("#name", "bob")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#queue-table")
        rows, _ = db.queue(engine, tier="medium", filters={"status": "unreviewed"}, per_page=1)
        object_id = rows[0]["object_id"]
        page.goto(server["url"] + f"/events/{object_id}")
        page.wait_for_selector("#decision")
        note = "Payee differs from organiser.\nAsked the bank."
        page.fill("#note", note)
        other = context.new_page()  # another tab: sign out there
        other.goto(server["url"] + "/queue")
        other.click("header form button[type=submit]")
        other.wait_for_selector("#password")
        other.close()

        page.click("#decision button[value=flagged_fraud]")
        page.wait_for_selector("#sign-in-to-send")
        assert "NOT saved" in page.text_content("h1") and page.input_value("#note") == note
        assert page.input_value("#name") == "bob"
        assert db.reviews_for(engine, object_id) == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "not-saved-signed-out.png"), full_page=True)
        page.fill("#password", PASSWORD)
        page.click("#sign-in-to-send button[type=submit]")
        page.wait_for_selector("#send-again")
        assert "NOT been sent yet" in page.text_content("h1") and page.input_value("#note") == note
        assert db.reviews_for(engine, object_id) == []  # signing in applied nothing
        page.screenshot(path=str(ARTIFACTS / "not-saved-ready-to-send.png"), full_page=True)
        page.click("#send-again button[type=submit]")
        page.wait_for_selector(".flash-success")
        assert page.url.startswith(f"{server['url']}/events/{object_id}")
        assert [(r["action"], r["note"], r["analyst"]) for r in db.reviews_for(engine, object_id)] == [
            ("flagged_fraud", note, "bob")]
    finally:
        context.close()


def test_keyboard_users_can_skip_the_filters_to_the_events(session):
    """The queue's first link inside the page skips its filters: the next Tab is in the table."""
    page = session["context"].new_page()
    try:
        page.goto(session["url"] + "/queue?tier=high")
        page.wait_for_selector("#queue-table")
        assert page.locator(".skip-link").bounding_box()["x"] < 0  # out of sight until focused
        page.keyboard.press("Tab")  # the first stop on the page, before the top bar's links
        assert page.evaluate("document.activeElement.classList.contains('skip-link')")
        assert page.locator(".skip-link").bounding_box()["x"] >= 0
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('#queue-table')")
        assert page.get_attribute("#selected-count", "role") == "status"  # ticks are announced
        # every other page skips the top bar to its content
        page.goto(session["url"] + "/charts")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    finally:
        page.close()
