"""The analysts' triage UI: sign-in, the review queue by tier, the event page, decisions, charts.

Measured against Stripe Radar's review queue and Sift's console: a queue ordered by expected
loss, a reason for every score, a decision on every item, a history of every decision.

Security, in one place:
- every page, JSON endpoint and action needs a signed-in analyst (flask-login); signed-out pages
  redirect to the sign-in page, signed-out JSON answers 401, signed-out actions are never applied;
  a new password or a disabled account ends the analyst's sessions at their next request;
- every state-changing form carries a CSRF token (flask-wtf); only the machine-facing ``/score``
  API is exempt, because the stream service posts without one;
- sign-in attempts are rate limited per address and name (flask-limiter); nothing else is;
- text written by organisers (description, organiser description) is sanitised with nh3 to a few
  formatting tags without attributes, each link's target shown as text, never as a link; every
  other field is escaped by Jinja;
- no inline script or style anywhere (app.py's CSP forbids them): JavaScript lives in static/*.js
  and reads its data from data-* attributes and the JSON endpoints below.

Command line (registered here, see :func:`init_app`):
  ``flask --app app create-analyst NAME``  (password prompted twice, or ANALYST_PASSWORD)
  ``flask --app app set-password NAME``    (the same; ends the analyst's signed-in sessions)
  ``flask --app app disable-analyst NAME`` / ``enable-analyst NAME`` / ``list-analysts``
  ``flask --app app load-test-set``        (scores the held-out test split into the database)
"""
from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import html
import itertools
import logging
import math
import re
import time
import unicodedata
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import click
import nh3
from flask import (Blueprint, Flask, Response, abort, current_app, flash, g, jsonify, make_response,
                   redirect, render_template, request, session, url_for)
from flask.cli import with_appcontext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from limits import parse_many
from limits.errors import ConfigurationError
from markupsafe import Markup, escape
from sqlalchemy.exc import OperationalError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.security import check_password_hash, generate_password_hash

import dataset
import db
import exchange
import features
import validation

log = logging.getLogger("fraud.dashboard")

bp = Blueprint("dashboard", __name__)

TIERS = ("high", "medium", "low")
ACTIONS = {
    "flagged_fraud": "Flag as fraud",
    "cleared": "Clear: not fraud",
    "needs_info": "Needs information",
    "note": "Add a note",
}
STATUS_LABELS = {
    "unreviewed": "Not reviewed",
    "flagged_fraud": "Flagged as fraud",
    "cleared": "Cleared",
    "needs_info": "Needs information",
    "note": "Note added",
}
ACTION_DONE = {
    "flagged_fraud": "Flagged as fraud",
    "cleared": "Cleared",
    "needs_info": "Marked as needing information",
    "note": "Note added to",
}
# Queue sort keys offered to analysts -> the column db.queue sorts on.
SORTS = {
    "expected_loss": "expected_loss",
    "probability": "fraud_probability",
    "created": "event_created",
    "received": "first_received_at",
    "money": "money_at_stake",
}
SORT_LABELS = {
    "expected_loss": "Expected loss",
    "probability": "Probability",
    "created": "Created",
    "received": "First received",
    "money": "Money at stake",
}
CURRENCY_SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$",
                    "MXN": "MX$"}
CURRENCIES = ("USD", "GBP", "CAD", "AUD", "EUR", "NZD", "MXN")
NOTE_MAX = 2000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 8
DB_ERRORS = (db.DatabaseUnavailable, OperationalError)

# Organiser-written HTML keeps only plain formatting: no attributes at all, no links, no images.
SAFE_TAGS = {"p", "br", "b", "strong", "i", "em", "u", "ul", "ol", "li", "blockquote", "h1", "h2",
             "h3", "h4", "h5", "h6", "div", "span", "pre", "code", "hr", "small", "sub", "sup"}

CONFIG_DEFAULTS = {
    "LOGIN_RATE_LIMIT": "10 per minute",  # per client address and analyst name
    "LOGIN_ADDRESS_RATE_LIMIT": "30 per minute",  # per client address, whatever the name
    "RATELIMIT_STORAGE_URI": "memory://",  # use redis://... when several workers or hosts serve
    "DASHBOARD_REFRESH_SECONDS": 15,  # live charts and queue counts
    "DASHBOARD_PRESENCE_SECONDS": 60,  # an open event page says so this often (see OPEN_SHOWN_SECONDS)
    "QUEUE_PER_PAGE": 50,
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,  # a queue left open for a working day still accepts decisions
}


# --------------------------------------------------------------------------- setup


def init_app(app: Flask) -> None:
    """Attach the dashboard: blueprint, sign-in, CSRF, rate limits, template helpers, CLI commands."""
    for key, value in CONFIG_DEFAULTS.items():
        app.config.setdefault(key, value)
    app.register_blueprint(bp)
    _init_login(app)
    _init_csrf(app)
    _init_rate_limit(app)
    app.jinja_env.filters.update(
        money=format_money, when=format_datetime, day=format_date, yesno=format_bool,
        probability=format_probability, number=format_number, dash=format_missing,
        status_label=status_label, or_blank=format_or_blank, verbatim=Verbatim, priced_in=priced_in,
        shorten=shorten, score_seen=score_seen, open_by=format_open_by,
    )
    app.jinja_env.finalize = show_as_written
    app.register_error_handler(CSRFError, _form_expired)
    for command in (create_analyst_command, set_password_command, disable_analyst_command,
                    enable_analyst_command, list_analysts_command):
        app.cli.add_command(command)
    app.cli.add_command(load_test_set_command)


def _init_login(app: Flask) -> None:
    """Sessions for analysts; the user is reloaded from the database on each request."""
    manager = LoginManager()
    manager.login_view = "dashboard.login"
    manager.user_loader(load_analyst)
    manager.unauthorized_handler(_unauthorized)
    manager.init_app(app)


def _init_csrf(app: Flask) -> None:
    """CSRF tokens on every form; the stream's JSON ``/score`` posts carry none and are exempt."""
    csrf = CSRFProtect(app)
    if "score" in app.view_functions:
        csrf.exempt(app.view_functions["score"])


def _init_rate_limit(app: Flask) -> None:
    """Rate-limit sign-in attempts only (per address+name and per address); nothing else.

    A limit that cannot be read, or a limit store that cannot be used, stops the start: a limit
    flask-limiter could not parse would be dropped with a log line, leaving sign-in unlimited.
    """
    for name in ("LOGIN_RATE_LIMIT", "LOGIN_ADDRESS_RATE_LIMIT"):
        try:
            parse_many(str(app.config[name]))
        except ValueError as exc:
            raise SystemExit(f"fraud-triage cannot start: {name}={app.config[name]!r} is not a rate limit "
                             "such as '10 per minute' or '10/minute;100/hour'") from exc
    try:
        limiter = Limiter(get_remote_address, app=app, default_limits=[])
    except ConfigurationError as exc:  # redis:// without the redis client installed, an unknown scheme
        raise SystemExit(f"fraud-triage cannot start: RATELIMIT_STORAGE_URI "
                         f"{app.config['RATELIMIT_STORAGE_URI']!r} cannot be used: {exc} "
                         "(for redis://, pip install redis)") from exc
    view = app.view_functions["dashboard.login"]
    view = limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_login_attempt_key,
                         methods=["POST"], on_breach=_rate_limited_decision)(view)
    view = limiter.limit(lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"],
                         key_func=get_remote_address, methods=["POST"], on_breach=_rate_limited_decision)(view)
    app.view_functions["dashboard.login"] = view
    app.extensions["dashboard_limiter"] = limiter
    _hooks_to_blueprint(app, limiter, bp.name)


def _rate_limited_decision(limit) -> Response | None:
    """A sign-in refused for too many attempts, sent from a decision's not-saved page: that page
    again (429), note and all, instead of the plain error page; None for any other sign-in."""
    decision = _decision_in_form()
    if decision is None:
        return None
    flash("Too many sign-in attempts. Wait a minute, then sign in again.", "error")
    page, status = _decision_refused(decision, "signed_out", f"sign-in rate limited ({limit.limit})", 429)
    return make_response(page, status)


def _hooks_to_blueprint(app: Flask, owner, blueprint: str) -> None:
    """Move the per-request hooks an extension registered for the whole app to one blueprint.

    flask-limiter hooks every request of the app (about 30 µs each), but only sign-in, a
    dashboard view, is limited: /score, the machine API, need not pay for it. The decorated
    login view checks its limits itself; its hooks now run for dashboard requests only.
    """
    def owned(hook) -> bool:
        bound_to = getattr(hook, "__self__", None)
        partial_of = getattr(hook, "args", ())[:1]
        return bound_to is owner or partial_of == (owner,)

    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        hooks = [hook for hook in registry.get(None, []) if owned(hook)]
        for hook in hooks:
            registry[None].remove(hook)
            registry[blueprint].append(hook)


def _login_attempt_key() -> str:
    """Rate-limit key for one sign-in attempt: the client address and the name tried."""
    return f"{get_remote_address()}|{request.form.get('name', '').strip().lower()[:64]}"


