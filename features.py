"""Features: every number the model sees, derived from one raw event record.

``EventFeaturizer`` is a scikit-learn transformer over a *list of raw dicts* in any of the shapes
the project meets (44 keys with the label, 43 live, 38 later feed, 36 older examples). Missing
keys, ``None``, ``NaN``, ``""`` and values of the wrong type never raise: whatever cannot be
parsed is treated as missing. It sits first in the one pickled Pipeline, so training and serving
featurize identically.

Fields the model may not use by default (``LEAKY_FIELDS``) are known only after tickets sell or
the event ends; ``include_leaky=True`` switches them on only to measure what they would add.

Text (description and name) becomes two numbers: the log-odds of a small TF-IDF logistic model.
During ``fit_transform`` on training data those numbers are out-of-fold predictions, so a row
never sees its own label; at ``transform`` time the model fitted on all training rows is used,
scored with plain dict lookups so that one record stays well under a millisecond.
"""
from __future__ import annotations

import html
import math
import re
import time
from collections import Counter
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

import exchange

DAY = 86400.0
HOUR = 3600.0
# Longest HTML read from a description (characters); longer ones are cut before stripping so
# a hostile 10 MB description costs no more than a normal one.
MAX_HTML_CHARS = 20_000
# Longest stripped text handed to the text model (characters).
MAX_TEXT_CHARS = 4_000
# Hostile numbers (1e308 prices, timestamps in the year 10^300) must not overflow: money at stake
# is capped far above any real event (so sums over events stay finite in both databases), every
# feature is kept inside +-MAX_FEATURE (an infinity breaks the model; NaN still means missing),
# and payout dates are compared only against a cut-off that is a real calendar date.
MAX_MONEY = 1e12
MAX_FEATURE = 1e15
LAST_TIMESTAMP = 253402300799.0  # 9999-12-31 23:59:59 UTC

# Known only after tickets sell, after the event, or not in every live feed: off by default.
LEAKY_FIELDS = ("approx_payout_date", "gts", "num_order", "num_payouts", "quantity_sold")
LEAKY_REASONS = {
    "approx_payout_date": "event end + 5 days: known only once the event is over",
    "gts": "gross ticket sales so far: grows after the event goes live (0 for a quarter of fraud)",
    "num_order": "orders so far: grows after the event goes live",
    "num_payouts": (
        "said to be the user's payouts before the event, but it cannot be checked against dated "
        "entries, previous_payouts is the history at extraction time, and the 38-key live feed "
        "drops it; the dated count of previous_payouts replaces it"
    ),
    "quantity_sold": "tickets sold per tier: known only after sales",
    "previous_payouts after the event": "payout entries dated after the event was created",
}
# Fields read but not used as model inputs, and why.
UNUSED_FIELDS = {
    "acct_type": "the label",
    "object_id": "an identifier; grows with time",
    "sequence_number": "a feed counter (38-key feed only)",
    "sale_duration2": "days from creation to start, recomputed from the timestamps; absent in the 38-key feed",
    "user_created": "only through user_age",
    "venue_latitude/venue_longitude": "only as 'missing' and '(0, 0)' flags: raw coordinates would memorise places",
    "venue_address/venue_name/venue_state": "only as a 'no venue' flag",
}

FREEMAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.ca", "yahoo.com.au",
    "ymail.com", "rocketmail.com", "hotmail.com", "hotmail.co.uk", "hotmail.ca", "hotmail.fr",
    "live.com", "live.co.uk", "live.ca", "msn.com", "outlook.com", "aol.com", "me.com",
    "mac.com", "icloud.com", "mail.com", "gmx.com", "gmx.de", "inbox.com", "zoho.com",
    "protonmail.com", "yandex.com", "mail.ru", "comcast.net", "btinternet.com", "sbcglobal.net",
    "att.net", "verizon.net", "bigpond.com", "shaw.ca", "rogers.com", "sky.com", "web.de",
})

# Fields counted by the "fields missing" feature: present as keys in every live shape (the
# 38-key feed drops `listed`, the 36-key examples also `has_header`), so the count means the
# same for a 36-key example and a 44-key training record.
MISSING_COUNT_FIELDS = (
    "body_length", "channels", "country", "currency", "delivery_method", "description",
    "email_domain", "event_created", "event_end", "event_published", "event_start",
    "fb_published", "has_analytics", "has_logo", "name",
    "org_desc", "org_facebook", "org_name", "org_twitter", "payee_name", "payout_type",
    "sale_duration", "show_map", "user_age", "user_type", "venue_address", "venue_country",
    "venue_latitude", "venue_longitude", "venue_name", "venue_state",
)

# Categorical fields, one-hot encoded over their frequent training levels + other + missing.
# `listed` is not among them: it is a y/n flag that the later feeds drop, so it is one column
# (1/0, NaN when absent) and an absent key looks "unknown" to the trees, not "not listed".
CATEGORICAL_FIELDS = ("currency", "country", "payout_type", "user_type", "channels",
                      "delivery_method")

# Script and style blocks are dropped as re.sub(r"<(script|style)\b[^>]*>.*?</\1\s*>", " ", ...)
# with IGNORECASE and DOTALL would drop them, but in linear time (see _drop_scripts). The names
# ignore case in ASCII only, as browsers read them: IGNORECASE would also take '<ſcript>' (long s)
# and '<scrıpt>' (dotless i). \b and \s stay Unicode, as in that expression.
_BLOCK_NAMES = r"([sS][cC][rR][iI][pP][tT]|[sS][tT][yY][lL][eE])"
_SCRIPT_OPEN_RE = re.compile(rf"<{_BLOCK_NAMES}\b")
_SCRIPT_CLOSE_RE = re.compile(rf"</{_BLOCK_NAMES}\s*>")
_TAG_RE = re.compile(r"<[^>]*>")
_ANCHOR_RE = re.compile(r"<a\s", re.IGNORECASE)
# Letters as bytes: counting capitals with bytes.translate runs in C, not one regex match per letter.
_UPPER_BYTES = bytes(range(ord("A"), ord("Z") + 1))
_LETTER_BYTES = _UPPER_BYTES + bytes(range(ord("a"), ord("z") + 1))
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SMALL_INT = 1 << 62  # integers a remembered value may be (JSON allows 10**400)
# bytes.translate table keeping a-z and turning every other byte into a space (see raw_words).
_LETTERS_ONLY = bytes(b if ord("a") <= b <= ord("z") else ord(" ") for b in range(256))


