"""Tests for model.py: training, the artifact, tiers from cost, reasons, loading safely."""
import json
import pickle
import time

import numpy as np
import pytest

import dataset
import model
import synth


@pytest.fixture(scope="session")
def tiny_model():
    """A quick model trained once on 2,000 synthetic events (seconds, not minutes)."""
    return model.train(synth.generate_events(2000, seed=3), seed=0, quick=True)


@pytest.fixture(scope="module")
def fresh_events():
    """Events the tiny model never saw (another seed)."""
    return synth.generate_events(300, seed=99)


# ---------------------------------------------------------------- scoring any shape

@pytest.mark.parametrize("shape", [36, 38, 43])
def test_scores_every_live_shape(tiny_model, fresh_events, shape):
    live = [json.loads(json.dumps(synth.to_live(r, shape))) for r in fresh_events[:40]]
    p = tiny_model.predict_proba(live)
    assert p.shape == (40,)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


def test_live_shape_scores_match_training_shape(tiny_model, fresh_events):
    p_train_shape = tiny_model.predict_proba(fresh_events[:40])
    p_live = tiny_model.predict_proba([synth.to_live(r, 43) for r in fresh_events[:40]])
    np.testing.assert_allclose(p_live, p_train_shape)


def test_scores_records_full_of_nan_and_junk(tiny_model):
    records = [{k: float("nan") for k in synth.FIELDS}, {}, {k: None for k in synth.FIELDS},
               {"user_age": "0", "ticket_types": "??", "previous_payouts": [None]}]
    p = tiny_model.predict_proba(records)
    assert p.shape == (4,) and np.isfinite(p).all()
    reasons = tiny_model.explain(records)
    assert len(reasons) == 4 and all(isinstance(r, list) for r in reasons)


def test_empty_batch(tiny_model):
    assert tiny_model.predict_proba([]).shape == (0,)
    assert tiny_model.explain([]) == []


def test_explaining_only_the_review_tiers(tiny_model, fresh_events):
    """Batch mode: same probabilities; events at or above medium get exactly the full reasons,
    the others none (the dashboard explains them when shown)."""
    events = sorted(fresh_events, key=lambda e: e["acct_type"] == "premium")[:80]  # fraud first
    p_all, full = tiny_model.predict_and_explain(events)
    p_review, partial = tiny_model.predict_and_explain(events, review_tiers_only=True)
    np.testing.assert_allclose(p_review, p_all, rtol=1e-12)
    risky = p_all >= tiny_model.thresholds["medium"]
    assert 0 < risky.sum() < len(risky)
    assert all(partial[i] == (full[i] if risky[i] else []) for i in range(len(risky)))
    assert tiny_model.predict_and_explain([], review_tiers_only=True)[1] == []
    low = [e for e, r in zip(events, risky) if not r][:3]
    assert tiny_model.predict_and_explain(low, review_tiers_only=True)[1] == [[], [], []]


def test_predictions_are_deterministic(tiny_model, fresh_events):
    again = model.train(synth.generate_events(2000, seed=3), seed=0, quick=True)
    np.testing.assert_array_equal(again.predict_proba(fresh_events), tiny_model.predict_proba(fresh_events))


# ---------------------------------------------------------------- reasons

def _risky_new_account(tiny_model, events):
    """A fresh event the model scores at or above medium with the new-account reason."""
    for record in events:
        record = synth.to_live(record)
        reasons = tiny_model.explain([record], top=5)[0]
        if any("same day" in r for r in reasons) and tiny_model.predict_proba([record])[0] >= tiny_model.thresholds["medium"]:
            return record, reasons
    pytest.fail("no risky new-account event among the fresh events")


def test_reasons_follow_the_inputs(tiny_model, fresh_events):
    record, reasons = _risky_new_account(tiny_model, synth.generate_events(1500, seed=5))
    assert reasons and all(r.startswith("raises risk: ") for r in reasons)
    created = record["event_created"]
    day = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created - 400 * 86400))
    older = dict(record, user_age=900, previous_payouts=[{"created": day, "amount": 500.0}] * 3)
    new_reasons = tiny_model.explain([older], top=5)[0]
    assert not any("same day" in r for r in new_reasons)
    assert not any(r.endswith(": no payout history before the event") for r in new_reasons)
    assert tiny_model.predict_proba([older])[0] < tiny_model.predict_proba([record])[0]