class Analyst(UserMixin):
    """A signed-in analyst as flask-login sees one.

    The session holds "id:token", the token a digest of the account's password hash: a new
    password ends every session signed in with the old one (flask-login's "alternative tokens").
    """

    def __init__(self, analyst_id, name: str, token: str):
        self.id = analyst_id
        self.name = name
        self.token = token

    def get_id(self) -> str:
        return f"{self.id}:{self.token}"


def session_token(password_hash: str) -> str:
    """The part of a session that a new password (a new hash, new salt) changes."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def load_analyst(user_id: str) -> Analyst | None:
    """flask-login's user loader: the session's analyst while the account is enabled and its
    password unchanged (None signs the session out); while the database is away, the signed
    session's name is trusted."""
    analyst_id, _, token = str(user_id).partition(":")
    try:
        row = db.get_analyst_by_id(current_app.extensions["db_engine"], int(analyst_id))
    except ValueError:
        return None
    except DB_ERRORS as exc:
        log.warning("database unavailable while loading analyst %s: %s", analyst_id, exc)
        name = session.get("analyst_name")
        return Analyst(analyst_id, name, token) if name and token else None
    if row is None or row["disabled_at"] is not None or token != session_token(row["password_hash"]):
        # why the session ended, for the page that says so (_unauthorized)
        g.session_ended = ("disabled" if row is not None and row["disabled_at"] is not None
                           else "changed" if row is not None and token else None)
        return None
    return Analyst(row["id"], row["name"], token)


SESSION_ENDED = {
    "changed": "Your password was changed since you signed in, so you were signed out. Sign in "
               "with the new password (ask the service's administrator if you did not change it).",
    "disabled": "Your account has been disabled, so you were signed out. Ask the service's "
                "administrator.",
}


def _unauthorized():
    """Signed out: JSON gets 401, pages redirect to sign-in; nothing is ever applied."""
    if request.path.startswith("/api/"):
        abort(401, description="sign in to the dashboard first")
    ended = g.get("session_ended")
    if ended:
        flash(SESSION_ENDED[ended], "warning")
    if request.method == "GET":
        if not ended:
            flash("Please sign in to continue.", "info")
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    decision = _decision_in_form()
    if decision is not None:  # signed out by a new password or a disabled account: keep the note
        return _decision_refused(decision, "signed_out", "session ended", 401)
    flash("You were signed out, so nothing was changed. Sign in and try again.", "warning")
    return redirect(url_for("dashboard.login"))


def _form_expired(exc: CSRFError):
    """A decision form refused for its CSRF token: the analyst was signed out (in another tab, or
    the session ended) or the form is from an earlier session. Nothing was applied; the page says
    so and keeps the decision and its note, to send again (signed in) or to copy (signed out).
    Any other refused form gets the usual error page."""
    decision = _decision_in_form()
    if decision is None:  # sign-in, sign-out: the plain error page, which names the security token
        return render_template("error.html", error=exc), exc.code
    by = request.form.get("by") or ""  # who had the page open
    if not current_user.is_authenticated:
        why = "signed_out"
    elif by and by != current_user.name:  # a colleague signed in on this browser since
        why = "other_analyst"
    elif "expired" in (exc.description or ""):  # open longer than WTF_CSRF_TIME_LIMIT
        why = "timed_out"
    else:
        why = "expired"
    return _decision_refused(decision, why, exc.description, 400)


def _decision_refused(decision: tuple, why: str, detail: str, status: int):
    """The not-saved page for a decision refused before it was looked at (see not_saved.html)."""
    object_ids, action = decision[:2]
    log.warning("decision %s on %s by %s refused (%s): %s", action, object_ids,
                request.form.get("by") or "?", why, detail)
    return _decision_page(decision, why, status)


def _pending_decision_page(decision: tuple):
    """After signing in from a decision's not-saved page: the decision, kept, with a form to send
    it (checked then against what was seen, as any decision is). Sending stays the analyst's
    click: nothing is applied by signing in. If someone else signed in, the note is only kept
    to copy, as for a form opened under another name."""
    by = request.form.get("by") or ""
    why = "other_analyst" if by and by.lower() != current_user.name.lower() else "signed_in"
    return _decision_page(decision, why, 200)


def _decision_page(decision: tuple, why: str, status: int):
    """not_saved.html for a decision read back from the posted form (who had it open, the way back)."""
    object_ids, action, note, expected, retry_url = decision
    back = _safe_next(request.form.get("back") or request.form.get("next"))
    return _not_saved_page(object_ids, action, note, expected, retry_url, back, why=why, status=status,
                           by=request.form.get("by") or "")


def _decision_in_form():
    """(object_ids, action, note, expected review ids, retry url) of a decision form posted to
    review or bulk_review, read without aborting; None for any other request."""
    form, endpoint = request.form, request.endpoint
    action = form.get("action", "")
    if request.method != "POST" or action not in ACTIONS:
        return None
    note = _note_in(form)
    try:
        if endpoint == "dashboard.review":
            object_id = int(request.view_args["object_id"])
            seen = _parse_seen(form.get("expected_review_id"), form.get("expected_score"))
            return [object_id], action, note, {object_id: seen}, url_for("dashboard.review", object_id=object_id)
        if endpoint in ("dashboard.bulk_review", "dashboard.login"):  # login: carried by not_saved.html
            ids = sorted({int(v) for v in form.getlist("object_id")})
            one = endpoint == "dashboard.login" and form.get("pending") == "review" and len(ids) == 1
            return (ids, action, note, {i: _parse_seen(form.get(f"seen_{i}"), form.get(f"score_seen_{i}"))
                                        for i in ids},
                    url_for("dashboard.review", object_id=ids[0]) if one
                    else url_for("dashboard.bulk_review")) if ids else None
    except (TypeError, ValueError):
        return None
    return None


@bp.app_context_processor
def _template_globals() -> dict:
    """Names every template may use."""
    return {"TIERS": TIERS, "ACTIONS": ACTIONS, "STATUS_LABELS": STATUS_LABELS}


@bp.errorhandler(db.DatabaseUnavailable)
@bp.errorhandler(OperationalError)
def _database_down(exc):
    """A read that fails because the database is away: say so plainly (503), JSON for the API."""
    log.error("database unavailable on %s: %s", request.path, exc)
    decision = _decision_in_form() if request.endpoint == "dashboard.login" else None
    if decision is not None:  # signing in from a decision's not-saved page: that page stays
        flash("The database cannot be reached right now, so you could not be signed in. Try again "
              "in a minute.", "error")
        return _decision_refused(decision, "signed_out", "database unavailable at sign-in", 503)
    description = "The database cannot be reached right now, so this page could not be loaded. " \
                  "Try again in a minute."
    if request.path.startswith("/api/"):
        return jsonify({"error": "Service Unavailable", "status": 503, "message": description}), 503
    return render_template("error.html", error=ServiceUnavailable(description)), 503


# --------------------------------------------------------------------------- formatting


def format_missing(value):
    """'—' for anything missing (None, NaN, empty string), else the value."""
    return "—" if dataset.is_missing(value) else value


def shorten(value, limit: int = db.QUEUE_TEXT_MAX):
    """Text over ``limit`` characters cut there, with '…' (a list shows it; the event page shows
    all of it); anything else as it is."""
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value


def format_or_blank(value, placeholder: str = "—"):
    """The value, or ``placeholder`` when it is missing or shows nothing (spaces, zero-width)."""
    return placeholder if dataset.is_missing(value) or shows_nothing(str(value)) else value


# Characters that are letters to Unicode but draw nothing (Hangul and Braille blanks, fillers).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def shows_nothing(text: str) -> bool:
    """True when no character of ``text`` draws anything: spaces, format and control characters
    (zero-width, direction), combining marks alone, and blank letters such as U+3164."""
    return all(c.isspace() or c in _BLANK_LETTERS or unicodedata.category(c) in ("Cc", "Cf", "Mn", "Me", "Zs")
               for c in text)


class Verbatim(str):
    """A value shown exactly as written (a note the analyst typed, a search box): ``show_as_written``
    leaves its direction controls alone, so sending the form again sends what was typed."""


# Unicode controls that reorder the text around them: "\u202emoc.elgoog" shows as "google.com".
# Every value a page shows has them replaced by a visible mark, so such a trick is seen.
_BIDI_CONTROLS = {ord(c): f"⟨U+{ord(c):04X}⟩" for c in
                  "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"}


def show_as_written(value):
    """Jinja's finalize, for each ``{{ }}`` value: direction controls made visible (except in a
    Verbatim value) and lone surrogates, which no page can be encoded with, shown as '?'."""
    if isinstance(value, str) and not value.isascii():
        shown = value if isinstance(value, Verbatim) else value.translate(_BIDI_CONTROLS)
        try:
            shown.encode("utf-8")
        except UnicodeEncodeError:
            shown = shown.encode("utf-8", "replace").decode("utf-8")
        if shown != value:
            return Markup(shown) if isinstance(value, Markup) else shown
    return value


