"""Operator commands: init-db, rescore (keeping both model versions), export-labels; predict.py's CLI."""
import copy
import json
import os
import re
import sqlite3
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

import db
import model as model_module
import predict
from tests.pgserver import free_port

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


def test_backup_copies_events_decisions_and_analysts_and_restores(app, tmp_path, request):
    """`flask backup` while the service runs; the copy, restored into a new database, reads back
    through the service's own queries (Postgres: pg_dump, then pg_restore into a fresh database)."""
    import contextlib

    engine, events = _score_examples(app)
    ids = [e["object_id"] for e in events]
    db.add_review(engine, [ids[0]], "flagged_fraud", "ana", note="called the organiser")
    db.create_analyst(engine, "ana", "not-a-real-hash")
    out = tmp_path / "backups" / "fraud.backup"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"backed up to {out}: {len(events)} predictions, 1 reviews, 1 analysts, 0 rejects" in result.output
    db.add_review(engine, [ids[1]], "cleared", "ana")  # after the backup: not in it
    again = runner.invoke(args=["backup", "--out", str(out)])
    assert again.exit_code == 1 and "exists: a backup never overwrites a file" in again.output

    if engine.dialect.name == "sqlite":
        restore = contextlib.nullcontext(f"sqlite:///{out}")
    else:
        restore = request.getfixturevalue("postgres_server").fresh_database("restored")
    with restore as url:
        if engine.dialect.name != "sqlite":
            subprocess.run([db._postgres_program("pg_restore"), "--no-owner", "--exit-on-error",
                            "--dbname", url, str(out)], check=True, capture_output=True)
        restored = db.make_engine(url)
        try:
            assert db.count_predictions(restored) == len(events)
            assert [r["note"] for r in db.reviews_for(restored, ids[0])] == ["called the organiser"]
            assert db.get_prediction(restored, ids[0])["review_status"] == "flagged_fraud"
            assert db.get_prediction(restored, ids[1])["review_status"] == "unreviewed"
            assert db.get_analyst(restored, "ana")["password_hash"] == "not-a-real-hash"
        finally:
            restored.dispose()


def test_backup_into_a_folder_keeps_the_newest_copies(app, tmp_path):
    """What the daily timer runs: a copy named by its time, then only the newest --keep copies."""
    _score_examples(app)
    folder = tmp_path / "backups"
    folder.mkdir()
    suffix = ".db" if app.extensions["db_engine"].dialect.name == "sqlite" else ".dump"
    older = [folder / f"fraud-triage-2026010{d}T000000Z{suffix}" for d in (1, 2, 3)]
    for path in older:
        path.write_text("an older copy")
    (folder / "fraud-triage-notes.txt").write_text("not a copy: never deleted")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "--dir", str(folder), "--keep", "2"])
    assert result.exit_code == 0, result.output
    new = [p for p in folder.iterdir() if p not in older and p.suffix == suffix]
    assert len(new) == 1 and re.fullmatch(r"fraud-triage-\d{8}T\d{6}Z" + suffix, new[0].name)
    assert sorted(p.name for p in folder.iterdir()) == sorted([new[0].name, older[2].name, "fraud-triage-notes.txt"])
    assert f"deleted the older copy {older[0]}" in result.output
    assert runner.invoke(args=["backup", "--keep", "2", "--out", str(tmp_path / "x")]).exit_code == 2
    assert runner.invoke(args=["backup"]).exit_code == 2


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
    workers = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--no-db", "--all"],
                             capture_output=True, text=True, env={**os.environ, "SCORE_WORKERS": "many"})
    assert workers.returncode == 2 and workers.stderr == "error: SCORE_WORKERS='many' is not a whole number of at least 1\n"
    elsewhere = subprocess.run([sys.executable, str(Path("predict.py").resolve()), "--model", str(tiny_model_path),
                                "--no-db", "--all", "--quiet"], capture_output=True, text=True, cwd=tmp_path)
    assert elsewhere.returncode == 0 and f"scored {len(EXAMPLES)} record(s)" in elsewhere.stderr  # its own examples
    assert predict.DEFAULT_MODEL_PATH == Path("models/model.pkl").resolve()  # the service's, from anywhere
    for index in ("-1", "one"):
        bad = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--no-db",
                              "--index", index], capture_output=True, text=True)
        assert bad.returncode == 2 and "is not a position in the input" in bad.stderr
        assert "Traceback" not in bad.stderr


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
    expected = [predict.score_records(tiny_model, c, predict.REVIEW_TIERS) for c in chunked]
    assert [result.scores for result in results] == expected
    assert all(result.refused == [] for result in results)
    for chunk, result, scores in zip(chunked, results, expected):  # rows prepared in the worker
        fresh = db.prepare_rows(list(zip(chunk, scores)), source="batch")
        assert [{**r, "first_received_at": 0, "last_received_at": 0} for r in result.rows] == \
            [{**r, "first_received_at": 0, "last_received_at": 0} for r in fresh]
    assert list(predict.score_chunks(tiny_model, iter([]), workers=2)) == []