# ---------------------------------------------------------------- tolerant value parsing

def to_float(value) -> float:
    """A float from a number or numeric string; NaN for anything missing or unparseable."""
    if type(value) is float:  # the common case first: a plain finite float is returned as is
        return value if value - value == 0.0 else math.nan  # inf - inf and NaN - NaN are NaN
    if isinstance(value, (int, float)):  # bool is an int: True -> 1.0
        try:
            number = float(value)
        except OverflowError:  # an int past the float range (JSON allows 10**400): unusable
            return math.nan
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return math.nan
    elif isinstance(value, np.generic):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return math.nan
    else:
        return math.nan
    return number if math.isfinite(number) else math.nan


def to_text(value) -> str:
    """A string from a string (numbers become their text); '' for missing or other types."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    return ""


def _missing(value) -> bool:
    """True for None, NaN and '' (the same rule as dataset.is_missing, kept local for speed)."""
    return value is None or value == "" or (isinstance(value, float) and value != value)


def _count_missing(values: list) -> float:
    """How many values are missing by ``_missing``'s rule, without a call per value (NaN is the
    one value not equal to itself)."""
    return float(values.count(None) + values.count("") + len([v for v in values if v != v]))


def _as_list(value) -> list:
    """A list of dicts from a list-ish field; anything else is an empty list."""
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, dict)]
    return []


def strip_html(text: str) -> str:
    """Visible text of untrusted HTML (tags and scripts removed, entities decoded) for features."""
    text = _drop_tags(_drop_scripts(text[:MAX_HTML_CHARS]))
    # split/join collapses whitespace exactly as re's \s+ does (both use str.isspace), 4x faster
    return " ".join(html.unescape(text).split())


def _drop_tags(text: str) -> str:
    """Each tag replaced by a space, as _TAG_RE.sub(" ", text), in linear time: only text up to
    the last '>' can hold a tag, and the expression alone would scan from every '<' to the end
    of a text with no '>' after it (20,000 '<' took 0.1 s)."""
    end = text.rfind(">") + 1
    return _TAG_RE.sub(" ", text[:end]) + text[end:]


def _drop_scripts(text: str) -> str:
    """Each script or style block (from its opening tag to the first closing tag of the same
    name after it, case ignored) replaced by a space, as the regular expression above would.

    The expression alone takes time in the square of the length: from every opening tag it
    looks to the end of the text for a closing tag that is not there (2,500 '<script>' took
    0.15 s). Here an opening tag with no closing tag after it is skipped at once, and each
    stretch of text is read a bounded number of times.
    """
    last_close = {"script": -1, "style": -1}  # where the last closing tag of each name starts
    for closing in _SCRIPT_CLOSE_RE.finditer(text):  # closing tags cannot overlap: all are found
        last_close[closing.group(1).lower()] = closing.start()
    if last_close["script"] < 0 and last_close["style"] < 0:
        return text
    parts, kept_from, pos, tag_end = [], 0, 0, -1
    while (opening := _SCRIPT_OPEN_RE.search(text, pos)) is not None:
        if tag_end < opening.end():  # else the '>' found for an earlier tag ends this one too
            tag_end = text.find(">", opening.end())
            if tag_end < 0:  # no later opening tag ends either
                break
        name = opening.group(1).lower()
        if last_close[name] <= tag_end:  # no closing tag after this one: not a block
            pos = opening.end()
            continue
        closing = _SCRIPT_CLOSE_RE.search(text, tag_end + 1)  # found: last_close[name] is after
        while closing.group(1).lower() != name:  # a closing tag of the other name: not this block's
            closing = _SCRIPT_CLOSE_RE.search(text, closing.end())
        parts += (text[kept_from:opening.start()], " ")
        kept_from = pos = closing.end()
    return "".join(parts) + text[kept_from:] if parts else text


def description_text(record: dict) -> str:
    """The visible text of a record's description (computed once per record)."""
    return strip_html(to_text(record.get("description")))


def caps_share(text: str) -> float:
    """Share of letters that are capitals in the first MAX_TEXT_CHARS (NaN without letters)."""
    data = text[:MAX_TEXT_CHARS].encode("ascii", "ignore")  # only A-Z and a-z count as letters
    letters = len(data) - len(data.translate(None, _LETTER_BYTES))
    return (len(data) - len(data.translate(None, _UPPER_BYTES))) / letters if letters else math.nan


def _links(html_text: str, visible_text: str) -> float:
    """Links in a description: anchor tags, or bare URLs in the visible text if more."""
    anchors = len(_ANCHOR_RE.findall(html_text[:MAX_HTML_CHARS]))
    # Substring counts of the ASCII-lowered bytes: a case-insensitive regex was 20x slower, and
    # str.lower() 3x slower than bytes.lower(); no other character lowers into these ASCII words.
    lowered = visible_text.encode("ascii", "replace").lower()
    urls = lowered.count(b"http://") + lowered.count(b"https://") + lowered.count(b"www.")
    return float(max(anchors, urls))