def _to_datetime(value) -> dt.datetime | None:
    """A UTC datetime from unix seconds, a datetime or an ISO string; None when missing or 0."""
    if dataset.is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:  # 0 means "not set" in the client's data, not 1 January 1970
            return None
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):  # far outside any real date
            return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return None


def format_datetime(value) -> str:
    """'2013-10-04 14:05 UTC', or '—'."""
    when = _to_datetime(value)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if when else "—"


def format_date(value) -> str:
    """'2013-10-04', or '—'."""
    when = _to_datetime(value)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d") if when else "—"


def currency_code(currency) -> str:
    """A currency field as a code fit to show: up to 10 ASCII letters or digits ('gbp ' -> 'GBP',
    'BITCOIN'), else ''. Anything else is shown only where the raw field is, never beside every amount."""
    code = exchange.code_of(currency)
    return code if len(code) <= 10 and code.isascii() and code.isalnum() else ""


def format_money(amount, currency=None, cents: bool = True) -> str:
    """'£1,234.50 GBP' (symbol, amount, code), '1,234.50' without a readable currency code,
    '—' when missing."""
    if dataset.is_missing(amount):
        return "—"
    try:
        amount = float(amount)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 309+ digits
        return str(amount)
    code = currency_code(currency)
    sign = "-" if amount < 0 else ""
    text = f"{sign}{CURRENCY_SYMBOLS.get(code, '')}{abs(amount):,.{2 if cents else 0}f}"
    return f"{text} {code}" if code else text


NO_CURRENCY = "no currency given: counted as US dollars"


def priced_in(currency) -> str | None:
    """What the queue says of an event not priced in US dollars: 'priced in GBP', with 'no rate:
    counted as US dollars' when the rates do not know the code, NO_CURRENCY when it names none;
    None for US dollars."""
    code = exchange.code_of(currency)
    if not code:
        return NO_CURRENCY
    if code == "USD":
        return None
    shown = currency_code(currency) or "a currency too long to show"
    return f"priced in {shown}" if code in exchange.rates() else f"priced in {shown}, no rate: counted as US dollars"


def money_in_own_currency(record: dict) -> str | None:
    """The event's money at stake in its own currency ('10,000.00 GBP'), shown beside the
    US-dollar amount the service compares; None when the event is priced in US dollars or names
    no currency (NO_CURRENCY). A code the rates do not know says it was counted as US dollars."""
    currency = record.get("currency")
    note = priced_in(currency)  # the same reading of the code as the queue's
    if note is None or note == NO_CURRENCY:
        return note
    text = format_money(features.money_at_stake(record), currency)
    if exchange.code_of(currency) in exchange.rates():
        return text
    return f"{text}{'' if currency_code(currency) else ' in a currency too long to show'}, no rate known: counted as US dollars"


def format_bool(value) -> str:
    """'yes' / 'no' for 1/0, True/False, 'y'/'n'; '—' when missing."""
    if dataset.is_missing(value):
        return "—"
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("y", "yes", "true", "1"):
            return "yes"
        if lowered in ("n", "no", "false", "0"):
            return "no"
        return value
    return "yes" if value else "no"


def format_probability(value) -> str:
    """'87.3 %', or '—'."""
    if dataset.is_missing(value):
        return "—"
    return f"{float(value) * 100:.1f} %"


def format_number(value, digits: int = 0) -> str:
    """Thousands separators; integers stay integers; '—' when missing."""
    if dataset.is_missing(value):
        return "—"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) and digits == 0:  # exact at any size (float() overflows past 1e308)
        return f"{value:,}"
    if isinstance(value, (int, float)):
        if math.isfinite(float(value)) and float(value).is_integer() and digits == 0:
            return f"{int(value):,}"
        return f"{value:,.{digits or 2}f}"
    return str(value)


def status_label(status) -> str:
    """Plain words for a review status."""
    return STATUS_LABELS.get(status or "unreviewed", str(status))


# An anchor's opening or closing tag as nh3 writes them (attribute values quoted with '"', '<'
# and '>' escaped; text never holds a bare '<'), its href, and the longest target shown in full.
_ANCHOR_TAG = re.compile(r"<a\b([^>]*)>|</a>")
_HREF = re.compile(r'(?:^|\s)href="([^"]*)"')
MAX_LINK_TARGET = 200
# Schemes whose targets are shown. Only ever as text, so a script link is shown too: that an
# organiser wrote one is itself a clue. nh3 drops an href of any other scheme.
SHOWN_LINK_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {
    "javascript", "vbscript", "data", "file", "blob", "intent", "market", "whatsapp", "tg", "skype", "viber"}


# How much of an organiser's HTML the event page shows. Sanitising takes time that grows with
# the square of how deeply tags nest: measured, 20,000 characters of "<ul>" took 33 ms, so the
# 1 MiB a body may hold would take about 80 s and get the worker killed. 50,000 take 0.2 s at
# worst; real descriptions are a few thousand characters (the model reads the first 20,000).
SHOWN_HTML_CHARS = 50_000


def sanitise_html(text) -> str:
    """Organiser-written HTML reduced to plain formatting tags (no attributes or scripts), of its
    first SHOWN_HTML_CHARS characters (see ``html_length``).

    Links are not followable, but where they lead is evidence (a payment page off the
    marketplace), so each link's target is shown as text after its words: 'Pay here [link:
    http://…]', script links ('javascript:…') included.
    """
    if dataset.is_missing(text):
        return ""
    text = str(text)[:SHOWN_HTML_CHARS].encode("utf-8", "replace").decode("utf-8")  # nh3 refuses lone surrogates
    # "*": no attribute on any tag but an anchor's href (nh3 keeps title and lang by default, and a
    # title could hold a decoy ' href="…"')
    cleaned = nh3.clean(text, tags=SAFE_TAGS | {"a"}, attributes={"a": {"href"}, "*": set()}, url_schemes=SHOWN_LINK_SCHEMES,
                        clean_content_tags={"script", "style"}, strip_comments=True, link_rel=None)
    # Every anchor tag goes, each opening one by itself, so anchors nested by the parser (an <a>
    # in a table in an <a>) cannot pair up wrongly and leave one whole; a closing tag is replaced
    # by the target of the anchor it closes.
    open_targets: list[str] = []

    def replace(match: re.Match) -> str:
        if match.group(0) != "</a>":
            href = _HREF.search(match.group(1))
            open_targets.append(href.group(1) if href else "")
            return ""
        return _link_target(open_targets.pop()) if open_targets else ""

    return _ANCHOR_TAG.sub(replace, cleaned)


def html_length(text) -> int:
    """How many characters an organiser's HTML has (0 when missing): over SHOWN_HTML_CHARS,
    the page says that only the start is shown."""
    return 0 if dataset.is_missing(text) else len(str(text))


def _link_target(href: str) -> str:
    """A link's target as inert text after its words ('' for an anchor without one)."""
    if not href:
        return ""
    target = html.unescape(href)  # nh3 escaped it for an attribute; escaped again for text below
    if len(target) > MAX_LINK_TARGET:
        target = target[:MAX_LINK_TARGET] + "…"
    return f' <span class="link-target">[link: {escape(target)}]</span>'


# --------------------------------------------------------------------------- the event page's fields

# (key, label, kind). Kinds pick the formatter; every key of the raw record not listed here is
# still shown under "Other fields", so nothing the stream sent is hidden from the analyst.
EVENT_FIELDS = [
    ("name", "Event name", "text"),
    ("object_id", "Event id", "id"),
    ("event_created", "Created", "datetime"),
    ("event_published", "Published", "datetime"),
    ("event_start", "Starts", "datetime"),
    ("event_end", "Ends", "datetime"),
    ("sale_duration", "Days on sale before start", "number"),
    ("sale_duration2", "Days from creation to start", "number"),
    ("listed", "Listed publicly", "bool"),
    ("fb_published", "Published on Facebook", "bool"),
    ("show_map", "Shows a map", "bool"),
    ("has_logo", "Has a logo", "bool"),
    ("has_header", "Has a header image", "bool"),
    ("has_analytics", "Uses analytics", "bool"),
    ("channels", "Sales channel code", "number"),
    ("delivery_method", "Ticket delivery method code", "number"),
    ("body_length", "Description length (characters)", "number"),
    ("name_length", "Name length (characters)", "number"),
]
ORGANISER_FIELDS = [
    ("org_name", "Organiser", "text"),
    ("email_domain", "Email domain", "text"),
    ("country", "Organiser country", "text"),
    ("user_created", "Account created", "datetime"),
    ("user_age", "Account age when the event was created (days)", "number"),
    ("user_type", "Account type code", "number"),
    ("org_facebook", "Facebook followers (count)", "number"),
    ("org_twitter", "Twitter followers (count)", "number"),
    ("payee_name", "Payee name", "text"),
    ("payout_type", "Payout method", "text"),
]
VENUE_FIELDS = [
    ("venue_name", "Venue", "text"),
    ("venue_address", "Address", "text"),
    ("venue_state", "State / region", "text"),
    ("venue_country", "Venue country", "text"),
    ("venue_latitude", "Latitude", "coord"),
    ("venue_longitude", "Longitude", "coord"),
]
SALES_FIELDS = [
    ("currency", "Currency", "text"),
    ("gts", "Gross ticket sales so far", "money"),
    ("num_order", "Orders so far", "number"),
    ("num_payouts", "Organiser's payouts before the event (the site's count)", "number"),
    ("approx_payout_date", "Expected payout date", "datetime"),
]
SHOWN_ELSEWHERE = {"description", "org_desc", "ticket_types", "previous_payouts", "acct_type"}