def test_reasons_come_from_the_model_contributions(tiny_model, fresh_events):
    record, _ = _risky_new_account(tiny_model, synth.generate_events(1500, seed=5))
    _, _, groups, deltas = tiny_model.contributions([record, dict(record, user_age=900)])
    g = groups.index("user_age")
    assert deltas[0, g] > 0          # age 0 pushes the score up
    assert deltas[1, g] <= deltas[0, g]


def test_low_scores_get_labelled_reasons(tiny_model, fresh_events):
    p = tiny_model.predict_proba(fresh_events)
    low = [r for r, v in zip(fresh_events, p) if v < tiny_model.thresholds["medium"]][:20]
    reasons = tiny_model.explain(low, top=3)
    assert any(reasons)
    assert all(r.startswith("lowers risk: ") for rs in reasons for r in rs)
    assert all(len(rs) <= 3 for rs in reasons)


# ---------------------------------------------------------------- tiers and cost

@pytest.mark.parametrize("p, tier", [(0.0, "low"), (0.19, "low"), (0.2, "medium"), (0.69, "medium"),
                                     (0.7, "high"), (1.0, "high"), (float("nan"), "medium")])
def test_risk_tier(p, tier):
    assert model.risk_tier(p, {"medium": 0.2, "high": 0.7}) == tier


def test_report_intervals_and_calibration_bands():
    """The figures the report quotes with their uncertainty: a Wilson interval known by hand, bands
    that hold every event once and end at the tier cuts, bootstrap intervals around the point."""
    low, high = model._wilson(5, 10)
    assert round(low, 3) == 0.237 and round(high, 3) == 0.763
    assert model._wilson(0, 10)[0] == 0.0 and round(model._wilson(0, 10)[1], 3) == 0.278
    rng = np.random.default_rng(3)
    p = rng.random(4000) ** 3
    y = rng.random(4000) < p  # calibrated by construction
    thresholds = {"medium": 0.4, "high": 0.7}
    bands = model.calibration_bands(y, p, thresholds)
    assert sum(b["events"] for b in bands) == 4000
    assert [b["band"] for b in bands][-2:] == [[0.4, 0.7], [0.7, 1.0]] and bands[0]["band"][0] == 0.0
    for band in bands:
        inside = (p >= band["band"][0]) & (p < band["band"][1]) if band["band"][1] < 1 else p >= band["band"][0]
        assert band["observed"] == pytest.approx(y[inside].mean())
        lo, hi = band["observed_interval"]
        assert lo <= band["observed"] <= hi and lo <= band["predicted"] + 0.05 and band["predicted"] - 0.05 <= hi
    empty = model.calibration_bands(y[p < 0.3], p[p < 0.3], thresholds)[-2:]  # no event in either tier
    assert [b["events"] for b in empty] == [0, 0] and json.dumps(empty, allow_nan=False)  # null, not NaN
    money = rng.random(4000) * 1000
    cost = model.CostModel()
    intervals = model.bootstrap_intervals(y, p, money, thresholds, cost, draws=200)
    point = model.evaluate(y, p, money, 0.4, cost)
    lo, hi = intervals["average_precision"]
    assert lo < point["average_precision"] < hi and hi - lo < 0.1
    lo, hi = intervals["recall_at_k"]
    assert lo < point["recall_at_k"] < hi
    perfect = model.bootstrap_intervals(y, y.astype(float), money, thresholds, cost, draws=50)
    assert perfect["average_precision"] == [1.0, 1.0] and perfect["precision_high"] == [1.0, 1.0]


def test_expected_cost():
    y = np.array([1, 1, 0, 0])
    assert model.expected_cost(y, [True, False, True, False], [100, 1000, 50, 5], 15) == 2 * 15 + 1000


