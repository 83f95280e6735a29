"""End to end with real processes on loopback: the stream service pushes, gunicorn scores and stores.

The stream service (stream.py) and the app (gunicorn, two workers) run as separate processes.
The app registers itself; at least 20 pushed events must be stored with scores, exactly once
per object_id; then the stream service restarts, forgets us, and the app registers again.
"""
import json
import os
import signal
from pathlib import Path

import pytest
import requests

import db
from tests.processes import (app_env, free_port, start_gunicorn, start_stream, stop_process, wait_for,
                             worker_pids)

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


def test_the_app_registers_the_port_it_listens_on(tiny_model_path, stream_file, tmp_path):
    """Without PUBLIC_PORT the app registers the port gunicorn is bound to: the --bind the
    systemd unit and the Docker image pass wins over BIND, as it does for gunicorn itself.
    Without PROMETHEUS_MULTIPROC_DIR gunicorn makes a temporary metrics folder, and removes it
    when it exits."""
    from tests.processes import GUNICORN, start_process

    app_port, stream_port = free_port(), free_port()
    stream = start_stream(stream_file, stream_port, tmp_path / "stream.log")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = app_env(app_port, tmp_path, f"sqlite:///{tmp_path / 'fraud.db'}", tiny_model_path,
                  STREAM_REGISTER_URL=f"http://127.0.0.1:{stream_port}/register", PUBLIC_IP="127.0.0.1",
                  REGISTER_INTERVAL=1, BIND=f"127.0.0.1:{free_port()}",  # overridden by --bind
                  TMPDIR=temp)
    del env["PROMETHEUS_MULTIPROC_DIR"]
    app = start_process([GUNICORN, "-c", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{app_port}",
                         "app:create_app()"], tmp_path / "gunicorn.log", env={**env, "PUBLIC_PORT": ""},
                        ready_url=f"http://127.0.0.1:{app_port}/hello")
    try:
        wait_for(lambda: f"http://127.0.0.1:{app_port}" in requests.get(
            f"http://127.0.0.1:{stream_port}/status", timeout=5).json()["urls"], timeout=30,
            what="the app's real port registered")
        assert len(list(temp.glob("fraud-metrics-*"))) == 1
        assert requests.get(f"http://127.0.0.1:{app_port}/metrics", timeout=5).status_code == 200
        log_path = tmp_path / "gunicorn.log"
        booted = log_path.read_text().count("Booting worker")
        before = worker_pids(app.pid)
        os.kill(app.pid, signal.SIGHUP)  # a reload reads the config again, the folder already set
        wait_for(lambda: log_path.read_text().count("Booting worker") >= booted + 2, timeout=60,
                 what="the workers started again after HUP")
        # and the reload is over (the old workers gone): a TERM in the middle of it left the master
        # waiting on a worker it spawned after the TERM, killed before it could remove the folder
        wait_for(lambda: len(now := worker_pids(app.pid)) == 2 and not now & before, timeout=60,
                 what="the old workers gone after HUP")
        assert requests.get(f"http://127.0.0.1:{app_port}/metrics", timeout=5).status_code == 200
        assert len(list(temp.glob("fraud-metrics-*"))) == 1
    finally:
        stop_process(app)
        stop_process(stream)
    assert list(temp.glob("fraud-metrics-*")) == [], (tmp_path / "gunicorn.log").read_text()[-3000:]


def test_the_development_server_registers_the_port_it_serves(tiny_model_path, stream_file, tmp_path):
    """`python app.py` serves PORT, so without PUBLIC_PORT that is the port it registers (it
    registered PUBLIC_PORT's default, 8000)."""
    import sys

    from tests.processes import start_process

    app_port, stream_port = free_port(), free_port()
    stream = start_stream(stream_file, stream_port, tmp_path / "stream.log")
    env = app_env(app_port, tmp_path, f"sqlite:///{tmp_path / 'fraud.db'}", tiny_model_path, PORT=app_port,
                  PUBLIC_PORT="", PUBLIC_IP="127.0.0.1", REGISTER_INTERVAL=1,
                  STREAM_REGISTER_URL=f"http://127.0.0.1:{stream_port}/register")
    del env["PROMETHEUS_MULTIPROC_DIR"]  # one process: no folder for the workers' metric files
    app = None
    try:  # the stream is stopped even when the app does not start
        app = start_process([sys.executable, "app.py"], tmp_path / "app.log", env=env,
                            ready_url=f"http://127.0.0.1:{app_port}/hello")
        wait_for(lambda: f"http://127.0.0.1:{app_port}" in requests.get(
            f"http://127.0.0.1:{stream_port}/status", timeout=5).json()["urls"], timeout=30,
            what="the served port registered")
    finally:
        stop_process(app)
        stop_process(stream)


