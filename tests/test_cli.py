"""Operator commands: init-db, rescore (keeping both model versions), export-labels; predict.py's CLI."""
import copy
import json
import os
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

import db
import model as model_module
import predict

EXAMPLES = json.loads(Path("test_script_examples.json").read_text())


def _score_examples(app, n=4):
    engine = app.extensions["db_engine"]
    events = EXAMPLES[:n]
    db.save_scores(engine, list(zip(events, predict.score_records(app.extensions["fraud_model"], events))))
    return engine, events


def test_init_db_twice_keeps_data(app, runner):
    engine, events = _score_examples(app)
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0 and "schema applied" in result.output
    assert db.count_predictions(engine) == len(events)


def test_rescore_with_a_new_model_keeps_the_previous_score(make_app, tiny_model, tmp_path):
    old_app = make_app()
    engine, events = _score_examples(old_app)
    db.add_review(engine, [events[0]["object_id"]], "flagged_fraud", "ana")
    # A "new" model: the same estimator under a new version id is enough to show the bookkeeping.
    newer = copy.deepcopy(tiny_model)
    newer.metadata["version"] = "new-model-version"
    new_path = model_module.save_model(newer, tmp_path / "newer.pkl")
    new_app = make_app(MODEL_PATH=str(new_path))
    result = new_app.test_cli_runner().invoke(args=["rescore", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert f"rescored {len(events)} events with model new-model-version" in result.output
    for event in events:
        row = db.get_prediction(engine, event["object_id"])
        assert row["model_version"] == "new-model-version"
        assert row["previous_model_version"] == tiny_model.version
        assert row["previous_fraud_probability"] is not None
    # Rescoring never touches a decision.
    assert db.get_prediction(engine, events[0]["object_id"])["review_status"] == "flagged_fraud"


def test_export_labels(app, tmp_path):
    engine, events = _score_examples(app)
    ids = [e["object_id"] for e in events]
    db.add_review(engine, [ids[0]], "flagged_fraud", "ana")
    db.add_review(engine, [ids[1]], "cleared", "bo")
    db.add_review(engine, [ids[2]], "note", "bo", note="looks odd")
    out = tmp_path / "labels.json"
    result = app.test_cli_runner().invoke(args=["export-labels", "--out", str(out)])
    assert result.exit_code == 0
    labels = {label["object_id"]: label["fraud"] for label in json.loads(out.read_text())}
    assert labels == {ids[0]: True, ids[1]: False}


def test_predict_cli_prints_and_stores_once(tiny_model_path, tmp_path):
    """`python predict.py` twice: one probability printed each time, one row with a receive count of 2."""
    env_db = f"sqlite:///{tmp_path / 'cli.db'}"
    command = [sys.executable, "predict.py", "--model", str(tiny_model_path)]
    env = {"DATABASE_URL": env_db, "SPOOL_DIR": str(tmp_path / "spool"), "PATH": "/usr/bin:/bin"}
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        line = json.loads(done.stdout.strip().splitlines()[0])
        assert 0 <= line["fraud_probability"] <= 1 and line["object_id"] == EXAMPLES[0]["object_id"]
        assert line["risk_tier"] in ("low", "medium", "high") and line["reasons"]
    engine = db.make_engine(env_db)
    assert db.count_predictions(engine) == 1
    assert db.get_prediction(engine, EXAMPLES[0]["object_id"])["times_received"] == 2


def test_predict_cli_all_and_missing_model(tiny_model_path, tmp_path):
    done = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--all", "--no-db"],
                          capture_output=True, text=True, check=True)
    assert len(done.stdout.strip().splitlines()) == len(EXAMPLES)
    missing = subprocess.run([sys.executable, "predict.py", "--model", str(tmp_path / "none.pkl")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "python model.py" in missing.stderr


def test_score_chunks_in_parallel_gives_the_same_scores_in_order(tiny_model):
    """Two forked workers: every chunk comes back with its own scores, in input order, and the
    input is read only a few chunks ahead (a large file streams in constant memory)."""
    events = [dict(e, object_id=1000 + i) for i, e in enumerate(EXAMPLES * 3)]
    chunked = list(predict.chunks(events, 3))
    pulled = []

    def source():
        for chunk in chunked:
            pulled.append(chunk)
            yield chunk

    results = predict.score_chunks(tiny_model, source(), workers=2, rows_for="batch")
    first = next(results)
    assert len(pulled) <= 2 * 2 + 1 < len(chunked)
    results = [first, *results]
    assert [chunk for chunk, _, _ in results] == chunked
    expected = [predict.score_records(tiny_model, c, predict.REVIEW_TIERS) for c in chunked]
    assert [scores for _, scores, _ in results] == expected
    for (chunk, _, rows), scores in zip(results, expected):  # rows prepared in the worker
        fresh = db.prepare_rows(list(zip(chunk, scores)), source="batch")
        assert [{**r, "first_received_at": 0, "last_received_at": 0} for r in rows] == \
            [{**r, "first_received_at": 0, "last_received_at": 0} for r in fresh]
    assert list(predict.score_chunks(tiny_model, iter([]), workers=2)) == []


@pytest.mark.timeout(120)
def test_a_worker_that_dies_stops_the_batch_instead_of_hanging(tiny_model, monkeypatch):
    """A scoring worker killed mid-job (say, by the out-of-memory killer) is an error, not a wait."""
    real = predict.score_records

    def dies_on_the_marked_chunk(model, records, explain=True):
        if records[0].get("object_id") == -1:
            os._exit(9)  # runs in the forked worker, which inherited this patch
        return real(model, records, explain)

    monkeypatch.setattr(predict, "score_records", dies_on_the_marked_chunk)
    chunks = [EXAMPLES[:2], [dict(EXAMPLES[0], object_id=-1)], EXAMPLES[2:4], EXAMPLES[4:6]]
    with pytest.raises(BrokenProcessPool):
        list(predict.score_chunks(tiny_model, iter(chunks), workers=2))
