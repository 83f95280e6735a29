"""The analysts' dashboard through Flask's test client: sign-in, CSRF, rate limit, the queue,
the event page (sanitised text), decisions (audit trail, conflicts, bulk, failed writes), the
JSON chart endpoints and the two command-line commands.

Every app here is built by ``create_app`` on a fresh SQLite file holding events scored by the
session's tiny model; the helpers at the top are shared with tests/test_browser.py.
"""
from __future__ import annotations

import html
import random
import re
from urllib.parse import parse_qs, urlsplit

import pytest

import dashboard
import db
import exchange
import features
import predict
import synth

PASSWORD = "correct horse battery"
HOSTILE_ID = 990000001
# Organiser-written text that would run script if it reached the page as HTML.
HOSTILE_SCRIPT = "<script>window.__pwned = 1; alert('pwned')</script>"
HOSTILE_IMG = "<img src=x onerror=\"window.__pwned = 2; alert('img')\">"
HOSTILE_LINK = "<a href=\"javascript:window.__pwned = 3; alert('link')\">win a prize</a>"
HOSTILE_SVG = "<svg onload=\"window.__pwned = 4\"></svg>"


# --------------------------------------------------------------------------- shared helpers


def scored_events(model, n: int = 240, seed: int = 7) -> list[tuple[dict, dict]]:
    """(raw record, score) pairs for n synthetic events, scored by the real scoring core."""
    records = synth.generate_events(n, seed)
    return list(zip(records, predict.score_records(model, records)))


def hostile_event(template: dict) -> tuple[dict, dict]:
    """An event whose every free-text field tries to run script, scored high and unreviewed."""
    raw = dict(template)
    raw.update(
        object_id=HOSTILE_ID,
        name=f"Free gig {HOSTILE_SCRIPT}{HOSTILE_IMG}",
        org_name=f"Evil Org {HOSTILE_IMG}",
        description=f"<p>Great <b>party</b>!</p>{HOSTILE_SCRIPT}{HOSTILE_IMG}{HOSTILE_LINK}{HOSTILE_SVG}",
        org_desc=f"<i>We</i> are legit {HOSTILE_LINK}{HOSTILE_SCRIPT}",
        venue_name=f"Venue {HOSTILE_SCRIPT}",
        venue_address=f"1 Main St {HOSTILE_IMG}",
        payee_name=HOSTILE_LINK,
        acct_type=None,
    )
    score = {"object_id": HOSTILE_ID, "fraud_probability": 0.99, "risk_tier": "high",
             "expected_loss": 990000.0, "money_at_stake": 1000000.0,
             "reasons": [f"reason with {HOSTILE_SCRIPT}"], "model_version": "test"}
    return raw, score


def add_analysts(engine, password_hash: str, names=("alice", "bob")) -> None:
    """Create analysts sharing one precomputed hash (scrypt is slow on purpose)."""
    for name in names:
        db.create_analyst(engine, name, password_hash)


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


def sign_in(client, name: str = "alice", password: str = PASSWORD, csrf: bool = False):
    """Sign in through the form (fetching the token first when CSRF is on)."""
    data = {"name": name, "password": password}
    if csrf:
        data["csrf_token"] = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data=data)


def flashes(page: str) -> list[str]:
    """The flash messages of a page, as plain text."""
    return [html.unescape(re.sub(r"<[^>]+>", "", m)).strip()
            for m in re.findall(r'<li class="flash[^"]*">(.*?)</li>', page, re.S)]


def row_ids(page: str) -> list[int]:
    """Event ids of the queue's rows, top to bottom."""
    return [int(i) for i in re.findall(r'<tr class="[^"]*" data-object-id="(\d+)"', page)]


def card_counts(page: str) -> dict:
    """The count shown on each tier card."""
    counts = {}
    for tier in ("high", "medium", "low"):
        match = re.search(rf'data-tier="{tier}".*?data-field="count">([\d,]+)<', page, re.S)
        assert match, f"no card for tier {tier}"
        counts[tier] = int(match.group(1).replace(",", ""))
    return counts


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def scored_pairs(tiny_model_path):
    """240 synthetic events scored once per session by the tiny model."""
    return scored_events(predict.load_model(tiny_model_path))


@pytest.fixture(scope="session")
def password_hash():
    """One scrypt hash of PASSWORD for every test analyst."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD, method="scrypt")


@pytest.fixture
def build_app(tiny_model_path, tmp_path, scored_pairs, password_hash):
    """Build an app on a fresh SQLite file holding the scored events, a hostile one and two analysts."""
    from app import create_app

    def build(populate: bool = True, **config):
        settings = {
            "TESTING": True, "MODEL_PATH": str(tiny_model_path), "SECRET_KEY": "test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'dashboard.db'}", "SPOOL_DIR": str(tmp_path / "spool"),
            "WTF_CSRF_ENABLED": False,
        }
        settings.update(config)
        app = create_app(settings)
        engine = app.extensions["db_engine"]
        if populate:
            db.save_scores(engine, scored_pairs, source="test_set")
            db.save_scores(engine, [hostile_event(scored_pairs[0][0])], source="stream")
        add_analysts(engine, password_hash)
        return app

    return build


@pytest.fixture
def dash_app(build_app):
    return build_app()


@pytest.fixture
def dash_engine(dash_app):
    return dash_app.extensions["db_engine"]


@pytest.fixture
def alice(dash_app):
    """A test client signed in as alice."""
    client = dash_app.test_client()
    assert sign_in(client).status_code == 302
    return client


def _any_id(engine, tier="high") -> int:
    rows, _ = db.queue(engine, tier=tier, per_page=1)
    return rows[0]["object_id"]


# --------------------------------------------------------------------------- sign-in and refusal

PAGES = ["/", "/queue", "/queue?tier=low", f"/events/{HOSTILE_ID}", "/charts"]
JSON_ENDPOINTS = ["/api/charts/scored-over-time", "/api/charts/probabilities", "/api/charts/money",
                  "/api/charts/status-over-time", "/api/charts/labelled", "/api/queue/summary",
                  "/api/queue/rows?ids=1"]


@pytest.mark.parametrize("path", PAGES)
def test_signed_out_pages_redirect_to_sign_in(dash_app, path):
    response = dash_app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_signed_out_json_endpoints_answer_401(dash_app, path):
    response = dash_app.test_client().get(path)
    assert response.status_code == 401
    assert response.get_json()["status"] == 401


@pytest.mark.parametrize("csrf", [False, True])
def test_signed_out_actions_are_refused_and_never_applied(build_app, csrf):
    app = build_app(WTF_CSRF_ENABLED=csrf)
    engine = app.extensions["db_engine"]
    client = app.test_client()
    target = _any_id(engine)
    token = {"csrf_token": csrf_token(client.get("/login").get_data(as_text=True))} if csrf else {}
    single = client.post(f"/events/{target}/review", data={"action": "flagged_fraud", **token})
    bulk = client.post("/reviews/bulk", data={"action": "cleared", "object_id": [target], **token})
    for response in (single, bulk):
        assert response.status_code in (302, 401)
        assert "/login" in response.headers.get("Location", "/login")
    assert db.reviews_for(engine, target) == []
    assert db.get_prediction(engine, target)["review_status"] == "unreviewed"


def test_actions_without_csrf_token_are_refused(build_app):
    app = build_app(WTF_CSRF_ENABLED=True)
    engine = app.extensions["db_engine"]
    client = app.test_client()
    assert sign_in(client, csrf=True).status_code == 302
    target = _any_id(engine)
    single = client.post(f"/events/{target}/review", data={"action": "flagged_fraud"})
    bulk = client.post("/reviews/bulk", data={"action": "cleared", "object_id": [target]})
    logout = client.post("/logout")
    for response in (single, bulk, logout):
        assert response.status_code == 400
        assert "security token" in response.get_data(as_text=True)  # error.html explains it
    assert db.reviews_for(engine, target) == []
    # A wrong token is refused as well; the right one works.
    page = client.get(f"/events/{target}").get_data(as_text=True)
    assert client.post(f"/events/{target}/review",
                       data={"action": "flagged_fraud", "csrf_token": "forged"}).status_code == 400
    ok = client.post(f"/events/{target}/review",
                     data={"action": "flagged_fraud", "csrf_token": csrf_token(page)})
    assert ok.status_code == 302
    assert [r["action"] for r in db.reviews_for(engine, target)] == ["flagged_fraud"]


def test_sign_in_without_csrf_token_is_refused(build_app):
    client = build_app(WTF_CSRF_ENABLED=True).test_client()
    assert client.post("/login", data={"name": "alice", "password": PASSWORD}).status_code == 400
    assert client.get("/").status_code == 302  # still signed out


def test_score_api_stays_open_to_the_stream_without_csrf(build_app, scored_pairs):
    app = build_app(WTF_CSRF_ENABLED=True)
    live = synth.to_live(scored_pairs[1][0])
    response = app.test_client().post("/score", json=live)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["risk_tier"] in ("low", "medium", "high")


@pytest.mark.parametrize("name, password", [("alice", "wrong password"), ("nobody", PASSWORD), ("", "")])
def test_wrong_credentials_are_refused(dash_app, name, password):
    client = dash_app.test_client()
    response = sign_in(client, name, password)
    assert response.status_code == 401
    assert "Wrong name or password" in response.get_data(as_text=True)
    assert client.get("/queue").status_code == 302


def test_sign_in_and_out(dash_app):
    client = dash_app.test_client()
    response = sign_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/queue"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Signed in as <strong>alice</strong>" in client.get("/queue").get_data(as_text=True)
    assert client.post("/logout").status_code == 302
    assert client.get("/queue").status_code == 302


@pytest.mark.parametrize("target, expected", [
    ("/charts", "/charts"), ("https://evil.example/", "/queue"), ("//evil.example/x", "/queue"),
    ("/\t/evil.example/", "/queue"), ("/queue\r\nSet-Cookie: x=1", "/queue"), ("/queue\x7f", "/queue"),
])
def test_sign_in_follows_only_local_next(dash_app, target, expected):
    client = dash_app.test_client()
    response = client.post("/login", query_string={"next": target}, data={"name": "alice", "password": PASSWORD})
    assert response.headers["Location"] == expected
    assert client.get("/login", query_string={"next": target}).headers["Location"] == expected  # signed in


def test_a_decision_with_a_line_break_in_its_way_back_is_saved_and_answered(alice, dash_engine):
    target = _any_id(dash_engine)
    response = alice.post("/reviews/bulk", data={
        "action": "flagged_fraud", "object_id": [target], f"seen_{target}": "", "next": "/?tier=high\n"})
    assert response.status_code == 302 and response.headers["Location"] == "/queue"
    assert db.get_prediction(dash_engine, target)["review_status"] == "flagged_fraud"


def test_sign_in_attempts_are_rate_limited(dash_app):
    client = dash_app.test_client()
    statuses = [sign_in(client, "alice", f"guess {i}").status_code for i in range(10)]
    assert statuses == [401] * 10
    limited = sign_in(client, "alice", PASSWORD)  # even the right password now waits
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.get_data(as_text=True)
    assert client.get("/queue").status_code == 302
    # The limit is per address and name: another analyst from the same address may still sign in,
    # and pages other than sign-in are not limited at all.
    assert sign_in(client, "bob").status_code == 302
    assert all(client.get("/queue").status_code == 200 for _ in range(15))


def test_pages_carry_no_inline_script_or_style(alice):
    """The CSP forbids inline code, so the pages must not rely on any."""
    for path in ("/queue", f"/events/{HOSTILE_ID}", "/charts", "/login"):
        response = alice.get(path)
        page = response.get_data(as_text=True)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == [], path
        assert " style=" not in page and "<style" not in page, path


# --------------------------------------------------------------------------- the queue


def test_queue_shows_three_tiers_with_counts(alice, dash_engine):
    page = alice.get("/").get_data(as_text=True)
    summary = db.tier_summary(dash_engine)
    assert card_counts(page) == {tier: summary[tier]["count"] for tier in ("high", "medium", "low")}
    assert sum(card_counts(page).values()) == db.count_predictions(dash_engine)
    for heading in ("Event", "Organiser", "Country", "Created", "Money at stake", "Probability", "Tier",
                    "Top reason", "Review status"):
        assert f">{heading}<" in page
    assert 'type="checkbox" name="object_id"' in page


def test_queue_orders_a_tier_by_expected_loss(alice, dash_engine):
    for tier in ("high", "medium", "low"):
        page = alice.get(f"/queue?tier={tier}&per_page=200").get_data(as_text=True)
        rows, total = db.queue(dash_engine, tier=tier, per_page=500)
        assert len(row_ids(page)) == min(total, 200)
        losses = {r["object_id"]: r["expected_loss"] for r in rows}
        shown = [losses[i] for i in row_ids(page)]
        assert shown == sorted(shown, reverse=True)
        assert tier == "medium" or len(shown) >= 2  # the tiny model may leave medium empty


@pytest.mark.parametrize("sort, column", [("probability", "fraud_probability"), ("money", "money_at_stake"),
                                           ("created", "event_created"), ("received", "first_received_at")])
def test_queue_sorts(alice, dash_engine, sort, column):
    page = alice.get(f"/queue?tier=all&sort={sort}&order=asc&per_page=200").get_data(as_text=True)
    values = {r["object_id"]: r[column] for r in db.queue(dash_engine, per_page=500)[0]}
    shown = [values[i] for i in row_ids(page)]
    assert len(shown) == 200
    assert shown == sorted(shown)


def test_queue_pages(alice, dash_engine):
    total = db.tier_summary(dash_engine)["low"]["count"]
    first = alice.get("/queue?tier=low&per_page=10&page=1").get_data(as_text=True)
    second = alice.get("/queue?tier=low&per_page=10&page=2").get_data(as_text=True)
    assert len(row_ids(first)) == len(row_ids(second)) == 10
    assert not set(row_ids(first)) & set(row_ids(second))
    assert f"Showing 11–20 of {total:,} events" in second
    assert 'rel="next"' in first and 'rel="prev"' in second


def test_queue_filters_and_search(alice, dash_engine):
    rows = db.queue(dash_engine, per_page=500)[0]
    by_currency = [r["object_id"] for r in rows if r["currency"] == "GBP"]
    page = alice.get("/queue?tier=all&currency=GBP&per_page=200").get_data(as_text=True)
    assert sorted(row_ids(page)) == sorted(by_currency) and by_currency
    assert page.count("events matching your filters") == 3  # the tier cards say they are filtered
    assert "matching your filters" not in alice.get("/queue?tier=all").get_data(as_text=True)

    country = next(r["country"] for r in rows if r["country"])
    page = alice.get(f"/queue?tier=all&country={country.lower()}&per_page=200").get_data(as_text=True)
    assert sorted(row_ids(page)) == sorted(r["object_id"] for r in rows if r["country"] == country)

    target = rows[17]
    page = alice.get(f"/queue?tier=all&q={target['object_id']}").get_data(as_text=True)
    assert row_ids(page) == [target["object_id"]]
    for shown in (f"#{target['object_id']}", f"# {target['object_id']}"):  # as the pages write ids
        page = alice.get("/queue", query_string={"tier": "all", "q": shown}).get_data(as_text=True)
        assert row_ids(page) == [target["object_id"]], shown

    org = next(r["org_name"] for r in rows if r["org_name"] and len(r["org_name"]) > 4)[:5].lower()
    page = alice.get("/queue", query_string={"tier": "all", "q": org, "per_page": 200}).get_data(as_text=True)
    matching = {r["object_id"] for r in rows
                if org in " ".join(r[k] or "" for k in ("name", "org_name", "email_domain")).lower()}
    assert row_ids(page) and set(row_ids(page)) == matching

    domain = next(r["email_domain"] for r in rows if r["email_domain"])
    page = alice.get("/queue", query_string={"tier": "all", "q": domain, "per_page": 200}).get_data(as_text=True)
    assert set(r["object_id"] for r in rows if r["email_domain"] == domain) <= set(row_ids(page))

    future = alice.get("/queue?tier=all&date_from=2999-01-01").get_data(as_text=True)
    assert row_ids(future) == [] and "No events match" in future
    today = alice.get("/queue?tier=all&date_to=2999-01-01&per_page=200").get_data(as_text=True)
    assert len(row_ids(today)) == 200

    bad = alice.get("/queue?tier=all&date_from=yesterday&status=bogus&currency=<x>")
    assert bad.status_code == 200 and "Ignored the date" in bad.get_data(as_text=True)


def test_a_decision_address_opened_again_shows_the_event_or_the_queue(alice, dash_engine):
    """After a refused decision the address bar holds the form's address; opening it again used
    to answer 405 Method Not Allowed."""
    target = _any_id(dash_engine)
    assert alice.get(f"/events/{target}/review").headers["Location"] == f"/events/{target}"
    assert alice.get("/reviews/bulk").headers["Location"] == "/queue"
    assert db.reviews_for(dash_engine, target) == []


def test_dates_the_wrong_way_round_are_pointed_out(alice):
    page = alice.get("/queue?tier=all&date_from=2026-05-01&date_to=2026-04-01").get_data(as_text=True)
    assert any(m.startswith("The dates are the wrong way round") for m in flashes(page))
    page = alice.get("/queue?tier=all&date_from=2026-04-01&date_to=2026-04-01").get_data(as_text=True)
    assert not any("wrong way round" in m for m in flashes(page))
    # the last days a date can name, on either side alone, or both: a list (empty), never an error
    for query in ("date_from=9999-12-31", "date_from=9999-01-01", "date_to=9999-12-31",
                  "date_from=0001-01-01&date_to=9999-12-31", "date_from=9999-12-31&date_to=9999-12-31"):
        for path in (f"/queue?tier=all&{query}", f"/api/queue/summary?{query}"):
            response = alice.get(path)
            assert response.status_code == 200, (path, response.status_code)
            if path.startswith("/queue"):
                assert not any("wrong way round" in m for m in flashes(response.get_data(as_text=True)))


def test_queue_status_filter_and_attention_rows(alice, dash_engine):
    high = [r["object_id"] for r in db.queue(dash_engine, tier="high", per_page=500)[0]]
    assert len(high) >= 3
    alice.post("/reviews/bulk", data={"action": "flagged_fraud", "object_id": high[:2]})
    page = alice.get("/queue?tier=high&per_page=200").get_data(as_text=True)
    attention = [int(i) for i in re.findall(r'<tr class="attention" data-object-id="(\d+)"', page)]
    assert sorted(attention) == sorted(high[2:])  # unreviewed high risk stands out, reviewed does not
    flagged = alice.get("/queue?tier=high&status=flagged_fraud").get_data(as_text=True)
    assert sorted(row_ids(flagged)) == sorted(high[:2])
    unreviewed = alice.get("/queue?tier=high&status=unreviewed&per_page=200").get_data(as_text=True)
    assert sorted(row_ids(unreviewed)) == sorted(high[2:])
    assert card_counts(unreviewed)["high"] == len(high) - 2


# --------------------------------------------------------------------------- the event page


def parsed_tags(page: str) -> list[tuple[str, dict]]:
    """Every start tag of a page with its attributes, as a browser's parser would see them."""
    from html.parser import HTMLParser

    tags = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, {name: value or "" for name, value in attrs}))

    Collector(convert_charrefs=True).feed(page)
    return tags