def test_thresholds_follow_cost_and_capacity():
    # 10 events, scores descending; fraud at ranks 1, 2, 4; capacity 30 % -> at most 3 reviews.
    p = np.linspace(0.95, 0.05, 10)
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    money = np.array([1000, 1000, 0, 1000, 0, 0, 0, 0, 0, 0], float)
    cost = model.CostModel(review_cost=15, capacity=0.3, high_precision=0.9)
    thresholds, selection = model.choose_thresholds(y, p, money, cost)
    assert selection["flagged_at_medium"] == 2          # 3rd review costs 15 and catches nothing
    assert (p >= thresholds["medium"]).sum() == 2
    assert selection["capacity_binds"]                  # unconstrained, 4 reviews would pay
    assert selection["fraud_money_share_unreviewed"] == pytest.approx(1 / 3)
    cheap = model.CostModel(review_cost=15, capacity=1.0, high_precision=0.9)
    assert model.choose_thresholds(y, p, money, cheap)[1]["flagged_at_medium"] == 4
    dear = model.CostModel(review_cost=5000, capacity=1.0)
    assert (p >= model.choose_thresholds(y, p, money, dear)[0]["medium"]).sum() == 0


def test_high_tier_needs_precision():
    p = np.linspace(0.99, 0.01, 100)
    y = np.zeros(100, bool)
    y[:8] = True           # the top 8 are all fraud
    y[[9, 11, 20]] = True
    cost = model.CostModel(review_cost=1, capacity=0.5, high_precision=0.8)
    thresholds, selection = model.choose_thresholds(y, p, np.full(100, 100.0), cost)
    flagged_high = p >= thresholds["high"]
    assert y[flagged_high].mean() >= 0.8
    assert thresholds["high"] >= thresholds["medium"]


def test_artifact_thresholds_and_metrics(tiny_model):
    meta = tiny_model.metadata
    t = tiny_model.thresholds
    assert 0 < t["medium"] <= t["high"]
    assert meta["training_data"]["test_records"] == 400 == meta["test_metrics"]["events"]
    assert meta["training_data"]["train_records"] == 1600
    assert meta["threshold_selection"]["validation_events"] == 320
    assert meta["test_metrics"]["average_precision"] > 2 * meta["training_data"]["fraud_rate_test"]
    shares = [row["share_fraud_money"] for row in meta["test_tiers"]]
    assert sum(shares) == pytest.approx(1.0)
    assert not set(meta["features"]) & {f"leaky_{n}" for n in ("gts", "num_order", "num_payouts")}


# ---------------------------------------------------------------- saving and loading

def test_save_and_load_round_trip(tiny_model, fresh_events, tmp_path):
    path = model.save_model(tiny_model, tmp_path / "m" / "model.pkl")
    loaded = model.load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(fresh_events), tiny_model.predict_proba(fresh_events))
    assert loaded.version == tiny_model.version
    meta = json.loads(path.with_suffix(".json").read_text())
    for key in ("version", "created_at", "training_data", "features", "tier_thresholds", "test_metrics",
                "library_versions"):
        assert key in meta
    assert {"sha256", "records", "fraud_rate"} <= set(meta["training_data"])
    assert set(meta["library_versions"]) == {"python", "sklearn", "numpy", "scipy", "pandas"}


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(model.ModelLoadError, match="no model file"):
        model.load_model(tmp_path / "absent.pkl")


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps({"format": "other"}),
                                     pickle.dumps([1, 2, 3])])
def test_corrupt_model_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(model.ModelLoadError):
        model.load_model(path)


def test_truncated_model_file_is_a_clear_error(tiny_model, tmp_path):
    path = model.save_model(tiny_model, tmp_path / "model.pkl")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(model.ModelLoadError, match="corrupt"):
        model.load_model(path)


def test_other_library_versions_are_refused(tiny_model, tmp_path):
    path = tmp_path / "old.pkl"
    versions = dict(tiny_model.metadata["library_versions"], sklearn="0.24.2")
    with open(path, "wb") as handle:
        pickle.dump({"format": model.ARTIFACT_FORMAT, "version": "x", "library_versions": versions}, handle)
        pickle.dump(tiny_model, handle)
    with pytest.raises(model.ModelLoadError, match="sklearn 0.24.2"):
        model.load_model(path)


# ---------------------------------------------------------------- labels and the command line

