"""db.py and schema.sql, on SQLite and on a real Postgres server (the `engine` fixture runs both).

Covers: the schema (idempotent, matching the code), upserts (resends, repeats within a batch,
reviews never erased, NaN and wrong types), reviews with optimistic concurrency, labels,
analysts, rejects, the dashboard queries, and the spool: ordered, exactly-once draining,
including a real Postgres server stopped while events are being written.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import multiprocessing
import random
import re
import sqlite3
import string
import threading
import time
import uuid

import numpy as np
import pytest
from sqlalchemy import inspect

import db
import exchange

T0 = 1_700_000_000.0  # a fixed 'now' (2023-11-14 22:13:20 UTC) for received times


def score(object_id, p=0.5, tier="medium", money=100.0, version="m1", reasons=("short description",)):
    """A score dict as predict.score_records returns it."""
    return {"object_id": object_id, "fraud_probability": p, "risk_tier": tier, "expected_loss": round(p * money, 2),
            "money_at_stake": money, "reasons": list(reasons), "model_version": version}


def raw(object_id, **fields):
    """A live record (43 keys, as the stream sends it: NaN for missing numbers)."""
    record = {
        "object_id": object_id, "approx_payout_date": 1_300_432_400, "body_length": 1200, "channels": 8,
        "country": "US", "currency": "USD", "delivery_method": 0.0, "description": "<p>A gala</p>",
        "email_domain": "gmail.com", "event_created": 1_299_000_000, "event_end": 1_300_000_000,
        "event_published": 1_299_100_000.0, "event_start": 1_299_990_000, "fb_published": 0,
        "gts": 250.5, "has_analytics": 0, "has_header": float("nan"), "has_logo": 1, "listed": "y",
        "name": "Spring Gala", "name_length": 11, "num_order": 3, "num_payouts": 0,
        "org_desc": "", "org_facebook": 5.0, "org_name": "Gala Org", "org_twitter": float("nan"),
        "payee_name": "", "payout_type": "ACH",
        "previous_payouts": [{"name": "x", "created": "2010-01-01 00:00:00", "amount": 10.0}],
        "sale_duration": 10.0, "sale_duration2": 11, "show_map": 1,
        "ticket_types": [{"event_id": object_id, "cost": 25.0, "availability": 1, "quantity_total": 100,
                          "quantity_sold": 10}],
        "user_age": 300, "user_created": 1_270_000_000, "user_type": 3, "venue_address": "1 Main St",
        "venue_country": "US", "venue_latitude": 40.7, "venue_longitude": -74.0, "venue_name": "Hall",
        "venue_state": "NY",
    }
    record.update(fields)
    return record


# ---------------------------------------------------------------------------- configuration

def test_database_url_defaults_to_sqlite_under_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert db.database_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'fraud.db'}"


@pytest.mark.parametrize("given, expected", [
    ("postgres://u:p@h:5432/d", "postgresql://u:p@h:5432/d"),
    ("postgresql://u@h/d", "postgresql://u@h/d"),
    ("sqlite:////data/x.db", "sqlite:////data/x.db"),
])
def test_database_url_from_environment(given, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", given)
    assert db.database_url(tmp_path) == expected


def test_database_url_refuses_unknown_schemes(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://u@h/d")
    with pytest.raises(ValueError, match="mysql"):
        db.database_url(tmp_path)


@pytest.mark.parametrize("name, value, message", [
    # psycopg2 takes whole seconds: 0.5 became 0, which it takes as "wait forever".
    ("DB_CONNECT_TIMEOUT", "0.5", "DB_CONNECT_TIMEOUT='0.5' is not a whole number of at least 1"),
    ("DB_CONNECT_TIMEOUT", "0", "DB_CONNECT_TIMEOUT='0' is not a whole number of at least 1"),
    ("DB_MAX_OVERFLOW", "-5", "DB_MAX_OVERFLOW='-5' is not a whole number of at least 0"),  # RecursionError
    ("DB_POOL_SIZE", "abc", "DB_POOL_SIZE='abc' is not a whole number of at least 1"),
    ("DB_POOL_TIMEOUT", "-1", "DB_POOL_TIMEOUT='-1' is not a whole number of at least 1"),
])
def test_db_settings_that_cannot_be_used_stop_the_start_naming_them(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match="fraud-triage cannot start: ") as stopped:
        db.make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    assert message in str(stopped.value)


def test_sqlite_busy_timeout_setting_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("DB_BUSY_TIMEOUT_MS", "soon")
    with pytest.raises(SystemExit, match="DB_BUSY_TIMEOUT_MS='soon' is not a whole number of at least 0"):
        db.make_engine(f"sqlite:///{tmp_path / 'f.db'}")


def test_sqlite_engine_uses_wal_and_foreign_keys(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sub' / 'f.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_schema_drops_nothing_but_old_indexes_and_leaves_no_placeholder(dialect):
    statements = db.schema_statements(dialect)
    creates = [s for s in statements if s.upper().startswith("CREATE")]
    drops = [s for s in statements if s.upper().startswith("DROP")]
    assert creates and len(creates) + len(drops) == len(statements)
    assert all("IF NOT EXISTS" in s.upper() for s in creates)
    assert all(re.fullmatch(r"DROP INDEX IF EXISTS \w+", s) for s in drops), drops
    assert not any("{{" in s or "DROP" in s.upper() for s in creates)


def test_unreachable_postgres_is_unavailable_not_a_crash(tmp_path):
    engine = db.make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    assert db.ping(engine) is False
    with pytest.raises(db.DatabaseUnavailable):
        db.save_scores(engine, [(raw(1), score(1))])
    writer = db.ScoreWriter(engine, db.Spool(tmp_path / "spool"))
    assert writer.write([(raw(1), score(1))]) == "spooled"
    assert writer.spool.depth() == 1


# ---------------------------------------------------------------------------- schema

def test_schema_columns_match_the_code(engine):
    columns = {c["name"] for c in inspect(engine).get_columns("predictions")}
    assert columns == {c.name for c in db.PREDICTIONS.columns}
    # the 44 keys of the training shape (object_id is the key) plus the later feed's sequence_number
    assert len({"object_id", *db.FIELD_TYPES}) == 45 and set(db.FIELD_TYPES) <= columns
    indexes = {i["name"] for i in inspect(engine).get_indexes("predictions")}
    assert {"ix_predictions_tier_loss", "ix_predictions_first_received", "ix_predictions_status"} <= indexes


def test_the_histogram_reads_an_index_not_the_table(engine):
    """Split by tier, the histogram read every 13 KB row (300 ms at 100,000 events on SQLite)
    until an index on (fraud_probability, risk_tier) covered it: the plan says which it reads."""
    from sqlalchemy import event

    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, context, many: statements.append((sql, params)))
    db.probability_histogram(engine, bins=20)
    sql, params = next((q, p) for q, p in statements if "GROUP BY" in q)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "COVERING INDEX ix_predictions_probability_tier" in plan, plan
        else:  # Postgres picks a plan by its statistics; the index must at least exist
            names = {i["name"] for i in inspect(engine).get_indexes("predictions")}
            assert "ix_predictions_probability_tier" in names and "ix_predictions_probability" not in names


def test_schema_applies_twice_without_losing_data(engine):
    db.save_scores(engine, [(raw(1), score(1))])
    db.add_review(engine, [1], "flagged_fraud", "ann")
    db.init_db(engine)
    db.init_db(engine)
    assert db.count_predictions(engine) == 1
    assert db.get_prediction(engine, 1)["review_status"] == "flagged_fraud"
    assert len(db.reviews_for(engine, 1)) == 1


# ---------------------------------------------------------------------------- storing scores

def test_resend_is_one_row_counted_twice(engine):
    assert db.save_scores(engine, [(raw(7, name="First"), score(7))], received_at=T0) == 1
    assert db.save_scores(engine, [(raw(7, name="Second"), score(7, p=0.9, tier="high"))], received_at=T0 + 60) == 1
    row = db.get_prediction(engine, 7)
    assert db.count_predictions(engine) == 1
    assert row["times_received"] == 2
    assert (row["first_received_at"], row["last_received_at"]) == (T0, T0 + 60)
    assert row["name"] == "Second" and row["raw_payload"]["name"] == "Second"
    assert (row["fraud_probability"], row["risk_tier"]) == (0.9, "high")


def test_repeats_within_one_batch_collapse_without_loss(engine):
    batch = [(raw(1, name="a"), score(1)), (raw(2), score(2)), (raw(1, name="b"), score(1, p=0.8, tier="high"))]
    assert db.save_scores(engine, batch, received_at=T0) == 2
    first = db.get_prediction(engine, 1)
    assert first["times_received"] == 2 and first["name"] == "b" and first["risk_tier"] == "high"
    assert db.get_prediction(engine, 2)["times_received"] == 1
    db.save_scores(engine, batch, received_at=T0 + 1)
    assert db.get_prediction(engine, 1)["times_received"] == 4
    assert db.count_predictions(engine) == 2


def test_resend_never_erases_a_review(engine):
    db.save_scores(engine, [(raw(5), score(5))], received_at=T0)
    decision = db.add_review(engine, [5], "flagged_fraud", "ann", note="fake venue")
    db.save_scores(engine, [(raw(5), score(5, p=0.1, tier="low", version="m2"))], received_at=T0 + 10)
    row = db.get_prediction(engine, 5)
    assert row["review_status"] == "flagged_fraud"
    assert row["last_review_id"] == decision["review_ids"][5]
    assert row["first_received_at"] == T0 and row["times_received"] == 2
    assert (row["risk_tier"], row["model_version"]) == ("low", "m2")


def test_a_resend_written_differently_is_the_same_content(engine):
    """A decided event sent again is reviewed again only when the organiser's content changed:
    not for a whole number written as a float (the stream sends gappy integer columns as
    floats), a missing value given or left out, another key order, the 38-key feed's shape, its
    sequence counter, the label, or sales grown since (tickets sold, payouts made)."""
    first = raw(5, num_order=0, has_header=None)
    db.save_scores(engine, [(first, score(5))], received_at=T0)
    db.add_review(engine, [5], "flagged_fraud", "ann")
    ticket = {**first["ticket_types"][0], "cost": 25, "quantity_sold": 90}
    same = {**{key: first[key] for key in reversed(list(first))}, "user_age": 300.0, "delivery_method": 0,
            "event_created": 1_299_000_000.0, "ticket_types": [ticket], "sequence_number": 77, "acct_type": "premium"}
    del same["has_header"], same["sale_duration2"], same["gts"], same["approx_payout_date"]  # the 38-key feed
    same["num_order"], same["num_payouts"], same["org_twitter"] = 41, 3.0, None
    db.save_scores(engine, [(same, score(5))], received_at=T0 + 10)
    row = db.get_prediction(engine, 5)
    assert (row["review_status"], row["content_changed_at"], row["times_received"]) == ("flagged_fraud", None, 2)
    for changed in ({"name": "Spring Gala!"}, {"user_age": 300.5}, {"has_header": 0},
                    {"ticket_types": [{**ticket, "cost": 26}]}):
        db.add_review(engine, [5], "flagged_fraud", "ann")
        db.save_scores(engine, [({**same, **changed}, score(5))], received_at=T0 + 20)
        assert db.get_prediction(engine, 5)["review_status"] == "unreviewed", changed


def test_events_digested_by_an_earlier_form_are_compared_from_their_next_send(engine):
    """Digests of an earlier form (no prefix) are not compared with this form's: a decided event
    stays decided on its first send after the upgrade, whatever it says, and is compared after."""
    db.save_scores(engine, [(raw(5), score(5))], received_at=T0)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE predictions SET payload_digest = '0123456789abcdef0123456789abcdef'")
    db.add_review(engine, [5], "cleared", "ann")
    db.save_scores(engine, [(raw(5, user_age=300.0), score(5))], received_at=T0 + 1)
    row = db.get_prediction(engine, 5)
    assert row["review_status"] == "cleared" and row["payload_digest"].startswith(db.DIGEST_FORM)
    db.save_scores(engine, [(raw(5, name="edited"), score(5))], received_at=T0 + 2)
    assert db.get_prediction(engine, 5)["review_status"] == "unreviewed"


def test_what_a_digest_leaves_out_covers_the_fields_known_only_as_tickets_sell():
    import features

    assert set(features.LEAKY_FIELDS) <= db.DIGEST_SKIPPED_KEYS
    # the upsert's SQL literals for the digest's form agree with it
    assert str(db._DIGEST_FORM_SQL) == f"'{db.DIGEST_FORM}'" and int(str(db._DIGEST_FORM_CHARS)) == len(db.DIGEST_FORM)


def test_model_change_keeps_the_previous_score(engine):
    db.save_scores(engine, [(raw(3), score(3, p=0.7, tier="high", version="m1"))])
    db.save_scores(engine, [(raw(3), score(3, p=0.7, tier="high", version="m1"))])
    assert db.get_prediction(engine, 3)["previous_model_version"] is None  # same model: nothing to keep
    db.save_scores(engine, [(raw(3), score(3, p=0.2, tier="low", version="m2"))])
    row = db.get_prediction(engine, 3)
    assert (row["previous_fraud_probability"], row["previous_risk_tier"], row["previous_model_version"]) == (
        0.7, "high", "m1")
    assert db.save_rescores(engine, [score(3, p=0.4, tier="medium", version="m3")]) == 1
    row = db.get_prediction(engine, 3)
    assert (row["model_version"], row["previous_model_version"]) == ("m3", "m2")
    assert row["previous_fraud_probability"] == 0.2
    assert row["times_received"] == 3  # three sends; a rescore is not a resend


def test_a_large_batch_of_new_and_resent_events_stores_each_row(engine):
    # More rows than one round trip of Postgres's batched executemany (100) and a mix of new
    # events, resends under a new model and a reviewed event: each row must come out as if
    # it had been sent on its own.
    db.save_scores(engine, [(raw(i, name=f"old {i}"), score(i, p=0.6, version="m1")) for i in range(0, 250, 2)],
                   received_at=T0)
    db.add_review(engine, [4, 6], "cleared", "ann")
    batch = [(raw(i, name=f"old {i}" if i == 6 else f"new {i}\t\\ '; --"), score(i, p=i / 1000, tier="low", version="m2"))
             for i in range(250)]
    assert db.save_scores(engine, batch, received_at=T0 + 5) == 250
    assert db.count_predictions(engine) == 250
    # 4 came back with other content: its decision was on the old one, so it is to review again;
    # 6 came back as it was, and keeps its decision
    assert [(db.get_prediction(engine, i)["review_status"], db.get_prediction(engine, i)["content_changed_at"])
            for i in (4, 6)] == [("unreviewed", T0 + 5), ("cleared", None)]
    for i in (0, 4, 101, 199, 248, 249):
        row = db.get_prediction(engine, i)
        resent = i % 2 == 0
        assert row["name"] == f"new {i}\t\\ '; --" and row["raw_payload"]["name"] == row["name"]
        assert (row["fraud_probability"], row["model_version"]) == (i / 1000, "m2")
        assert row["times_received"] == (2 if resent else 1)
        assert row["first_received_at"] == (T0 if resent else T0 + 5) and row["last_received_at"] == T0 + 5
        assert (row["previous_fraud_probability"], row["previous_model_version"]) == (
            (0.6, "m1") if resent else (None, None))
        assert row["review_status"] == "unreviewed"
        assert row["content_changed_at"] == (T0 + 5 if resent else None)


def test_nan_is_stored_as_null_and_the_payload_round_trips(engine):
    record = raw(11, gts=float("nan"), sale_duration=float("inf"), delivery_method=float("nan"),
                 ticket_types=[{"event_id": 11, "cost": float("nan"), "quantity_total": 5}])
    db.save_scores(engine, [(record, score(11))])
    row = db.get_prediction(engine, 11)
    assert row["gts"] is None and row["sale_duration"] is None and row["has_header"] is None
    assert row["org_facebook"] == 5 and row["org_twitter"] is None and row["delivery_method"] is None
    assert row["ticket_types"] == [{"event_id": 11, "cost": None, "quantity_total": 5}]
    expected = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    expected["ticket_types"] = [{"event_id": 11, "cost": None, "quantity_total": 5}]
    assert row["raw_payload"] == expected
    assert row["reasons"] == ["short description"]
    assert row["country"] == "US" and row["event_created"] == 1_299_000_000
    assert row["event_published"] == 1_299_100_000.0


@pytest.mark.parametrize("record", [
    {"a": 1.5, "b": "x", "c": [{"d": 2}]},                      # no NaN: stored as it is
    {"a": float("nan"), "b": float("-inf"), "c": [{"d": 2}]},   # NaN at the top only: shallow copy
    {"a": 1, "c": [{"d": float("nan")}], "e": (1, 2.0)},        # nested NaN and a tuple: deep walk
    {"a": np.float64(2.5), "b": np.float64("nan"), "f": np.int64(3), 4: "int key"},  # odd types
])
def test_the_fast_payload_equals_the_deep_walk(record):
    """_json_payload skips the deep copy when it can; the JSON text is the same either way."""
    safe, payload = db._json_payload(record)
    assert payload == db._dumps(db._json_safe(record))
    assert db._dumps(safe) == payload


@pytest.mark.parametrize("value", [
    {"a": 1.5, "b": "x<>&'\"\\/\n\t\x7f", "c": [{"d": 2, "e": None, "f": True}], "g": -0.0, "h": 1e300},
    {"name": "Fête à İstanbul \u2028", "n": 10**30, "t": (1, 2.0)},  # non-ASCII, a 100-bit int, a tuple
    ["caf\u00e9", {"\u00fc": 1}], {"s": "\ud800 lone surrogate"}, {1: "int key"}, "plain", 7, None,
])
def test_dumps_writes_what_the_standard_strict_encoder_writes(value):
    """orjson's fast path gives the same JSON as the ASCII strict encoder, or hands over to it."""
    text = db._dumps(value)
    assert text.isascii() and json.loads(text) == json.loads(db._JSON_ENCODER.encode(value))
    assert text == db._JSON_ENCODER.encode(value) or "\x7f" in text or "e-" in text