def test_event_page_shows_hostile_text_inertly(alice):
    page = alice.get(f"/events/{HOSTILE_ID}").get_data(as_text=True)
    tags = parsed_tags(page)
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert all(attrs.get("src", "").startswith("/static/") for attrs in scripts)  # only our own files
    assert not [(tag, name) for tag, attrs in tags for name in attrs if name.startswith("on")]
    assert not [(tag, value) for tag, attrs in tags for value in attrs.values()
                if value.strip().lower().startswith("javascript:")]
    assert not [tag for tag, _ in tags if tag in ("img", "svg", "iframe", "object", "embed", "a")
                and tag != "a"]
    assert not [attrs for tag, attrs in tags  # every link is to this site (or a place on the page)
                if tag == "a" and not attrs.get("href", "").startswith("/") and attrs.get("href") not in ("#main", "#decision")]
    assert "<b>party</b>" in page and "<i>We</i>" in page  # basic formatting survives
    assert "Free gig &lt;script&gt;window.__pwned" in page  # the name is shown as text, escaped


def test_money_is_shown_in_us_dollars_with_the_events_own_amount(alice, dash_engine, scored_pairs):
    raw, score = next((r, s) for r, s in scored_pairs if r.get("currency") == "GBP" and s["money_at_stake"] > 0)
    own = features.money_at_stake(raw)
    assert score["money_at_stake"] == pytest.approx(own * exchange.rate("GBP"), abs=0.01)
    page = alice.get(f"/events/{raw['object_id']}").get_data(as_text=True)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert f"{dashboard.format_money(score['money_at_stake'], 'USD')} at stake" in text
    assert f"({dashboard.format_money(own, 'GBP')})" in text  # £..., the amount as priced
    assert f"{dashboard.format_money(score['expected_loss'], 'USD')} expected loss" in text
    usd = next(r for r, s in scored_pairs if r.get("currency") == "USD")
    assert 'id="own-currency"' not in alice.get(f"/events/{usd['object_id']}").get_data(as_text=True)

    queue = alice.get("/queue?tier=all&per_page=200&sort=money").get_data(as_text=True)
    row = re.search(rf'data-object-id="{raw["object_id"]}".*?</tr>', queue, re.S).group(0)
    assert dashboard.format_money(score["money_at_stake"], "USD", cents=False) in html.unescape(row)
    assert "priced in GBP" in row
    cards = re.search(r'id="tier-cards".*?</section>', queue, re.S).group(0)
    assert "GBP" not in cards  # the tier totals add dollars to dollars:
    high = sum(s["money_at_stake"] for r, s in scored_pairs if s["risk_tier"] == "high") + 1_000_000  # + the hostile event
    card = re.search(r'data-tier="high".*?data-field="money_at_stake">([^<]*)<', cards, re.S).group(1)
    assert html.unescape(card.strip()) == dashboard.format_money(high, "USD", cents=False)


@pytest.mark.parametrize("currency, marked, own", [
    (" gbp ", "priced in GBP", "GBP)"),  # read as GBP wherever it is used
    ("XAU", "priced in XAU, no rate: counted as US dollars", "XAU, no rate known: counted as US dollars"),
    ("Q" * 8000, "priced in a currency too long to show, no rate: counted as US dollars",
     "in a currency too long to show, no rate known: counted as US dollars"),
    ("bitcoin", "priced in BITCOIN, no rate: counted as US dollars", "BITCOIN, no rate known: counted as US dollars"),
    (None, "no currency given: counted as US dollars", "no currency given: counted as US dollars"),
])
def test_the_queue_and_event_page_read_the_currency_as_the_conversion_does(
        alice, dash_engine, scored_pairs, tiny_model, currency, marked, own):
    raw = {**next(r for r, s in scored_pairs if s["money_at_stake"] > 0), "object_id": 990_001, "currency": currency}
    db.save_scores(dash_engine, [(raw, predict.score_records(tiny_model, [raw])[0])])
    page = alice.get("/events/990001").get_data(as_text=True)
    own_line = html.unescape(re.search(r'id="own-currency">(.*?)</div>', page, re.S).group(1))
    assert own_line.endswith(own + ("" if own.endswith(")") else ")")) and len(own_line) < 120
    queue = alice.get("/queue?tier=all&per_page=200&q=990001").get_data(as_text=True)
    row = re.search(r'data-object-id="990001".*?</tr>', queue, re.S).group(0)
    assert marked in row
    filtered = alice.get("/queue?tier=all&per_page=200&currency=GBP").get_data(as_text=True)
    assert ('data-object-id="990001"' in filtered) == (marked == "priced in GBP")


@pytest.mark.parametrize("seen", ["1" + "0" * 30, "-5", str(2**63), "abc"])
def test_a_last_seen_review_id_out_of_range_is_refused_not_an_error(alice, dash_engine, seen):
    target = _any_id(dash_engine)
    single = alice.post(f"/events/{target}/review", data={"action": "cleared", "expected_review_id": seen})
    bulk = alice.post("/reviews/bulk", data={"action": "cleared", "object_id": [str(target)], f"seen_{target}": seen})
    assert single.status_code == 400 and bulk.status_code == 400
    assert "review id" in single.get_data(as_text=True)
    assert db.get_prediction(dash_engine, target)["review_status"] == "unreviewed"  # nothing applied


def test_an_unlisted_currency_filter_shows_as_chosen(alice):
    page = alice.get("/queue?tier=all&currency=XYZ").get_data(as_text=True)
    assert '<option value="XYZ" selected>XYZ</option>' in page and '<option value="" selected' not in page


def test_an_empty_tier_offers_the_other_tiers(alice, dash_engine):
    low = _any_id(dash_engine, tier="low")
    page = html.unescape(alice.get(f"/queue?tier=high&q={low}").get_data(as_text=True))
    assert "No events match in the high-risk tier." in page and "Look in all tiers" in page
    assert f'data-object-id="{low}"' in alice.get(f"/queue?tier=all&q={low}").get_data(as_text=True)


def test_event_page_shows_every_field_readably(alice, dash_engine, scored_pairs):
    raw, score = next((r, s) for r, s in scored_pairs if r.get("previous_payouts") and r.get("ticket_types"))
    page = alice.get(f"/events/{raw['object_id']}").get_data(as_text=True)
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert dashboard.format_datetime(raw["event_created"]) in text and " UTC" in text
    assert dashboard.format_money(score["money_at_stake"], "USD") in text
    assert re.search(r"Listed publicly\s+(yes|no)", text)
    assert re.search(r"Has a logo\s+(yes|no)", text)
    assert "Ticket tiers" in text and 'id="ticket-tiers"' in page
    assert "Payouts before this event was created" in text
    assert all(reason in text for reason in score["reasons"])
    assert "Times received" in text and "Review history" in text
    assert f"Account type {raw['acct_type']}" in re.sub(r"\s+", " ", text)
    assert "—" in text  # missing values are shown as a dash
    assert "None" not in re.sub(r"<[^>]+>", "", page)