def _number(value) -> float | None:
    """A finite float from a number or numeric string; None for anything else (raw data is untrusted)."""
    if isinstance(value, bool) or dataset.is_missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def format_field(value, kind: str, currency=None) -> str:
    """One raw field in readable form: dates as UTC dates, money with currency, yes/no, '—'."""
    if dataset.is_missing(value):
        return "—"
    if kind == "datetime":
        return format_datetime(value)
    if kind == "bool":
        return format_bool(value)
    if kind == "money":
        return format_money(value, currency)
    number = _number(value)
    if kind == "number" and number is not None:
        return format_number(number, 0 if number.is_integer() else 1)
    if kind == "coord" and number is not None:
        return f"{number:.4f}"
    if isinstance(value, (list, dict)):
        return f"{len(value)} item(s)"
    return str(value)


def field_rows(record: dict, spec) -> list[tuple[str, str]]:
    """(label, readable value) for each field of a section."""
    currency = record.get("currency")
    return [(label, format_field(record.get(key), kind, currency)) for key, label, kind in spec]


def other_field_rows(record: dict) -> list[tuple[str, str]]:
    """Fields the sections above do not name (new feed keys such as sequence_number)."""
    known = {key for spec in (EVENT_FIELDS, ORGANISER_FIELDS, VENUE_FIELDS, SALES_FIELDS)
             for key, _, _ in spec} | SHOWN_ELSEWHERE
    return [(key, format_field(value, "text")) for key, value in sorted(record.items()) if key not in known]


def ticket_rows(record: dict) -> list[dict]:
    """Ticket tiers in readable form, with each tier's potential revenue."""
    rows = []
    for tier in record.get("ticket_types") or []:
        if not isinstance(tier, dict):
            continue
        cost, total = _number(tier.get("cost")), _number(tier.get("quantity_total"))
        revenue = None if cost is None or total is None else cost * total
        rows.append({
            "cost": format_money(cost, record.get("currency")),
            "availability": format_number(tier.get("availability")),
            "quantity_total": format_number(total),
            "quantity_sold": format_number(tier.get("quantity_sold")),
            "revenue": format_money(revenue, record.get("currency")),
        })
    return rows


def payout_summary(record: dict) -> dict:
    """The organiser's payout history: count before the event, totals and last dates."""
    created = _to_datetime(record.get("event_created"))
    payouts = [p for p in record.get("previous_payouts") or [] if isinstance(p, dict)]
    dated = [(_to_datetime(p.get("created")), p) for p in payouts]
    before = [(when, p) for when, p in dated if when and created and when < created]

    def total(items):
        return sum(_number(p.get("amount")) or 0.0 for _, p in items)

    def last(items):
        dates = [when for when, _ in items if when]
        return format_datetime(max(dates)) if dates else "—"

    currency = record.get("currency")
    return {
        "count": len(payouts),
        "count_before": len(before),
        "total": format_money(total(dated), currency) if payouts else "—",
        "total_before": format_money(total(before), currency) if before else "—",
        "last": last(dated),
        "last_before": last(before),
        "event_known": created is not None,
    }


# --------------------------------------------------------------------------- sign-in


def _safe_next(target: str | None) -> str | None:
    """Only local paths are followed after sign-in or a decision (no open redirect to another
    site). Control characters are refused: a line break cannot go in a Location header, and
    browsers drop tabs and line breaks from a URL ('/', a tab, '/evil.example' is '//evil.example')."""
    if not target or _CONTROL_CHARACTERS.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return None
    return target


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _url_args(url: str) -> MultiDict:
    """The query parameters of a local URL (the queue a page or a form came from)."""
    return MultiDict(parse_qsl(urlsplit(url).query))


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to check against when the name is unknown, so both cases take as long."""
    return generate_password_hash("not-a-real-password", method="scrypt")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with name and password (attempts rate limited in _init_rate_limit)."""
    next_url = _safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        pending = _decision_in_form()  # sent twice, or after signing in elsewhere: not dropped
        if pending is not None:
            return _pending_decision_page(pending)
        return redirect(next_url or url_for("dashboard.queue"))
    name = ""
    if request.method == "POST":
        pending = _decision_in_form()  # a decision carried from its not-saved page, to send once signed in
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        # Only a name create-analyst could have made (ASCII) is looked up: Python, SQLite and
        # Postgres then ignore case alike, and so does the rate limiter's count per name.
        row = db.get_analyst(current_app.extensions["db_engine"], name) if NAME_PATTERN.match(name) else None
        stored = row["password_hash"] if row else _dummy_hash()
        right = check_password_hash(stored, password) and row is not None  # scrypt: once per attempt
        if right and row["disabled_at"] is not None:
            log.warning("sign-in to disabled account %s from %s", row["name"], request.remote_addr)
            flash("This account is disabled. Ask the service's administrator.", "error")
            if pending is not None:
                return _decision_refused(pending, "signed_out", "account disabled", 403)
            return render_template("login.html", name=name, next_url=next_url), 403
        if right:
            session.clear()  # a fresh session for the signed-in analyst
            session["analyst_name"] = row["name"]
            login_user(Analyst(row["id"], row["name"], session_token(row["password_hash"])))
            log.info("analyst %s signed in from %s", row["name"], request.remote_addr)
            if pending is not None:
                return _pending_decision_page(pending)
            return redirect(next_url or url_for("dashboard.queue"))
        log.warning("failed sign-in for %r from %s", name[:64], request.remote_addr)
        flash("Wrong name or password.", "error")
        if pending is not None:  # the sign-in form of the not-saved page: it stays, note and all
            return _decision_refused(pending, "signed_out", "sign-in failed", 401)
        return render_template("login.html", name=name, next_url=next_url), 401
    return render_template("login.html", name=name, next_url=next_url)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out (a POST with a CSRF token, so no other site can sign an analyst out), which ends
    the analyst's openings of events: colleagues no longer see them as on those events."""
    try:
        db.note_closed(current_app.extensions["db_engine"], current_user.name)
    except db.DatabaseUnavailable as exc:  # they only inform colleagues, and expire
        log.warning("could not end %s's openings of events at sign-out: %s", current_user.name, exc)
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("dashboard.login"))


# --------------------------------------------------------------------------- the queue


def queue_filters(args, say=flash) -> dict:
    """The queue's filters from the query string, cleaned; unknown values are dropped, and
    dates it cannot use are pointed out through ``say`` (a message on the page)."""
    filters = {}
    status = args.get("status", "")
    if status in STATUS_LABELS and status != "note":
        filters["status"] = status
    for key in ("date_from", "date_to"):
        value = args.get(key, "").strip()
        if value:
            try:
                filters[key] = dt.date.fromisoformat(value).isoformat()
            except ValueError:
                say(f"Ignored the date '{value[:20]}': use the form YYYY-MM-DD.", "warning")
    if "date_from" in filters and "date_to" in filters and filters["date_from"] > filters["date_to"]:
        say(f"The dates are the wrong way round: first received from {filters['date_from']} to "
              f"{filters['date_to']} holds no day, so no event matches. Swap them.", "warning")
    currency = args.get("currency", "").strip().upper()
    if re.fullmatch(r"[A-Z]{3}", currency):
        filters["currency"] = currency
    country = args.get("country", "").strip().upper()
    if re.fullmatch(r"[A-Z]{2}", country):
        filters["country"] = country
    q = args.get("q", "").strip()
    if q:
        filters["q"] = q[:200]
    for key in ("organiser", "domain"):  # exact matches (an event page's links)
        value = args.get(key, "").strip()
        if value:
            filters[key] = value[:db.MATCH_CHARS]
    decided_by = args.get("decided_by", "").strip()
    if decided_by:  # an analyst's name: events whose latest decision is theirs
        filters["decided_by"] = decided_by[:200]
    return filters