def test_merge_analyst_labels():
    records = [{"object_id": 1, "acct_type": "premium"}, {"object_id": 2.0, "acct_type": "fraudster"}]
    changed = model.merge_analyst_labels(records, [{"object_id": 1, "fraud": True},
                                                   {"object_id": "2", "fraud": False},
                                                   {"object_id": 3, "fraud": True}])
    assert changed == (2, 0)  # event 3 is not in the data and its label does not carry it
    assert model.labels_of(records).tolist() == [True, False] and len(records) == 2
    with pytest.raises(dataset.DataError):
        model.merge_analyst_labels(records, [{"object_id": 1, "fraud": "yes"}])
    with pytest.raises(dataset.DataError, match="'event'"):
        model.merge_analyst_labels(records, [{"object_id": 4, "fraud": True, "event": "name"}])


def test_a_label_relabels_every_copy_of_a_repeated_id():
    records = [{"object_id": 1, "acct_type": "premium"}, {"object_id": 1.0, "acct_type": "premium"}]
    assert model.merge_analyst_labels(records, [{"object_id": 1, "fraud": True, "event": {"name": "x"}}]) == (2, 0)
    assert model.labels_of(records).tolist() == [True, True] and len(records) == 2


def test_where_analyst_labels_fall_in_the_time_split_is_said():
    """Labels on live events are newer than the data: all in the test split, none trains."""
    records = [{"object_id": i, "event_created": 1_300_000_000 + i, "fraud": False} for i in range(80)]
    live = [{"object_id": 1000 + i, "fraud": True, "event": {"event_created": 1_700_000_000 + i}} for i in range(5)]
    model.merge_analyst_labels(records, live)
    said = model._analyst_labels_placement(records)
    assert said.startswith("analyst labels in the time split: 0 in the training portion, 5 in the test split")
    assert "none trains this model" in said
    older = [{"object_id": 2000, "fraud": True, "event": {"event_created": 1_300_000_001}}]
    model.merge_analyst_labels(records, older)
    assert "1 in the training portion, 5 in the test" in model._analyst_labels_placement(records)


def test_labels_carrying_their_event_add_it_to_the_data():
    """A decision on a live event (not in the training file) brings the event along, as
    export-labels writes it: the event joins the data with the analyst's label."""
    records = [{"object_id": 1, "acct_type": "premium"}]
    live = {"object_id": 7, "name": "Gala", "acct_type": "premium"}  # the analyst said fraud
    assert model.merge_analyst_labels(records, [
        {"object_id": 7, "fraud": True, "event": live},
        {"object_id": 1, "fraud": True, "event": {"object_id": 1, "name": "ignored copy"}},
    ]) == (1, 1)
    assert [r["object_id"] for r in records] == [1, 7] and records[1]["name"] == "Gala"
    assert model.labels_of(records).tolist() == [True, True]
    assert {r["label_source"] for r in records} == {"analyst"} and "name" not in records[0]


def test_too_little_data_is_a_clear_error():
    with pytest.raises(dataset.DataError, match="too little data"):
        model.train(synth.generate_events(30, seed=2), quick=True)


def test_unlabelled_records_are_refused():
    with pytest.raises(dataset.DataError, match="acct_type"):
        model.labels_of([{"object_id": 5}])


@pytest.mark.parametrize("live", [False, True], ids=["synthetic-file", "live-shape-with-acct_type"])
def test_cli_trains_from_a_file(tmp_path, live, capsys):
    records = synth.generate_events(1500, seed=21)
    if live:
        records = [dict(synth.to_live(r, shape), acct_type=r["acct_type"])
                   for r, shape in zip(records, [43, 38, 36] * 500)]
    data = tmp_path / "events.json"
    data.write_text(json.dumps(records))  # bare NaN tokens, like the stream
    labels = tmp_path / "labels.json"
    live_event = synth.to_live(synth.generate_events(1, seed=99)[0])  # not in the data
    live_event["object_id"] = max(r["object_id"] for r in records) + 1
    labels.write_text(json.dumps([{"object_id": records[0]["object_id"], "fraud": True},
                                  {"object_id": live_event["object_id"], "fraud": True, "event": live_event},
                                  {"object_id": 10**12, "fraud": False}]))
    out = tmp_path / "out" / "model.pkl"
    assert model.main(["--data", str(data), "--out", str(out), "--quick", "--labels", str(labels)]) == 0
    assert "1 records of the data relabelled, 1 events added from the labels, 1 ignored" in capsys.readouterr().out
    loaded = model.load_model(out)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["training_data"]["sha256"] == dataset.file_hash(data)
    assert meta["training_data"]["records"] == 1501
    assert meta["training_data"]["analyst_labels"] == 2
    assert meta["training_data"]["labels_file"] == {"path": str(labels), "sha256": dataset.file_hash(labels)}
    assert loaded.predict_proba([synth.to_live(records[0]) if not live else records[0]]).shape == (1,)