def test_file_records_are_parsed_and_checked_in_the_workers_and_the_bad_ones_refused(tiny_model):
    """Lines of an input file go to the workers as bytes; one that /score would refuse is
    refused with its place and reason, and the rest of its chunk is scored."""
    good = [dict(e, object_id=2000 + i) for i, e in enumerate(EXAMPLES[:4])]
    lines = [json.dumps(e).encode() + b"\n" for e in good]
    lines.insert(1, b'{"object_id": 7, "name": 5}\n')      # a field of the wrong type
    lines.insert(3, b'{"object_id": NaN, "name": "x"}\n')  # NaN token parses; no usable id
    lines.append(b"{not json\n")
    items = [(f"line {n}", line) for n, line in enumerate(lines, start=1)]
    results = list(predict.score_chunks(tiny_model, iter([items[:4], items[4:]]), workers=2, rows_for="batch"))
    scored = [s["object_id"] for result in results for s in result.scores]
    assert scored == [e["object_id"] for e in good]
    refused = [(where, reason) for result in results for where, reason, _ in result.refused]
    assert [where for where, _ in refused] == ["line 2", "line 4", "line 7"]
    assert "'name' must be a string" in refused[0][1] and "object_id is required" in refused[1][1]
    assert refused[2][1].startswith("malformed JSON")
    assert results[1].refused[-1][2] == b"{not json"  # the text itself, kept for the rejects table
    assert [r["object_id"] for result in results for r in result.rows] == scored


def test_predict_cli_reads_the_clients_zip_export(tiny_model_path, tmp_path):
    """data.zip as the client exports it (data.json inside, bare NaN tokens) is read as model.py
    reads it; it was refused as 'not UTF-8 text'. A .json with a byte-order mark is read too."""
    import zipfile

    records = [{**EXAMPLES[i % len(EXAMPLES)], "object_id": 5000 + i} for i in range(3)]
    text = json.dumps(records).replace('"object_id": 5001', '"object_id": 5001, "gts": NaN')
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as archive:
        archive.writestr("data.json", text)
    done = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--no-db", "--all",
                           "--input", str(tmp_path / "data.zip")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["object_id"] for line in done.stdout.splitlines()] == [5000, 5001, 5002]
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(records).encode())
    bom = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--no-db", "--all",
                          "--input", str(tmp_path / "bom.json")], capture_output=True, text=True)
    assert bom.returncode == 0 and len(bom.stdout.splitlines()) == 3, bom.stderr
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("other.json", text)
    refused = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--no-db", "--all",
                              "--input", str(tmp_path / "other.zip")], capture_output=True, text=True)
    assert refused.returncode == 2 and "does not contain data.json" in refused.stderr, refused.stderr