def _link(page: str, link_id: str) -> str | None:
    match = re.search(rf'<a id="{link_id}" href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


def test_event_page_links_to_the_organisers_other_events(alice, dash_engine, scored_pairs):
    """One fraudster often runs several events: the event page lists the organiser's and the
    email domain's events in every tier, exactly those: not another organiser whose name
    contains this one, nor a domain ending in this one (an analyst may flag the whole list)."""
    raw, score = (dict(x) for x in scored_pairs[3])
    events = [  # object id, tier, organiser, email domain
        (990000031, "low", "Ticketing Ltd & Sons <x>", "Sons-Events.example"),
        (990000032, "high", " ticketing ltd & sons <x> ", "sons-events.example"),  # case and spaces aside
        (990000033, "medium", "Other Org", "gmail.com"),
        (990000034, "high", "Big Ticketing Ltd & Sons <x> Two", "notsons-events.example"),
        (990000035, "low", "Another", "bob@sons-events.example"),  # a whole address slipped in
    ]
    db.save_scores(dash_engine, [({**raw, "object_id": i, "org_name": org, "email_domain": domain},
                                  {**score, "object_id": i, "risk_tier": tier}) for i, tier, org, domain in events])
    page = alice.get("/events/990000031").get_data(as_text=True)
    organiser, domain = _link(page, "related-organiser"), _link(page, "related-domain")
    assert parse_qs(urlsplit(organiser).query) == {"tier": ["all"], "organiser": ["Ticketing Ltd & Sons <x>"]}
    assert parse_qs(urlsplit(domain).query) == {"tier": ["all"], "domain": ["sons-events.example"]}
    for url, expected in ((organiser, {990000031, 990000032}), (domain, {990000031, 990000032, 990000035})):
        found = alice.get(url).get_data(as_text=True)
        assert {int(i) for i in re.findall(r'data-object-id="(\d+)"', found)} == expected, url
        assert 'id="active-filters"' in found  # the page says the list is filtered, and how to undo it
    found = alice.get(organiser).get_data(as_text=True)
    assert "by the organiser <strong>Ticketing Ltd &amp; Sons &lt;x&gt;</strong>" in found
    # the filter form keeps it when another filter changes
    assert '<input type="hidden" name="organiser" value="Ticketing Ltd &amp; Sons &lt;x&gt;">' in found
    # a free-mail domain is shared by strangers: no link for it
    page = alice.get("/events/990000033").get_data(as_text=True)
    assert _link(page, "related-organiser") and _link(page, "related-domain") is None


def test_event_page_survives_fields_of_the_wrong_type(alice, dash_engine, scored_pairs):
    raw, score = (dict(x) for x in scored_pairs[2])
    raw.update(object_id=990000002, name=12345, body_length="lots", event_created="yesterday",
               event_end=10**20, venue_latitude="north", has_logo="maybe", description=None,
               ticket_types=[{"cost": "free", "quantity_total": None}, "not a tier"],
               previous_payouts=[{"created": "garbage", "amount": "x"}, 7])
    score["object_id"] = 990000002
    db.save_scores(dash_engine, [(raw, score)])
    response = alice.get("/events/990000002")
    assert response.status_code == 200
    text = html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))
    assert "12345" in text and "lots" in text and "north" in text
    # with no creation date, how many payouts came before it is unknown, not 0
    assert re.search(r"Payouts before this event was created\s+unknown \(the event's creation date is not recorded\)", text)


def test_events_a_batch_job_left_unexplained_get_reasons_when_shown(alice, dash_app, dash_engine, scored_pairs):
    """Batch jobs explain only the review tiers; the queue and the event page explain the rest."""
    model = dash_app.extensions["fraud_model"]
    records = [dict(raw, object_id=980000000 + i) for i, (raw, _) in enumerate(scored_pairs[:60])]
    scores = predict.score_records(model, records, explain=predict.REVIEW_TIERS)
    low = [(r, s) for r, s in zip(records, scores) if s["risk_tier"] == "low"]
    assert low and all(s["reasons"] == [] for _, s in low)  # stored without reasons
    db.save_scores(dash_engine, list(zip(records, scores)), source="batch")
    raw, _ = low[0]
    expected = model.explain([raw])[0]
    assert expected and expected[0].startswith("lowers risk: ")
    text = html.unescape(alice.get(f"/events/{raw['object_id']}").get_data(as_text=True))
    assert all(reason in text for reason in expected)
    page = html.unescape(alice.get("/queue?tier=low&sort=received&order=desc&per_page=100").get_data(as_text=True))
    shown = {int(i): reason for i, reason in re.findall(
        r'<tr class="[^"]*" data-object-id="(\d+)".*?<td class="reason"[^>]*>([^<]*)</td>', page, re.S)}
    assert all(shown[r["object_id"]].startswith("lowers risk: ") for r, _ in low)
    assert db.get_prediction(dash_engine, raw["object_id"])["reasons"] == []  # nothing written back


def test_event_scored_by_an_older_model_without_reasons_says_so(alice, dash_engine, scored_pairs):
    raw, score = (dict(x) for x in scored_pairs[3])
    raw["object_id"] = score["object_id"] = 990000003
    score.update(reasons=[], model_version="an-older-model")
    db.save_scores(dash_engine, [(raw, score)])
    text = re.sub(r"\s+", " ", html.unescape(alice.get("/events/990000003").get_data(as_text=True)))
    assert "model that scored it (an-older-model) is no longer the one serving" in text


def test_unknown_event_is_404(alice):
    response = alice.get("/events/12345")
    assert response.status_code == 404
    assert "no scored event with id 12345" in response.get_data(as_text=True)


# --------------------------------------------------------------------------- decisions


def test_review_appends_audit_entries(alice, dash_engine):
    target = _any_id(dash_engine, "low")
    response = alice.post(f"/events/{target}/review", data={
        "action": "needs_info", "note": "asked for ID", "expected_review_id": ""}, follow_redirects=True)
    assert "Marked as needing information" in " ".join(flashes(response.get_data(as_text=True)))
    last = db.get_prediction(dash_engine, target)["last_review_id"]
    alice.post(f"/events/{target}/review", data={"action": "note", "note": "called organiser"})
    alice.post(f"/events/{target}/review", data={
        "action": "cleared", "note": "ID checks out", "expected_review_id": str(last)})
    trail = db.reviews_for(dash_engine, target)
    assert [(r["action"], r["note"], r["analyst"]) for r in trail] == [
        ("cleared", "ID checks out", "alice"), ("note", "called organiser", "alice"),
        ("needs_info", "asked for ID", "alice")]
    page = alice.get(f"/events/{target}").get_data(as_text=True)
    history = page[page.index('id="history"'):]
    assert history.index("ID checks out") < history.index("called organiser") < history.index("asked for ID")
    assert db.get_prediction(dash_engine, target)["review_status"] == "cleared"


def test_empty_note_is_not_recorded(alice, dash_engine):
    target = _any_id(dash_engine)
    response = alice.post(f"/events/{target}/review", data={"action": "note", "note": "  "}, follow_redirects=True)
    assert "Write the note first" in " ".join(flashes(response.get_data(as_text=True)))
    assert db.reviews_for(dash_engine, target) == []


def test_a_note_is_stored_whole_or_refused_whole(alice, dash_engine):
    """A browser lets 2,000 characters into the note box counting a line break as one, then sends
    each as CRLF: the note is stored whole. A note over the limit is never cut and stored short:
    nothing is applied, and the page keeps the whole note to shorten."""
    target, other = _any_id(dash_engine), _any_id(dash_engine, "medium")
    lines = ["x" * 20] * 95
    typed = "\n".join(lines)
    typed += "y" * (dashboard.NOTE_MAX - len(typed))
    assert len(typed) == dashboard.NOTE_MAX
    sent = typed.replace("\n", "\r\n")
    response = alice.post(f"/events/{target}/review", data={"action": "note", "note": sent})
    assert response.status_code == 302
    assert db.reviews_for(dash_engine, target)[0]["note"] == typed

    long_note = "Called the venue twice. " * 300
    for url, data, page_check in (
            (f"/events/{target}/review", {"action": "flagged_fraud", "expected_review_id": ""},
             r'<textarea id="note"[^>]*>(.*?)</textarea>'),
            ("/reviews/bulk", {"action": "cleared", "object_id": [other], f"seen_{other}": "", "next": "/queue?tier=medium"},
             r'id="bulk-note"[^>]*value="([^"]*)"')):
        refused = alice.post(url, data={**data, "note": long_note})
        page = refused.get_data(as_text=True)
        assert refused.status_code == 400, url
        assert any("Nothing was saved" in m and "7,199 characters" in m for m in flashes(page)), flashes(page)
        assert html.unescape(re.search(page_check, page, re.S).group(1)) == long_note.strip()
        if url == "/reviews/bulk":  # the ticks are kept too
            assert re.search(rf'value="{other}" class="row-select" checked', page)
    assert [r["action"] for r in db.reviews_for(dash_engine, target)] == ["note"]
    assert db.reviews_for(dash_engine, other) == []


def test_a_bulk_decision_names_the_events_that_no_longer_exist(alice, dash_engine):
    target = _any_id(dash_engine)
    response = alice.post("/reviews/bulk", data={
        "action": "flagged_fraud", "object_id": [target, 123456789, 123456790], f"seen_{target}": "",
        "seen_123456789": "", "seen_123456790": "", "next": "/queue"}, follow_redirects=True)
    messages = flashes(response.get_data(as_text=True))
    assert any("Flagged as fraud" in m for m in messages), messages
    assert any("Not applied to 2 events that no longer exist (event 123456789, 123456790)" in m for m in messages)
    assert db.get_prediction(dash_engine, target)["review_status"] == "flagged_fraud"


def _hidden(page: str, name: str) -> str:
    """The value of a page's hidden input."""
    return html.unescape(re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page).group(1))


def test_a_decision_on_an_event_that_changed_unseen_is_not_applied(alice, dash_engine, scored_pairs):
    """alice opens a low-risk event; the stream sends it again with $5.7 M of tickets and it scores
    high. Her "clear", made on what she saw, is not applied to what she did not see; a resend
    that changes nothing does not stand in her way."""
    raw, score = next((r, s) for r, s in scored_pairs if s["risk_tier"] == "low")
    target = 990000200
    db.save_scores(dash_engine, [({**raw, "object_id": target}, {**score, "object_id": target})])
    page = alice.get(f"/events/{target}").get_data(as_text=True)
    form = {"action": "cleared", "expected_review_id": _hidden(page, "expected_review_id"),
            "expected_score": _hidden(page, "expected_score"), "note": "organiser known to us"}
    queue = alice.get("/queue", query_string={"tier": "low", "q": str(target)}).get_data(as_text=True)
    bulk = {"action": "cleared", "object_id": [target], f"seen_{target}": _hidden(queue, f"seen_{target}"),
            f"score_seen_{target}": _hidden(queue, f"score_seen_{target}"), "next": "/queue?tier=low"}
    assert form["expected_score"] == bulk[f"score_seen_{target}"]

    db.save_scores(dash_engine, [({**raw, "object_id": target}, {**score, "object_id": target})])  # the same again
    changed = {**score, "object_id": target, "fraud_probability": 0.91, "risk_tier": "high",
               "money_at_stake": 5_700_000.0, "expected_loss": 5_187_000.0}
    db.save_scores(dash_engine, [({**raw, "object_id": target, "ticket_types": [{"cost": 950, "quantity_total": 6000}]},
                                  changed)])
    for url, data in ((f"/events/{target}/review", form), ("/reviews/bulk", bulk)):
        refused = alice.post(url, data=data)
        page = refused.get_data(as_text=True)
        assert refused.status_code in (302, 409), url
        if refused.status_code == 302:
            page = alice.get(refused.headers["Location"]).get_data(as_text=True)
        message = " ".join(flashes(page))
        assert "the event changed after you opened it" in message and "now it is high risk, 91.0 %" in message, message
        assert "sent again with other content at " in message
        assert "with $5,700,000 USD at stake" in message
        assert f"It was {dashboard.format_probability(score['fraud_probability'])} with" in message
    assert db.get_prediction(dash_engine, target)["review_status"] == "unreviewed"
    assert db.reviews_for(dash_engine, target) == []

    page = alice.get(f"/events/{target}").get_data(as_text=True)  # she looks again: now it applies
    applied = alice.post(f"/events/{target}/review", data={
        **form, "expected_score": _hidden(page, "expected_score")})
    assert applied.status_code == 302
    assert db.get_prediction(dash_engine, target)["review_status"] == "cleared"