def test_dumps_writes_nan_as_the_safe_copy_does():
    record = {"a": [1.0, float("nan")], "b": {"c": float("inf")}}
    assert db._dumps(record) == db._JSON_ENCODER.encode(db._json_safe(record)) == '{"a":[1.0,null],"b":{"c":null}}'


def test_wrong_types_become_null_and_the_payload_keeps_them(engine):
    record = raw(12, user_age="abc", name=123, body_length=10**30, event_created=1.5, ticket_types="none",
                 country=["US"], description="nul\x00here \ud800", has_logo=True, org_name="")
    db.save_scores(engine, [(record, score(12))])
    row = db.get_prediction(engine, 12)
    assert row["user_age"] is None and row["name"] is None and row["body_length"] is None
    assert row["event_created"] is None and row["ticket_types"] is None and row["country"] is None
    assert row["has_logo"] == 1 and row["org_name"] is None
    assert "\x00" not in row["description"] and row["description"].startswith("nulhere")
    assert row["raw_payload"]["user_age"] == "abc" and row["raw_payload"]["body_length"] == 10**30
    assert row["raw_payload"]["description"] == "nul\x00here \ud800"


def test_later_feed_shape_and_label_are_kept(engine):
    later = {k: v for k, v in raw(21).items() if k not in ("gts", "num_order", "num_payouts")}
    db.save_scores(engine, [(dict(later, sequence_number=42), score(21)),
                            (raw(22, acct_type="fraudster_event"), score(22))], source="test_set")
    assert db.get_prediction(engine, 21)["sequence_number"] == 42
    assert db.get_prediction(engine, 21)["gts"] is None
    db.save_scores(engine, [(raw(22), score(22))])  # the stream resends it without the label
    row = db.get_prediction(engine, 22)
    assert row["acct_type"] == "fraudster_event" and row["source"] == "stream"