@lru_cache(maxsize=1)
def _stemmer():
    """The English Snowball stemmer, built on first use."""
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball stem of one lower-case word, cached: the same words recur in every record."""
    return _stemmer().stemWord(word)


def raw_words(text: str) -> list[bytes]:
    """Runs of ASCII letters a-z in the lower-cased first MAX_TEXT_CHARS, as bytes, one-letter
    runs included: what ``re.findall("[a-z]{2,}", ...)`` finds, plus single letters, in C.

    Other characters (non-ASCII ones become '?') turn into spaces, then ``split`` cuts the runs:
    four C passes, six times faster than ``findall``. Callers drop or ignore one-letter runs.
    """
    return text[:MAX_TEXT_CHARS].lower().encode("ascii", "replace").translate(_LETTERS_ONLY).split()


def tokens(text: str, use_stem: bool = True) -> list[str]:
    """Lower-case word tokens (optionally stemmed) of already-stripped text: runs of two or more
    letters a-z in its lower-cased first MAX_TEXT_CHARS."""
    words = [w.decode("ascii") for w in raw_words(text) if len(w) > 1]
    return [stem(w) for w in words] if use_stem else words


# ---------------------------------------------------------------- record-level helpers

def money_at_stake(record: dict) -> float:
    """Money a fraudster could collect: sum of cost * quantity_total over tiers (0 when unknown)."""
    total = 0.0
    for tier in _as_list(record.get("ticket_types") if isinstance(record, dict) else None):
        cost, quantity = to_float(tier.get("cost")), to_float(tier.get("quantity_total"))
        if cost > 0 and quantity > 0:  # NaN compares False
            total += cost * quantity
    return min(total, MAX_MONEY)


def _cutoff(record: dict) -> float:
    """When the event became known: created, else published, else start (NaN if none)."""
    for key in ("event_created", "event_published", "event_start"):
        value = to_float(record.get(key))
        if value > 0:
            return value
    return math.nan


def _payout_date(created) -> str | None:
    """A payout's 'YYYY-MM-DD HH:MM:SS' date as comparable text; None when malformed."""
    if isinstance(created, str) and _DATE_RE.match(created):
        return created[:19]
    return None


def _timestamp(date_text: str) -> float:
    """Unix seconds of a payout date text (taken as UTC); NaN when unparseable."""
    for width in (19, 10):  # the date and time, else the date alone
        try:  # fromisoformat runs in C; strptime took 15 us a call
            return datetime.fromisoformat(date_text[:width]).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return math.nan


def payout_history(record: dict) -> dict:
    """Payouts dated before the event (count, total, days since last) and after it (leaky).

    Dates are compared as text against the cut-off's own text (both 'YYYY-MM-DD HH:MM:SS'),
    so only the latest earlier payout is parsed: legit users can have hundreds of entries.
    """
    cutoff = _cutoff(record)
    entries = _as_list(record.get("previous_payouts"))
    if not cutoff <= LAST_TIMESTAMP:  # NaN, or no calendar date (gmtime would overflow)
        nan = math.nan
        return {"prior_count": nan, "prior_total": nan, "days_since_last": nan,
                "later_count": float(len(entries)), "later_total": nan}
    cutoff_text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(cutoff))
    prior_count = later_count = 0
    prior_total = later_total = 0.0
    last = None
    for entry in entries:
        when = _payout_date(entry.get("created"))
        amount = to_float(entry.get("amount"))
        amount = amount if amount == amount else 0.0
        if when is not None and when < cutoff_text:
            prior_count += 1
            prior_total += amount
            last = when if last is None or when > last else last
        else:  # undated entries count as later: an unknown date is not evidence of history
            later_count += 1
            later_total += amount
    return {
        "prior_count": float(prior_count),
        "prior_total": prior_total,
        "days_since_last": (cutoff - _timestamp(last)) / DAY if last else math.nan,
        "later_count": float(later_count),
        "later_total": later_total,
    }


def _days_between(record: dict, start_key: str, end_key: str, unit: float = DAY) -> float:
    """(end - start) in days (or another unit); NaN unless both are positive timestamps."""
    start, end = to_float(record.get(start_key)), to_float(record.get(end_key))
    if start > 0 and end > 0:
        return (end - start) / unit
    return math.nan


def _code(value) -> str | None:
    """A categorical code as text: numbers as integers ('8', not '8.0'), strings stripped."""
    if isinstance(value, str):
        value = value.strip()
        number = to_float(value)
        if value and math.isnan(number):
            return value.upper()
        value = number
    number = to_float(value)
    if math.isnan(number):
        return None
    return str(int(number)) if number == int(number) else str(number)


def _yes_no(value) -> float:
    """1 for 'y'/'yes'/true, 0 for 'n'/'no'/false, NaN for anything else."""
    if isinstance(value, str):
        return {"y": 1.0, "yes": 1.0, "n": 0.0, "no": 0.0}.get(value.strip().lower(), math.nan)
    number = to_float(value)
    return number if number in (0.0, 1.0) else math.nan


def email_domain(record: dict) -> str | None:
    """The lower-case email domain (text after an '@' if a whole address slipped in)."""
    domain = to_text(record.get("email_domain")).strip().lower()
    return domain.rsplit("@", 1)[-1] or None


def _ticket_stats(record: dict) -> dict:
    """Ticket tiers: count, price min/max/mean, capacity, money at stake, tickets sold (leaky)."""
    tiers = _as_list(record.get("ticket_types"))
    costs = [c for c in (to_float(t.get("cost")) for t in tiers) if c == c]
    quantities = [q for q in (to_float(t.get("quantity_total")) for t in tiers) if q == q]
    sold = [s for s in (to_float(t.get("quantity_sold")) for t in tiers) if s == s]
    capacity = sum(quantities) if quantities else math.nan
    sold_total = sum(sold) if sold else math.nan
    return {
        "n_tiers": float(len(tiers)),
        "price_min": min(costs) if costs else math.nan,
        "price_max": max(costs) if costs else math.nan,
        "price_mean": sum(costs) / len(costs) if costs else math.nan,
        "capacity": capacity,
        "money": money_at_stake(record),
        "sold": sold_total,
        "share_sold": sold_total / capacity if capacity and capacity > 0 and sold else math.nan,
    }


# ---------------------------------------------------------------- the feature table