def test_predict_cli_refuses_bad_lines_keeps_them_and_stores_the_rest(tiny_model_path, tmp_path):
    """A bad line does not stop the job: it is named on stderr, kept in rejects, and the exit
    status says something was refused; a missing or unreadable file is an error."""
    path = tmp_path / "events.jsonl"
    good = [dict(e, object_id=3000 + i) for i, e in enumerate(EXAMPLES[:3])]
    path.write_text(json.dumps(good[0]) + "\n[1, 2]\n\n" + json.dumps(good[1]) + "\n{oops\n"
                    + json.dumps(good[2]) + "\n")
    env_db = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"DATABASE_URL": env_db, "SPOOL_DIR": str(tmp_path / "spool"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--all", "--quiet",
                           "--input", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 1, done.stderr
    assert f"refused {path} line 2: an event must be a JSON object" in done.stderr
    assert f"refused {path} line 5: malformed JSON" in done.stderr
    assert "scored 3 record(s)" in done.stderr and "refused 2" in done.stderr
    engine = db.make_engine(env_db)
    assert db.count_predictions(engine) == 3
    rejects = db.recent_rejects(engine)
    assert sorted((r["remote_addr"], r["body"]) for r in rejects) == [
        (f"{path} line 2", "[1, 2]"), (f"{path} line 5", "{oops")]
    engine.dispose()
    for bad, message in ((tmp_path / "none.jsonl", "No such file"), (tmp_path / "broken.json", "malformed JSON")):
        if bad.suffix == ".json":
            bad.write_text('{"object_id": ')
        failed = subprocess.run([sys.executable, "predict.py", "--model", str(tiny_model_path), "--all",
                                 "--no-db", "--input", str(bad)], capture_output=True, text=True)
        assert failed.returncode == 2 and f"error: cannot read {bad}" in failed.stderr
        assert message in failed.stderr and "Traceback" not in failed.stderr


def test_predict_cli_says_when_events_wait_in_the_spool(tiny_model_path, tmp_path):
    """The database refuses the job's writes (another process holds SQLite's write lock): the
    events are spooled, the summary says so and where, the exit status is 3, and the spool
    moves them into the database once it is free. A database down from the start is an error."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(dict(e, object_id=4000 + i)) + "\n" for i, e in enumerate(EXAMPLES[:3])))
    db_file, spool_dir = tmp_path / "cli.db", tmp_path / "spool"
    engine = db.make_engine(f"sqlite:///{db_file}")
    db.init_db(engine)
    env = {"DATABASE_URL": f"sqlite:///{db_file}", "SPOOL_DIR": str(spool_dir), "DB_BUSY_TIMEOUT_MS": "100",
           "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "predict.py", "--model", str(tiny_model_path), "--all", "--quiet", "--input", str(path)]
    lock = sqlite3.connect(db_file, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the write lock, held for the whole job
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert done.returncode == 3, done.stderr
    assert f"3 event(s) wait in the spool at {spool_dir}, not yet in the database" in done.stderr
    assert "stored in the database" not in done.stderr and "Traceback" not in done.stderr
    assert db.count_predictions(engine) == 0
    writer = db.ScoreWriter(engine, db.Spool(spool_dir))
    writer.drain()
    assert db.count_predictions(engine) == 3 and writer.spool.depth() == 0
    engine.dispose()

    down = dict(env, DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    failed = subprocess.run(command, capture_output=True, text=True, env=down, timeout=120)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "error: the database cannot be reached, nothing was scored" in failed.stderr


def test_predict_cli_when_its_reader_goes_away(tiny_model_path, tmp_path):
    """`predict.py --all | head -1`: without the database the job stops with a short message
    (exit status 2); a storing job stores the whole file all the same (stopping part-way would
    leave it half stored, and a second run would count that half twice). No traceback."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(dict(EXAMPLES[i % len(EXAMPLES)], object_id=5000 + i)) + "\n"
                            for i in range(3000)))  # far more output than a pipe holds
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SPOOL_DIR": str(tmp_path / "spool"),
           "PATH": "/usr/bin:/bin"}
    for storing in (False, True):
        job = subprocess.Popen([sys.executable, "predict.py", "--model", str(tiny_model_path), "--all",
                                "--input", str(path), *([] if storing else ["--no-db"])],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert json.loads(job.stdout.readline())["object_id"] == 5000
        job.stdout.close()
        _, stderr = job.communicate(timeout=120)
        assert b"Traceback" not in stderr, stderr
        if storing:
            assert job.returncode == 0, stderr
            assert b"scored 3000 record(s)" in stderr and b"not every record was printed" in stderr
        else:
            assert job.returncode == 2 and b"stopped: the output was closed" in stderr, stderr
    engine = db.make_engine(env["DATABASE_URL"])
    assert db.count_predictions(engine) == 3000
    engine.dispose()


def test_predict_uses_the_apps_instance_folder(app):
    """Started from any directory, a batch job finds the service's default database and spool."""
    assert predict.INSTANCE_DIR == Path(app.instance_path)


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