@pytest.mark.parametrize("items, message", [
    ([({"name": "no id"}, {**score(1), "object_id": None})], "object_id"),
    ([(raw("abc"), {**score(1), "object_id": "abc"})], "object_id"),
    ([(raw(1), score(2))], "does not match"),
    ([(raw(1), score(1, p=1.5))], r"\[0, 1\]"),
    ([(raw(1), score(1, tier="extreme"))], "risk_tier"),
    ([(raw(1), {**score(1), "expected_loss": float("nan")})], "expected_loss"),
    ([("not a pair",)], "pair"),
])
def test_unusable_items_raise_value_error_and_store_nothing(engine, items, message):
    with pytest.raises(ValueError, match=message):
        db.save_scores(engine, [(raw(99), score(99))] + items)
    assert db.count_predictions(engine) == 0


def test_object_id_as_float_or_digits_is_accepted(engine):
    db.save_scores(engine, [({"object_id": 5.0}, {**score(5), "object_id": "5"})])
    assert db.get_prediction(engine, "5")["object_id"] == 5


def test_thousands_of_items_in_one_call(engine):
    items = [(raw(i), score(i, p=(i % 100) / 100)) for i in range(1, 2001)]
    started = time.perf_counter()
    assert db.save_scores(engine, items) == 2000
    db.save_scores(engine, items[:500])
    elapsed = time.perf_counter() - started
    assert db.count_predictions(engine) == 2000
    assert db.get_prediction(engine, 250)["times_received"] == 2
    assert db.get_prediction(engine, 1500)["times_received"] == 1
    assert elapsed < 30, f"2,500 upserts took {elapsed:.1f}s"


# ---------------------------------------------------------------------------- reviews

def test_reviews_are_an_append_only_trail(engine):
    db.save_scores(engine, [(raw(1), score(1)), (raw(2), score(2))])
    db.add_review(engine, [1, 2], "needs_info", "ann")
    db.add_review(engine, [1], "note", "bob", note="called the organiser")
    db.add_review(engine, [1], "cleared", "bob")
    trail = db.reviews_for(engine, 1)
    assert [r["action"] for r in trail] == ["cleared", "note", "needs_info"]
    assert trail[1]["note"] == "called the organiser" and trail[0]["analyst"] == "bob"
    assert db.get_prediction(engine, 1)["review_status"] == "cleared"
    assert db.get_prediction(engine, 1)["last_review_id"] == trail[0]["id"]
    assert db.get_prediction(engine, 2)["review_status"] == "needs_info"


def test_a_note_never_changes_the_status(engine):
    db.save_scores(engine, [(raw(1), score(1))])
    flagged = db.add_review(engine, [1], "flagged_fraud", "ann")
    db.add_review(engine, [1], "note", "bob", note="hm", expected_review_ids={1: None})
    row = db.get_prediction(engine, 1)
    assert row["review_status"] == "flagged_fraud" and row["last_review_id"] == flagged["review_ids"][1]


def test_who_has_an_event_open(engine):
    db.save_scores(engine, [(raw(i), score(i)) for i in (1, 2, 3)])
    db.note_open(engine, 1, "ann", now=T0 - 2 * 86400)  # two days old: deleted by the next write
    db.note_open(engine, 1, "bob", now=T0 - 60)
    db.note_open(engine, 1, "bob", now=T0)  # opened again: one row, the latest time
    db.note_open(engine, 1, "cy", now=T0 - 30)
    db.note_open(engine, 2, "bob", now=T0 - 600)
    db.note_open(engine, 3, "ann", now=T0)
    opens = db.open_by_others(engine, [1, 2, 3, "junk"], "ann", since=T0 - 300)
    assert opens == {1: [{"analyst": "bob", "opened_at": T0}, {"analyst": "cy", "opened_at": T0 - 30}]}
    assert db.open_by_others(engine, [2], "ann", since=T0 - 900) == {2: [{"analyst": "bob", "opened_at": T0 - 600}]}
    assert db.open_by_others(engine, [1], "bob", since=0) == {1: [{"analyst": "cy", "opened_at": T0 - 30}]}
    assert db.open_by_others(engine, [], "ann", since=0) == {}
    # a note leaves the event open; a decision ends its analyst's opening, not a colleague's
    db.add_review(engine, [1, 2], "note", "bob", note="looking")
    assert set(db.open_by_others(engine, [1, 2], "ann", since=0)) == {1, 2}
    db.add_review(engine, [1, 2], "needs_info", "bob")
    assert db.open_by_others(engine, [1, 2], "ann", since=0) == {1: [{"analyst": "cy", "opened_at": T0 - 30}]}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM event_opens WHERE analyst = 'ann'").scalar_one() == 1