# Plain-language description of every column the featurizer can emit.
FEATURE_DESCRIPTIONS = {
    "user_age": "days from the organiser's account creation to the event's creation",
    "days_created_to_start": "days from the event's creation to its start",
    "days_published_to_start": "days from publishing to the event's start",
    "sale_duration": "the site's sale duration in days (publish to start)",
    "event_length_hours": "hours from the event's start to its end",
    "body_length": "length of the description (characters of HTML)",
    "desc_text_length": "length of the description's visible text",
    "desc_caps_share": "share of capital letters in the description",
    "desc_links": "number of links in the description",
    "name_length": "length of the event name",
    "name_caps_share": "share of capital letters in the event name",
    "name_words": "number of words in the event name",
    "org_desc_length": "length of the organiser description's visible text",
    "org_name_empty": "the organiser name is empty",
    "payee_name_empty": "the payee name is empty",
    "fb_published": "the event is published on Facebook",
    "has_analytics": "the event page has analytics",
    "has_logo": "the event has a logo",
    "has_header": "the event page has a header image",
    "show_map": "the event page shows a map",
    "listed": "the event is listed publicly (y/n)",
    "org_facebook": "the organiser's Facebook count",
    "org_twitter": "the organiser's Twitter count",
    "venue_missing": "no venue name or address",
    "venue_zero_coords": "venue coordinates are (0, 0)",
    "country_venue_mismatch": "the organiser's country differs from the venue's country",
    "n_missing": "how many of the usual fields are missing",
    "n_tiers": "number of ticket tiers",
    "price_min": "cheapest ticket price",
    "price_max": "dearest ticket price",
    "price_mean": "mean ticket price over tiers",
    "capacity_total": "tickets on offer over all tiers",
    "money_at_stake": "sum of price x quantity over ticket tiers",
    "prior_payouts_count": "the user's payouts dated before the event",
    "prior_payouts_total": "money paid out to the user before the event",
    "days_since_last_payout": "days from the user's last earlier payout to the event",
    "email_freemail": "the email domain is a free-mail provider",
    "email_known": "the email domain is a non-free-mail domain other organisers also use",
    "email_other": "the email domain is rare or unseen in training",
    "email_missing": "no email domain",
    "text_description_score": "how fraud-like the description's wording is (text model log-odds)",
    "text_name_score": "how fraud-like the event name's wording is (text model log-odds)",
    "leaky_gts": "LEAKY: gross ticket sales so far",
    "leaky_num_order": "LEAKY: orders so far",
    "leaky_num_payouts": "LEAKY: the num_payouts field",
    "leaky_tickets_sold": "LEAKY: tickets sold over all tiers",
    "leaky_share_sold": "LEAKY: share of tickets sold",
    "leaky_later_payouts_count": "LEAKY: payouts dated after the event was created",
    "leaky_later_payouts_total": "LEAKY: money paid out after the event was created",
    "leaky_days_to_payout": "LEAKY: days from creation to the approximate payout date",
}
_CATEGORY_DESCRIPTIONS = {
    "currency": "currency", "country": "organiser country", "payout_type": "payout method",
    "user_type": "user type code", "channels": "sales channel code",
    "delivery_method": "ticket delivery method",
}

# Columns that move together in explanations (occlusion replaces a whole group at once).
_GROUP_COLUMNS = {
    "user_age": ("user_age",),
    "prior_payouts": ("prior_payouts_count", "prior_payouts_total", "days_since_last_payout"),
    "days_created_to_start": ("days_created_to_start",),
    "days_published_to_start": ("days_published_to_start",),
    "sale_duration": ("sale_duration",),
    "event_length": ("event_length_hours",),
    "description_length": ("body_length", "desc_text_length"),
    "description_style": ("desc_caps_share", "desc_links"),
    "description_text": ("text_description_score",),
    "name_text": ("text_name_score",),
    "name_style": ("name_length", "name_caps_share", "name_words"),
    "org_desc": ("org_desc_length",),
    "org_name": ("org_name_empty",),
    "payee_name": ("payee_name_empty",),
    "org_facebook": ("org_facebook",),
    "org_twitter": ("org_twitter",),
    "fb_published": ("fb_published",),
    "has_analytics": ("has_analytics",),
    "has_logo": ("has_logo",),
    "has_header": ("has_header",),
    "show_map": ("show_map",),
    "listed": ("listed",),
    "venue": ("venue_missing", "venue_zero_coords"),
    "country_mismatch": ("country_venue_mismatch",),
    "n_missing": ("n_missing",),
    "ticket_tiers": ("n_tiers",),
    "ticket_prices": ("price_min", "price_max", "price_mean"),
    "capacity": ("capacity_total",),
    "money_at_stake": ("money_at_stake",),
    "email": ("email_freemail", "email_known", "email_other", "email_missing"),
    "leaky_gts": ("leaky_gts",),
    "leaky_num_order": ("leaky_num_order",),
    "leaky_num_payouts": ("leaky_num_payouts",),
    "leaky_sales": ("leaky_tickets_sold", "leaky_share_sold"),
    "leaky_later_payouts": ("leaky_later_payouts_count", "leaky_later_payouts_total"),
    "leaky_days_to_payout": ("leaky_days_to_payout",),
}


def describe_feature(name: str) -> str:
    """Plain-language meaning of one feature column (one-hot columns included)."""
    if name in FEATURE_DESCRIPTIONS:
        return FEATURE_DESCRIPTIONS[name]
    field, _, level = name.partition("=")
    if field in _CATEGORY_DESCRIPTIONS:
        return f"{_CATEGORY_DESCRIPTIONS[field]} is {level}"
    return name


def group_of(column: str) -> str:
    """The explanation group a feature column belongs to."""
    field = column.partition("=")[0]
    if field in CATEGORICAL_FIELDS:
        return field
    for group, columns in _GROUP_COLUMNS.items():
        if column in columns:
            return group
    return column


# ---------------------------------------------------------------- text model

def _identity(tokens_):
    """Analyzer for already-tokenized documents (module level so it pickles)."""
    return tokens_


