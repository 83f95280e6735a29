"""The synthetic generator against the published figures of ../shared/DATA.md, field by field.

One 14,337-event set (seed 0) is generated per module. Tolerances are stated per figure; they
allow sampling noise for about 1,300 fraud events but fail a generator that drifts, drops a
signal or breaks the record's internal consistency.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

import dataset
import synth

ROOT = Path(__file__).resolve().parent.parent
N_EVENTS = 14337

# ----------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events():
    """The full-size synthetic set, generated once for the module."""
    return synth.generate_events(N_EVENTS, seed=0)


@pytest.fixture(scope="module")
def fraud(events):
    """Boolean label per event (acct_type contains 'fraud')."""
    return np.array([dataset.is_fraud(r["acct_type"]) for r in events])


def _values(events, fn):
    """A float array of fn(record) per event; None becomes NaN."""
    return np.array([np.nan if (v := fn(r)) is None else float(v) for r in events], dtype=float)


def _timestamp_text(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _payouts_before(record):
    """Payout entries dated before the event was created (the usable, non-leaky history)."""
    created = _timestamp_text(record["event_created"])
    return sum(p["created"] < created for p in record["previous_payouts"])


def _mean_cost(record):
    return float(np.mean([t["cost"] for t in record["ticket_types"]]))


def _share_sold(record):
    total = sum(t["quantity_total"] for t in record["ticket_types"])
    return sum(t["quantity_sold"] for t in record["ticket_types"]) / total if total else 0.0


def _close(got, want, rel, abs_tol):
    """True when got is within max(rel * |want|, abs_tol) of want."""
    return abs(got - want) <= max(rel * abs(want), abs_tol)


# ----------------------------------------------------------------------------------------------
# Shape: keys and types
# ----------------------------------------------------------------------------------------------

TYPES = {
    "acct_type": str, "approx_payout_date": int, "body_length": int, "channels": int,
    "country": str, "currency": str, "delivery_method": float, "description": str,
    "email_domain": str, "event_created": int, "event_end": int, "event_published": float,
    "event_start": int, "fb_published": int, "gts": float, "has_analytics": int,
    "has_header": float, "has_logo": int, "listed": str, "name": str, "name_length": int,
    "num_order": int, "num_payouts": int, "object_id": int, "org_desc": str,
    "org_facebook": float, "org_name": str, "org_twitter": float, "payee_name": str,
    "payout_type": str, "previous_payouts": list, "sale_duration": float, "sale_duration2": int,
    "show_map": int, "ticket_types": list, "user_age": int, "user_created": int, "user_type": int,
    "venue_address": str, "venue_country": str, "venue_latitude": float,
    "venue_longitude": float, "venue_name": str, "venue_state": str,
}
NULLABLE = {"country", "delivery_method", "event_published", "has_header", "org_facebook",
            "org_twitter", "sale_duration", "venue_address", "venue_country", "venue_latitude",
            "venue_longitude", "venue_name", "venue_state"}
TIER_KEYS = {"event_id", "cost", "availability", "quantity_total", "quantity_sold"}
PAYOUT_KEYS = ["name", "created", "country", "amount", "state", "address", "zip_code", "uid",
               "event"]


def test_fields_are_the_44_keys():
    assert len(synth.FIELDS) == 44 and set(synth.FIELDS) == set(TYPES)
    assert synth.LIVE_FIELDS_43 == tuple(f for f in synth.FIELDS if f != "acct_type")


def test_every_record_has_exactly_the_44_keys_with_their_types(events):
    for record in events:
        assert tuple(record) == synth.FIELDS
        for key, kind in TYPES.items():
            value = record[key]
            if value is None:
                assert key in NULLABLE, key
            else:
                assert type(value) is kind, (key, value)


def test_nested_shapes(events):
    for record in events:
        assert 1 <= len(record["ticket_types"]) <= 35
        for tier in record["ticket_types"]:
            assert set(tier) == TIER_KEYS
            assert tier["event_id"] == record["object_id"]
            assert tier["availability"] in (1, 2)
            assert 0 <= tier["quantity_sold"] <= tier["quantity_total"]
        for payout in record["previous_payouts"]:
            assert list(payout) == PAYOUT_KEYS
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", payout["created"])


def test_records_are_json_serialisable_without_nan(events):
    text = json.dumps(events[:500], allow_nan=False)  # the training shape writes null, never NaN
    assert json.loads(text)[0] == events[0]


# ----------------------------------------------------------------------------------------------
# Internal consistency
# ----------------------------------------------------------------------------------------------


def test_lengths_match_text(events):
    assert all(r["name_length"] == len(r["name"]) for r in events)
    assert all(r["body_length"] == len(r["description"]) for r in events)


def test_user_age_is_whole_days_from_account_creation(events):
    for r in events:
        assert r["user_age"] == (r["event_created"] - r["user_created"]) // 86400


def test_time_order_and_payout_date(events):
    for r in events:
        assert r["event_created"] < r["event_start"] < r["event_end"]
        assert r["approx_payout_date"] == r["event_end"] + 5 * 86400
        assert r["sale_duration2"] == (r["event_start"] - r["event_created"]) // 86400
        if r["sale_duration"] is not None:
            assert r["sale_duration"] == (r["event_start"] - r["event_published"]) // 86400


def test_gts_is_the_tickets_sold(events, fraud):
    checked = 0
    for r, is_fraud in zip(events, fraud):
        gross = sum(t["cost"] * t["quantity_sold"] for t in r["ticket_types"])
        sold = sum(t["quantity_sold"] for t in r["ticket_types"])
        if gross > 0:  # voided fraud events keep gts but show nothing sold
            assert 0.89 * gross <= r["gts"] <= gross + 0.01, r["object_id"]
            assert r["num_order"] >= 1 and r["num_order"] <= sold
            checked += 1
        if r["gts"] == 0:
            assert r["num_order"] == 0 and sold == 0
        if not is_fraud:
            assert (gross > 0) == (r["gts"] > 0)
    assert checked > 0.8 * len(events)


def test_object_ids_unique_and_in_range(events):
    ids = [r["object_id"] for r in events]
    assert len(set(ids)) == len(ids)
    assert min(ids) >= 500_000 and max(ids) <= 9_000_000


def test_payout_history_belongs_to_one_user_and_is_mostly_after_the_event(events):
    before = after = 0
    for r in events:
        uids = {p["uid"] for p in r["previous_payouts"]}
        assert len(uids) <= 1
        n_before = _payouts_before(r)
        assert n_before <= r["num_payouts"]  # history before the event is what num_payouts counts
        before += n_before
        after += len(r["previous_payouts"]) - n_before
    assert after > 2 * before > 0


def test_venue_fields_are_null_together(events):
    venue = ("venue_address", "venue_country", "venue_latitude", "venue_longitude",
             "venue_name", "venue_state")
    nulls = [sum(r[k] is None for k in venue) for r in events]
    assert set(nulls) == {0, 6}
    assert _close(nulls.count(6), 1076, 0.2, 0)  # DATA.md: 1076


def test_descriptions_are_html(events):
    texts = [r["description"] for r in events if r["description"]]
    assert sum("\r\n" in t for t in texts) > 0.5 * len(texts)
    assert sum("&nbsp;" in t for t in texts) > 0.2 * len(texts)
    assert sum('style="' in t for t in texts) > 0.3 * len(texts)
    org = [r["org_desc"] for r in events]
    assert _close(sum(o == "" for o in org) / len(org), 0.30, 0, 0.04)  # DATA.md: ~30 % empty
    assert all(o.startswith("<") for o in org if o)


# ----------------------------------------------------------------------------------------------
# Label, acct_type mix, time
# ----------------------------------------------------------------------------------------------


def test_fraud_rate(fraud):
    assert 0.085 <= fraud.mean() <= 0.095  # DATA.md: 9.02 %


def test_acct_type_mix(events, fraud):
    counts = Counter(r["acct_type"] for r in events)
    assert set(counts) <= set(synth.ACCT_FRAUD) | set(synth.ACCT_LEGIT)
    assert _close(counts["fraudster_event"] / fraud.sum(), 851 / 1293, 0, 0.02)
    assert _close(counts["fraudster"] / fraud.sum(), 437 / 1293, 0, 0.02)
    assert _close(counts["premium"] / (~fraud).sum(), 12373 / 13044, 0, 0.01)
    assert counts["spammer_limited"] > counts["tos_lock"] > 0


def test_events_span_2007_to_2013_with_yearly_fraud_shares(events, fraud):
    created = [datetime.fromtimestamp(r["event_created"], tz=timezone.utc) for r in events]
    assert min(created) >= datetime(2007, 2, 1, tzinfo=timezone.utc)
    assert max(created) < datetime(2013, 11, 1, tzinfo=timezone.utc)
    years = np.array([c.year for c in created])
    assert np.mean(years >= 2011) > 0.8  # most events 2011-2013
    for year, share in ((2011, 0.082), (2012, 0.103), (2013, 0.081)):
        assert _close(fraud[years == year].mean(), share, 0, 0.012), year


# ----------------------------------------------------------------------------------------------
# Class-conditional quantiles (DATA.md)
# ----------------------------------------------------------------------------------------------

# (name, value function, percentiles, fraud figures, legit figures, fraud tolerance, legit
# tolerance); a tolerance (rel, abs) allows max(rel * figure, abs). Fraud figures rest on ~1,300
# events, so their quantiles move more from seed to seed (checked over seeds 0-7) than legit ones.
QUANTILES = [
    ("user_age", lambda r: r["user_age"], (10, 25, 50, 75, 90),
     (0, 0, 0, 19, 147), (0, 37, 293, 640, 1008), (0.45, 15), (0.1, 6)),
    ("body_length", lambda r: r["body_length"], (10, 25, 50, 75, 90),
     (0, 0, 452, 1669, 3895), (227, 904, 2164, 4567, 8752), (0.3, 40), (0.1, 30)),
    ("name_length", lambda r: r["name_length"], (10, 25, 50, 75, 90),
     (8, 14, 25, 38, 56), (19, 27, 39, 54, 70), (0.2, 2), (0.1, 2)),
    ("days to start", lambda r: (r["event_start"] - r["event_created"]) / 86400,
     (10, 25, 50, 75, 90), (0.5, 1.3, 4.2, 18, 40), (9.8, 21, 37, 67, 114), (0.3, 0.3), (0.1, 1.5)),
    ("sale_duration", lambda r: r["sale_duration"], (10, 25, 50, 75, 90),
     (0, 1, 4, 20, 47), (9, 19, 35, 62, 105), (0.3, 2), (0.15, 3)),
    ("num_payouts", lambda r: r["num_payouts"], (50, 75, 90),
     (0, 0, 1), (3, 16, 70), (0, 1), (0.2, 1)),
    ("mean ticket cost", _mean_cost, (50, 90), (83, 472), (25, 175), (0.2, 3), (0.1, 2)),
    ("gts", lambda r: r["gts"], (50, 75, 90),
     (341, 1644, 5323), (439, 1541, 4867), (0.3, 20), (0.15, 20)),
    ("share sold", _share_sold, (50,), (0,), (0.2,), (0, 0.02), (0.35, 0.03)),
    ("num_order", lambda r: r["num_order"], (50,), (2,), (9,), (0, 1), (0.2, 1)),
    ("org_facebook", lambda r: r["org_facebook"], (75, 90), (0, 0), (15, 23), (0, 0), (0.1, 1)),
    ("org_twitter", lambda r: r["org_twitter"], (75, 90), (0, 0), (11, 14), (0, 0), (0.1, 1)),
]


@pytest.mark.parametrize("name,fn,percentiles,want_fraud,want_legit,tol_fraud,tol_legit",
                         QUANTILES, ids=[q[0] for q in QUANTILES])
def test_class_quantiles(events, fraud, name, fn, percentiles, want_fraud, want_legit,
                         tol_fraud, tol_legit):
    values = _values(events, fn)
    for cls, mask, wants, (rel, abs_tol) in (("fraud", fraud, want_fraud, tol_fraud),
                                             ("legit", ~fraud, want_legit, tol_legit)):
        got = np.nanpercentile(values[mask], percentiles)
        for p, g, w in zip(percentiles, got, wants):
            assert _close(g, w, rel, abs_tol), f"{name} {cls} p{p}: got {g:.2f}, DATA.md {w}"


def test_zero_shares(events, fraud):
    user_age = _values(events, lambda r: r["user_age"])
    assert _close(np.mean(user_age[fraud] == 0), 0.56, 0, 0.04)  # DATA.md: 56 % zero
    payouts = _values(events, lambda r: r["num_payouts"])
    assert _close(np.mean(payouts[fraud] == 0), 0.89, 0, 0.03)
    assert _close(np.mean(payouts[~fraud] == 0), 0.32, 0, 0.04)
    assert _close(fraud[payouts > 0].mean(), 0.015, 0, 0.008)  # fraud rate when > 0
    gts = _values(events, lambda r: r["gts"])
    assert _close(np.mean(gts[fraud] == 0), 0.248, 0, 0.04)
    assert np.mean(gts[~fraud] == 0) < 0.01  # DATA.md: 0.3 %
    assert _close(gts[fraud].sum(), 2.47e6, 0.35, 0)
    orders = _values(events, lambda r: r["num_order"])
    assert _close(np.mean(orders[fraud] == 0), 0.25, 0, 0.05)
    body = _values(events, lambda r: r["body_length"])
    assert _close(np.sum(body == 0), 829, 0.2, 0)
    assert _close(fraud[body == 0].mean(), 0.40, 0, 0.08)


def test_ticket_tiers(events, fraud):
    tiers = _values(events, lambda r: len(r["ticket_types"]))
    assert _close(tiers[fraud].mean(), 1.7, 0, 0.25)
    assert _close(tiers[~fraud].mean(), 2.8, 0, 0.3)
    availability = [t["availability"] for r in events for t in r["ticket_types"]]
    assert _close(np.mean(np.array(availability) == 2), 0.04, 0, 0.015)


def test_event_length_medians(events, fraud):
    hours = _values(events, lambda r: (r["event_end"] - r["event_start"]) / 3600)
    assert _close(np.median(hours[fraud]), 4, 0, 1)
    assert _close(np.median(hours[~fraud]), 3.5, 0, 1)


# ----------------------------------------------------------------------------------------------
# Rates and mixes by class
# ----------------------------------------------------------------------------------------------

# (field, fraud rate, legit rate, absolute tolerance), rates of value 1.
RATES = [
    ("has_logo", 0.646, 0.862, 0.04),
    ("has_analytics", 0.003, 0.080, 0.015),
    ("fb_published", 0.022, 0.138, 0.02),
    ("show_map", 0.756, 0.853, 0.04),
    ("has_header", 0.069, 0.21, 0.04),  # among non-null
]


@pytest.mark.parametrize("field,want_fraud,want_legit,tol", RATES, ids=[r[0] for r in RATES])
def test_binary_rates(events, fraud, field, want_fraud, want_legit, tol):
    values = _values(events, lambda r: r[field])
    assert _close(np.nanmean(values[fraud]), want_fraud, 0, tol)
    assert _close(np.nanmean(values[~fraud]), want_legit, 0, tol)


def test_has_header_nulls_and_listed(events):
    nulls = sum(r["has_header"] is None for r in events)
    assert _close(nulls, 5409, 0.1, 0)
    assert _close(np.mean([r["listed"] == "y" for r in events]), 0.85, 0, 0.03)


def _fraud_rate_by(events, fraud, field):
    counts, frauds = Counter(), Counter()
    for r, f in zip(events, fraud):
        counts[r[field]] += 1
        frauds[r[field]] += int(f)
    return counts, {k: frauds[k] / counts[k] for k in counts}


def test_channels(events, fraud):
    counts, rate = _fraud_rate_by(events, fraud, "channels")
    assert set(counts) <= {0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
    for code, want in ((8, 3364), (0, 2941), (5, 2459), (11, 2312), (6, 1736)):
        assert _close(counts[code], want, 0.1, 0), code
    assert _close(rate[0], 0.19, 0, 0.04)
    assert _close(rate[13], 0.13, 0, 0.07)
    assert _close(rate[8], 0.03, 0, 0.015)


def test_user_type(events, fraud):
    counts, rate = _fraud_rate_by(events, fraud, "user_type")
    for code, want in ((3, 7520), (1, 3738), (4, 3017)):
        assert _close(counts[code], want, 0.08, 0), code
    assert _close(rate[1], 0.248, 0, 0.04)
    assert _close(rate[3], 0.039, 0, 0.015)
    assert _close(rate[4], 0.022, 0, 0.012)


def test_delivery_method(events, fraud):
    counts, _ = _fraud_rate_by(events, fraud, "delivery_method")
    assert _close(counts[0.0], 8520, 0.06, 0) and _close(counts[1.0], 5554, 0.06, 0)
    assert _close(counts[3.0], 247, 0.3, 0)
    assert 5 <= counts[None] <= 35
    fraud_values = Counter(r["delivery_method"] for r, f in zip(events, fraud) if f)
    assert _close(fraud_values[0.0] / fraud.sum(), 1201 / 1293, 0, 0.03)
    legit_null_rate = (counts[None] - fraud_values[None]) / (~fraud).sum()
    assert fraud_values[None] / fraud.sum() > 4 * legit_null_rate  # missing is mostly fraud


def test_currency(events, fraud):
    counts, rate = _fraud_rate_by(events, fraud, "currency")
    for code, want in (("USD", 9696), ("GBP", 2222), ("CAD", 1322), ("AUD", 779), ("EUR", 262)):
        assert _close(counts[code], want, 0.12, 0), code
    assert _close(rate["GBP"], 0.15, 0, 0.035)
    assert rate["CAD"] < 0.06 and rate["AUD"] < 0.04


def test_payout_type(events, fraud):
    counts, rate = _fraud_rate_by(events, fraud, "payout_type")
    n = len(events)
    assert _close(counts["ACH"] / n, 0.64, 0, 0.03)
    assert _close(counts["CHECK"] / n, 0.35, 0, 0.03)
    assert 0.01 <= counts[""] / n <= 0.03
    assert rate[""] > 3 * fraud.mean()  # empty is a fraud signal


def test_countries_and_nulls(events, fraud):
    country = Counter(r["country"] for r in events)
    for code, want in (("US", 9234), ("GB", 2083), ("CA", 1262), ("AU", 742)):
        assert _close(country[code], want, 0.1, 0), code
    assert _close(country[""], 316, 0.25, 0)
    assert 40 <= country[None] <= 130  # DATA.md: 81
    assert 50 <= len(country) <= 90  # DATA.md: 72 distinct
    venue = Counter(r["venue_country"] for r in events)
    for code, want in (("US", 8336), ("GB", 1838), ("CA", 1134), ("", 876), ("AU", 683)):
        assert _close(venue[code], want, 0.15, 0), code
    assert _close(sum(r["venue_state"] == "" for r in events), 2625, 0.15, 0)
    mismatch = np.array([bool(r["venue_country"]) and bool(r["country"])
                         and r["venue_country"] != r["country"] for r in events])
    assert mismatch[fraud].mean() > 2 * mismatch[~fraud].mean()  # a known signal
    assert 50 <= sum(r["event_published"] is None for r in events) <= 150  # DATA.md: 99
    assert 0 < sum(r["event_published"] == 0 for r in events)
    assert 100 <= sum(r["sale_duration"] is None for r in events) <= 220  # DATA.md: 155
    assert sum((r["sale_duration"] or 0) < 0 for r in events) > 0  # can be negative
    social = [(r["org_facebook"] is None, r["org_twitter"] is None) for r in events]
    assert 30 <= social.count((True, True)) <= 90 and (True, False) not in social  # 59 each


def test_email_domains(events, fraud):
    counts = Counter(r["email_domain"] for r in events)
    top = [d for d, _ in counts.most_common(4)]
    assert top == ["gmail.com", "yahoo.com", "hotmail.com", "aol.com"]
    assert _close(counts["gmail.com"], 3097, 0.12, 0)
    assert _close(counts["yahoo.com"], 792, 0.15, 0)
    assert len(counts) > 2000  # a long tail of company domains
    free = np.array([r["email_domain"] in synth.FREE_MAIL for r in events])
    assert free[fraud].mean() > 1.5 * free[~fraud].mean()


def test_names_and_organisers(events, fraud):
    caps = np.array([r["name"].isupper() for r in events])
    assert caps[fraud].mean() > 3 * caps[~fraud].mean()  # fraud names more often ALL CAPS
    org_name_empty = np.mean([r["org_name"] == "" for r in events])
    assert _close(org_name_empty, 0.11, 0, 0.03)
    payee = np.array([r["payee_name"] != "" for r in events])
    assert _close(1 - payee.mean(), 0.65, 0, 0.04)
    assert 10 <= payee[fraud].sum() <= 60  # DATA.md: 30 fraud events


# ----------------------------------------------------------------------------------------------
# Joint structure
# ----------------------------------------------------------------------------------------------


def test_new_user_without_history_pattern(events, fraud):
    user_age = np.array([r["user_age"] for r in events])
    no_history = np.array([_payouts_before(r) == 0 and r["num_payouts"] == 0 for r in events])
    both = (user_age == 0) & no_history
    assert _close(both[fraud].mean(), 0.56, 0, 0.04)  # DATA.md: 56 %
    assert _close(both[~fraud].mean(), 0.14, 0, 0.03)  # DATA.md: 14 %
    assert _close(fraud[no_history & (user_age <= 1)].mean(), 0.28, 0, 0.04)  # DATA.md: 28 %
    empty = np.array([not r["previous_payouts"] for r in events])
    assert empty[fraud].mean() > 0.6  # [] for most fraud
    # a quarter of fraud users are weeks or months old: the overlap that keeps models imperfect
    assert np.mean(user_age[fraud] >= 14) > 0.2


# ----------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------


def test_same_seed_same_bytes_different_seed_different():
    first = json.dumps(synth.generate_events(600, seed=7))
    again = json.dumps(synth.generate_events(600, seed=7))
    other = json.dumps(synth.generate_events(600, seed=8))
    assert first == again
    assert first != other


def test_bad_n_is_refused():
    with pytest.raises(ValueError):
        synth.generate_events(0)


# ----------------------------------------------------------------------------------------------
# Live shapes
# ----------------------------------------------------------------------------------------------


def _with_missing(events):
    return next(r for r in events if r["has_header"] is None and r["venue_name"] is None)


def test_to_live_43(events):
    record = _with_missing(events)
    live = synth.to_live(record)
    assert tuple(live) == synth.LIVE_FIELDS_43 and len(live) == 43
    assert "acct_type" not in live
    assert math.isnan(live["has_header"]) and math.isnan(live["venue_latitude"])
    text = json.dumps(live)
    assert '"has_header": NaN' in text
    assert record["has_header"] is None  # the training record is not changed
    for key in synth.LIVE_FLOAT_FIELDS:  # columns with gaps arrive as floats
        assert isinstance(live[key], float)
    assert live["ticket_types"][0]["quantity_sold"] == record["ticket_types"][0]["quantity_sold"]


def test_to_live_38_and_36(events):
    record = events[0]
    later = synth.to_live(record, shape=38, sequence_number=12)
    assert len(later) == 38 and set(later) == set(synth.LIVE_FIELDS_38)
    for gone in ("acct_type", "approx_payout_date", "gts", "num_order", "num_payouts",
                 "sale_duration2"):
        assert gone not in later
    assert later["sequence_number"] == 12
    assert all("quantity_sold" not in t for t in later["ticket_types"])
    assert all("quantity_sold" in t for t in record["ticket_types"])
    older = synth.to_live(record, shape=36)
    assert len(older) == 36 and "sequence_number" not in older and "has_header" not in older
    with pytest.raises(ValueError):
        synth.to_live(record, shape=44)


def test_dataset_reads_live_output(tmp_path):
    records = synth.generate_events(50, seed=3)
    path = tmp_path / "live.jsonl"
    synth.main(["--n", "50", "--seed", "3", "--out", str(path), "--live", "--format", "jsonl"])
    text = path.read_text()
    assert "NaN" in text and "acct_type" not in text
    back = dataset.read_raw(path)
    assert len(back) == 50 and len(back[0]) == 43
    assert back[0]["object_id"] == records[0]["object_id"]


def test_cli_writes_the_training_array(tmp_path):
    path = tmp_path / "synth.json"
    assert synth.main(["--n", "40", "--seed", "1", "--out", str(path)]) == 0
    assert path.read_text() == json.dumps(synth.generate_events(40, seed=1))
    labelled = dataset.load_labelled(path)
    assert len(labelled) == 40 and all("fraud" in r for r in labelled)


# ----------------------------------------------------------------------------------------------
# The example file for the scoring CLI
# ----------------------------------------------------------------------------------------------


def test_example_file_is_current_and_well_formed():
    path = ROOT / "test_script_examples.json"
    text = path.read_text()
    assert text == json.dumps(synth.make_examples(), indent=1) + "\n"  # rebuild: synth.py --examples
    examples = json.loads(text)
    assert 8 <= len(examples) <= 12
    assert all("acct_type" not in e for e in examples)
    assert len({e["object_id"] for e in examples}) == len(examples)
    sizes = Counter(len(e) for e in examples)
    assert sizes[43] >= 7 and sizes[38] >= 1
    assert "NaN" in text
    assert len(text) < 200_000