def test_an_opening_lasts_while_its_page_says_it_is_open(engine):
    """A page says it is still open (seen_at) and when it is left; leaving ends only its own
    opening, not a later page's; rows are kept a day from when they were last seen."""
    db.save_scores(engine, [(raw(i), score(i)) for i in (1, 2)])
    opened = db.note_open(engine, 1, "bob", now=T0)
    assert opened == T0
    shown = lambda since: db.open_by_others(engine, [1], "ann", since=since)  # noqa: E731
    assert shown(T0 + 300) == {}                                           # not seen for 5 minutes
    assert db.note_open(engine, 1, "bob", now=T0 + 400, opened_at=opened) == T0  # the page is still open
    assert shown(T0 + 300) == {1: [{"analyst": "bob", "opened_at": T0}]}  # shown, opened when it was
    assert db.note_closed(engine, "bob", 1, T0 + 1) == 0               # another page's word: kept
    assert db.note_closed(engine, "ann", 1, T0) == 0
    assert shown(0) == {1: [{"analyst": "bob", "opened_at": T0}]}
    assert db.note_closed(engine, "bob", 1, T0) == 1                    # left: gone at once
    assert shown(0) == {}
    # a page reloaded: the old page's word comes after the new page opened it, and ends nothing
    later = db.note_open(engine, 1, "bob", now=T0 + 500)
    assert db.note_closed(engine, "bob", 1, opened) == 0 and shown(0)[1][0]["opened_at"] == later
    # a page shown again from the browser's history opens it again, as when it was first opened
    db.note_closed(engine, "bob", 1, later)
    db.note_open(engine, 1, "bob", now=T0 + 600, opened_at=later)
    assert shown(T0 + 599) == {1: [{"analyst": "bob", "opened_at": later}]}
    # a page open for two days is kept while it says so; one not seen for a day is deleted
    db.note_open(engine, 2, "cy", now=T0 - 2 * 86400)
    db.note_open(engine, 2, "cy", now=T0 - 60, opened_at=T0 - 2 * 86400)
    db.note_open(engine, 2, "dee", now=T0 - 2 * 86400)
    db.note_open(engine, 1, "ann", now=T0)  # any write deletes the rows not seen for a day
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT analyst FROM event_opens WHERE object_id = 2").scalars().all() == ["cy"]
    # signing out ends every opening of the analyst's, and no colleague's
    db.note_open(engine, 1, "cy", now=T0)
    assert db.note_closed(engine, "cy") == 2
    assert set(db.open_by_others(engine, [1, 2], "bob", since=0)) == {1}


def test_openings_recorded_before_pages_said_they_were_open_are_read(engine):
    """A database made before seen_at gets the column; its openings count from when opened."""
    db.save_scores(engine, [(raw(1), score(1))])
    with engine.begin() as conn:  # as the release before made it
        conn.exec_driver_sql("ALTER TABLE event_opens DROP COLUMN seen_at")
        conn.exec_driver_sql(f"INSERT INTO event_opens (object_id, analyst, opened_at) VALUES (1, 'bob', {T0})")
    db.init_db(engine)
    assert db.open_by_others(engine, [1], "ann", since=T0 - 1) == {1: [{"analyst": "bob", "opened_at": T0}]}
    assert db.open_by_others(engine, [1], "ann", since=T0 + 1) == {}
    db.note_open(engine, 1, "bob", now=T0 + 60, opened_at=T0)
    assert db.open_by_others(engine, [1], "ann", since=T0 + 1) == {1: [{"analyst": "bob", "opened_at": T0}]}


def test_next_to_review_is_the_costliest_unreviewed_event_nobody_else_has_open(engine):
    losses = {1: 500.0, 2: 900.0, 3: 700.0, 4: 800.0, 5: 950.0, 6: 990.0}
    db.save_scores(engine, [(raw(i, currency="GBP" if i != 3 else "USD"),
                             {**score(i, tier="high" if i < 6 else "medium"), "expected_loss": loss})
                            for i, loss in losses.items()])
    db.add_review(engine, [5], "needs_info", "ann")  # decided: not next
    nxt = lambda after, **kw: (db.next_to_review(engine, "high", kw or None, after, "ann", T0 - 900) or {}).get("object_id")  # noqa: E731
    assert nxt(1) == 2 and nxt(2) == 4
    db.note_open(engine, 2, "bob", now=T0)  # a colleague has it open
    db.note_open(engine, 4, "ann", now=T0)  # her own opening does not hide it from her
    assert nxt(1) == 4
    db.note_open(engine, 4, "cy", now=T0 - 3600)  # opened long ago: not busy
    assert nxt(1) == 4 and nxt(4) == 3
    assert nxt(1, currency="USD") == 3 and nxt(3, currency="USD") is None
    db.note_open(engine, 3, "bob", now=T0 + 5)  # bob has a second event open: both are his
    assert nxt(1) == 4 and nxt(4) == 1
    db.note_closed(engine, "bob", 2, T0)  # he left the first one's page: it is on offer again
    assert nxt(1) == 2 and nxt(2) == 4
    assert db.next_to_review(engine, "medium", None, 1, "ann", T0 - 900) == {"object_id": 6, "name": "Spring Gala"}


def test_stale_decision_is_a_conflict_not_an_overwrite(engine):
    db.save_scores(engine, [(raw(1), score(1)), (raw(2), score(2))])
    seen = {1: db.get_prediction(engine, 1)["last_review_id"], 2: None}  # ann opens the queue
    bob = db.add_review(engine, [1], "cleared", "bob")                   # bob decides first
    ann = db.add_review(engine, [1, 2, 404], "flagged_fraud", "ann", expected_review_ids=seen)
    assert ann["applied"] == [2] and ann["missing"] == [404]
    [conflict] = ann["conflicts"]
    assert (conflict["object_id"], conflict["current_status"], conflict["by"]) == (1, "cleared", "bob")
    assert conflict["at"] > 0
    assert db.get_prediction(engine, 1)["review_status"] == "cleared"
    assert [r["analyst"] for r in db.reviews_for(engine, 1)] == ["bob"]  # nothing appended for the refusal
    retry = db.add_review(engine, [1], "flagged_fraud", "ann",
                          expected_review_ids={"1": str(bob["review_ids"][1])})  # form values are strings
    assert retry["applied"] == [1]


def test_a_decision_on_a_score_that_changed_since_is_a_conflict(engine):
    p, money = 0.1 + 0.2, 1234.5678901234567  # floats a round trip through text must keep exactly
    db.save_scores(engine, [(raw(1), score(1, p=p, money=money)), (raw(2), score(2, p=p, money=money))])
    row = db.get_prediction(engine, 1)
    seen = (row["fraud_probability"], row["money_at_stake"])
    assert seen == (p, money)
    # as a form carries it (repr), and as a server printing 15 digits would have returned it
    as_text = tuple(float(repr(v)) for v in seen), tuple(float(f"{v:.15g}") for v in seen)
    assert as_text[1] != seen  # not the same float: the check must allow for it
    db.save_scores(engine, [(raw(2), score(2, p=0.9, tier="high", money=5e6))])  # sent again, scored anew
    result = db.add_review(engine, [1, 2], "cleared", "ann", expected_review_ids={1: None, 2: None},
                           expected_scores={1: as_text[1], 2: as_text[0]})
    assert result["applied"] == [1]
    [conflict] = result["conflicts"]
    assert (conflict["object_id"], conflict["last_review_id"], conflict["risk_tier"]) == (2, None, "high")
    assert (conflict["fraud_probability"], conflict["money_at_stake"]) == (0.9, 5e6)
    assert db.get_prediction(engine, 2)["review_status"] == "unreviewed" and db.reviews_for(engine, 2) == []
    assert db.add_review(engine, [2], "cleared", "ann", expected_scores={2: None})["applied"] == [2]