class TextScorer:
    """TF-IDF + logistic regression reduced to dicts: log-odds of fraud-like wording, fast."""

    def __init__(self, vectorizer: TfidfVectorizer, classifier: LogisticRegression):
        self.vocabulary = {token: int(i) for token, i in vectorizer.vocabulary_.items()}
        self.idf = vectorizer.idf_.astype(float).tolist()
        self.coef = classifier.coef_[0].astype(float).tolist()
        self.intercept = float(classifier.intercept_[0])
        self.sublinear = bool(vectorizer.sublinear_tf)

    # Raw words remembered per process (word -> vocabulary index, -1 if none). Caps on their
    # number and length keep a stream of hostile made-up words from growing it without end
    # (at most about 8 MB of words); a longer word is looked up each time it comes.
    MAX_REMEMBERED_WORDS = 200_000
    MAX_REMEMBERED_WORD_LENGTH = 40

    def __getstate__(self):
        """Pickle without the per-process word cache."""
        state = dict(self.__dict__)
        state.pop("_word_index", None)
        return state

    def score(self, doc_tokens: list[str]) -> float:
        """Log-odds for one tokenized document (same number sklearn's pipeline would give)."""
        counts = Counter(i for i in map(self.vocabulary.get, doc_tokens) if i is not None)
        return self._log_odds(counts)

    def score_text(self, text: str, use_stem: bool = True) -> float:
        """``score(tokens(text, use_stem))``, the same number, three times as fast.

        Each raw word is mapped to its vocabulary index through a per-process cache (raw word
        -> index, -1 for none and for one-letter runs), so the words are counted by index in
        C and only a word never seen before is stemmed and looked up. Indices come out in
        first-seen order with the same counts as ``score`` builds, so the sum is the same.
        """
        cache = self.__dict__.get("_word_index")
        if cache is None:  # one-letter runs are not words (a word has two letters or more)
            cache = self.__dict__["_word_index"] = {bytes([b]): -1 for b in range(ord("a"), ord("z") + 1)}
        words = raw_words(text)
        counts = Counter(map(cache.get, words))
        if None in counts:  # words not remembered (yet): look them up, remember the short ones
            new = {w: self.vocabulary.get(stem(w.decode()) if use_stem else w.decode(), -1)
                   for w in set(words) if w not in cache}
            short = {w: i for w, i in new.items() if len(w) <= self.MAX_REMEMBERED_WORD_LENGTH}
            if len(cache) + len(short) <= self.MAX_REMEMBERED_WORDS:
                cache.update(short)
            counts = Counter(new[w] if w in new else cache[w] for w in words)
        counts.pop(-1, None)
        return self._log_odds(counts)

    def _log_odds(self, counts: dict[int, int]) -> float:
        """Log-odds from vocabulary index -> count (iterated in first-seen order, as sklearn sums)."""
        if not counts:
            return self.intercept
        dot = norm = 0.0
        for i, count in counts.items():
            weight = (1.0 + math.log(count) if self.sublinear else count) * self.idf[i]
            dot += weight * self.coef[i]
            norm += weight * weight
        return self.intercept + dot / math.sqrt(norm)