def test_an_event_sent_again_with_other_content_after_a_decision_is_reviewed_again(alice, dash_engine, scored_pairs):
    """alice clears an event; its organiser then changes the payee, which the model does not read
    (the score stays the same). Her decision was on the old content: the event is back to "Not
    reviewed", its history says so, her clear is no longer a training label, and a decision
    from a page opened before the change is refused; from a fresh page it applies."""
    raw, score = next((r, s) for r, s in scored_pairs if s["risk_tier"] == "medium")
    target = 990000300
    db.save_scores(dash_engine, [({**raw, "object_id": target}, {**score, "object_id": target})])
    page = alice.get(f"/events/{target}").get_data(as_text=True)
    assert alice.post(f"/events/{target}/review", data={
        "action": "cleared", "expected_review_id": "", "expected_score": _hidden(page, "expected_score"),
        "note": "payee is the organiser"}).status_code == 302
    page = alice.get(f"/events/{target}").get_data(as_text=True)  # open while the change comes in
    assert 'id="content-changed"' not in page
    db.save_scores(dash_engine, [({**raw, "object_id": target}, {**score, "object_id": target})])  # the same again
    assert db.get_prediction(dash_engine, target)["review_status"] == "cleared"
    assert [label["object_id"] for label in db.export_labels(dash_engine)].count(target) == 1

    db.save_scores(dash_engine, [({**raw, "object_id": target, "payee_name": "Quick Cash Ltd"},
                                  {**score, "object_id": target})])
    row = db.get_prediction(dash_engine, target)
    assert row["review_status"] == "unreviewed" and row["fraud_probability"] == score["fraud_probability"]
    assert target not in [label["object_id"] for label in db.export_labels(dash_engine)]
    queue = alice.get("/queue", query_string={"tier": "medium", "status": "unreviewed", "q": str(target)})
    assert target in row_ids(queue.get_data(as_text=True))
    # the queue says what was decided before the change, not only the event's history, and so
    # does its live refresh of the rows it lists
    assert re.search(r'class="changed-since small">Cleared by alice; the event changed since<',
                     _queue_row(queue.get_data(as_text=True), target))
    assert alice.get(f"/api/queue/rows?ids={target}").get_json()[str(target)]["changed_since"] == (
        "Cleared by alice; the event changed since")
    fresh = alice.get(f"/events/{target}").get_data(as_text=True)
    history = fresh[fresh.index('id="history"'):]
    assert history.index('id="content-changed"') < history.index("payee is the organiser")
    assert "The event was sent again with other content" in history

    stale = alice.post(f"/events/{target}/review", data={
        "action": "cleared", "expected_review_id": _hidden(page, "expected_review_id"),
        "expected_score": _hidden(page, "expected_score")}, follow_redirects=True)
    message = " ".join(flashes(stale.get_data(as_text=True)))
    assert "sent again with other content at" in message and "Its score did not change" in message, message
    assert db.get_prediction(dash_engine, target)["review_status"] == "unreviewed"
    assert alice.post(f"/events/{target}/review", data={
        "action": "flagged_fraud", "expected_review_id": _hidden(fresh, "expected_review_id"),
        "expected_score": _hidden(fresh, "expected_score")}).status_code == 302
    labels = [label for label in db.export_labels(dash_engine) if label["object_id"] == target]
    assert [(label["fraud"], label["event"]["payee_name"]) for label in labels] == [(True, "Quick Cash Ltd")]
    queue = alice.get("/queue", query_string={"tier": "medium", "q": str(target)}).get_data(as_text=True)
    assert re.search(r'class="changed-since small" hidden></div>', _queue_row(queue, target))  # decided again
    assert alice.get(f"/api/queue/rows?ids={target}").get_json()[str(target)]["changed_since"] == ""


@pytest.mark.parametrize("value", ["0.5", "x/1", "0.5/nan", "inf/1", "0.5/1/2/3", "0.5/1/x", "0.5/1/inf"])
def test_a_score_seen_that_no_page_writes_is_refused(alice, dash_engine, value):
    target = _any_id(dash_engine)
    response = alice.post(f"/events/{target}/review", data={
        "action": "cleared", "expected_review_id": "", "expected_score": value})
    assert response.status_code == 400 and "score" in response.get_data(as_text=True)
    assert db.reviews_for(dash_engine, target) == []


def test_a_conflict_links_to_its_event_and_a_resent_decision_is_already_saved(dash_app, dash_engine, scored_pairs):
    """The message of a decision not applied links to the event (its organiser-written name
    escaped); the same decision sent twice (a reload) says it is already saved."""
    raw, score = scored_pairs[7]
    target = 990000300
    db.save_scores(dash_engine, [({**raw, "object_id": target, "name": '<img src=x onerror=alert(1)> & "Gala"'},
                                  {**score, "object_id": target})])
    alice, bob = dash_app.test_client(), dash_app.test_client()
    sign_in(alice), sign_in(bob, "bob")
    form = {"action": "flagged_fraud", "object_id": [target], f"seen_{target}": "", "next": "/queue"}
    assert bob.post("/reviews/bulk", data=form).status_code == 302
    page = alice.post("/reviews/bulk", data=form, follow_redirects=True).get_data(as_text=True)
    link = re.search(rf'<li class="flash flash-warning">Not applied to <a href="/events/{target}">(.*?)</a>: bob', page)
    assert link, page[:2000]
    assert link.group(1) == "“&lt;img src=x onerror=alert(1)&gt; &amp; &#34;Gala&#34;” (event 990000300)"
    again = bob.post("/reviews/bulk", data=form, follow_redirects=True).get_data(as_text=True)
    assert any(m.startswith("Already saved: you decided “Flagged as fraud” on") for m in flashes(again))
    assert [r["analyst"] for r in db.reviews_for(dash_engine, target)] == ["bob"]


def _queue_row(page: str, object_id: int) -> str:
    match = re.search(rf'<tr[^>]*data-object-id="{object_id}"[^>]*>(.*?)</tr>', page, re.S)
    assert match, f"event {object_id} is not on the page"
    return match.group(1)


def _open_by_note(page: str) -> str:
    """The event page's "Also open by ..." note as text ("" when it is hidden)."""
    match = re.search(r'<p class="open-by-others" id="open-by-others"([^>]*)>(.*?)</p>', page, re.S)
    assert match, "the page has no open-by note"
    return "" if " hidden" in match.group(1) else re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(2))).strip()


def test_colleagues_see_who_has_an_event_open_until_they_decide(dash_app, dash_engine, monkeypatch):
    """Two analysts working down one queue: each sees which events the other has open, so they
    do not review the same event twice; a decision ends the opening, an old one is not shown."""
    import time

    rows, _ = db.queue(dash_engine, tier="high", filters={"status": "unreviewed"}, per_page=3)
    target, other, stale = (row["object_id"] for row in rows)
    alice, bob = dash_app.test_client(), dash_app.test_client()
    sign_in(alice), sign_in(bob, "bob")
    assert _open_by_note(bob.get(f"/events/{target}").get_data(as_text=True)) == ""  # not his own
    bob.get(f"/events/{other}")
    db.note_open(dash_engine, stale, "bob", now=time.time() - 6 * 60)  # not seen open for 6 minutes: not shown

    queue = alice.get("/queue?tier=high").get_data(as_text=True)
    assert "open by bob" in _queue_row(queue, target) and "open by bob" in _queue_row(queue, other)
    assert "open by" not in _queue_row(queue, stale)
    page = alice.get(f"/events/{target}").get_data(as_text=True)
    assert "<strong>bob</strong> (opened just now)" in page
    assert _open_by_note(page) == ("Also open by bob (opened just now): they may be reviewing it too. "
                                   "Check with them before you decide.")
    assert "open by alice" in _queue_row(bob.get("/queue?tier=high").get_data(as_text=True), target)

    # the queue's live refresh reads the same, for the ids it lists; junk ids are ignored
    unreviewed = {"status": "unreviewed", "status_label": "Not reviewed", "changed_since": ""}
    assert alice.get(f"/api/queue/rows?ids={target},{stale},x,-3,{10**30},999999999").get_json() == {
        str(target): {**unreviewed, "open_by": "open by bob (just now)"}, str(stale): {**unreviewed, "open_by": ""}}
    # bob decides; the page confirming his decision is not a new opening
    decided = bob.post(f"/events/{target}/review", data={"action": "needs_info", "expected_review_id": ""},
                       follow_redirects=True)
    assert decided.status_code == 200
    assert [r["analyst"] for r in db.reviews_for(dash_engine, target)] == ["bob"]
    assert _open_by_note(alice.get(f"/events/{target}").get_data(as_text=True)) == ""
    queue = alice.get("/queue?tier=high").get_data(as_text=True)
    assert "open by" not in _queue_row(queue, target) and "open by bob" in _queue_row(queue, other)
    assert alice.get(f"/api/queue/rows?ids={target}").get_json() == {
        str(target): {"status": "needs_info", "status_label": "Needs information", "open_by": "", "changed_since": ""}}
    # a bulk decision ends bob's opening of every event it decided
    assert bob.post("/reviews/bulk", data={"action": "cleared", "object_id": [other], f"seen_{other}": "",
                                           "next": "/queue"}).status_code == 302
    assert "open by" not in _queue_row(alice.get("/queue?tier=high").get_data(as_text=True), other)
    # bob opening the event again a moment after deciding is still its confirmation; later, an opening
    bob.get(f"/events/{target}")
    assert target not in db.open_by_others(dash_engine, [target], "alice", since=0)
    monkeypatch.setattr(dashboard, "OWN_DECISION_SECONDS", 0)
    bob.get(f"/events/{target}")
    assert db.open_by_others(dash_engine, [target], "alice", since=0)[target][0]["analyst"] == "bob"

    def locked(*args, **kwargs):
        raise db.DatabaseUnavailable("database is locked")

    monkeypatch.setattr(db, "note_open", locked)  # the opening only informs: the page is still shown
    assert bob.get(f"/events/{other}").status_code == 200


def _presence(page: str) -> tuple[str, str]:
    """The event page's presence address and the time it was given for its opening."""
    match = re.search(r'data-presence-url="([^"]+)" data-opened-at="([^"]+)"', page)
    assert match, "the page does not report that it is open"
    return match.group(1), match.group(2)


def test_an_open_event_page_keeps_its_opening_until_it_is_left(dash_app, dash_engine):
    """While bob's page of an event is open it says so (every minute), and colleagues see it past
    the five minutes an opening is otherwise shown; leaving the page ends it at once. Each word
    back names who else is on the event, as the page writes it."""
    rows, _ = db.queue(dash_engine, tier="high", filters={"status": "unreviewed"}, per_page=1)
    target = rows[0]["object_id"]
    alice, bob = dash_app.test_client(), dash_app.test_client()
    sign_in(alice), sign_in(bob, "bob")
    url, opened_at = _presence(bob.get(f"/events/{target}").get_data(as_text=True))
    assert url == f"/api/events/{target}/presence"
    beat = bob.post(url, data={"state": "open", "opened_at": opened_at})
    assert beat.status_code == 200 and beat.get_json() == {"open_by": "", "count": 0}
    alice.get(f"/events/{target}")
    beat = bob.post(url, data={"state": "open", "opened_at": opened_at}).get_json()
    assert beat["count"] == 1 and "Also open by" in beat["open_by"] and "<strong>alice</strong>" in beat["open_by"]

    def age(seconds, opened=False):  # as if every page had last said it was open (been opened) ``seconds`` earlier
        o = db.EVENT_OPENS.c
        with dash_engine.begin() as conn:
            conn.execute(db.EVENT_OPENS.update().values(
                seen_at=o.seen_at - seconds, opened_at=o.opened_at - seconds if opened else o.opened_at))

    age(6 * 60)
    assert "open by" not in _queue_row(alice.get("/queue?tier=high").get_data(as_text=True), target)
    assert bob.post(url, data={"state": "open", "opened_at": opened_at}).status_code == 200
    assert "open by bob (just now)" in _queue_row(alice.get("/queue?tier=high").get_data(as_text=True), target)
    age(20 * 60, opened=True)  # opened 20 minutes ago, still open: the note says how long
    bob.post(url, data={"state": "open", "opened_at": opened_at})
    assert _open_by_note(alice.get(f"/events/{target}").get_data(as_text=True)).startswith(
        "Also open by bob (opened 20 minutes ago)")
    # bob reloads: the first page's "left" arrives after the second page opened it, and ends nothing
    _, again = _presence(bob.get(f"/events/{target}").get_data(as_text=True))
    assert bob.post(url, data={"state": "closed", "opened_at": opened_at}).status_code == 204
    assert "open by bob" in _queue_row(alice.get("/queue?tier=high").get_data(as_text=True), target)
    assert bob.post(url, data={"state": "closed", "opened_at": again}).status_code == 204
    assert "open by" not in _queue_row(alice.get("/queue?tier=high").get_data(as_text=True), target)
    # a page confirming bob's own decision is no opening, so it does not report itself
    bob.post(f"/events/{target}/review", data={"action": "needs_info", "expected_review_id": ""})
    assert 'data-presence-url' not in bob.get(f"/events/{target}").get_data(as_text=True)
    # signing out ends every opening of bob's
    others = [row["object_id"] for row in db.queue(dash_engine, tier="high", per_page=4)[0] if row["object_id"] != target][:3]
    for object_id in others:
        bob.get(f"/events/{object_id}")
    assert len(db.open_by_others(dash_engine, others, "alice", since=0)) == 3
    assert bob.post("/logout").status_code == 302
    assert db.open_by_others(dash_engine, others, "alice", since=0) == {}


@pytest.mark.parametrize("data, status", [
    ({"state": "open"}, 400), ({"state": "closed", "opened_at": "nan"}, 400),
    ({"state": "gone", "opened_at": "1"}, 400), ({"opened_at": "1"}, 400),
    ({"state": "open", "opened_at": "1e999"}, 400), ({"state": "closed", "opened_at": "<b>"}, 400),
])
def test_a_page_reporting_itself_badly_is_told_what_is_wrong(alice, dash_engine, data, status):
    target = _any_id(dash_engine)
    response = alice.post(f"/api/events/{target}/presence", data=data)
    assert response.status_code == status and "state=open or state=closed" in response.get_json()["error"]