def test_cli_without_data_trains_on_synthetic(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "DEFAULT_DATA_PATH", tmp_path / "no-data.zip")
    out = tmp_path / "model.pkl"
    assert model.main(["--out", str(out), "--quick", "--n", "1200"]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["training_data"]["source"].startswith("synthetic")


def test_compare_on_a_data_file_writes_the_report_under_reports_confidential(tmp_path, monkeypatch, capsys):
    """A comparison built from a data file goes to reports/confidential/ (ignored by git), says so
    at its top and on stderr; run in a scratch folder, so the repository's reports/ is untouched."""
    data = tmp_path / "events.json"
    data.write_text(json.dumps(synth.generate_events(1500, seed=23)))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # model.DEFAULT_REPORT_PATH is relative: reports/ lands in work/
    assert model.main(["--compare", "--quick", "--data", str(data)]) == 0
    report = work / "reports" / "confidential" / "model_comparison.md"
    captured = capsys.readouterr()
    assert f"wrote {model.DEFAULT_REPORT_PATH.parent / 'confidential' / 'model_comparison.md'}" in captured.out
    assert "WARNING" in captured.err and str(data) in captured.err
    assert "CONFIDENTIAL" in report.read_text(encoding="utf-8")
    assert report.with_suffix(".json").exists() and list(report.parent.glob("*.png"))
    assert sorted(p.name for p in (work / "reports").iterdir()) == ["confidential"]


def test_cost_model_from_environment(monkeypatch):
    monkeypatch.setenv("REVIEW_COST", "20")
    monkeypatch.setenv("REVIEW_CAPACITY", "5%")
    cost = model.CostModel.from_env()
    assert (cost.review_cost, cost.capacity) == (20.0, 0.05)
    monkeypatch.setenv("REVIEW_COST", "cheap")
    with pytest.raises(ValueError, match="REVIEW_COST"):
        model.CostModel.from_env()


@pytest.mark.parametrize("name, value", [
    ("REVIEW_COST", "-15"), ("REVIEW_COST", "nan"), ("REVIEW_CAPACITY", "0"), ("REVIEW_CAPACITY", "-0.1"),
    ("REVIEW_CAPACITY", "150%"), ("HIGH_TIER_PRECISION", "2"), ("HIGH_TIER_PRECISION", "0"),
])
def test_cost_settings_no_cut_can_use_stop_training_before_it_starts(monkeypatch, capsys, name, value):
    """-0.1 used to fail after training ('argmin of an empty sequence'); 150% and 2 passed silently."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name}=.* cannot be used"):
        model.CostModel.from_env()
    assert model.main(["--quick", "--n", "300", "--out", "/nonexistent/never.pkl"]) == 2
    assert f"error: {name}=" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "²"])
def test_a_thread_count_that_cannot_be_used_stops_training_before_it_starts(monkeypatch, capsys, value):
    monkeypatch.setenv("MODEL_THREADS", value)
    assert model.main(["--quick", "--n", "300", "--out", "/nonexistent/never.pkl"]) == 2
    assert f"error: MODEL_THREADS={value!r} is not a whole number of at least 1" in capsys.readouterr().err
    monkeypatch.setenv("MODEL_THREADS", " 2 ")
    assert model.model_threads() == 2


def test_reason_strings_are_plain_language(tiny_model, fresh_events):
    for reasons in tiny_model.explain(fresh_events[:30]):
        for reason in reasons:
            assert "_" not in reason and "nan" not in reason.lower(), reason