# ---------------------------------------------------------------- make run's script

# What `make run` needs besides the code: it makes the data and the model itself (slow), so
# the copy gets a tiny model and a small stream file instead, and shares the test's .venv.
_NOT_COPIED = {".venv", ".git", "instance", "data", "models", "test-artifacts", ".hypothesis",
               ".pytest_cache", "__pycache__"}


@pytest.fixture
def run_local_tree(tmp_path, tiny_model_path):
    """A copy of the project as `make run` leaves it just before scripts/run-local.sh runs."""
    import shutil
    import sys

    import synth
    from tests.processes import ROOT

    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=lambda folder, names: [
        n for n in names if n in _NOT_COPIED or n.endswith(".pyc")])
    (tree / ".venv").symlink_to(sys.prefix)  # the environment running the tests
    (tree / "models").mkdir()
    shutil.copy(tiny_model_path, tree / "models" / "model.pkl")
    (tree / "data").mkdir()
    records = [synth.to_live(r) for r in synth.generate_events(20, seed=4)]
    (tree / "data" / "stream_events.json").write_text(json.dumps(records))
    return tree


@pytest.mark.parametrize("how", ["SIGTERM to the script", "Ctrl-C to the terminal's group"])
def test_make_run_script_serves_the_stream_and_stops_everything(run_local_tree, tmp_path, how):
    """scripts/run-local.sh (make run's last step) starts the stream and the app on SQLite; the
    app registers and stores pushed events; a SIGTERM to the script alone, or Ctrl-C (SIGINT to
    the whole foreground group), stops the script, gunicorn and the stream, and nothing is left."""
    import os
    import subprocess

    app_port, stream_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MODEL_PATH", "SPOOL_DIR")}
    env.update(PORT=str(app_port), STREAM_PORT=str(stream_port), STREAM_INTERVAL="0.2",
               ANALYST_PASSWORD="run-local-test", ACCESS_LOG="/dev/null", REGISTER_INTERVAL="1")
    log = open(tmp_path / "run-local.log", "wb")
    script = subprocess.Popen(["bash", "scripts/run-local.sh"], cwd=run_local_tree, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{app_port}/health", timeout=2).ok,
                 timeout=60, what="/health of the app make run started")
        engine = db.make_engine(f"sqlite:///{run_local_tree / 'instance' / 'fraud.db'}")
        wait_for(lambda: db.count_predictions(engine) >= 3, timeout=30, what="pushed events stored")
        engine.dispose()
        assert "password: run-local-test" in (run_local_tree / "instance" / "demo-analyst.txt").read_text()
        if how.startswith("SIGTERM"):
            os.kill(script.pid, signal.SIGTERM)
        else:
            os.killpg(script.pid, signal.SIGINT)
        assert script.wait(timeout=30) == 0, (tmp_path / "run-local.log").read_text()[-3000:]
        wait_for(lambda: not _group_alive(script.pid), timeout=15,
                 what="gunicorn and the stream to stop with the script")
    finally:
        if _group_alive(script.pid):
            os.killpg(script.pid, signal.SIGKILL)
        script.wait(timeout=10)
        log.close()
    text = (tmp_path / "run-local.log").read_text()
    assert "Traceback" not in text, text[-3000:]


def _group_alive(pgid: int) -> bool:
    """True while a process of the group (the script's session) still runs; a zombie left for
    init to reap does not count."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # the process ended while we looked
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