def test_presence_of_an_unknown_event_or_signed_out_changes_nothing(build_app):
    app = build_app(WTF_CSRF_ENABLED=True)
    engine, client = app.extensions["db_engine"], app.test_client()
    target = _any_id(engine)
    signed_out = {"state": "open", "opened_at": "1", "csrf_token": csrf_token(client.get("/login").get_data(as_text=True))}
    assert client.post(f"/api/events/{target}/presence", data=signed_out,
                       headers={"Accept": "application/json"}).status_code == 401
    sign_in(client, csrf=True)
    page = client.get(f"/events/{target}").get_data(as_text=True)
    url, opened_at = _presence(page)
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    assert client.post(url, data={"state": "closed", "opened_at": opened_at}).status_code == 400  # no token
    assert db.open_by_others(engine, [target], "bob", since=0)  # still open
    assert client.post("/api/events/999999999/presence", data={"state": "open", "opened_at": "1",
                                                          "csrf_token": token}).status_code == 404
    assert client.post(url, data={"state": "closed", "opened_at": opened_at, "csrf_token": token}).status_code == 204
    assert db.open_by_others(engine, [target], "bob", since=0) == {}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM event_opens").scalar_one() == 0


def test_the_event_page_offers_the_costliest_unreviewed_event_nobody_else_has_open(dash_app, dash_engine):
    """Triage without going back to the queue: "Next to review" on every event page, in the tier
    and filters of the queue the analyst came from; an event a colleague has open is skipped."""
    from urllib.parse import quote

    rows, _ = db.queue(dash_engine, tier="high", filters={"status": "unreviewed"}, per_page=4)
    first, second, third, fourth = (r["object_id"] for r in rows)
    alice, bob = dash_app.test_client(), dash_app.test_client()
    sign_in(alice), sign_in(bob, "bob")
    back = "/queue?tier=high&sort=money&order=asc&page=2"  # wherever she came from, the next is the costliest
    event = lambda client, i: client.get(f"/events/{i}?back={quote(back)}").get_data(as_text=True)  # noqa: E731
    next_of = lambda page: int(re.search(r"/events/(\d+)", _link(page, "next-event")).group(1))  # noqa: E731
    page = event(alice, first)
    assert next_of(page) == second
    assert parse_qs(urlsplit(_link(page, "next-event")).query)["back"] == [back]  # back to the same queue
    event(bob, second)  # bob has it open: skip it
    assert next_of(event(alice, first)) == third
    decided = alice.post(f"/events/{first}/review", data={"action": "cleared", "expected_review_id": "", "back": back},
                         follow_redirects=True).get_data(as_text=True)
    assert db.get_prediction(dash_engine, first)["review_status"] == "cleared"
    assert next_of(decided) == third  # the page confirming the decision offers the next one
    assert next_of(event(alice, third)) == fourth  # never the event itself, nor one decided
    # the queue's filters hold; with none left, the page says so
    nowhere = alice.get(f"/events/{first}?back={quote('/queue?tier=high&currency=XYZ')}").get_data(as_text=True)
    assert _link(nowhere, "next-event") is None
    assert "No other unreviewed high-risk event matching the queue’s filters is waiting." in nowhere
    # from a queue of all tiers, the next is in the event's own tier
    low = db.queue(dash_engine, tier="low", filters={"status": "unreviewed"}, per_page=2)[0]
    page = alice.get(f"/events/{low[0]['object_id']}?back={quote('/queue?tier=all')}").get_data(as_text=True)
    assert next_of(page) == low[1]["object_id"]


def test_the_queue_lists_my_decisions(dash_app, dash_engine):
    rows, _ = db.queue(dash_engine, tier="high", per_page=3)
    mine, theirs, nobody = (r["object_id"] for r in rows)
    db.add_review(dash_engine, [mine], "flagged_fraud", "alice")
    db.add_review(dash_engine, [theirs], "cleared", "bob")
    alice = dash_app.test_client()
    sign_in(alice)
    page = alice.get("/queue?tier=high").get_data(as_text=True)
    assert '<option value="alice">Me (alice)</option>' in page
    page = alice.get("/queue?tier=high&decided_by=alice").get_data(as_text=True)
    assert {int(i) for i in re.findall(r'data-object-id="(\d+)"', page)} == {mine}
    assert '<option value="alice" selected>Me (alice)</option>' in page
    assert re.search(r'class="tier-card[^"]*"[^>]*\s+href="[^"]*decided_by=alice', page)  # kept in its links
    page = alice.get("/queue?tier=high&decided_by=bob").get_data(as_text=True)  # a lead checks a colleague's
    assert {int(i) for i in re.findall(r'data-object-id="(\d+)"', page)} == {theirs}
    assert '<option value="bob" selected>bob</option>' in page


def test_concurrent_decisions_never_overwrite_silently(dash_app, dash_engine):
    target = _any_id(dash_engine)
    alice, bob = dash_app.test_client(), dash_app.test_client()
    sign_in(alice), sign_in(bob, "bob")
    seen = db.get_prediction(dash_engine, target)["last_review_id"]  # both opened the page: no review yet
    assert seen is None
    bob.post(f"/events/{target}/review", data={"action": "flagged_fraud", "expected_review_id": ""})
    response = alice.post(f"/events/{target}/review",
                          data={"action": "cleared", "expected_review_id": ""},
                          follow_redirects=True)
    message = " ".join(flashes(response.get_data(as_text=True)))
    assert "Not applied" in message and "bob" in message and "Flagged as fraud" in message
    assert db.get_prediction(dash_engine, target)["review_status"] == "flagged_fraud"
    assert [r["analyst"] for r in db.reviews_for(dash_engine, target)] == ["bob"]