def _int_arg(args, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter clamped into [low, high]."""
    try:
        return min(max(int(args.get(name, default)), low), high)
    except (TypeError, ValueError):
        return default


def _queue_state(args, say=flash) -> dict:
    """Everything that defines one view of the queue: tier, filters, sort, page."""
    tier = args.get("tier", "high")
    sort = args.get("sort", "expected_loss")
    return {
        "tier": tier if tier in TIERS else ("all" if tier == "all" else "high"),
        "filters": queue_filters(args, say),
        "sort": sort if sort in SORTS else "expected_loss",
        "order": "asc" if args.get("order") == "asc" else "desc",
        "page": _int_arg(args, "page", 1, 1, 100000),
        "per_page": _int_arg(args, "per_page", current_app.config["QUEUE_PER_PAGE"], 10, 200),
    }


def queue_url(state: dict, **changes) -> str:
    """The queue's URL for ``state`` with some parameters changed (sort links, tier tabs, pages)."""
    params = {"tier": state["tier"], **state["filters"], "sort": state["sort"], "order": state["order"],
              "page": state["page"]}
    if state["per_page"] != current_app.config["QUEUE_PER_PAGE"]:
        params["per_page"] = state["per_page"]
    params.update(changes)
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return url_for("dashboard.queue") + "?" + urlencode(clean)


def page_numbers(page: int, pages: int) -> list:
    """Page links to show: first, last and a window around the current page; None is a gap."""
    wanted = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    out, previous = [], 0
    for number in wanted:
        if number - previous > 1:
            out.append(None)
        out.append(number)
        previous = number
    return out


@bp.route("/")
@bp.route("/queue")
@login_required
def queue():
    """The review queue: three tiers with counts and money, then one tier's events by expected loss."""
    return _queue_page(request.args)


def _queue_page(args, note: str = "", selected=()):
    """The queue for ``args`` (its URL's parameters); ``note`` refills the bulk note and
    ``selected`` ticks events again (a bulk decision some or all of whose events were not applied)."""
    engine = current_app.extensions["db_engine"]
    state = _queue_state(args)
    summary = db.tier_summary(engine, state["filters"])
    rows, total = db.queue(
        engine, tier=None if state["tier"] == "all" else state["tier"], filters=state["filters"],
        sort=SORTS[state["sort"]], descending=state["order"] == "desc", page=state["page"],
        per_page=state["per_page"],
    )
    pages = max(1, math.ceil(total / state["per_page"]))
    if state["page"] > pages:  # past the end (the last page was emptied by decisions): go to the end
        return redirect(queue_url(state, page=pages))
    fill_reasons(rows)
    return render_template(
        "queue.html", active_page="queue", state=state, summary=summary, rows=rows, total=total,
        opens=open_by_others([row["object_id"] for row in rows]), undone=decisions_undone(rows),
        pages=pages, page_numbers=page_numbers(min(state["page"], pages), pages),
        queue_url=functools.partial(queue_url, state), sort_labels=SORT_LABELS, currencies=CURRENCIES,
        first=(state["page"] - 1) * state["per_page"] + 1 if rows else 0,
        last=(state["page"] - 1) * state["per_page"] + len(rows),
        summary_url=url_for("dashboard.api_queue_summary", **state["filters"]),
        refresh=current_app.config["DASHBOARD_REFRESH_SECONDS"], bulk_note=note, selected=set(selected),
    )


def decisions_undone(rows: list[dict]) -> dict[int, str]:
    """The decisions the listed events' organisers changed them after (they are back to "Not
    reviewed", see db._upsert_statement), as the queue says them: object_id -> "Flagged as fraud
    by alice; the event changed since". An event edited after it was flagged is worth knowing
    about in the list, not only in its history."""
    undone = {row["object_id"]: row["last_review_id"] for row in rows
              if (row.get("review_status") or "unreviewed") == "unreviewed"
              and row.get("content_changed_at") is not None and row.get("last_review_id") is not None}
    found = db.decisions(current_app.extensions["db_engine"], undone.values())
    return {object_id: f"{ACTION_DONE[found[review_id]['action']]} by {shorten(found[review_id]['analyst'])}; "
                       "the event changed since"
            for object_id, review_id in undone.items() if found.get(review_id, {}).get("action") in ACTION_DONE}


def fill_reasons(rows: list[dict], payloads: dict[int, dict] | None = None) -> None:
    """Explain rows stored without reasons, for showing them (nothing is written back).

    Batch jobs explain only the events at or above the medium tier (predict.REVIEW_TIERS); a
    low-risk event's reasons are computed here when a page shows it, from its stored payload,
    if the serving model is the one that scored it (else the page says which model did).
    ``payloads`` (object_id -> raw record) saves a query when the caller has them.
    """
    model = current_app.extensions["fraud_model"]
    todo = [row for row in rows if not row.get("reasons") and row.get("model_version") == model.version]
    if not todo:
        return
    if payloads is None:
        payloads = db.raw_payloads(current_app.extensions["db_engine"], [row["object_id"] for row in todo])
    todo = [row for row in todo if isinstance(payloads.get(row["object_id"]), dict)]
    _, reasons = model.predict_and_explain([payloads[row["object_id"]] for row in todo])
    for row, why in zip(todo, reasons):
        row["reasons"] = why


# --------------------------------------------------------------------------- the event page


@bp.route("/events/<int:object_id>")
@login_required
def event(object_id: int):
    """One event in full: fields, ticket tiers, payouts, the reasons for its score, its history."""
    return _event_page(object_id, _safe_next(request.args.get("back")), opening=True)


def _event_page(object_id: int, back: str | None, note: str = "", opening: bool = False):
    """The event page; ``note`` refills the decision's note (a decision that was not applied);
    ``opening``: the analyst opened it (recorded for colleagues to see, see ``note_open``)."""
    engine = current_app.extensions["db_engine"]
    prediction = db.get_prediction(engine, object_id)
    if prediction is None:
        abort(404, description=f"There is no scored event with id {object_id}.")
    record = prediction.get("raw_payload") or {}
    fill_reasons([prediction], {object_id: record})
    acct_type = prediction.get("acct_type") or record.get("acct_type")
    reviews = db.reviews_for(engine, object_id)
    opened_at = note_open(object_id, reviews) if opening else None
    return render_template(
        "event.html", active_page="queue", p=prediction, record=record,
        sections=[("The event", field_rows(record, EVENT_FIELDS)),
                  ("Organiser", field_rows(record, ORGANISER_FIELDS)),
                  ("Venue", field_rows(record, VENUE_FIELDS)),
                  ("Sales and payouts", field_rows(record, SALES_FIELDS))],
        other_fields=other_field_rows(record),
        description=sanitise_html(record.get("description")),
        org_desc=sanitise_html(record.get("org_desc")), shown_html_chars=SHOWN_HTML_CHARS,
        html_lengths={key: html_length(record.get(key)) for key in ("description", "org_desc")},
        tickets=ticket_rows(record), payouts=payout_summary(record),
        own_money=money_in_own_currency(record),
        reviews=reviews, opens=open_by_others([object_id]).get(object_id, []),
        acct_type=acct_type, acct_is_fraud=dataset.is_fraud(acct_type),
        serving_model_version=current_app.extensions["fraud_model"].version,
        back_url=back or url_for("dashboard.queue"), back=back or "", note=note,
        related=related_searches(prediction, record), next_event=next_to_review(prediction, back),
        presence=None if opened_at is None else {
            "url": url_for("dashboard.presence", object_id=object_id), "opened_at": repr(opened_at),
            "every": current_app.config["DASHBOARD_PRESENCE_SECONDS"]},
    )


def next_to_review(prediction: dict, back: str | None) -> dict:
    """What to open after this event: the unreviewed event with the largest expected loss that
    no colleague has open, in the tier and filters of the queue the analyst came from (this
    event's tier when that queue showed all tiers, or none). {tier, row} with row None when
    there is none left."""
    state = _queue_state(_url_args(back), say=lambda *_: None) if back else None
    tier = state["tier"] if state and state["tier"] in TIERS else prediction["risk_tier"]
    filters = {k: v for k, v in (state["filters"] if state else {}).items() if k != "status"}
    row = db.next_to_review(current_app.extensions["db_engine"], tier, filters, prediction["object_id"],
                            current_user.name, time.time() - OPEN_SHOWN_SECONDS)
    return {"tier": tier, "filtered": bool(filters), "row": row}


# An event page that is open says so every DASHBOARD_PRESENCE_SECONDS (static/presence.js), and
# when it is left. A colleague's opening is shown ("open by bob (opened 3 minutes ago)") until its
# page is left, or until it has not said it is open for OPEN_SHOWN_SECONDS (a closed laptop, a crash).
OPEN_SHOWN_SECONDS = 5 * 60
# A page shown this soon after the analyst's own decision on the event is the page confirming
# it (a decision sends the browser back to the event), not a new opening.
OWN_DECISION_SECONDS = 30


def note_open(object_id: int, reviews: list[dict]) -> float | None:
    """Record that the signed-in analyst has this event open and return the opening's time,
    unless they decided on it a moment ago (a decision deletes their opening: they are done with
    it) or it could not be recorded (None)."""
    latest = next((r for r in reviews if r["action"] != "note"), None)
    if (latest is not None and latest["analyst"] == current_user.name
            and time.time() - float(latest["created_at"]) < OWN_DECISION_SECONDS):
        return None
    try:
        return db.note_open(current_app.extensions["db_engine"], object_id, current_user.name)
    except db.DatabaseUnavailable as exc:  # it only informs colleagues: the page is shown all the same
        log.warning("could not record that %s opened event %s: %s", current_user.name, object_id, exc)
        return None


@bp.route("/api/events/<int:object_id>/presence", methods=["POST"])
@login_required
def presence(object_id: int):
    """An event page's word on its opening (``opened_at``, the time the page was given):
    ``state=open``, it is still open (every DASHBOARD_PRESENCE_SECONDS), answered with who else has it
    open, as the page writes it ({"open_by": HTML, "count": n}); ``state=closed``, the analyst
    left it (204). 400 naming a bad field. Only informs colleagues: a failure is logged (503)."""
    state = request.form.get("state")
    opened_at = _number(request.form.get("opened_at"))
    if state not in ("open", "closed") or opened_at is None or not 0 < object_id <= validation.MAX_OBJECT_ID:
        return jsonify({"error": "Send state=open or state=closed, with opened_at the time the event "
                                 "page was given."}), 400
    engine = current_app.extensions["db_engine"]
    try:
        if state == "closed":
            db.note_closed(engine, current_user.name, object_id, opened_at)
            return "", 204
        if not db.review_states(engine, [object_id]):  # one small row, not the stored event, each minute
            abort(404, description=f"There is no scored event with id {object_id}.")
        db.note_open(engine, object_id, current_user.name, opened_at=opened_at)
        opens = open_by_others([object_id]).get(object_id, [])
    except db.DatabaseUnavailable as exc:
        log.warning("could not record that %s's page of event %s is %s: %s", current_user.name, object_id, state, exc)
        return jsonify({"error": "The database cannot be reached right now."}), 503
    return jsonify({"open_by": render_template("open_by_others.html", opens=opens), "count": len(opens)})


def open_by_others(object_ids) -> dict[int, list[dict]]:
    """Colleagues who opened these events in the last OPEN_SHOWN_SECONDS and have not decided on
    them since: object_id -> [{analyst, opened_at, ago}], the latest first."""
    now = time.time()
    opens = db.open_by_others(current_app.extensions["db_engine"], object_ids, current_user.name,
                              now - OPEN_SHOWN_SECONDS)
    for entries in opens.values():
        for entry in entries:
            entry["ago"] = _ago(now - float(entry["opened_at"]))
    return opens


def _ago(seconds: float) -> str:
    """'just now', '3 minutes ago', '2 hours ago', '3 days ago'."""
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 1:
        return "just now"
    count, unit = ((minutes, "minute") if minutes < 60 else (minutes // 60, "hour") if minutes < 48 * 60
                   else (minutes // (24 * 60), "day"))
    return f"{count} {unit}{'' if count == 1 else 's'} ago"


def format_open_by(entries: list[dict]) -> str:
    """'open by bob (just now), cy (3 minutes ago)': the queue's note of colleagues' openings."""
    return "open by " + ", ".join(f"{shorten(e['analyst'])} ({e['ago']})" for e in entries)


def related_searches(prediction: dict, record: dict) -> list[tuple[str, str, str]]:
    """(id, link text, queue URL) listing every tier's events by this event's organiser and,
    unless it is a free-mail one, with its email domain: one fraudster often runs several events.
    Exact matches (case and surrounding spaces aside), not parts of other names: "Or Institute"
    does not list "Cor Institute", nor "acme.com" "notacme.com"."""
    links = []
    organiser = features.to_text(prediction.get("org_name") or record.get("org_name")).strip()
    if organiser:
        links.append(("related-organiser", "events by this organiser",
                      url_for("dashboard.queue", tier="all", organiser=organiser[:db.MATCH_CHARS])))
    domain = features.email_domain({"email_domain": prediction.get("email_domain") or record.get("email_domain")})
    if domain and domain not in features.FREEMAIL_DOMAINS:
        links.append(("related-domain", f"events with the email domain {domain}",
                      url_for("dashboard.queue", tier="all", domain=domain[:db.MATCH_CHARS])))
    return links


# --------------------------------------------------------------------------- decisions


class Seen(NamedTuple):
    """What the analyst saw of an event when deciding: its last review (None: none yet) and its
    score ('probability/money at stake/when its content last changed' as the page wrote it, the
    last part empty for never; '' from a page that did not say)."""
    review_id: int | None
    score: str = ""

    def score_values(self) -> tuple | None:
        """(probability, money at stake[, content changed at or None]) as the database holds
        them, or None when the page did not say (a page from before content checks: two)."""
        if not self.score:
            return None
        parts = self.score.split("/")
        if len(parts) not in (2, 3):
            raise ValueError(f"{self.score[:40]!r} is not a score")
        values = (float(parts[0]), float(parts[1]))
        return values if len(parts) == 2 else (*values, float(parts[2]) if parts[2] else None)


def score_seen(row) -> str:
    """An event's score, and when its content last changed, as a decision form carries them:
    exact (repr), so the database can tell whether either changed since the page was made."""
    changed = row.get("content_changed_at")
    changed = "" if changed is None else repr(float(changed))
    return f"{float(row['fraud_probability'])!r}/{float(row['money_at_stake'])!r}/{changed}"


def _parse_seen(raw_review: str | None, raw_score: str | None = None) -> Seen:
    """What the form says the analyst saw. A review id of '' means 'no review yet'; ValueError
    for an id that is not a review id (a whole number from 0 to 2^63 - 1, what the database can
    hold) or a score that is not two finite numbers."""
    review_id = None
    if raw_review is not None and raw_review.strip() not in ("", "none"):
        review_id = int(raw_review)
        if not 0 <= review_id <= db.INT64_MAX:
            raise ValueError(f"{review_id} is not a review id")
    seen = Seen(review_id, (raw_score or "").strip())
    if seen.score and not all(v is None or math.isfinite(v) for v in seen.score_values()):  # or ValueError there
        raise ValueError(f"{seen.score[:40]!r} is not a score")
    return seen


def _expected(raw_review: str | None, raw_score: str | None) -> Seen:
    """_parse_seen, or 400 naming what in the form is not what a page writes."""
    try:
        return _parse_seen(raw_review, raw_score)
    except ValueError as exc:
        abort(400, description=f"the form's last-seen review id or score is not one: {exc}")


def _note_in(form) -> str | None:
    """The form's note, trimmed, each line break one '\n' (browsers count a break as one
    character against maxlength but send it as '\r\n'); None when blank. Never cut: a note
    over NOTE_MAX is refused whole (_note_too_long), not stored short."""
    return (form.get("note") or "").replace("\r\n", "\n").replace("\r", "\n").strip() or None


def _note_too_long(note: str | None) -> bool:
    """True, with a message, for a note over NOTE_MAX characters (the page then keeps it)."""
    if note is None or len(note) <= NOTE_MAX:
        return False
    flash(f"Nothing was saved: the note is {len(note):,} characters long, and notes hold up to "
          f"{NOTE_MAX:,}. Shorten it below and send it again.", "error")
    return True


def _action_and_note(form) -> tuple[str, str | None]:
    """The chosen action and note from a form, validated."""
    action = form.get("action", "")
    if action not in ACTIONS:
        abort(400, description="choose one of: flag as fraud, clear, needs information, add a note")
    note = _note_in(form)
    if action == "note" and not note:
        flash("Write the note first, then press “Add a note”.", "warning")
        return action, None
    return action, note


def _apply_decision(object_ids: list[int], action: str, note: str | None, expected: dict | None):
    """Write a decision through db.add_review, checked against what the analyst saw (``expected``:
    id -> Seen); None when the write failed (the caller renders 'NOT saved', 503)."""
    review_ids = None if expected is None else {i: seen.review_id for i, seen in expected.items()}
    scores = None if expected is None else {i: seen.score_values() for i, seen in expected.items()}
    try:
        return db.add_review(current_app.extensions["db_engine"], object_ids, action, current_user.name,
                             note=note, expected_review_ids=review_ids, expected_scores=scores)
    except DB_ERRORS as exc:
        log.error("decision %s by %s on %s NOT saved: %s", action, current_user.name, object_ids, exc)
        return None


def _not_saved(object_ids, action, note, expected, retry_url, back=None):
    """The page that says plainly the decision was NOT saved, with a form to send it again."""
    return _not_saved_page(object_ids, action, note, expected, retry_url, back, why="database", status=503)


def _not_saved_page(object_ids, action, note, expected, retry_url, back, *, why: str, status: int, by=""):
    """not_saved.html: why a decision was not applied, with its note kept (see the template)."""
    return render_template(
        "not_saved.html", object_ids=object_ids, action=action, note=note or "", expected=expected or {},
        retry_url=retry_url, why=why, by=by, status=status, back_url=back,
    ), status


def _report(result: dict, action: str, expected: dict | None = None) -> None:
    """Flash what was applied and, for each conflict, who decided what in the meantime, naming
    the events by their stored names.

    Flashed messages ride in the session cookie (4 KB at most), so event names, written by the
    organiser and of any length, are cut short: a cookie too large is dropped with every message.
    """
    applied = result.get("applied") or []
    names = {k: _short(v) for k, v in _event_names(
        applied[:1] if len(applied) == 1 else [], result.get("conflicts") or []).items()}
    if applied:
        if len(applied) == 1:
            label = f"“{names[applied[0]]}”" if names.get(applied[0]) else f"event {applied[0]}"
            flash(f"{ACTION_DONE[action]}: {label}.", "success")
        else:
            flash(f"{ACTION_DONE[action]}: {len(applied)} events.", "success")
    conflicts = result.get("conflicts") or []
    for conflict in conflicts[:10]:
        object_id = conflict.get("object_id")
        label = f"“{names[object_id]}” (event {object_id})" if names.get(object_id) else f"event {object_id}"
        # the event's name as a link to it (Markup.format escapes the name; the message is Markup)
        link = Markup('<a href="{}">{}</a>').format(url_for("dashboard.event", object_id=object_id), label)
        seen = (expected or {}).get(object_id)
        if seen is not None and seen.review_id == conflict.get("last_review_id"):  # no one decided: it changed
            before = seen.score_values()
            content_at = conflict.get("content_changed_at")
            how = ("the organiser's event was sent again, or scored again" if not before or len(before) < 3
                   or before[2] == content_at else
                   f"the organiser's event was sent again with other content at {format_datetime(content_at)}")
            now = (f"{conflict.get('risk_tier')} risk, {format_probability(conflict.get('fraud_probability'))} "
                   f"with {format_money(conflict.get('money_at_stake'), 'USD', cents=False)} at stake")
            if before and tuple(before[:2]) == (conflict.get("fraud_probability"), conflict.get("money_at_stake")):
                change = f"Its score did not change: {now}."
            elif before:
                change = (f"It was {format_probability(before[0])} with {format_money(before[1], 'USD', cents=False)} "
                          f"at stake when you opened it; now it is {now}.")
            else:
                change = f"It is now {now}."
            flash(Markup("Not applied to {}: the event changed after you opened it ({}). {} Look at it again, "
                         "then decide.").format(link, how, change), "warning")
            continue
        by, status = conflict.get("by") or "another analyst", conflict.get("current_status")
        when = format_datetime(conflict.get("at"))
        if by == current_user.name and status == action:  # the same decision sent again (a reload)
            flash(Markup("Already saved: you decided “{}” on {} at {}; nothing was added.").format(
                status_label(status), link, when), "info")
            continue
        by = "you (in another tab or window)" if by == current_user.name else by
        flash(Markup("Not applied to {}: {} changed it to “{}” at {}, after you opened it. Read their "
                     "decision, then decide again.").format(link, by, status_label(status), when), "warning")
    if len(conflicts) > 10:
        rest = [str(c.get("object_id")) for c in conflicts[10:]]
        shown = ", ".join(rest[:40]) + (", …" if len(rest) > 40 else "")
        flash(f"…and {len(rest)} more events were not applied: another analyst decided on them, or "
              f"they changed, after you opened them (event {shown}).", "warning")
    missing = result.get("missing") or []
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (", …" if len(missing) > 10 else "")
        flash(f"Not applied to {len(missing)} event{'s' if len(missing) > 1 else ''} that no longer "
              f"exist{'s' if len(missing) == 1 else ''} (event {shown}).", "warning")


def _event_names(applied: list, conflicts: list) -> dict:
    """Stored names of the events a report mentions (at most eleven); none if they cannot be
    read just now: the decision is saved either way, and its message then gives the ids."""
    ids = [*applied, *(c.get("object_id") for c in conflicts[:10])]
    if not ids:
        return {}
    try:
        return db.event_names(current_app.extensions["db_engine"], ids)
    except DB_ERRORS as exc:
        log.warning("event names for a decision's message could not be read: %s", exc)
        return {}


def _short(name, limit: int = 80):
    """A name cut to fit ``limit`` bytes of the session cookie, for a message (None when it
    shows nothing). The cookie's JSON writes a character outside ASCII as a 6-byte escape (12
    for one past U+FFFF), so the budget counts those, not characters: ten cut names of any
    script still fit one cookie with their messages."""
    if not isinstance(name, str) or shows_nothing(name):
        return None
    spent = list(itertools.accumulate(
        1 if char < "\x80" else 6 if char <= "\uffff" else 12 for char in name[:limit + 1]))
    if spent[-1] <= limit:  # the whole name fits (a longer one costs over limit by here)
        return name
    # cut where what is kept leaves room for the "…" (itself written as a 6-byte escape)
    return name[:bisect.bisect_right(spent, limit - 6)] + "…"


@bp.route("/events/<int:object_id>/review", methods=["GET", "POST"])
@login_required
def review(object_id: int):
    """One decision on one event, refused if someone else decided since the analyst looked.
    A GET (the address bar after a refused decision, opened again) shows the event."""
    if request.method == "GET":
        return redirect(url_for("dashboard.event", object_id=object_id))
    if not 0 < object_id <= validation.MAX_OBJECT_ID:
        abort(404, description=f"There is no scored event with id {object_id}.")
    action, note = _action_and_note(request.form)
    back = _safe_next(request.form.get("back"))
    event_url = url_for("dashboard.event", object_id=object_id, back=back)
    if action == "note" and note is None:
        return redirect(event_url)
    if _note_too_long(note):  # the analyst stays on the event: still open by them
        return _event_page(object_id, back, note=note, opening=True), 400
    # A note changes nobody's decision, so it is never a conflict; decisions are checked.
    expected = None if action == "note" else {
        object_id: _expected(request.form.get("expected_review_id"), request.form.get("expected_score"))}
    result = _apply_decision([object_id], action, note, expected)
    if result is None:
        return _not_saved([object_id], action, note, expected,
                          url_for("dashboard.review", object_id=object_id), back)
    if not result.get("applied") and not result.get("conflicts"):
        abort(404, description=f"There is no scored event with id {object_id}.")
    _report(result, action, expected)
    if result.get("conflicts") and note:  # not applied: show the page again with the note kept
        return _event_page(object_id, back, note=note, opening=True), 409
    return redirect(event_url)


@bp.route("/reviews/bulk", methods=["GET", "POST"])
@login_required
def bulk_review():
    """One decision on the events ticked in the queue; each checked against what the analyst saw.
    A GET (the address bar after a refused decision, opened again) shows the queue."""
    if request.method == "GET":
        return redirect(url_for("dashboard.queue"))
    back = _safe_next(request.form.get("next")) or url_for("dashboard.queue")
    try:
        object_ids = sorted({int(v) for v in request.form.getlist("object_id")})
    except ValueError:
        abort(400, description="the selection holds an event id that is not a number")
    if any(not 0 < i <= validation.MAX_OBJECT_ID for i in object_ids):
        abort(400, description="the selection holds a number that is not an event id")
    if not object_ids:
        flash("Tick at least one event first.", "warning")
        return redirect(back)
    action, note = _action_and_note(request.form)
    if action == "note" and note is None:
        return redirect(back)
    if _note_too_long(note):
        return _queue_page(_url_args(back), note=note, selected=object_ids), 400
    expected = None if action == "note" else {
        i: _expected(request.form.get(f"seen_{i}"), request.form.get(f"score_seen_{i}")) for i in object_ids}
    result = _apply_decision(object_ids, action, note, expected)
    if result is None:
        return _not_saved(object_ids, action, note, expected, url_for("dashboard.bulk_review"), back)
    _report(result, action, expected)
    if result.get("conflicts") and note:  # some not applied: the queue again, the note kept, those ticked
        return _queue_page(_url_args(back), note=note,
                           selected=[c["object_id"] for c in result["conflicts"]]), 409
    return redirect(back)


# --------------------------------------------------------------------------- charts


@bp.route("/charts")
@login_required
def charts():
    """Charts page; the charts themselves are drawn by static/charts.js from the JSON endpoints."""
    model = current_app.extensions["fraud_model"]
    return render_template("charts.html", active_page="charts", thresholds=model.thresholds,
                           model_version=model.version,
                           refresh=current_app.config["DASHBOARD_REFRESH_SECONDS"])


def _thresholds() -> dict:
    model = current_app.extensions["fraud_model"]
    return {"medium": float(model.thresholds["medium"]), "high": float(model.thresholds["high"])}


def _jsonable(value):
    """Dates and datetimes as ISO strings for the JSON endpoints."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _rows(items) -> list[dict]:
    return [{k: _jsonable(v) for k, v in dict(item).items()} for item in items]


@bp.route("/api/charts/scored-over-time")
@login_required
def api_scored_over_time():
    """Events scored per day and tier (live chart)."""
    days = _int_arg(request.args, "days", 30, 1, 365)
    rows = db.scored_over_time(current_app.extensions["db_engine"], days=days)
    return jsonify({"days": days, "tiers": list(TIERS), "rows": _rows(rows)})


@bp.route("/api/charts/probabilities")
@login_required
def api_probabilities():
    """Histogram of fraud probabilities, with the tier thresholds to mark on it."""
    bins = _int_arg(request.args, "bins", 20, 5, 100)
    rows = db.probability_histogram(current_app.extensions["db_engine"], bins=bins)
    return jsonify({"bins": _rows(rows), "thresholds": _thresholds()})


@bp.route("/api/charts/money")
@login_required
def api_money():
    """Money at stake by tier and review status."""
    rows = db.money_by_tier_status(current_app.extensions["db_engine"])
    return jsonify({"rows": _rows(rows), "tiers": list(TIERS),
                    "statuses": ["unreviewed", "flagged_fraud", "needs_info", "cleared"]})


@bp.route("/api/charts/status-over-time")
@login_required
def api_status_over_time():
    """Review decisions per day and status (live chart)."""
    days = _int_arg(request.args, "days", 30, 1, 365)
    rows = db.status_over_time(current_app.extensions["db_engine"], days=days)
    return jsonify({"days": days, "rows": _rows(rows)})


@bp.route("/api/charts/labelled")
@login_required
def api_labelled():
    """Labelled test-split points (probability, money, fraud) for the client-side what-if view."""
    points = [{"p": float(p), "money": float(money or 0), "fraud": dataset.is_fraud(acct)}
              for p, money, acct in db.labelled_scores(current_app.extensions["db_engine"])]
    return jsonify({
        "points": points, "count": len(points), "fraud_count": sum(pt["fraud"] for pt in points),
        "thresholds": _thresholds(), "load_command": "flask --app app load-test-set",
    })


@bp.route("/api/queue/rows")
@login_required
def api_queue_rows():
    """What may have changed in the listed events (``ids``, comma-separated, at most
    MAX_PER_PAGE) since the queue was loaded, as the queue writes it; refreshed with the counts:
    {object_id: {"status": key, "status_label": text, "open_by": "open by bob (just now)" or "",
    "changed_since": "Flagged as fraud by alice; the event changed since" or ""}}."""
    ids = [int(part) for part in request.args.get("ids", "").split(",")[:db.MAX_PER_PAGE]
           if part.strip().isascii() and part.strip().isdigit() and 0 < int(part) <= validation.MAX_OBJECT_ID]
    states = db.review_states(current_app.extensions["db_engine"], ids)
    opens, undone = open_by_others(list(states)), decisions_undone(list(states.values()))
    return jsonify({str(object_id): {"status": state["review_status"],
                                     "status_label": status_label(state["review_status"]),
                                     "open_by": format_open_by(opens[object_id]) if object_id in opens else "",
                                     "changed_since": undone.get(object_id, "")}
                    for object_id, state in states.items()})


@bp.route("/api/queue/summary")
@login_required
def api_queue_summary():
    """Tier counts and money for the queue's live cards, with the queue's filters."""
    summary = db.tier_summary(current_app.extensions["db_engine"], queue_filters(request.args))
    return jsonify({tier: {k: _jsonable(v) for k, v in summary.get(tier, {}).items()} for tier in TIERS})


# --------------------------------------------------------------------------- command line


# The new password of an account command: read from ANALYST_PASSWORD, else asked twice (hidden)
# once the command has checked what it can (_password_hash), so no one types it for nothing.
_PASSWORD_OPTION = click.option("--password", envvar="ANALYST_PASSWORD", default=None,
                                help="asked twice when not given; or set ANALYST_PASSWORD")


@click.command("create-analyst")
@click.argument("name")
@_PASSWORD_OPTION
@with_appcontext
def create_analyst_command(name: str, password: str):
    """Create a dashboard account; the password is stored only as a scrypt hash."""
    if not NAME_PATTERN.match(name):
        raise click.BadParameter("use 1-64 letters, digits, '.', '_', '@' or '-'", param_hint="NAME")
    engine = current_app.extensions["db_engine"]
    taken = click.ClickException(f"an analyst named {name!r} already exists (names ignore case)")
    if db.get_analyst(engine, name) is not None:  # said before the password is asked for
        raise taken
    try:  # the name may be taken in another mix of capitals (names ignore case), or meanwhile
        db.create_analyst(engine, name, _password_hash(password))
    except ValueError:
        raise taken from None
    click.echo(f"analyst {name} created")


def _password_hash(password: str | None) -> str:
    """The scrypt hash of an acceptable new password, asked twice when not given (click's usage
    error for one too short)."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.BadParameter(f"use at least {MIN_PASSWORD} characters", param_hint="password")
    return generate_password_hash(password, method="scrypt")


def _existing_analyst(name: str) -> dict:
    """The analyst an account command names (as sign-in finds one), or a clear error."""
    found = db.get_analyst(current_app.extensions["db_engine"], name)
    if found is None:
        raise click.ClickException(f"no analyst named {name!r} (see: flask --app app list-analysts)")
    return found


def _update_analyst(name: str, done: str, **change) -> None:
    """Apply one account change and say so; a clear error when no analyst has the name."""
    try:
        stored = db.update_analyst(current_app.extensions["db_engine"], name, **change)
    except ValueError as exc:
        raise click.ClickException(f"{exc} (see: flask --app app list-analysts)") from None
    click.echo(f"analyst {stored} {done}")


@click.command("set-password")
@click.argument("name")
@_PASSWORD_OPTION
@with_appcontext
def set_password_command(name: str, password: str):
    """Give an analyst a new password; their signed-in sessions end at their next click."""
    _existing_analyst(name)  # before the password is asked for
    _update_analyst(name, "has a new password; their signed-in sessions have ended",
                    password_hash=_password_hash(password))


@click.command("disable-analyst")
@click.argument("name")
@with_appcontext
def disable_analyst_command(name: str):
    """Stop an analyst signing in (someone who left); their sessions end, their decisions stay."""
    found = _existing_analyst(name)
    if found["disabled_at"] is not None:
        click.echo(f"analyst {found['name']} was already disabled ({format_datetime(found['disabled_at'])})")
        return
    _update_analyst(name, "disabled: cannot sign in; their signed-in sessions have ended", disabled=True)


@click.command("enable-analyst")
@click.argument("name")
@_PASSWORD_OPTION
@with_appcontext
def enable_analyst_command(name: str, password: str):
    """Let a disabled analyst sign in again, with a new password: a session from before the
    account was disabled stays ended."""
    if _existing_analyst(name)["disabled_at"] is None:
        raise click.ClickException(f"analyst {name!r} is not disabled: nothing changed (a new "
                                   "password: flask --app app set-password NAME)")
    _update_analyst(name, "enabled: can sign in again with the new password",
                    password_hash=_password_hash(password), disabled=False)


@click.command("list-analysts")
@with_appcontext
def list_analysts_command():
    """Every dashboard account, with when it was made and whether it is disabled."""
    analysts = db.list_analysts(current_app.extensions["db_engine"])
    if analysts:
        click.echo("name\tcreated\tstate")
    for row in analysts:
        state = "enabled" if row["disabled_at"] is None else f"disabled {format_datetime(row['disabled_at'])}"
        click.echo(f"{row['name']}\t{format_datetime(row['created_at'])}\t{state}")
    if not analysts:
        click.echo("no analysts yet (flask --app app create-analyst NAME)")


def labelled_records(data_path: str | None, n: int, seed: int, synthetic: bool = False) -> tuple[list[dict], str]:
    """Labelled records to split: the given file, else data/data.zip when present, else synthetic."""
    from pathlib import Path

    path = Path(data_path) if data_path else dataset.DEFAULT_DATA_PATH
    if not synthetic and (data_path or path.exists()):
        return dataset.load_labelled(path), str(path)
    import synth

    return synth.generate_events(n, seed), f"synthetic data (n={n}, seed={seed})"


def synthetic_origin(metadata: dict) -> tuple[int, int]:
    """(n, seed) of the synthetic data a model was trained on, so its own test split is held out."""
    source = str((metadata or {}).get("training_data", {}).get("source", ""))
    match = re.search(r"generate_events\((\d+), seed=(\d+)\)", source)
    return (int(match.group(1)), int(match.group(2))) if match else (14337, 0)


def load_test_set(engine, model, records: list[dict], test_fraction: float = 0.2,
                  batch_size: int = 2000) -> int:
    """Score the held-out (latest) split and store it with source 'test_set', acct_type kept."""
    import predict

    _, test = dataset.time_split(records, test_fraction)
    for start in range(0, len(test), batch_size):
        chunk = test[start:start + batch_size]
        db.save_scores(engine, list(zip(chunk, predict.score_records(model, chunk))), source="test_set")
    db.settle_after_bulk_load(engine)
    return len(test)


@click.command("load-test-set")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="labelled data (.zip/.json/.jsonl); default data/data.zip when present, else synthetic")
@click.option("--synthetic", is_flag=True, help="use generated data even when data/data.zip exists")
@click.option("--n", type=int, default=None, help="synthetic events (default: as the model was trained, else 14337)")
@click.option("--seed", type=int, default=None, help="synthetic seed (default: the model's training seed, else 0)")
@click.option("--test-fraction", default=0.2, show_default=True, help="latest share held out")
@with_appcontext
def load_test_set_command(data_path, synthetic: bool, n: int, seed: int, test_fraction: float):
    """Score the held-out test split into the database, keeping acct_type for the what-if chart."""
    trained_n, trained_seed = synthetic_origin(current_app.extensions["fraud_model"].metadata)
    n = trained_n if n is None else n
    seed = trained_seed if seed is None else seed
    records, source = labelled_records(data_path, n, seed, synthetic)
    engine = current_app.extensions["db_engine"]
    db.init_db(engine)
    count = load_test_set(engine, current_app.extensions["fraud_model"], records, test_fraction)
    click.echo(f"stored {count} test-split events from {source} (DEMO_MODE=1 shows them without storing new events)")