def _fit_text_model(docs: list[list[str]], y: np.ndarray, max_vocab: int, folds: int, seed: int):
    """Fit one text model; return (scorer, out-of-fold log-odds for the training docs)."""
    vectorizer = TfidfVectorizer(analyzer=_identity, min_df=2, max_features=max_vocab,
                                 sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary: no usable text at all
        return None, np.zeros(len(docs))
    oof = np.zeros(len(docs))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in splitter.split(matrix, y):
        fold_model = LogisticRegression(C=1.0, max_iter=500).fit(matrix[fit_rows], y[fit_rows])
        oof[held_rows] = fold_model.decision_function(matrix[held_rows])
    full_model = LogisticRegression(C=1.0, max_iter=500).fit(matrix, y)
    return TextScorer(vectorizer, full_model), oof


# ---------------------------------------------------------------- the transformer

class EventFeaturizer(TransformerMixin, BaseEstimator):
    """Raw event dicts (any shape, NaN ok) -> 2-D float array; NaN marks a missing number."""

    def __init__(self, include_leaky=False, text=True, stem=True, max_vocab=2000, text_folds=5,
                 min_category_count=20, max_category_levels=12, random_state=0):
        self.include_leaky = include_leaky
        self.text = text
        self.stem = stem
        self.max_vocab = max_vocab
        self.text_folds = text_folds
        self.min_category_count = min_category_count
        self.max_category_levels = max_category_levels
        self.random_state = random_state

    # -- fitting

    def fit(self, X, y=None):
        """Learn category levels, known email domains and (with labels) the text models."""
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, and return training features whose text scores are out-of-fold (no self-leak)."""
        records = [r if isinstance(r, dict) else {} for r in X]
        domain_counts = self._fit_levels(records)
        texts = [description_text(r) for r in records]
        structured = np.array([self._structured_row(r, t) for r, t in zip(records, texts)],
                              dtype=float).reshape(len(records), -1)
        self._leave_own_domain_out(structured, records, domain_counts)
        structured = np.clip(structured, -MAX_FEATURE, MAX_FEATURE)  # NaN stays NaN
        self.desc_scorer_ = self.name_scorer_ = None
        if not self.text:
            self.n_features_out_ = structured.shape[1]
            return structured
        text_cols = np.zeros((len(records), 2))
        labels = None if y is None else np.asarray(y).astype(int)
        if labels is not None and self._can_fit_text(labels):
            desc_docs = [tokens(t, self.stem) for t in texts]
            name_docs = [self._name_tokens(r) for r in records]
            seed = self.random_state
            self.desc_scorer_, text_cols[:, 0] = _fit_text_model(
                desc_docs, labels, self.max_vocab, self.text_folds, seed)
            self.name_scorer_, text_cols[:, 1] = _fit_text_model(
                name_docs, labels, max(200, self.max_vocab // 4), self.text_folds, seed)
        self.n_features_out_ = structured.shape[1] + 2
        return np.hstack([structured, text_cols])

    def _can_fit_text(self, labels: np.ndarray) -> bool:
        """Text models need both classes with at least one member per fold."""
        counts = np.bincount(labels, minlength=2)
        return len(counts) == 2 and counts.min() >= self.text_folds

    def _fit_levels(self, records: list[dict]) -> Counter:
        """Frequent levels of each categorical field, and email domains seen more than once; the
        count of each email domain in ``records``."""
        self.levels_ = {}
        self.__dict__.pop("_one_hot_rows", None)  # rows of the levels fitted before
        for field in CATEGORICAL_FIELDS:
            counts = Counter(_code(r.get(field)) for r in records)
            counts.pop(None, None)
            frequent = [lvl for lvl, n in counts.most_common(self.max_category_levels)
                        if n >= self.min_category_count]
            self.levels_[field] = {lvl: i for i, lvl in enumerate(sorted(frequent))}
        domains = Counter(email_domain(r) for r in records)
        self.known_domains_ = frozenset(
            d for d, n in domains.items() if d and n >= 2 and d not in FREEMAIL_DOMAINS)
        self.feature_names_ = self._names()
        return domains

    def _leave_own_domain_out(self, structured: np.ndarray, records: list[dict], counts: Counter) -> None:
        """Training rows read "known domain" as a new event will: seen twice among the *other*
        training rows. Counting a row's own domain made 46 % of training rows "known" against
        24 % of later events; a domain seen exactly twice is "other" for those two rows."""
        known = self.feature_names_.index("email_known")
        other = self.feature_names_.index("email_other")
        for i, record in enumerate(records):
            if structured[i, known] == 1.0 and counts[email_domain(record)] < 3:
                structured[i, known], structured[i, other] = 0.0, 1.0

    def _names(self) -> list[str]:
        """Column names in output order."""
        names = [
            "user_age", "days_created_to_start", "days_published_to_start", "sale_duration",
            "event_length_hours", "body_length", "desc_text_length", "desc_caps_share",
            "desc_links", "name_length", "name_caps_share", "name_words", "org_desc_length",
            "org_name_empty", "payee_name_empty", "fb_published", "has_analytics", "has_logo",
            "has_header", "show_map", "listed", "org_facebook", "org_twitter", "venue_missing",
            "venue_zero_coords", "country_venue_mismatch", "n_missing", "n_tiers", "price_min",
            "price_max", "price_mean", "capacity_total", "money_at_stake",
            "prior_payouts_count", "prior_payouts_total", "days_since_last_payout",
            "email_freemail", "email_known", "email_other", "email_missing",
        ]
        for field in CATEGORICAL_FIELDS:
            names += [f"{field}={lvl}" for lvl in self.levels_[field]]
            names += [f"{field}=other", f"{field}=missing"]
        if self.include_leaky:
            names += ["leaky_gts", "leaky_num_order", "leaky_num_payouts", "leaky_tickets_sold",
                      "leaky_share_sold", "leaky_later_payouts_count",
                      "leaky_later_payouts_total", "leaky_days_to_payout"]
        if self.text:
            names += ["text_description_score", "text_name_score"]
        return names

    # -- transforming

    def transform(self, X):
        """Features for new records; text scores come from the text models fitted on all rows."""
        rows = []
        for record in X:
            record = record if isinstance(record, dict) else {}
            text = description_text(record)
            row = self._structured_row(record, text)
            if self.text:
                row.append(self._score(self.desc_scorer_, text))
                row.append(self._score(self.name_scorer_, to_text(record.get("name"))))
            rows.append(row)
        matrix = np.array(rows, dtype=float).reshape(len(rows), len(self.feature_names_))
        return np.clip(matrix, -MAX_FEATURE, MAX_FEATURE)  # as in fit_transform; NaN stays NaN

    def _score(self, scorer, text: str) -> float:
        """Text log-odds of already-stripped text, 0 when no text model could be fitted."""
        return scorer.score_text(text, self.stem) if scorer is not None else 0.0

    def _name_tokens(self, record: dict) -> list[str]:
        """Tokens of the event name."""
        return tokens(to_text(record.get("name")), self.stem)

    def get_feature_names_out(self, input_features=None):
        """Column names, in the order of transform's output."""
        return np.asarray(self.feature_names_, dtype=object)

    def feature_groups(self) -> dict[str, list[int]]:
        """Explanation groups: group name -> column indices (one-hot columns grouped)."""
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(self.feature_names_):
            groups.setdefault(group_of(name), []).append(i)
        return groups

    def _structured_row(self, r: dict, description: str) -> list[float]:
        """Every non-text feature of one record (given its visible description text) as floats."""
        get = r.get
        description_html = to_text(get("description"))
        name = to_text(get("name"))
        body_length = to_float(get("body_length"))
        if math.isnan(body_length) and "description" in r:
            body_length = float(len(description_html))
        name_length = float(len(name)) if name else to_float(get("name_length"))
        user_age = to_float(get("user_age"))
        if math.isnan(user_age):
            user_age = _days_between(r, "user_created", "event_created")
        published = _days_between(r, "event_published", "event_start")
        tickets = _ticket_stats(r)
        payouts = payout_history(r)
        country, venue_country = _code(get("country")), _code(get("venue_country"))
        lat, lon = to_float(get("venue_latitude")), to_float(get("venue_longitude"))
        row = [
            user_age,
            _days_between(r, "event_created", "event_start"),
            published,
            to_float(get("sale_duration")),
            _days_between(r, "event_start", "event_end", HOUR),
            body_length,
            float(len(description)),
            caps_share(description),
            _links(description_html, description),
            name_length,
            caps_share(name),
            float(len(name.split())),
            float(len(strip_html(to_text(get("org_desc"))))),
            float(_missing(get("org_name"))),
            float(_missing(get("payee_name"))),
            to_float(get("fb_published")),
            to_float(get("has_analytics")),
            to_float(get("has_logo")),
            to_float(get("has_header")),
            to_float(get("show_map")),
            _yes_no(get("listed")),
            to_float(get("org_facebook")),
            to_float(get("org_twitter")),
            float(_missing(get("venue_name")) and _missing(get("venue_address"))),
            float(lat == 0 and lon == 0),
            float(bool(country and venue_country and country != venue_country)),
            _count_missing(list(map(get, MISSING_COUNT_FIELDS))),
            tickets["n_tiers"], tickets["price_min"], tickets["price_max"], tickets["price_mean"],
            tickets["capacity"], tickets["money"],
            payouts["prior_count"], payouts["prior_total"], payouts["days_since_last"],
        ]
        row += self._email_row(r)
        for field in CATEGORICAL_FIELDS:
            row += self._one_hot(field, get(field))
        if self.include_leaky:
            row += [
                to_float(get("gts")), to_float(get("num_order")), to_float(get("num_payouts")),
                tickets["sold"], tickets["share_sold"], payouts["later_count"],
                payouts["later_total"], _days_between(r, "event_created", "approx_payout_date"),
            ]
        return row

    def _email_row(self, record: dict) -> list[float]:
        """One-hot of the email domain: free-mail / known (seen in training) / other / missing."""
        domain = email_domain(record)
        if domain is None:
            return [0.0, 0.0, 0.0, 1.0]
        if domain in FREEMAIL_DOMAINS:
            return [1.0, 0.0, 0.0, 0.0]
        if domain in self.known_domains_:
            return [0.0, 1.0, 0.0, 0.0]
        return [0.0, 0.0, 1.0, 0.0]

    # Raw values remembered per categorical field (value -> its one-hot row). Caps on their
    # number and length keep a stream of hostile made-up values from growing it without end.
    MAX_REMEMBERED_VALUES = 10_000
    MAX_REMEMBERED_VALUE_LENGTH = 40  # characters of a string; integers up to _SMALL_INT

    def _one_hot(self, field: str, value) -> tuple[float, ...]:
        """One-hot over the fitted levels, then 'other', then 'missing'.

        Rows of integers and short strings are remembered per process: a field has a handful
        of values, and encoding one costs more than looking it up.
        """
        if not (type(value) is str and len(value) <= self.MAX_REMEMBERED_VALUE_LENGTH
                or type(value) is int and -_SMALL_INT < value < _SMALL_INT):
            return self._encode(field, value)
        remembered = self.__dict__.setdefault("_one_hot_rows", {}).setdefault(field, {})
        row = remembered.get(value)
        if row is None:
            row = self._encode(field, value)
            if len(remembered) < self.MAX_REMEMBERED_VALUES:
                remembered[value] = row
        return row

    def _encode(self, field: str, value) -> tuple[float, ...]:
        """The one-hot row of one value of a categorical field."""
        levels = self.levels_[field]
        out = [0.0] * (len(levels) + 2)
        key = _code(value)
        if key is None:
            out[-1] = 1.0
        else:
            out[levels.get(key, len(levels))] = 1.0
        return tuple(out)

    def __getstate__(self):
        """Pickle without the per-process one-hot rows."""
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives __dict__ itself
        state.pop("_one_hot_rows", None)
        return state


# ---------------------------------------------------------------- reasons in plain words

def _n(value: float, fmt: str = ",.0f") -> str:
    """A number for a sentence; 'unknown' for NaN."""
    return "unknown" if value != value else format(value, fmt)


def _money(value: float, record: dict, fmt: str = ",.0f") -> str:
    """An amount for a sentence in the event's own currency ('19,350 GBP'); the bare number when
    the event names no currency code."""
    code = exchange.code_of(record.get("currency") if isinstance(record, dict) else None)
    return f"{_n(value, fmt)} {code}" if len(code) == 3 and code.isascii() and code.isalpha() else _n(value, fmt)


def _plural(value: float, word: str) -> str:
    """'1 day' / '3 days'."""
    return f"{_n(value)} {word}" + ("" if value == 1 else "s")


def _flag(value: float, yes: str, no: str, unknown: str) -> str:
    """Phrase a 0/1 feature."""
    if value != value:
        return unknown
    return yes if value >= 0.5 else no


def _phrase_user_age(v, r, up):
    age = v["user_age"]
    if age != age:
        return "account age unknown"
    if age < 1:
        return "account created the same day as the event"
    return f"account created {_plural(age, 'day')} before the event"


def _phrase_payouts(v, r, up):
    count = v["prior_payouts_count"]
    if count != count:
        return "payout history unknown (no event date)"
    if count == 0:
        return "no payout history before the event"
    return (f"{_plural(count, 'payout')} before the event ({_money(v['prior_payouts_total'], r)} in "
            f"total, the last {_plural(v['days_since_last_payout'], 'day')} earlier)")


def _phrase_days(column, template, unknown):
    """Phrase a duration in days: 'event starts 3 days after it was created'."""
    def phrase(v, r, up):
        value = v[column]
        if value != value:
            return unknown
        if 0 <= value < 1:
            return template.format(days="less than a day")
        return template.format(days=_plural(round(value), "day"))
    return phrase


def _phrase_description_length(v, r, up):
    if v["body_length"] == 0 or (v["body_length"] != v["body_length"] and v["desc_text_length"] == 0):
        return "empty description"
    return f"description of {_plural(v['desc_text_length'], 'character')} of text"


def _phrase_description_style(v, r, up):
    share = v["desc_caps_share"]
    caps = "no letters" if share != share else f"{share:.0%} capitals"
    return f"description with {caps} and {_plural(v['desc_links'], 'link')}"


def _phrase_text(what):
    def phrase(v, r, up, _what=what):
        return f"{_what} wording is typical of {'fraud' if up else 'genuine events'}"
    return phrase


def _phrase_name_style(v, r, up):
    if v["name_length"] == 0 or v["name_length"] != v["name_length"]:
        return "no event name"
    share = v["name_caps_share"]
    caps = f", {share:.0%} capitals" if share == share else ""
    return f"event name of {_plural(v['name_length'], 'character')}{caps}"


def _phrase_count(column, label, none):
    def phrase(v, r, up):
        value = v[column]
        if value != value:
            return f"{label} unknown"
        return none if value == 0 else f"{label} {_n(value)}"
    return phrase


def _phrase_venue(v, r, up):
    if v["venue_missing"] >= 0.5:
        return "no venue given"
    if v["venue_zero_coords"] >= 0.5:
        return "venue coordinates are (0, 0)"
    return "venue given"


def _phrase_mismatch(v, r, up):
    country, venue = _code(r.get("country")), _code(r.get("venue_country"))
    if not country or not venue:
        return f"organiser country {country or 'not given'}, venue country {venue or 'not given'}"
    if country != venue:
        return f"organiser country {country} differs from venue country {venue}"
    return f"organiser and venue in the same country ({country})"


def _phrase_prices(v, r, up):
    low, high = v["price_min"], v["price_max"]
    if low != low:
        return "no ticket prices"
    if low == high:
        return f"ticket price {_money(low, r, ',.2f')}"
    return f"ticket prices {_n(low, ',.2f')} to {_money(high, r, ',.2f')}"


def _phrase_email(v, r, up):
    domain = email_domain(r) or "none"
    if v["email_missing"] >= 0.5:
        return "no email domain"
    if v["email_freemail"] >= 0.5:
        return f"free-mail address ({domain})"
    if v["email_known"] >= 0.5:
        return f"email domain {domain} also used by other organisers"
    return f"rare email domain ({domain})"


def _phrase_category(field):
    def phrase(v, r, up, _field=field):
        key = _code(r.get(_field))
        return f"{_CATEGORY_DESCRIPTIONS[_field]} {key}" if key else f"{_CATEGORY_DESCRIPTIONS[_field]} not given"
    return phrase


_PHRASES = {
    "user_age": _phrase_user_age,
    "prior_payouts": _phrase_payouts,
    "days_created_to_start": _phrase_days(
        "days_created_to_start", "event starts {days} after it was created", "event dates unknown"),
    "days_published_to_start": _phrase_days(
        "days_published_to_start", "published {days} before it starts", "publish date unknown"),
    "sale_duration": _phrase_days("sale_duration", "sale period of {days}", "sale period unknown"),
    "event_length": lambda v, r, up: (
        "event length unknown" if v["event_length_hours"] != v["event_length_hours"]
        else f"event lasts {_n(v['event_length_hours'], '.1f')} hours"),
    "description_length": _phrase_description_length,
    "description_style": _phrase_description_style,
    "description_text": _phrase_text("description"),
    "name_text": _phrase_text("event name"),
    "name_style": _phrase_name_style,
    "org_desc": lambda v, r, up: ("no organiser description" if not v["org_desc_length"]
                                  else f"organiser description of {_plural(v['org_desc_length'], 'character')}"),
    "org_name": lambda v, r, up: _flag(v["org_name_empty"], "no organiser name", "organiser name given", ""),
    "payee_name": lambda v, r, up: _flag(v["payee_name_empty"], "no payee name", "payee name given", ""),
    "org_facebook": _phrase_count("org_facebook", "organiser Facebook count", "organiser has no Facebook presence"),
    "org_twitter": _phrase_count("org_twitter", "organiser Twitter count", "organiser has no Twitter presence"),
    "fb_published": lambda v, r, up: _flag(v["fb_published"], "published on Facebook",
                                           "not published on Facebook", "Facebook publishing unknown"),
    "has_analytics": lambda v, r, up: _flag(v["has_analytics"], "event page has analytics",
                                            "no analytics on the event page", "analytics unknown"),
    "has_logo": lambda v, r, up: _flag(v["has_logo"], "event has a logo", "no logo", "logo unknown"),
    "has_header": lambda v, r, up: _flag(v["has_header"], "event page has a header image",
                                         "no header image", "header image not recorded"),
    "show_map": lambda v, r, up: _flag(v["show_map"], "map shown", "no map shown", "map setting unknown"),
    "listed": lambda v, r, up: _flag(v["listed"], "listed publicly", "not listed publicly", "listing unknown"),
    "venue": _phrase_venue,
    "country_mismatch": _phrase_mismatch,
    "n_missing": lambda v, r, up: f"{_plural(v['n_missing'], 'usual field')} missing",
    "ticket_tiers": lambda v, r, up: ("no ticket tiers" if not v["n_tiers"]
                                      else _plural(v["n_tiers"], "ticket tier")),
    "ticket_prices": _phrase_prices,
    "capacity": lambda v, r, up: ("capacity unknown" if v["capacity_total"] != v["capacity_total"]
                                  else f"{_n(v['capacity_total'])} tickets on offer"),
    "money_at_stake": lambda v, r, up: ("no priced tickets on offer" if not v["money_at_stake"]
                                        else f"{_money(v['money_at_stake'], r)} of tickets at stake"),
    "email": _phrase_email,
    "leaky_gts": lambda v, r, up: f"gross sales so far {_money(v['leaky_gts'], r)} (leaky)",
    "leaky_num_order": lambda v, r, up: f"{_n(v['leaky_num_order'])} orders so far (leaky)",
    "leaky_num_payouts": lambda v, r, up: f"num_payouts {_n(v['leaky_num_payouts'])} (leaky)",
    "leaky_sales": lambda v, r, up: f"{_n(v['leaky_tickets_sold'])} tickets sold (leaky)",
    "leaky_later_payouts": lambda v, r, up: f"{_n(v['leaky_later_payouts_count'])} payouts after the event (leaky)",
    "leaky_days_to_payout": lambda v, r, up: f"payout {_n(v['leaky_days_to_payout'])} days after creation (leaky)",
    **{field: _phrase_category(field) for field in CATEGORICAL_FIELDS},
}


def phrase_reason(group: str, values: dict, record: dict, up: bool) -> str:
    """Plain words for one explanation group, from this record's own values.

    A phrase may quote the record (a currency, a domain): lone surrogates, which strict JSON
    parsers refuse, become '?' and NUL is dropped, so the answer says what the database keeps.
    """
    phrase = _PHRASES.get(group)
    text = None if phrase is None else phrase(values, record if isinstance(record, dict) else {}, up)
    text = text or group.replace("_", " ")
    if "\x00" in text or not text.isascii():
        text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text