def test_a_decision_not_applied_keeps_the_analysts_note(dash_app, dash_engine):
    """bob decided first: alice's decision is refused, and the note she wrote comes back in the
    form (409) instead of being thrown away, exactly as typed (direction controls, which pages
    mark where they show text, are left as they are in the analyst's own note)."""
    target = _any_id(dash_engine)
    alice, bob = dash_app.test_client(), dash_app.test_client()
    sign_in(alice), sign_in(bob, "bob")
    bob.post(f"/events/{target}/review", data={"action": "flagged_fraud", "expected_review_id": ""})
    note = "Called the venue: <booked> & paid, looks legitimate; payee \u202enosretep\u202c is odd"
    response = alice.post(f"/events/{target}/review", data={
        "action": "cleared", "expected_review_id": "", "note": note, "back": "/queue?tier=medium"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert any("Not applied" in m and "bob" in m for m in flashes(page))
    textarea = re.search(r'<textarea id="note"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert html.unescape(textarea) == note
    assert 'href="/queue?tier=medium"' in page  # still the way back to where she was
    assert [r["analyst"] for r in db.reviews_for(dash_engine, target)] == ["bob"]


def test_a_decision_keeps_the_analysts_place_in_the_queue(alice, dash_engine):
    target = _any_id(dash_engine, "medium")
    back = "/queue?tier=medium&status=unreviewed&page=2"
    page = alice.get(f"/events/{target}", query_string={"back": back}).get_data(as_text=True)
    assert f'name="back" value="{html.escape(back)}"' in page
    response = alice.post(f"/events/{target}/review", data={
        "action": "needs_info", "expected_review_id": "", "back": back})
    assert response.status_code == 302
    after = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert f'href="{html.escape(back)}">‹ Back to the queue' in after
    assert alice.post(f"/events/{target}/review", data={
        "action": "note", "note": "x", "back": "https://evil.example/"}).headers["Location"] == f"/events/{target}"


def test_the_queue_shows_long_text_cut_and_the_event_page_shows_it_whole(alice, dash_engine, scored_pairs):
    """Twenty events with 400 KB names and organisers used to make a 24 MB queue page: a row now
    carries at most about 200 characters of each field, marked as cut."""
    raw, score = scored_pairs[5]
    ids = range(990000100, 990000120)
    long_name, long_org = "N" * 400_000, "O" * 400_000
    db.save_scores(dash_engine, [({**raw, "object_id": i, "name": long_name, "org_name": long_org,
                                   "country": "C" * 10_000}, {**score, "object_id": i}) for i in ids])
    response = alice.get("/queue", query_string={"tier": "all", "q": "NNNN", "per_page": 50})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and sorted(row_ids(page)) == list(ids)
    assert len(page) < 200_000
    assert "N" * 200 + "…" in page and "N" * 201 not in page and "O" * 200 + "…" in page
    event = alice.get(f"/events/{ids[0]}").get_data(as_text=True)
    assert long_name in event  # the event page shows all of it


def test_a_long_event_name_does_not_lose_the_message(alice, dash_engine, scored_pairs):
    """Messages ride in the session cookie: a 6,000-letter name (the organiser's) is cut short,
    so the cookie stays under the 4 KB browsers keep and the message is shown."""
    raw, score = scored_pairs[3]
    target = 990000041
    db.save_scores(dash_engine, [({**raw, "object_id": target, "name": "N" * 6000}, {**score, "object_id": target})])
    response = alice.post(f"/events/{target}/review", data={
        "action": "flagged_fraud", "expected_review_id": "", "event_name": "a name the form may not choose"})
    cookie = response.headers["Set-Cookie"]
    assert len(cookie) < 4093, len(cookie)
    [message] = flashes(alice.get(f"/events/{target}").get_data(as_text=True))
    assert message.startswith("Flagged as fraud: “NNN") and "…" in message and len(message) < 120


def test_ten_refused_events_with_long_names_in_any_script_keep_their_messages(dash_app, alice, dash_engine,
                                                                              scored_pairs):
    """A bulk decision refused on ten events names each one; names outside ASCII cost the
    cookie six or twelve bytes a character, and the cut accounts for it, so the warnings that
    other analysts decided first are not dropped with an oversized cookie."""
    raw, score = scored_pairs[3]
    ids = list(range(990000051, 990000061))
    rng = random.Random(5)  # random CJK Extension B characters: the cookie's compression gains little
    names = {i: "".join(chr(rng.randrange(0x20000, 0x2A6DF)) for _ in range(300)) for i in ids}
    db.save_scores(dash_engine, [({**raw, "object_id": i, "name": names[i]}, {**score, "object_id": i})
                                 for i in ids])
    db.add_review(dash_engine, ids, "needs_info", "bob")
    response = alice.post("/reviews/bulk", data={
        "action": "cleared", "object_id": ids, **{f"seen_{i}": "" for i in ids}})
    assert len(response.headers["Set-Cookie"]) < 4093, len(response.headers["Set-Cookie"])
    messages = flashes(alice.get("/queue").get_data(as_text=True))
    assert sorted(m.split("”")[0] for m in messages if m.startswith("Not applied to “")) == sorted(
        f"Not applied to “{dashboard._short(names[i])[:-1]}…" for i in ids)


def test_a_saved_decision_is_reported_even_when_names_cannot_be_read(alice, dash_engine, monkeypatch):
    """The decision is saved; if the event's name cannot be read just then, the message gives
    its id instead of turning a saved decision into an error page."""
    target = _any_id(dash_engine)

    def unavailable(*_args):
        raise db.DatabaseUnavailable("database is locked")

    monkeypatch.setattr(db, "event_names", unavailable)
    response = alice.post(f"/events/{target}/review", data={"action": "flagged_fraud", "expected_review_id": ""})
    assert response.status_code == 302
    assert flashes(alice.get(f"/events/{target}").get_data(as_text=True)) == [f"Flagged as fraud: event {target}."]
    assert db.get_prediction(dash_engine, target)["review_status"] == "flagged_fraud"


def test_a_queue_page_past_the_end_goes_to_the_last_page(alice, dash_engine):
    """After the last page is emptied by decisions, the queue shows the new last page, not
    'Showing 0–350 of 350' over an empty table."""
    total = db.tier_summary(dash_engine)["low"]["count"]
    pages = -(-total // 10)
    response = alice.get("/queue", query_string={"tier": "low", "per_page": 10, "page": pages + 5})
    assert response.status_code == 302 and f"page={pages}" in response.headers["Location"]
    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert len(row_ids(page)) == total - (pages - 1) * 10 > 0


@pytest.mark.parametrize("why", ["signed out in another tab", "page from an earlier sign-in",
                                 "another analyst signed in since"])
def test_a_refused_form_keeps_the_decision_and_says_why(build_app, why):
    """The CSRF check comes first; when it fails on a decision, the page says what happened,
    nothing is applied, and the note is kept (to copy, or to send again). A page alice opened
    and sent after bob signed in on the same browser is never saved under bob's name."""
    app = build_app(WTF_CSRF_ENABLED=True)
    engine = app.extensions["db_engine"]
    client = app.test_client()
    assert sign_in(client, csrf=True).status_code == 302
    target = _any_id(engine)
    old_token = csrf_token(client.get(f"/events/{target}").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": old_token})  # the other tab
    if why.startswith("page from"):
        assert sign_in(client, csrf=True).status_code == 302
    if why.startswith("another"):
        assert sign_in(client, "bob", csrf=True).status_code == 302
    note = "organiser's bank details differ from the payee"
    response = client.post(f"/events/{target}/review", data={
        "action": "flagged_fraud", "expected_review_id": "", "note": note, "csrf_token": old_token,
        "back": "/queue?tier=high", "by": "alice"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "NOT saved" in page and note in html.unescape(page)
    assert db.reviews_for(engine, target) == []
    if why.startswith("signed out"):
        assert "you were signed out" in page
        sign_in_link, _ = form_fields(page, "sign-in-to-send")
        assert parse_qs(urlsplit(sign_in_link).query)["next"] == [f"/events/{target}?back=/queue?tier%3Dhigh"]
        return
    if why.startswith("another"):
        assert "alice started it, and bob is signed in now" in page and 'class="decision-form"' not in page
        return
    assert "security token" in page  # and a retry form with a fresh token, checked as before
    retry, fields = _retry_form(page)
    assert ("note", note) in fields
    sent = client.post(retry, data=_with(fields))
    assert sent.status_code == 302 and sent.headers["Location"] == f"/events/{target}?back=/queue?tier%3Dhigh"
    assert [(r["action"], r["note"]) for r in db.reviews_for(engine, target)] == [("flagged_fraud", note)]


def test_a_page_open_too_long_says_so_and_sends_again(build_app):
    """A decision from a page older than WTF_CSRF_TIME_LIMIT is refused as such, not blamed on
    an earlier sign-in the analyst never made; sending it again works."""
    import time

    app = build_app(WTF_CSRF_ENABLED=True, WTF_CSRF_TIME_LIMIT=3600)
    engine = app.extensions["db_engine"]
    client = app.test_client()
    assert sign_in(client, csrf=True).status_code == 302
    target = _any_id(engine)
    page = client.get(f"/events/{target}").get_data(as_text=True)
    app.config["WTF_CSRF_TIME_LIMIT"] = 1
    time.sleep(2.1)  # itsdangerous counts whole seconds
    response = client.post(f"/events/{target}/review", data={
        "action": "cleared", "expected_review_id": "", "note": "checked the venue",
        "csrf_token": csrf_token(page), "by": "alice"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and 'data-why="timed_out"' in text
    assert "the page had been open too long" in text and "earlier sign-in" not in text
    assert db.reviews_for(engine, target) == []
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    retry, fields = _retry_form(text)
    assert client.post(retry, data=_with(fields)).status_code == 302
    assert [(r["action"], r["note"]) for r in db.reviews_for(engine, target)] == [("cleared", "checked the venue")]


def test_direction_controls_and_invisible_names_are_shown_plainly(alice, dash_app, dash_engine, scored_pairs):
    """'\u202emoc.elgoog' would show as 'google.com': pages show the control as a mark. A name of
    spaces and zero-width characters shows as '(no name)', so the row can still be opened."""
    raw, score = scored_pairs[1]
    spoof = {**raw, "object_id": 990000011, "name": " \u200b\u2060 ", "payee_name": "\u202enosretep nhoj",
             "email_domain": "\u202emoc.elgoog"}
    db.save_scores(dash_engine, [(spoof, {**score, "object_id": 990000011, "risk_tier": "high",
                                          "expected_loss": 10**9})])
    page = alice.get("/events/990000011").get_data(as_text=True)
    assert "⟨U+202E⟩nosretep nhoj" in page and "⟨U+202E⟩moc.elgoog" in page
    assert "\u202e" not in page
    assert '<h1 id="event-name">(no name)</h1>' in page
    queue = alice.get("/queue?tier=high").get_data(as_text=True)
    assert re.search(r'href="/events/990000011[^"]*">\(no name\)</a>', queue)


def test_event_pages_show_values_no_page_can_encode_or_no_float_can_hold(alice, dash_engine, scored_pairs):
    """/score accepts and stores lone surrogates (escaped in JSON) and 400-digit integers; the
    event page and the queue must still show such an event (a 500 hid it from analysts)."""
    raw, score = scored_pairs[2]
    huge = 10 ** 400
    event = {**raw, "object_id": 990000021, "name": "Gig \ud800x", "venue_name": "\udfff",
             "description": "<p>\ud800 text</p>", "currency": "\ud800", "gts": huge, "user_age": huge,
             "sequence_number": huge, "extra \ud83d": "value \udc00",
             "ticket_types": [{"cost": huge, "quantity_total": huge, "availability": "\ud800"}],
             "previous_payouts": [{"amount": huge, "created": "2013-01-01 00:00:00", "name": "\ud800"}]}
    db.save_scores(dash_engine, [(event, {**score, "object_id": 990000021, "risk_tier": "high",
                                          "expected_loss": 10**9, "reasons": ["currency \ud800"]})])
    page = alice.get("/events/990000021")
    assert page.status_code == 200, page.get_data(as_text=True)[-2000:]
    text = page.get_data(as_text=True)
    assert "Gig ?x" in text and ("1" + "0" * 30 in text or f"{huge:,}"[:30] in text)
    assert alice.get("/queue?tier=high&q=990000021").status_code == 200


def test_the_search_box_shows_what_was_typed(alice):
    """Direction controls are marked where pages show text, but not in the search box: Apply
    must search for what was typed, not for the mark."""
    queue = alice.get("/queue", query_string={"q": "\u202emoc"}).get_data(as_text=True)
    assert 'name="q" value="\u202emoc"' in queue


@pytest.mark.parametrize("name", ["\u2003\u200b\u2003", "\u3164", "\u2800 \u034f", " \u180e\u2061 "])
def test_names_that_draw_nothing_show_as_no_name(alice, dash_engine, scored_pairs, name):
    raw, score = scored_pairs[3]
    db.save_scores(dash_engine, [({**raw, "object_id": 990000031, "name": name},
                                  {**score, "object_id": 990000031})])
    assert '<h1 id="event-name">(no name)</h1>' in alice.get("/events/990000031").get_data(as_text=True)
    assert dashboard.shows_nothing(name) and not dashboard.shows_nothing(name + "a")


def test_decisions_on_numbers_that_are_no_event_id_are_refused(alice):
    too_big = 2 ** 63
    assert alice.post(f"/events/{too_big}/review", data={"action": "cleared"}).status_code == 404
    assert alice.post("/reviews/bulk", data={"action": "cleared", "object_id": [too_big]}).status_code == 400


def test_a_bulk_decision_partly_refused_keeps_the_note(alice, dash_app, dash_engine):
    ids = [r["object_id"] for r in db.queue(dash_engine, tier="medium", per_page=2)[0]]
    bob = dash_app.test_client()
    sign_in(bob, "bob")
    bob.post(f"/events/{ids[1]}/review", data={"action": "needs_info", "expected_review_id": ""})
    response = alice.post("/reviews/bulk", data={
        "action": "cleared", "object_id": ids, "note": "same organiser, known", **{f"seen_{i}": "" for i in ids},
        "next": "/queue?tier=medium"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert html.unescape(re.search(r'id="bulk-note"[^>]*value="([^"]*)"', page).group(1)) == "same organiser, known"
    assert 'id="queue-table"' in page  # the queue again, where the analyst was
    assert any("Not applied" in m for m in flashes(page)) and "Cleared: " in " ".join(flashes(page))
    assert db.get_prediction(dash_engine, ids[0])["review_status"] == "cleared"
    assert db.get_prediction(dash_engine, ids[1])["review_status"] == "needs_info"


def test_bulk_clear_and_bulk_conflicts(alice, dash_app, dash_engine):
    ids = [r["object_id"] for r in db.queue(dash_engine, tier="high", per_page=3)[0]]
    response = alice.post("/reviews/bulk", data={
        "action": "cleared", "object_id": ids[:2], "note": "known promoter",
        **{f"seen_{i}": "" for i in ids[:2]}, "next": "/queue?tier=high"}, follow_redirects=False)
    assert response.headers["Location"] == "/queue?tier=high"
    for object_id in ids[:2]:
        assert db.get_prediction(dash_engine, object_id)["review_status"] == "cleared"
        assert [(r["action"], r["note"]) for r in db.reviews_for(dash_engine, object_id)] == [("cleared", "known promoter")]
    assert "Cleared: 2 events." in flashes(alice.get("/queue").get_data(as_text=True))
    # bob decided on the third while alice's page was open: only that one is refused.
    bob = dash_app.test_client()
    sign_in(bob, "bob")
    bob.post(f"/events/{ids[2]}/review", data={"action": "needs_info", "expected_review_id": ""})
    last = {i: db.get_prediction(dash_engine, i)["last_review_id"] for i in ids[:2]}
    response = alice.post("/reviews/bulk", data={
        "action": "flagged_fraud", "object_id": ids,
        **{f"seen_{i}": str(last[i]) for i in ids[:2]}, f"seen_{ids[2]}": ""}, follow_redirects=True)
    messages = flashes(response.get_data(as_text=True))
    assert "Flagged as fraud: 2 events." in messages
    name = dashboard._short(db.get_prediction(dash_engine, ids[2])["name"])
    assert any(m.startswith(f"Not applied to “{name}” (event {ids[2]}): bob") for m in messages), messages
    assert db.get_prediction(dash_engine, ids[2])["review_status"] == "needs_info"


def test_a_bulk_decision_some_of_whose_events_were_decided_meanwhile_ticks_those_again(alice, dash_app, dash_engine):
    """Alice's bulk flag with a note on 14 events, 12 of which bob decided meanwhile: two are
    applied; the queue comes back with her note and the 12 refused events ticked, and every
    refused id is named (ten by name, the rest by id)."""
    ids = [r["object_id"] for r in db.queue(dash_engine, tier="low", per_page=14)[0]]
    bob = dash_app.test_client()
    sign_in(bob, "bob")
    bob.post("/reviews/bulk", data={"action": "needs_info", "object_id": ids[2:],
                                    **{f"seen_{i}": "" for i in ids[2:]}})
    response = alice.post("/reviews/bulk", data={
        "action": "flagged_fraud", "object_id": ids, "note": "same payee on all of them",
        **{f"seen_{i}": "" for i in ids}, "next": "/queue?tier=low&per_page=50"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    ticked = {int(i) for i in re.findall(r'name="object_id" value="(\d+)" class="row-select" checked', page)}
    assert ticked == set(ids[2:])
    assert "same payee on all of them" in page
    more = next(m for m in flashes(page) if m.startswith("…and 2 more events were not applied"))
    refused_later = sorted(ids[2:])[10:]
    assert more.endswith(f"(event {refused_later[0]}, {refused_later[1]}).")
    assert [db.get_prediction(dash_engine, i)["review_status"] for i in ids[:2]] == ["flagged_fraud"] * 2


def test_bulk_without_selection_changes_nothing(alice, dash_engine):
    response = alice.post("/reviews/bulk", data={"action": "cleared"}, follow_redirects=True)
    assert "Tick at least one event first." in flashes(response.get_data(as_text=True))
    assert db.tier_summary(dash_engine)["high"]["unreviewed"] == db.tier_summary(dash_engine)["high"]["count"]


def test_unknown_action_is_refused(alice, dash_engine):
    target = _any_id(dash_engine)
    assert alice.post(f"/events/{target}/review", data={"action": "delete"}).status_code == 400
    assert db.reviews_for(dash_engine, target) == []


@pytest.mark.parametrize("error", [db.DatabaseUnavailable("database is locked"), "operational"])
def test_failed_write_says_not_saved(alice, dash_engine, monkeypatch, error):
    from sqlalchemy.exc import OperationalError

    if error == "operational":
        error = OperationalError("UPDATE predictions", {}, Exception("disk I/O error"))

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(db, "add_review", fail)
    target = _any_id(dash_engine)
    for response in (
        alice.post(f"/events/{target}/review", data={"action": "flagged_fraud", "note": "keep me"}),
        alice.post("/reviews/bulk", data={"action": "cleared", "object_id": [target]}),
    ):
        page = response.get_data(as_text=True)
        assert response.status_code == 503
        assert "NOT saved" in page
        assert "saved:" not in " ".join(flashes(page))
    assert "keep me" in alice.post(f"/events/{target}/review",
                                    data={"action": "flagged_fraud", "note": "keep me"}).get_data(as_text=True)
    # the form to send it again carries what the analyst saw: the last review and the score
    seen = {"expected_review_id": "", "expected_score": "0.25/1250.5"}
    retry = alice.post(f"/events/{target}/review", data={"action": "flagged_fraud", **seen}).get_data(as_text=True)
    assert _hidden(retry, "expected_score") == "0.25/1250.5" and _hidden(retry, f"score_seen_{target}") == "0.25/1250.5"
    retry = alice.post("/reviews/bulk", data={"action": "cleared", "object_id": [target],
                                              f"score_seen_{target}": "0.5/2.0"}).get_data(as_text=True)
    assert _hidden(retry, f"score_seen_{target}") == "0.5/2.0"
    monkeypatch.undo()
    assert db.reviews_for(dash_engine, target) == []


def test_database_down_on_a_page_is_503(alice, monkeypatch):
    def down(*args, **kwargs):
        raise db.DatabaseUnavailable("connection refused")

    monkeypatch.setattr(db, "tier_summary", down)
    page = alice.get("/queue")
    assert page.status_code == 503 and "database cannot be reached" in page.get_data(as_text=True)
    api = alice.get("/api/queue/summary")
    assert api.status_code == 503 and api.get_json()["status"] == 503


# --------------------------------------------------------------------------- charts


def test_chart_endpoints_match_the_database(alice, dash_app, dash_engine):
    target = _any_id(dash_engine)
    alice.post(f"/events/{target}/review", data={"action": "flagged_fraud"})
    model = dash_app.extensions["fraud_model"]

    scored = alice.get("/api/charts/scored-over-time?days=30").get_json()
    assert scored["rows"] == db.scored_over_time(dash_engine, days=30)
    assert sum(r["count"] for r in scored["rows"]) == db.count_predictions(dash_engine)

    histogram = alice.get("/api/charts/probabilities?bins=20").get_json()
    assert histogram["bins"] == db.probability_histogram(dash_engine, bins=20)
    assert sum(b["count"] for b in histogram["bins"]) == db.count_predictions(dash_engine)
    assert histogram["thresholds"] == pytest.approx(model.thresholds)

    money = alice.get("/api/charts/money").get_json()
    assert money["rows"] == db.money_by_tier_status(dash_engine)
    assert any(r["status"] == "flagged_fraud" and r["money"] > 0 for r in money["rows"])

    status = alice.get("/api/charts/status-over-time?days=30").get_json()
    assert status["rows"] == db.status_over_time(dash_engine, days=30)

    labelled = alice.get("/api/charts/labelled").get_json()
    stored = db.labelled_scores(dash_engine)
    assert labelled["count"] == len(stored) == 240
    assert [(pt["p"], pt["money"]) for pt in labelled["points"]] == [(p, m) for p, m, _ in stored]
    assert labelled["fraud_count"] == sum("fraud" in a for _, _, a in stored) > 0

    summary = alice.get("/api/queue/summary?currency=USD").get_json()
    assert summary == db.tier_summary(dash_engine, {"currency": "USD"})


def test_charts_page_explains_how_to_load_labels_when_none(build_app):
    app = build_app(populate=False)
    client = app.test_client()
    sign_in(client)
    labelled = client.get("/api/charts/labelled").get_json()
    assert labelled["count"] == 0 and labelled["load_command"] == "flask --app app load-test-set"
    page = client.get("/charts").get_data(as_text=True)
    assert "No labelled events yet" in page and "flask --app app load-test-set" in page
    for chart in ("chart-scored", "chart-histogram", "chart-money", "chart-status", "chart-whatif"):
        assert f'id="{chart}"' in page
    assert "vendor/d3.min.js" in page


def test_demo_mode_shows_a_banner(build_app):
    client = build_app(DEMO_MODE=True).test_client()
    sign_in(client)
    assert 'id="demo-banner"' in client.get("/queue").get_data(as_text=True)


def test_no_demo_banner_by_default(alice):
    assert 'id="demo-banner"' not in alice.get("/queue").get_data(as_text=True)


def test_core_flow_on_each_database(build_app, db_url):
    """Queue, search, decisions, conflicts and chart data on SQLite and on a real Postgres."""
    app = build_app(DATABASE_URL=db_url)
    engine = app.extensions["db_engine"]
    alice, bob = app.test_client(), app.test_client()
    assert sign_in(alice).status_code == 302 and sign_in(bob, "bob").status_code == 302
    page = alice.get("/queue").get_data(as_text=True)
    assert card_counts(page) == {t: s["count"] for t, s in db.tier_summary(engine).items()}
    assert row_ids(alice.get(f"/queue?tier=all&q={HOSTILE_ID}").get_data(as_text=True)) == [HOSTILE_ID]
    ids = row_ids(page)[:3]
    alice.post("/reviews/bulk", data={"action": "cleared", "object_id": ids[:2], "seen_%d" % ids[0]: "",
                                      "seen_%d" % ids[1]: ""})
    bob.post(f"/events/{ids[2]}/review", data={"action": "flagged_fraud", "expected_review_id": ""})
    refused = alice.post(f"/events/{ids[2]}/review", data={"action": "cleared", "expected_review_id": ""},
                         follow_redirects=True)
    assert any("Not applied" in m and "bob" in m for m in flashes(refused.get_data(as_text=True)))
    assert [db.get_prediction(engine, i)["review_status"] for i in ids] == ["cleared", "cleared", "flagged_fraud"]
    assert alice.get("/api/charts/money").get_json()["rows"] == db.money_by_tier_status(engine)
    assert alice.get("/api/charts/probabilities").get_json()["bins"] == db.probability_histogram(engine, bins=20)


# --------------------------------------------------------------------------- command line


def test_create_analyst_command(build_app, monkeypatch):
    from werkzeug.security import check_password_hash, generate_password_hash

    app = build_app(populate=False)
    engine = app.extensions["db_engine"]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-analyst", "carol"], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.output
    stored = db.get_analyst(engine, "carol")["password_hash"]
    assert stored.startswith("scrypt:") and "s3cret-pass" not in stored
    assert check_password_hash(stored, "s3cret-pass")

    mismatch = runner.invoke(args=["create-analyst", "dave"], input="s3cret-pass\nother-pass\n"
                                                                    "s3cret-pass\ns3cret-pass\n")
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output

    monkeypatch.setenv("ANALYST_PASSWORD", "from-the-env")
    assert runner.invoke(args=["create-analyst", "erin"]).exit_code == 0
    assert check_password_hash(db.get_analyst(engine, "erin")["password_hash"], "from-the-env")

    assert runner.invoke(args=["create-analyst", "erin"]).exit_code != 0  # taken
    monkeypatch.setenv("ANALYST_PASSWORD", "short")
    assert runner.invoke(args=["create-analyst", "frank"]).exit_code != 0
    assert db.get_analyst(engine, "frank") is None
    monkeypatch.setenv("ANALYST_PASSWORD", "long-enough-pass")
    taken = runner.invoke(args=["create-analyst", "Erin"])
    assert taken.exit_code == 1 and "already exists" in taken.output and "Traceback" not in taken.output
    client = app.test_client()
    assert sign_in(client, "carol", "s3cret-pass").status_code == 302
    assert client.post("/logout").status_code == 302
    assert sign_in(client, "  Carol ", "s3cret-pass").status_code == 302  # names ignore case
    assert "Signed in as <strong>carol</strong>" in client.get("/queue").get_data(as_text=True)
    assert client.post("/logout").status_code == 302
    # a name create-analyst could not have made (not ASCII) finds nobody, on either database,
    # even where Postgres's lower() would fold it onto an account ("İ" lowers to "i")
    db.create_analyst(engine, "ivan", generate_password_hash("s3cret-pass", method="scrypt"))
    assert sign_in(client, "İvan", "s3cret-pass").status_code == 401
    assert sign_in(client, "Ivan", "s3cret-pass").status_code == 302


def test_a_new_password_or_a_disabled_account_ends_sessions_and_keeps_the_note(build_app, monkeypatch):
    """An administrator resets alice's password while she is writing a note: her decision is not
    applied, and the page keeps the note for her to copy; she signs in with the new password."""
    app = build_app(WTF_CSRF_ENABLED=True)
    engine = app.extensions["db_engine"]
    runner = app.test_cli_runner()
    alice, bob = app.test_client(), app.test_client()
    assert sign_in(alice, csrf=True).status_code == 302 and sign_in(bob, "bob", csrf=True).status_code == 302
    target = _any_id(engine)
    page = alice.get(f"/events/{target}").get_data(as_text=True)

    monkeypatch.setenv("ANALYST_PASSWORD", "a-new-password")
    result = runner.invoke(args=["set-password", "Alice"])
    assert result.exit_code == 0 and "alice has a new password" in result.output, result.output
    note = "organiser's phone is <b>disconnected</b>"
    refused = alice.post(f"/events/{target}/review", data={
        "action": "flagged_fraud", "note": note, "csrf_token": csrf_token(page), "by": "alice"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 401 and "NOT saved" in text and 'data-why="signed_out"' in text
    assert "Your password was changed since you signed in" in " ".join(flashes(text))
    kept = re.search(r'<textarea id="note"[^>]*readonly>(.*?)</textarea>', text, re.S)
    assert kept and html.unescape(kept.group(1)) == note and "<b>" not in text
    assert db.reviews_for(engine, target) == []
    assert alice.get("/queue").status_code == 302  # signed out
    assert bob.get("/queue").status_code == 200  # only alice's sessions end
    assert sign_in(alice, "alice", PASSWORD, csrf=True).status_code == 401
    assert sign_in(alice, "alice", "a-new-password", csrf=True).status_code == 302

    result = runner.invoke(args=["disable-analyst", "bob"])
    assert result.exit_code == 0 and "bob disabled" in result.output, result.output
    ended = bob.get("/queue", follow_redirects=True)
    assert ended.request.path == "/login"
    assert "Your account has been disabled" in " ".join(flashes(ended.get_data(as_text=True)))
    assert bob.get("/api/charts/money").status_code == 401
    disabled = sign_in(bob, "bob", PASSWORD, csrf=True)
    assert disabled.status_code == 403 and "This account is disabled" in disabled.get_data(as_text=True)
    wrong = sign_in(bob, "bob", "not his password", csrf=True)  # says nothing about the account
    assert wrong.status_code == 401 and "disabled" not in wrong.get_data(as_text=True)
    again = runner.invoke(args=["disable-analyst", "bob"])
    assert again.exit_code == 0 and "bob was already disabled (20" in again.output
    listed = runner.invoke(args=["list-analysts"]).output.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["name", "alice", "bob"]
    assert listed[1].endswith("\tenabled") and "\tdisabled 20" in listed[2]
    monkeypatch.setenv("ANALYST_PASSWORD", "bob-is-back")
    not_disabled = runner.invoke(args=["enable-analyst", "alice"])  # would reset her password
    assert not_disabled.exit_code == 1 and "not disabled: nothing changed" in not_disabled.output
    assert sign_in(app.test_client(), "alice", "a-new-password", csrf=True).status_code == 302
    assert runner.invoke(args=["enable-analyst", "BOB"]).exit_code == 0
    assert bob.get("/queue").status_code == 302  # his session from before stays ended
    assert sign_in(bob, "bob", PASSWORD, csrf=True).status_code == 401
    assert sign_in(bob, "bob", "bob-is-back", csrf=True).status_code == 302

    monkeypatch.delenv("ANALYST_PASSWORD")  # nothing to change: the password is not asked for
    for args in (["enable-analyst", "alice"], ["set-password", "nobody"], ["create-analyst", "ALICE"]):
        refused = runner.invoke(args=args, input="typed-for-nothing\ntyped-for-nothing\n")
        assert refused.exit_code == 1 and "Password" not in refused.output, (args, refused.output)
    monkeypatch.setenv("ANALYST_PASSWORD", "bob-is-back")
    unknown = runner.invoke(args=["disable-analyst", "nobody"])
    assert unknown.exit_code == 1 and "no analyst named 'nobody'" in unknown.output
    assert "Traceback" not in unknown.output
    monkeypatch.setenv("ANALYST_PASSWORD", "short")
    assert runner.invoke(args=["set-password", "bob"]).exit_code == 2  # too short: nothing changed
    assert sign_in(app.test_client(), "bob", "bob-is-back", csrf=True).status_code == 302


def form_fields(page: str, form_id: str) -> tuple[str, list[tuple[str, str]]]:
    """(action, [(name, value)...]) of the form with this id, as a browser would send it
    (text boxes' and text areas' current values; no submit buttons)."""
    from html.parser import HTMLParser

    found = {"action": None, "fields": [], "inside": False, "textarea": None}

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = {name: value or "" for name, value in attrs}
            if tag == "form" and attrs.get("id") == form_id:
                found.update(action=attrs.get("action"), inside=True)
            elif found["inside"] and tag == "input" and attrs.get("name"):
                found["fields"].append((attrs["name"], attrs.get("value", "")))
            elif found["inside"] and tag == "textarea" and attrs.get("name"):
                found["textarea"] = [attrs["name"], ""]

        def handle_data(self, data):
            if found["textarea"] is not None:
                found["textarea"][1] += data

        def handle_endtag(self, tag):
            if tag == "textarea" and found["textarea"] is not None:
                name, value = found["textarea"]
                found["fields"].append((name, value[1:] if value.startswith("\n") else value))
                found["textarea"] = None
            elif tag == "form":
                found["inside"] = False

    Collector(convert_charrefs=True).feed(page)
    assert found["action"] is not None, f"no form with id {form_id!r}"
    return html.unescape(found["action"]), found["fields"]


def _with(fields: list, **values) -> list:
    """The fields, as a form to post, with some replaced (name, password) or added."""
    from werkzeug.datastructures import MultiDict

    return MultiDict([(k, v) for k, v in fields if k not in values] + list(values.items()))


def test_signing_in_from_a_not_saved_page_brings_the_decision_back_to_send(build_app, monkeypatch):
    """Signed out while deciding (a new password, or signing out in another tab): the not-saved
    page signs in and hands the decision back, note and all, to send with one click; it is still
    checked against what was seen. A failed, limited or impossible sign-in keeps the page."""
    app = build_app(WTF_CSRF_ENABLED=True, LOGIN_RATE_LIMIT="6 per minute")
    engine = app.extensions["db_engine"]
    alice, bob = app.test_client(), app.test_client()
    assert sign_in(alice, csrf=True).status_code == 302 and sign_in(bob, "bob", csrf=True).status_code == 302
    target = _any_id(engine)
    page = alice.get(f"/events/{target}?back=/queue%3Ftier%3Dhigh").get_data(as_text=True)
    monkeypatch.setenv("ANALYST_PASSWORD", "a-new-password")
    assert app.test_cli_runner().invoke(args=["set-password", "alice"]).exit_code == 0
    note = "organiser's phone is <b>disconnected</b>\nsecond line"
    refused = alice.post(f"/events/{target}/review", data={
        "action": "flagged_fraud", "note": note, "csrf_token": csrf_token(page), "by": "alice",
        "back": "/queue?tier=high", "expected_review_id": "",
        "expected_score": re.search(r'name="expected_score" value="([^"]*)"', page).group(1)})
    assert refused.status_code == 401
    login_url, kept = form_fields(refused.get_data(as_text=True), "sign-in-to-send")
    assert urlsplit(login_url).path == "/login" and ("note", note) in kept and ("name", "alice") in kept

    # a wrong password: the same page again (401), the decision still in it
    wrong = alice.post(login_url, data=_with(kept, password="not it"))
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 401 and "Wrong name or password." in flashes(text)
    assert _untokened(form_fields(text, "sign-in-to-send")[1]) == _untokened(kept)
    # the database away: the same page (503)
    monkeypatch.setattr(db, "get_analyst", lambda *a, **k: (_ for _ in ()).throw(db.DatabaseUnavailable("down")))
    away = alice.post(login_url, data=_with(kept, password="a-new-password"))
    assert away.status_code == 503 and _untokened(form_fields(away.get_data(as_text=True), "sign-in-to-send")[1]) == _untokened(kept)
    monkeypatch.undo()
    # signing in hands it back, not yet applied: the analyst sends it
    back = alice.post(login_url, data=_with(kept, password="a-new-password"))
    text = back.get_data(as_text=True)
    assert back.status_code == 200 and 'data-why="signed_in"' in text and "NOT been sent yet" in text
    assert db.reviews_for(engine, target) == []
    send_url, to_send = _retry_form(text)
    assert send_url == f"/events/{target}/review" and ("note", note) in to_send
    sent = alice.post(send_url, data=_with(to_send))
    assert sent.status_code == 302 and "back=" in sent.headers["Location"]
    assert [(r["action"], r["note"], r["analyst"]) for r in db.reviews_for(engine, target)] == [
        ("flagged_fraud", note, "alice")]

    # bulk, signed out in another tab: bob decides one of the two events meanwhile
    queue = alice.get("/queue?tier=medium").get_data(as_text=True)
    two = row_ids(queue)[:2]
    assert alice.post("/logout", data={"csrf_token": csrf_token(queue)}).status_code == 302
    seen = {k: v for k, v in re.findall(r'name="((?:score_)?seen_\d+)" value="([^"]*)"', queue)}
    data = [("action", "cleared"), ("note", "both fine"), ("csrf_token", csrf_token(queue)),
            ("by", "alice"), ("next", "/queue?tier=medium"), *[("object_id", str(i)) for i in two],
            *[(k, v) for k, v in seen.items() if int(k.rsplit("_", 1)[1]) in two]]
    refused = alice.post("/reviews/bulk", data=_with(data))
    assert refused.status_code == 400
    login_url, kept = form_fields(refused.get_data(as_text=True), "sign-in-to-send")
    assert ("pending", "bulk") in kept
    bob_page = bob.get(f"/events/{two[0]}").get_data(as_text=True)
    assert bob.post(f"/events/{two[0]}/review", data={
        "action": "flagged_fraud", "csrf_token": csrf_token(bob_page),
        "expected_review_id": re.search(r'name="expected_review_id" value="([^"]*)"', bob_page).group(1),
        "expected_score": re.search(r'name="expected_score" value="([^"]*)"', bob_page).group(1),
    }).status_code == 302
    # bob, signing in on alice's page, cannot send her decision as his: the note is kept to copy
    taken = alice.post(login_url, data=_with(kept, name="bob", password=PASSWORD)).get_data(as_text=True)
    assert 'data-why="other_analyst"' in taken and "sign-in-to-send" not in taken
    assert "both fine" in taken and 'action="/reviews/bulk"' not in taken
    assert alice.post("/logout", data={"csrf_token": csrf_token(taken)}).status_code == 302
    again = alice.post(login_url, data=_with(kept, password="a-new-password"))  # a token from before bob
    assert again.status_code == 400 and 'data-why="signed_out"' in again.get_data(as_text=True)
    login_url, kept = form_fields(again.get_data(as_text=True), "sign-in-to-send")
    back = alice.post(login_url, data=_with(kept, password="a-new-password"))
    send_url, to_send = _retry_form(back.get_data(as_text=True))
    assert send_url == "/reviews/bulk" and [v for k, v in to_send if k == "object_id"] == [str(i) for i in sorted(two)]
    report = alice.post(send_url, data=_with(to_send), follow_redirects=True).get_data(as_text=True)
    assert db.get_prediction(engine, two[0])["review_status"] == "flagged_fraud"  # bob's stands
    assert db.get_prediction(engine, two[1])["review_status"] == "cleared"
    assert any("Not applied to" in m and "bob changed it" in m for m in flashes(report))

    # too many attempts: the page (429) with the decision, not the plain error page
    assert alice.post("/logout", data={"csrf_token": csrf_token(report)}).status_code == 302
    login_url, kept = form_fields(alice.post(login_url, data=_with(kept)).get_data(as_text=True), "sign-in-to-send")
    statuses = [alice.post(login_url, data=_with(kept, password=f"guess {i}")).status_code for i in range(6)]
    limited = alice.post(login_url, data=_with(kept, password="a-new-password"))
    assert statuses[0] == 401 and statuses[-1] == 429 and limited.status_code == 429
    text = limited.get_data(as_text=True)
    assert "Too many sign-in attempts" in " ".join(flashes(text))
    assert _untokened(form_fields(text, "sign-in-to-send")[1]) == _untokened(kept)


def _untokened(fields: list) -> list:
    """The fields without the CSRF token (a fresh one on every page)."""
    return [(k, v) for k, v in fields if k != "csrf_token"]


def _retry_form(page: str) -> tuple[str, list]:
    """The send-again form of a not-saved page."""
    return form_fields(page, "send-again")


def test_a_session_from_before_tokens_is_signed_out(dash_app):
    """Sessions made before they carried a password token (a bare id) sign in again."""
    client = dash_app.test_client()
    assert sign_in(client).status_code == 302
    with client.session_transaction() as session:
        session["_user_id"] = session["_user_id"].partition(":")[0]
    assert client.get("/queue").status_code == 302


def test_load_test_set_command(build_app):
    app = build_app(populate=False)
    engine = app.extensions["db_engine"]
    result = app.test_cli_runner().invoke(args=["load-test-set", "--synthetic", "--n", "300", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "stored 60 test-split events" in result.output
    labelled = db.labelled_scores(engine)
    assert len(labelled) == db.count_predictions(engine) == 60
    _, test = __import__("dataset").time_split(synth.generate_events(300, 3))
    assert sorted(r["object_id"] for r in test) == sorted(r["object_id"] for r in db.queue(engine, per_page=500)[0])


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize("amount, currency, expected", [
    (1234.5, "GBP", "£1,234.50 GBP"), (0, "USD", "$0.00 USD"), (12, None, "12.00"), (None, "USD", "—"),
    (float("nan"), "USD", "—"), (-5, "EUR", "-€5.00 EUR"), (7, "XYZ", "7.00 XYZ"),
])
def test_format_money(amount, currency, expected):
    assert dashboard.format_money(amount, currency) == expected


@pytest.mark.parametrize("value, expected", [
    (1380585600, "2013-10-01 00:00 UTC"), (1380585600.0, "2013-10-01 00:00 UTC"), (0, "—"), (None, "—"),
    ("2013-10-01 12:30:00", "2013-10-01 12:30 UTC"), ("not a date", "—"),
])
def test_format_datetime(value, expected):
    assert dashboard.format_datetime(value) == expected


@pytest.mark.parametrize("value, expected", [(1, "yes"), (0, "no"), (1.0, "yes"), ("y", "yes"), ("n", "no"),
                                             (None, "—"), (float("nan"), "—")])
def test_format_bool(value, expected):
    assert dashboard.format_bool(value) == expected


def test_sanitise_html_keeps_formatting_only():
    cleaned = dashboard.sanitise_html(
        '<p style="color:red" onclick="x()">Hi <b>there</b></p><a href="javascript:alert(1)">link</a>'
        '<script>alert(1)</script><img src=x onerror=alert(1)><iframe src="https://e.x"></iframe>')
    assert cleaned == '<p>Hi <b>there</b></p>link <span class="link-target">[link: javascript:alert(1)]</span>'


@pytest.mark.parametrize("source, expected", [
    ('<p>Pay <a href="https://pay.evil.example/x?a=1&b=2" title="t" onclick="x()">here</a></p>',
     '<p>Pay here <span class="link-target">[link: https://pay.evil.example/x?a=1&amp;b=2]</span></p>'),
    # a target that tries to close the tag is shown as text, escaped
    ("<a href='http://x/\"><script>alert(1)</script>'>t</a>",
     't <span class="link-target">[link: http://x/&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;]</span>'),
    ('<a title=\'href="http://decoy"\' href="mailto:a@b.example">mail</a>',
     'mail <span class="link-target">[link: mailto:a@b.example]</span>'),
    ('<a title="x href=" lang="en" href="https://pay.evil.example/checkout">here</a>',  # a decoy in the title
     'here <span class="link-target">[link: https://pay.evil.example/checkout]</span>'),
    # a script link is shown as text too (that it is there is a clue); an unknown scheme is dropped
    ('<a href="data:text/html,<script>x</script>">d</a><a>no target</a><a href="weird:x">w</a>',
     'd <span class="link-target">[link: data:text/html,&lt;script&gt;x&lt;/script&gt;]</span>no targetw'),
    # anchors the parser nests (an anchor in a table or an object inside another) stay inert
    ('<a href=1><table><td><a href="https://evil.example/pay">CLICK</a></td></table></a>',
     'CLICK <span class="link-target">[link: https://evil.example/pay]</span>'
     ' <span class="link-target">[link: 1]</span>'),
    ('<a href=1><object><a href=2><marquee><a href=3>x</a></marquee></a></object></a>',
     'x <span class="link-target">[link: 3]</span> <span class="link-target">[link: 2]</span>'
     ' <span class="link-target">[link: 1]</span>'),
    ('<a href="http://a.example/' + "x" * 300 + '">long</a>',
     'long <span class="link-target">[link: http://a.example/' + "x" * 183 + '…]</span>'),
])
def test_sanitise_html_shows_where_links_lead_as_text(source, expected):
    assert dashboard.sanitise_html(source) == expected


def test_a_huge_deeply_nested_description_is_shown_cut_not_hung_on(alice, dash_engine, scored_pairs, tiny_model,
                                                                    monkeypatch):
    """Sanitising takes time that grows with the square of how deeply tags nest: 600 KB of "<ul>"
    (which /score accepts) held a worker past its timeout. The page sanitises the first
    SHOWN_HTML_CHARS characters of each text and says the rest is not shown."""
    raw = {**scored_pairs[0][0], "object_id": 990_003, "description": "<ul>" * 150_000,
           "org_desc": "<p>Fine</p>" + "<div>" * 20_000}
    db.save_scores(dash_engine, [(raw, predict.score_records(tiny_model, [raw])[0])])
    sizes, clean = [], dashboard.nh3.clean
    monkeypatch.setattr(dashboard.nh3, "clean", lambda text, **kw: sizes.append(len(text)) or clean(text, **kw))
    response = alice.get("/events/990003")
    page = re.sub(r"\s+", " ", response.get_data(as_text=True))
    assert response.status_code == 200 and len(sizes) == 2 and max(sizes) <= dashboard.SHOWN_HTML_CHARS
    assert "Only the first 50,000 of its 600,000 characters are shown" in page
    assert "Only the first 50,000 of its 100,011 characters are shown" in page and "Fine" in page
    # a text of ordinary length is shown whole, without the note
    assert "characters are shown" not in alice.get(f"/events/{scored_pairs[1][0]['object_id']}").get_data(as_text=True)


def test_event_page_shows_link_targets_without_links(alice, dash_engine, scored_pairs, tiny_model):
    raw = {**scored_pairs[0][0], "object_id": 990_002,
           "description": '<p>Buy <a href="https://pay.evil.example/checkout">here</a></p>'}
    db.save_scores(dash_engine, [(raw, predict.score_records(tiny_model, [raw])[0])])
    page = alice.get("/events/990002").get_data(as_text=True)
    description = re.search(r'id="description">(.*?)</div>', page, re.S).group(1)
    assert "Buy here" in description and "[link: https://pay.evil.example/checkout]" in description
    assert "<a" not in description


def test_payout_summary_counts_only_payouts_before_the_event():
    record = {"event_created": 1380585600, "currency": "USD", "previous_payouts": [
        {"created": "2013-09-01 10:00:00", "amount": 100.0}, {"created": "2013-09-20 10:00:00", "amount": 50.0},
        {"created": "2013-12-01 10:00:00", "amount": 999.0}]}
    summary = dashboard.payout_summary(record)
    assert summary["count"] == 3 and summary["count_before"] == 2
    assert summary["total_before"] == "$150.00 USD" and summary["total"] == "$1,149.00 USD"
    assert summary["last_before"] == "2013-09-20 10:00 UTC" and summary["last"] == "2013-12-01 10:00 UTC"
