"""End to end with real processes on loopback: the stream service pushes, gunicorn scores and stores.

The stream service (stream.py) and the app (gunicorn, two workers) run as separate processes.
The app registers itself; at least 20 pushed events must be stored with scores, exactly once
per object_id; then the stream service restarts, forgets us, and the app registers again.
"""
import json
import signal

import pytest
import requests

import db
from tests.processes import app_env, free_port, start_gunicorn, start_stream, stop_process, wait_for

pytestmark = pytest.mark.e2e

STREAM_RECORDS = 12  # few records, so the random pushes resend some events (dedup is exercised)
PUSHES = 24


@pytest.fixture
def stream_file(tmp_path):
    """A small live-shaped file (NaN tokens, no acct_type) for the stream service to push."""
    import synth

    records = [synth.to_live(r) for r in synth.generate_events(STREAM_RECORDS, seed=11)]
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(records))  # json writes bare NaN tokens, as pandas does
    assert "NaN" in path.read_text()
    return path


def pushes_sent(stream_port) -> int:
    return requests.get(f"http://127.0.0.1:{stream_port}/status", timeout=5).json()["pushes_sent"]


def stored_counts(engine):
    rows, _ = db.queue(engine, per_page=1000)
    return {row["object_id"]: row["times_received"] for row in rows}


def test_stream_to_database(db_url, tiny_model_path, stream_file, tmp_path):
    engine = db.make_engine(db_url)
    app_port, stream_port = free_port(), free_port()
    stream = start_stream(stream_file, stream_port, tmp_path / "stream.log", count=PUSHES)
    env = app_env(app_port, tmp_path, db_url, tiny_model_path, REGISTER_INTERVAL=1,
                  STREAM_REGISTER_URL=f"http://127.0.0.1:{stream_port}/register",
                  PUBLIC_IP="127.0.0.1", PUBLIC_PORT=app_port)
    app = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        # The app registers from gunicorn's master; the pushes begin once it is known.
        wait_for(lambda: pushes_sent(stream_port) == PUSHES, timeout=60, what=f"{PUSHES} pushes sent")
        wait_for(lambda: sum(stored_counts(engine).values()) == PUSHES, timeout=10,
                 what=f"all {PUSHES} pushed events stored")
        counts = stored_counts(engine)
        sent_ids = {r["object_id"] for r in json.loads(stream_file.read_text())}
        assert set(counts) <= sent_ids
        assert any(n > 1 for n in counts.values()), f"{STREAM_RECORDS} records, {PUSHES} pushes: some resent"
        stop_process(stream)
        for object_id in counts:
            row = db.get_prediction(engine, object_id)
            assert 0 <= row["fraud_probability"] <= 1 and row["risk_tier"] in ("low", "medium", "high")
            assert row["reasons"] and row["model_version"]

        # The stream service restarts and has forgotten us: the app must register again unaided.
        before = sum(counts.values())
        stream = start_stream(stream_file, stream_port, tmp_path / "stream2.log")
        wait_for(lambda: sum(stored_counts(engine).values()) >= before + 5, timeout=30,
                 what="events stored after the stream service restarted")
    finally:
        stop_process(stream)
        stop_process(app, sig=signal.SIGTERM)
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log, log[-3000:]