def test_simultaneous_decisions_exactly_one_wins(engine):
    db.save_scores(engine, [(raw(1), score(1))])
    barrier, results = threading.Barrier(4), []

    def decide(name):
        barrier.wait()
        results.append(db.add_review(engine, [1], "flagged_fraud", name, expected_review_ids={1: None}))

    threads = [threading.Thread(target=decide, args=(f"analyst{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(len(r["applied"]) for r in results) == 1
    assert sum(len(r["conflicts"]) for r in results) == 3
    assert len(db.reviews_for(engine, 1)) == 1


def test_review_input_is_validated(engine):
    db.save_scores(engine, [(raw(1), score(1))])
    with pytest.raises(ValueError, match="action"):
        db.add_review(engine, [1], "delete", "ann")
    with pytest.raises(ValueError, match="analyst"):
        db.add_review(engine, [1], "cleared", " ")
    with pytest.raises(ValueError, match="event id"):
        db.add_review(engine, ["1; DROP TABLE predictions"], "cleared", "ann")
    assert db.count_predictions(engine) == 1


def test_export_labels_uses_the_latest_decision(engine):
    db.save_scores(engine, [(raw(i), score(i)) for i in (1, 2, 3, 4)])
    db.add_review(engine, [1], "flagged_fraud", "ann")
    db.add_review(engine, [2], "flagged_fraud", "ann")
    db.add_review(engine, [2], "cleared", "bob")
    db.add_review(engine, [3], "needs_info", "ann")
    db.add_review(engine, [4], "cleared", "ann")
    db.add_review(engine, [4], "note", "bob", note="still cleared")
    labels = db.export_labels(engine)
    assert [(x["object_id"], x["fraud"], x["action"], x["analyst"]) for x in labels] == [
        (1, True, "flagged_fraud", "ann"), (2, False, "cleared", "bob"), (4, False, "cleared", "ann")]
    assert all(x["at"] > 0 for x in labels)
    # Each label carries its event as stored, for training on events it has not seen.
    assert [x["event"]["object_id"] for x in labels] == [1, 2, 4]
    assert labels[0]["event"] == db.get_prediction(engine, 1)["raw_payload"]


# ---------------------------------------------------------------------------- analysts and rejects

def test_analysts(engine):
    analyst_id = db.create_analyst(engine, "ann", "pbkdf2:hash")
    assert db.get_analyst(engine, "ann")["id"] == analyst_id
    assert db.get_analyst_by_id(engine, analyst_id)["password_hash"] == "pbkdf2:hash"
    assert db.get_analyst(engine, "nobody") is None and db.get_analyst_by_id(engine, "x") is None
    with pytest.raises(ValueError, match="already exists"):
        db.create_analyst(engine, "ann", "other")
    # names ignore case: "ANN" is ann, and cannot be made beside her
    assert db.get_analyst(engine, "ANN")["id"] == analyst_id
    with pytest.raises(ValueError, match="already exists"):
        db.create_analyst(engine, "Ann", "other")
    # two accounts differing only in case (made before names ignored case): each exact name
    # finds its own account, and a third spelling finds neither rather than a guess
    with engine.begin() as conn:
        conn.execute(db.ANALYSTS.insert().values(name="Ann", password_hash="h2", created_at=1.0))
    assert db.get_analyst(engine, "ann")["id"] == analyst_id
    assert db.get_analyst(engine, "Ann")["password_hash"] == "h2"
    assert db.get_analyst(engine, "aNN") is None
    other = db.create_analyst(engine, "Émile", "h3")  # not ASCII: the exact name still matches
    assert db.get_analyst(engine, "Émile")["id"] == other


def test_analysts_get_new_passwords_and_are_disabled_not_deleted(engine):
    ann = db.create_analyst(engine, "ann", "h1")
    db.create_analyst(engine, "bob", "hb")
    assert db.update_analyst(engine, "ANN", password_hash="h2") == "ann"  # found as sign-in finds her
    assert db.get_analyst_by_id(engine, ann)["password_hash"] == "h2"
    assert db.update_analyst(engine, "ann", disabled=True) == "ann"
    first = db.get_analyst(engine, "ann")["disabled_at"]
    assert first is not None and db.get_analyst(engine, "bob")["disabled_at"] is None
    db.update_analyst(engine, "ann", disabled=True)  # again: keeps when she was first disabled
    assert db.get_analyst(engine, "ann")["disabled_at"] == first
    assert [(a["name"], a["disabled_at"]) for a in db.list_analysts(engine)] == [("ann", first), ("bob", None)]
    assert "password_hash" not in db.list_analysts(engine)[0]
    db.update_analyst(engine, "ann", disabled=False)
    assert db.get_analyst(engine, "ann")["disabled_at"] is None
    db.update_analyst(engine, "ann", disabled=True)
    with pytest.raises(ValueError, match="already exists"):  # a disabled name is still taken
        db.create_analyst(engine, "Ann", "h3")
    for name, change in (("nobody", {"disabled": True}), ("ann", {})):
        with pytest.raises(ValueError):
            db.update_analyst(engine, name, **change)


def test_init_db_adds_the_columns_a_database_made_earlier_lacks(db_url):
    """A database made before analysts could be disabled gets the column, and keeps its rows."""
    engine = db.make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE analysts (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
                                 "password_hash TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)")
            conn.exec_driver_sql("INSERT INTO analysts VALUES (7, 'old', 'h', 1.0)")
        db.init_db(engine)
        db.init_db(engine)  # and again, as every start does
        assert "disabled_at" in {c["name"] for c in inspect(engine).get_columns("analysts")}
        assert db.get_analyst(engine, "old")["disabled_at"] is None
        assert db.update_analyst(engine, "old", disabled=True) == "old"
        assert db.get_analyst_by_id(engine, 7)["disabled_at"] is not None
    finally:
        engine.dispose()


def test_events_stored_before_content_digests_are_compared_from_their_next_send(engine):
    """A database made before payload digests gets the columns; its stored events have no digest,
    so their next send (whatever it says) only records one, and the one after is compared."""
    db.save_scores(engine, [(raw(5, name="as stored"), score(5))], received_at=T0)
    db.add_review(engine, [5], "cleared", "ann")
    with engine.begin() as conn:  # as the release before made it
        conn.exec_driver_sql("ALTER TABLE predictions DROP COLUMN payload_digest")
        conn.exec_driver_sql("ALTER TABLE predictions DROP COLUMN content_changed_at")
    db.init_db(engine)
    assert db.get_prediction(engine, 5)["payload_digest"] is None
    db.save_scores(engine, [(raw(5, name="as stored"), score(5))], received_at=T0 + 1)
    row = db.get_prediction(engine, 5)
    assert (row["review_status"], row["content_changed_at"]) == ("cleared", None) and row["payload_digest"]
    db.save_scores(engine, [(raw(5, name="edited"), score(5))], received_at=T0 + 2)
    assert (db.get_prediction(engine, 5)["review_status"], db.get_prediction(engine, 5)["content_changed_at"]) == (
        "unreviewed", T0 + 2)


def test_init_db_tolerates_another_process_adding_the_column_first(engine, monkeypatch):
    """Two processes starting at once on an older SQLite file both see the column missing; the
    second ALTER fails, and that is fine once the column is there."""
    real = db._column_names
    calls = []

    def stale_then_real(conn, table_name):
        calls.append(table_name)
        return set() if len(calls) == 1 else real(conn, table_name)  # the first look is stale

    monkeypatch.setattr(db, "_column_names", stale_then_real)
    db.init_db(engine)  # the ALTER fails (duplicate column), the second look finds it
    assert len(calls) == len(db.ADDED_COLUMNS) + 1
    db.create_analyst(engine, "ann", "h")
    assert db.update_analyst(engine, "ann", disabled=True) == "ann"  # and the transaction went on


def test_rejects_are_kept_truncated_newest_first(engine):
    db.record_reject(engine, "not JSON", b"{oops", "10.0.0.1")
    db.record_reject(engine, "too big", b"\x00" + b"x" * 10_000 + b"\xff")
    rejects = db.recent_rejects(engine, limit=10)
    assert [r["reason"] for r in rejects] == ["too big", "not JSON"]
    assert len(rejects[0]["body"]) == db.REJECT_BODY_LIMIT - 1  # NUL dropped, cut at 4 KB
    assert rejects[1]["body"] == "{oops" and rejects[1]["remote_addr"] == "10.0.0.1"
    assert len(db.recent_rejects(engine, limit=1)) == 1


# ---------------------------------------------------------------------------- dashboard queries

def seed_dashboard(engine, n=60):
    """n events with known tiers, money, currencies and statuses; returns their descriptions."""
    events = []
    for i in range(1, n + 1):
        tier = db.TIERS[i % 3]
        p = {"high": 0.8, "medium": 0.4, "low": 0.05}[tier] + (i % 7) / 100
        money = float(10 * (i % 11))
        currency = ("USD", "GBP", "CAD", "EUR")[i % 4]
        events.append({
            "object_id": 1000 + i, "tier": tier, "p": p, "money": money, "loss": round(p * money, 2),
            "currency": currency, "country": currency[:2], "name": f"Event {i} {'RAVE' if i % 5 == 0 else 'gala'}",
            "received": T0 + i * 3600, "acct_type": ("premium", "fraudster")[i % 2] if i % 10 == 0 else None})
    for e in events:
        record = raw(e["object_id"], currency=e["currency"], country=e["country"], name=e["name"],
                     event_created=int(T0 - e["object_id"]))
        if e["acct_type"]:
            record["acct_type"] = e["acct_type"]
        db.save_scores(engine, [(record, score(e["object_id"], p=e["p"], tier=e["tier"], money=e["money"]))],
                       received_at=e["received"], source="test_set" if e["acct_type"] else "stream")
    for e in events[::6]:
        db.add_review(engine, [e["object_id"]], "flagged_fraud", "ann")
        e["status"] = "flagged_fraud"
    for e in events:
        e.setdefault("status", "unreviewed")
    return events


def test_tier_summary(engine):
    events = seed_dashboard(engine)
    summary = db.tier_summary(engine)
    for tier in db.TIERS:
        mine = [e for e in events if e["tier"] == tier]
        assert summary[tier]["count"] == len(mine)
        assert summary[tier]["money_at_stake"] == pytest.approx(sum(e["money"] for e in mine))
        assert summary[tier]["expected_loss"] == pytest.approx(sum(e["loss"] for e in mine))
        assert summary[tier]["unreviewed"] == sum(e["status"] == "unreviewed" for e in mine)
    gbp = db.tier_summary(engine, {"currency": "gbp"})
    assert sum(t["count"] for t in gbp.values()) == sum(e["currency"] == "GBP" for e in events)


def test_queue_sorts_pages_and_counts(engine):
    events = seed_dashboard(engine)
    high = sorted((e for e in events if e["tier"] == "high"), key=lambda e: (e["loss"], e["object_id"]), reverse=True)
    page1, total = db.queue(engine, tier="high", per_page=7)
    page2, _ = db.queue(engine, tier="high", per_page=7, page=2)
    assert total == len(high)
    assert [r["object_id"] for r in page1 + page2] == [e["object_id"] for e in high[:14]]
    assert page1[0]["reasons"] == ["short description"] and "raw_payload" not in page1[0]
    rows, _ = db.queue(engine, sort="first_received_at", descending=False, per_page=3)
    assert [r["object_id"] for r in rows] == [1001, 1002, 1003]
    rows, _ = db.queue(engine, sort="event_created", per_page=2)
    assert [r["object_id"] for r in rows] == [1001, 1002]  # created later = smaller id here
    rows, total = db.queue(engine, sort="fraud_probability", per_page=500)
    assert total == 60 and [r["fraud_probability"] for r in rows] == sorted((e["p"] for e in events), reverse=True)
    assert db.queue(engine, tier="high", page=99)[0] == []


def test_search_ignores_case_beyond_ascii(engine):
    names = {1: "Café Müller Night", 2: "CAFÉ MÜLLER NIGHT", 3: "Istanbul ışık festivali", 4: "Ωmega Party",
             5: "Cafe Muller", 6: "Straße Fest"}
    db.save_scores(engine, [(raw(i, name=name), score(i)) for i, name in names.items()])
    found = lambda q: sorted(r["object_id"] for r in db.queue(engine, filters={"q": q}, per_page=50)[0])  # noqa: E731
    assert found("café müller") == [1, 2] == found("CAFÉ MÜLLER") == found("Café Müller")
    assert found("ωMEGA") == [4] and found("ışık") == [3]
    assert found("cafe") == [5]  # accents are letters of their own, as written
    assert found("straße") == [6]
    assert found("%é") == [] and found("_afé") == []  # wildcards stay literal beyond ASCII too


def test_search_and_currency_filter_take_what_the_stored_text_can_hold(engine):
    """A NUL in a search (stored text holds none) is not an error on Postgres; the currency
    filter reads the field as the conversion does, whatever whitespace surrounds the code."""
    currencies = {1: "GBP", 2: " gbp", 3: "GBP\n", 4: "\tGBP", 5: "\u00a0GBP", 6: "GBP\u3000", 7: "GBPX", 8: "USD"}
    db.save_scores(engine, [(raw(i, name=f"Night {i}", currency=c), score(i)) for i, c in currencies.items()])
    found = lambda **f: sorted(r["object_id"] for r in db.queue(engine, filters=f, per_page=50)[0])  # noqa: E731
    assert found(currency="GBP") == [1, 2, 3, 4, 5, 6]
    assert [i for i, c in currencies.items() if exchange.code_of(c) == "GBP"] == [1, 2, 3, 4, 5, 6]
    assert found(q="Nig\x00ht 3") == [3] and found(q="\x00") == list(currencies)
    assert db.tier_summary(engine, {"q": "a\x00"}) is not None


def test_organiser_and_domain_filters_match_exactly_and_digits_search_names_too(engine):
    """The event page's "events by this organiser" list: the same organiser (case and
    surrounding whitespace aside, beyond ASCII too), never one whose name contains it; the same
    email domain, or an address at it, never one ending in it. Digits search ids and names."""
    events = {1: ("Or Institute", "acme.com"), 2: ("OR INSTITUTE\u00a0", "ACME.com "), 3: ("Cor Institute", "notacme.com"),
              4: ("Or Institute of Art", "acme.com.au"), 5: ("ÉCOLE Ωmega", "bob@acme.com"), 6: ("école ωmega", "x_acme.com"),
              7: ("2013", "2013.example"), 2013: ("Gala", "gala.example")}
    db.save_scores(engine, [(raw(i, org_name=org, email_domain=d, name=f"Night {i}"), score(i))
                            for i, (org, d) in events.items()])
    found = lambda **f: sorted(r["object_id"] for r in db.queue(engine, filters=f, per_page=50)[0])  # noqa: E731
    assert found(organiser="Or Institute") == [1, 2] == found(organiser="  or institute ")
    assert found(organiser="école ΩMEGA") == [5, 6]
    assert found(organiser="Institute") == [] and found(organiser="%") == []
    assert found(domain="acme.com") == [1, 2, 5] == found(domain="bob@ACME.COM")
    assert found(domain="_acme.com") == [] and found(domain="acme") == []
    assert found(organiser="Or Institute", domain="acme.com") == [1, 2]
    assert db.tier_summary(engine, {"organiser": "Or Institute"})["medium"]["count"] == 2
    assert found(q="2013") == [7, 2013] and found(q="#2013") == [2013]


def test_decided_by_lists_the_events_whose_latest_decision_is_that_analysts(engine):
    db.save_scores(engine, [(raw(i), score(i)) for i in range(1, 6)])
    db.add_review(engine, [1, 2, 3], "flagged_fraud", "ann")
    db.add_review(engine, [2], "cleared", "bob")  # bob's decision is the latest now
    db.add_review(engine, [3], "note", "bob", note="a note decides nothing")
    db.add_review(engine, [4], "needs_info", "ann")
    found = lambda **f: sorted(r["object_id"] for r in db.queue(engine, filters=f, per_page=50)[0])  # noqa: E731
    assert found(decided_by="ann") == [1, 3, 4] and found(decided_by="bob") == [2]
    assert found(decided_by="ann", status="flagged_fraud") == [1, 3] and found(decided_by="cy") == []
    assert db.tier_summary(engine, {"decided_by": "ann"})["medium"]["count"] == 3
    # names ignore case, as at sign-in, beyond ASCII too
    assert found(decided_by=" ANN ") == [1, 3, 4] and found(decided_by="Bob") == [2]
    db.add_review(engine, [5], "cleared", "Émilie")
    assert found(decided_by="émilie") == [5] and found(decided_by="ÉMILIE") == [5]


def test_queue_filters(engine):
    events = seed_dashboard(engine)
    rows, total = db.queue(engine, filters={"status": "flagged_fraud"}, per_page=500)
    assert total == len(rows) == sum(e["status"] == "flagged_fraud" for e in events)
    _, total = db.queue(engine, tier="low", filters={"status": ["unreviewed"], "currency": "USD", "country": "us"})
    assert total == sum(e["tier"] == "low" and e["status"] == "unreviewed" and e["currency"] == "USD" for e in events)
    rows, total = db.queue(engine, filters={"q": "rave"}, per_page=500)
    assert total == sum("RAVE" in e["name"] for e in events) and all("RAVE" in r["name"] for r in rows)
    rows, total = db.queue(engine, filters={"q": "1017"})
    assert total == 1 and rows[0]["object_id"] == 1017
    assert db.queue(engine, filters={"q": "gmail"})[1] == 60          # email_domain
    assert db.queue(engine, filters={"q": "%"})[1] == 0                 # LIKE wildcards are literal
    assert db.queue(engine, filters={"q": "'; DROP TABLE predictions; --"})[1] == 0
    _, total = db.queue(engine, filters={"date_from": T0 + 10 * 3600, "date_to": T0 + 20 * 3600})
    assert total == 11
    day = dt.datetime.fromtimestamp(T0, dt.timezone.utc).date()
    _, total = db.queue(engine, filters={"date_to": day.isoformat()})  # the whole of that day
    assert total == sum(dt.datetime.fromtimestamp(e["received"], dt.timezone.utc).date() <= day for e in events)
    assert db.queue(engine, filters={"q": "", "status": None})[1] == 60  # empty form fields are ignored
    with pytest.raises(ValueError, match="sort"):
        db.queue(engine, sort="name; DROP TABLE predictions")
    with pytest.raises(ValueError, match="unknown filters"):
        db.queue(engine, filters={"colour": "red"})
    with pytest.raises(ValueError, match="status"):
        db.queue(engine, filters={"status": "bogus"})


def test_charts(engine):
    events = seed_dashboard(engine)
    now = T0 + 60 * 3600
    over_time = db.scored_over_time(engine, days=30, now=now)
    assert len(over_time) == 30 * 3 and sum(x["count"] for x in over_time) == 60
    first_day = dt.datetime.fromtimestamp(T0 + 3600, dt.timezone.utc).date().isoformat()
    assert sum(x["count"] for x in over_time if x["day"] == first_day) == sum(
        dt.datetime.fromtimestamp(e["received"], dt.timezone.utc).date().isoformat() == first_day for e in events)
    assert sum(x["count"] for x in db.scored_over_time(engine, days=1, now=now)) < 60
    status = db.status_over_time(engine, days=30, now=now)
    assert sum(x["count"] for x in status if x["status"] == "flagged_fraud") == 10
    histogram = db.probability_histogram(engine, bins=10)
    assert len(histogram) == 10 and sum(b["count"] for b in histogram) == 60
    assert histogram[8]["count"] == sum(0.8 <= e["p"] < 0.9 for e in events)
    for tier in ("low", "medium", "high"):  # each bin split by the tier its events are in
        assert [b[tier] for b in histogram] == [
            sum(i / 10 <= e["p"] < (i + 1) / 10 and e["tier"] == tier for e in events) for i in range(10)]
    assert all(b["count"] == b["low"] + b["medium"] + b["high"] for b in histogram)
    money = db.money_by_tier_status(engine)
    assert len(money) == 12
    assert sum(m["money"] for m in money if m["tier"] == "high") == pytest.approx(
        sum(e["money"] for e in events if e["tier"] == "high"))
    labelled = db.labelled_scores(engine)
    assert sorted(x[2] for x in labelled) == sorted(e["acct_type"] for e in events if e["acct_type"])
    # a labelled event a batch job stored (a labelled file holds training events) is not the test split
    db.save_scores(engine, [(raw(999, acct_type="fraudster"), score(999))], source="batch")
    assert db.labelled_scores(engine) == labelled


# ---------------------------------------------------------------------------- spool and writer

def test_writer_stores_directly_when_the_database_is_up(engine, tmp_path):
    writer = db.ScoreWriter(engine, db.Spool(tmp_path / "spool"))
    assert writer.write([(raw(1), score(1))]) == "stored"
    assert writer.spool.depth() == 0 and db.count_predictions(engine) == 1
    with pytest.raises(ValueError):
        writer.write([(raw(2), score(3))])
    assert writer.spool.depth() == 0  # invalid items are refused, never spooled


def test_drain_is_in_order_and_exactly_once_after_a_crash(engine, tmp_path, monkeypatch):
    spool = db.Spool(tmp_path / "spool")
    writer = db.ScoreWriter(engine, spool)
    writer.write([(raw(1, name="v0"), score(1))])
    spool.append([(raw(1, name="v1"), score(1)), (raw(2), score(2))], received_at=T0 + 1)
    spool.append([(raw(1, name="v2"), score(1))], received_at=T0 + 2)
    assert spool.depth() == 3

    real_mark, calls = spool.mark_drained, []

    def crash_after_first_commit(offset):
        calls.append(offset)
        raise RuntimeError("simulated crash after the commit, before the offset is saved")

    monkeypatch.setattr(spool, "mark_drained", crash_after_first_commit)
    with pytest.raises(RuntimeError, match="simulated crash"):
        writer.drain()
    assert db.get_prediction(engine, 1)["times_received"] == 2  # first entry committed
    monkeypatch.setattr(spool, "mark_drained", real_mark)
    assert writer.drain() == 1  # the replayed first entry is skipped, the second applied
    row = db.get_prediction(engine, 1)
    assert row["times_received"] == 3 and row["name"] == "v2"  # once each, last write wins
    assert db.get_prediction(engine, 2)["times_received"] == 1
    assert spool.depth() == 0 and spool.is_empty() and (tmp_path / "spool" / "spool.jsonl").stat().st_size == 0


def test_torn_and_refused_entries_are_set_aside(engine, tmp_path):
    spool = db.Spool(tmp_path / "spool")
    spool.append([(raw(1), score(1))])
    poison = db.new_entry(db.prepare_rows([(raw(2), score(2))]))
    poison["rows"][0]["risk_tier"] = "bogus"  # violates the schema's CHECK
    spool.append_entry(poison)
    spool.append([(raw(3), score(3))])
    with open(tmp_path / "spool" / "spool.jsonl", "ab") as handle:
        handle.write(b'{"v":1,"id":"torn')  # a writer that died mid-line
    writer = db.ScoreWriter(engine, spool)
    assert writer.write([(raw(4), score(4))]) == "stored"
    assert sorted(r["object_id"] for r in db.queue(engine)[0]) == [1, 3, 4]
    assert spool.dead_depth() == 2 and spool.depth() == 0


def test_rows_spooled_by_the_release_before_content_digests_are_stored(engine, tmp_path):
    """An upgrade while the database was away: the spool holds rows without payload_digest."""
    spool = db.Spool(tmp_path / "spool")
    older = db.new_entry(db.prepare_rows([(raw(1), score(1))]))
    del older["rows"][0]["payload_digest"]
    spool.append_entry(older)
    assert db.ScoreWriter(engine, spool).drain() == 1
    assert db.get_prediction(engine, 1)["payload_digest"] is None and spool.dead_depth() == 0


def test_spool_recovers_when_its_file_was_removed_by_hand(engine, tmp_path):
    spool = db.Spool(tmp_path / "spool")
    spool.append([(raw(1), score(1))])
    spool.append([(raw(2), score(2))])
    spool.mark_drained((tmp_path / "spool" / "spool.jsonl").stat().st_size)  # as if drained...
    (tmp_path / "spool" / "spool.jsonl").unlink()                            # ...then deleted
    spool.append([(raw(3), score(3))])
    assert spool.depth() == 1
    assert db.ScoreWriter(engine, spool).drain() == 1
    assert db.get_prediction(engine, 3) is not None and spool.is_empty()


def test_spool_that_cannot_be_written_raises(tmp_path):
    (tmp_path / "a_file").write_text("x")
    spool = db.Spool(tmp_path / "a_file" / "spool")
    assert spool.writable() is False
    with pytest.raises(db.SpoolUnavailable):
        spool.append([(raw(1), score(1))])


def test_sqlite_locked_database_spools_then_drains(tmp_path):
    path = tmp_path / "fraud.db"
    engine = db.make_engine(f"sqlite:///{path}", busy_timeout_ms=50)
    db.init_db(engine)
    writer = db.ScoreWriter(engine, db.Spool(tmp_path / "spool"))
    assert writer.write([(raw(1), score(1))]) == "stored"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        assert writer.write([(raw(2), score(2))]) == "spooled"
        assert writer.write([(raw(1), score(1)), (raw(3), score(3))]) == "spooled"
        assert writer.spool.depth() == 3
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert writer.write([(raw(4), score(4))]) == "stored"
    assert writer.spool.depth() == 0
    assert db.count_predictions(engine) == 4 and db.get_prediction(engine, 1)["times_received"] == 2
    engine.dispose()


def _spool_worker(url, spool_dir, worker, n):
    """A separate process (like a gunicorn worker) appending to the shared spool, then draining."""
    engine = db.make_engine(url)
    writer = db.ScoreWriter(engine, db.Spool(spool_dir))
    for i in range(n):
        writer.spool.append([(raw(worker * 1000 + i), score(worker * 1000 + i)), (raw(1), score(1))])
    writer.drain()
    engine.dispose()


def test_processes_sharing_a_spool_store_each_event_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'fraud.db'}"
    engine = db.make_engine(url)
    db.init_db(engine)
    context = multiprocessing.get_context("spawn")  # fork is unsafe if other tests left threads running
    workers = [context.Process(target=_spool_worker, args=(url, tmp_path / "spool", w, 25)) for w in (1, 2, 3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [p.exitcode for p in workers] == [0, 0, 0]
    db.ScoreWriter(engine, db.Spool(tmp_path / "spool")).drain()  # whatever a late append left
    assert db.count_predictions(engine) == 3 * 25 + 1
    assert db.get_prediction(engine, 1)["times_received"] == 75
    assert db.Spool(tmp_path / "spool").depth() == 0
    engine.dispose()


# ---------------------------------------------------------------------------- a real Postgres outage

@pytest.fixture
def pg_writer(postgres_server, tmp_path):
    """A ScoreWriter on a fresh database of the session's Postgres server, restarted if a test stopped it."""
    name = f"outage_{uuid.uuid4().hex[:12]}"
    engine = db.make_engine(postgres_server.create_database(name))
    db.init_db(engine)
    writer = db.ScoreWriter(engine, db.Spool(tmp_path / "spool"))
    yield writer, postgres_server
    if not postgres_server.running:
        postgres_server.start()
    writer.dispose()
    engine.dispose()
    postgres_server.drop_database(name)


@pytest.mark.postgres
def test_postgres_down_events_spool_and_arrive_once_in_order(pg_writer):
    writer, server = pg_writer
    assert writer.write([(raw(1, name="v0"), score(1))], received_at=T0) == "stored"
    server.stop()
    assert db.ping(writer.engine) is False
    assert writer.write([(raw(2), score(2))], received_at=T0 + 1) == "spooled"
    assert writer.write([(raw(1, name="v1"), score(1))], received_at=T0 + 2) == "spooled"
    assert writer.spool.depth() == 2
    server.start()
    assert writer.write([(raw(1, name="v2"), score(1)), (raw(3), score(3))], received_at=T0 + 3) == "stored"
    assert writer.spool.depth() == 0
    row = db.get_prediction(writer.engine, 1)
    assert row["times_received"] == 3 and row["name"] == "v2" and row["last_received_at"] == T0 + 3
    assert db.count_predictions(writer.engine) == 3


@pytest.mark.postgres
def test_a_value_the_database_refuses_for_good_is_set_aside_not_retried_forever(pg_writer):
    """An event whose values Postgres refuses on every try (here an 8,000-letter venue name under
    an index an operator added: 'index row size exceeds maximum', filed by SQLAlchemy under
    OperationalError) is spooled, then set aside by the drain; the events after it are stored,
    not queued behind it for ever."""
    writer, _server = pg_writer
    with writer.engine.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX ix_test_venue_name ON predictions (venue_name)")
    rng = random.Random(0)
    long_text = "".join(rng.choice(string.ascii_letters) for _ in range(8000))
    assert writer.write([(raw(1, venue_name=long_text), score(1))], received_at=T0) == "spooled"
    assert writer.write([(raw(2), score(2))], received_at=T0 + 1) == "stored"
    assert writer.write([(raw(3), score(3)), (raw(4), score(4))], received_at=T0 + 2) == "stored"
    assert writer.spool.depth() == 0 and writer.spool.dead_depth() == 1
    assert db.count_predictions(writer.engine) == 3


def test_long_texts_are_stored_whatever_the_field(engine):
    """No text the sender writes is an index key: an 8,000-letter name, organiser, email domain or
    label (random, so it compresses little) is stored on both databases like any other value."""
    rng = random.Random(1)
    texts = {field: "".join(rng.choice(string.ascii_letters) for _ in range(8000))
             for field in ("name", "org_name", "email_domain", "acct_type")}
    assert db.save_scores(engine, [(raw(8, **texts), score(8))], received_at=T0, source="test_set") == 1
    row = db.get_prediction(engine, 8)
    assert {field: row[field] for field in texts} == texts
    assert db.labelled_scores(engine) == [(0.5, 100.0, texts["acct_type"])]


@pytest.mark.postgres
def test_one_event_after_a_postgres_restart_is_stored_at_once_and_counted_once(pg_writer, caplog):
    """One event goes by the single-statement path, which has no pre-ping: a connection the
    restart killed is replaced and the write tried again, instead of spooling the event."""
    writer, server = pg_writer
    assert writer.write([(raw(1, name="before"), score(1))], received_at=T0) == "stored"
    assert writer._single_event_engine.pool.checkedin() == 1, "one event did not take the single-statement path"
    server.restart()
    with caplog.at_level(logging.INFO, logger="db"):
        assert writer.write([(raw(1, name="after"), score(1))], received_at=T0 + 1) == "stored"
    assert "writing again on a new one" in caplog.text  # the dead connection was met, not skipped
    assert writer.write([(raw(2), score(2))], received_at=T0 + 2) == "stored"
    assert writer.spool.depth() == 0
    row = db.get_prediction(writer.engine, 1)
    assert row["times_received"] == 2 and row["name"] == "after"
    assert db.count_predictions(writer.engine) == 2


@pytest.mark.postgres
def test_postgres_stopped_while_events_are_written_loses_nothing(pg_writer):
    writer, server = pg_writer
    n, outcomes, sent = 160, [], []
    progress = threading.Event()

    def stream():
        for i in range(n):
            object_id = i % 100 + 1  # ids 1..60 are sent twice: resends during and after the outage
            sent.append(object_id)
            outcomes.append(writer.write([(raw(object_id, name=f"send {i}"), score(object_id))],
                                         received_at=T0 + i))
            if i == 30:
                progress.set()
            time.sleep(0.004)

    thread = threading.Thread(target=stream)
    thread.start()
    assert progress.wait(30)
    server.stop("fast")   # the real server goes away while the stream is writing
    time.sleep(0.3)
    server.start()
    thread.join(60)
    assert not thread.is_alive()
    writer.drain()
    assert outcomes.count("spooled") > 0, "the outage did not hit any write: the test proved nothing"
    assert writer.spool.depth() == 0
    assert db.count_predictions(writer.engine) == 100
    for object_id in (1, 30, 45, 60, 61, 100):
        row = db.get_prediction(writer.engine, object_id)
        sends = [i for i, sent_id in enumerate(sent) if sent_id == object_id]
        assert row["times_received"] == len(sends), object_id
        assert row["name"] == f"send {sends[-1]}"                      # applied in order
        assert (row["first_received_at"], row["last_received_at"]) == (T0 + sends[0], T0 + sends[-1])
    rows, _ = db.queue(writer.engine, sort="first_received_at", descending=False, per_page=500)
    assert [r["object_id"] for r in rows] == list(range(1, 101))
    assert sum(r["times_received"] for r in rows) == n


def test_settling_after_a_bulk_load_refreshes_statistics(engine, caplog):
    """VACUUM (ANALYZE) on Postgres, ANALYZE on SQLite; a failure is only logged."""
    from sqlalchemy import text

    db.save_scores(engine, [(raw(i), score(i)) for i in range(1, 40)], source="batch")
    db.settle_after_bulk_load(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            stats = conn.execute(text("SELECT last_vacuum, last_analyze FROM pg_stat_user_tables "
                                      "WHERE relname = 'predictions'")).one()
            assert stats.last_vacuum is not None and stats.last_analyze is not None
        else:
            assert conn.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'predictions'")).scalar_one()
        conn.execute(text("DROP TABLE reviews"))
        conn.execute(text("DROP TABLE event_opens"))
        conn.execute(text("DROP TABLE predictions"))
        conn.commit()
    db.settle_after_bulk_load(engine)  # no table: logged, not raised
    assert "could not refresh table statistics" in caplog.text
