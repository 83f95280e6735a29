"""Hardening: the faults the service must survive, each shown with real processes on loopback.

Every test runs the app as production does (gunicorn, deploy/gunicorn.conf.py, two workers) and
breaks one thing for real: Postgres stopped and started under a stream of events, the stream
service restarted, the app restarted, a worker killed, the spool disk unusable while the
database is down, a missing or corrupt model. The database tests use their own Postgres server
(stopping it must not disturb the session's shared one).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest
import requests
from sqlalchemy import text

import db
from tests.pgserver import PostgresServer, PostgresUnavailable
from tests.processes import (app_env, free_port, settled, start_gunicorn, start_stream, stop_process,
                             system_missing, wait_for, worker_pids)

pytestmark = pytest.mark.e2e

POST_TIMEOUT = 30  # seconds; a request that hangs longer is a failure, not a wait


# ----------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def fault_postgres():
    """A Postgres server of this module's own, which the tests stop and start at will."""
    try:
        server = PostgresServer(durable=False).start()
    except PostgresUnavailable as error:
        system_missing("POSTGRES", str(error))
    yield server
    server.cleanup()


@pytest.fixture
def fault_db(fault_postgres):
    """A fresh database on the module's server (started again if a test left it stopped)."""
    with fault_postgres.fresh_database("faults") as url:
        engine = db.make_engine(url)
        yield url, engine
        engine.dispose()


def live_bodies(n: int, seed: int) -> dict[int, bytes]:
    """n distinct events as the stream sends them (bare NaN tokens, no label), by object_id."""
    import synth

    records = [synth.to_live(r) for r in synth.generate_events(n, seed=seed)]
    bodies = {int(r["object_id"]): json.dumps(r).encode() for r in records}
    assert len(bodies) == n, "the generator must give distinct object ids"
    return bodies


def post_plan(ids: list[int], resends: int, seed: int) -> list[int]:
    """Every id once plus ``resends`` repeats of some of them, in a shuffled, reproducible order."""
    rng = random.Random(seed)
    plan = list(ids) + [rng.choice(ids) for _ in range(resends)]
    rng.shuffle(plan)
    return plan


def post_event(port: int, body: bytes) -> requests.Response:
    """POST one event to /score on a fresh connection, as the stream service does."""
    return requests.post(f"http://127.0.0.1:{port}/score", data=body, timeout=POST_TIMEOUT,
                         headers={"Content-Type": "application/json"})


class Sender(threading.Thread):
    """Posts a plan of events one after another, recording every attempt and its answer.

    ``gates`` maps a plan index to an Event the sender waits for before posting that index, so
    the test decides exactly which posts happen before, during and after a fault. With
    ``retry`` a post that gets no answer is tried again until it is answered (the app is
    restarting); otherwise a failure is recorded and the sender moves on.
    """

    def __init__(self, port: int, bodies: dict[int, bytes], plan: list[int], gates=None, retry=False):
        super().__init__(daemon=True)
        self.port, self.bodies, self.plan = port, bodies, plan
        self.gates = gates or {}
        self.retry = retry
        self.progress = 0  # plan entries finished
        self.answers: list[tuple[int, int, str | None]] = []  # (object_id, status, stored)
        self.failures: list[tuple[int, str]] = []  # (object_id, error): no answer
        self.error: BaseException | None = None

    def run(self):
        try:
            for index, object_id in enumerate(self.plan):
                gate = self.gates.get(index)
                if gate is not None and not gate.wait(120):
                    raise TimeoutError(f"gate before post {index} never opened")
                self._post_until_answered(object_id)
                self.progress = index + 1
        except BaseException as exc:  # noqa: BLE001 -- handed to the test thread, which re-raises it
            self.error = exc

    def _post_until_answered(self, object_id: int):
        deadline = time.monotonic() + 90
        while True:
            try:
                response = post_event(self.port, self.bodies[object_id])
            # No whole answer: no connection, or a worker killed between its headers and its body.
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                self.failures.append((object_id, type(exc).__name__))
                if not self.retry or time.monotonic() > deadline:
                    return
                time.sleep(0.05)
                continue
            stored = response.json().get("stored") if response.status_code == 200 else None
            self.answers.append((object_id, response.status_code, stored))
            return

    def finish(self, timeout: float = 120):
        """Wait for the plan to be done and surface any error the thread met."""
        self.join(timeout)
        assert not self.is_alive(), f"sender stuck at post {self.progress} of {len(self.plan)}"
        if self.error is not None:
            raise self.error

    def successes(self) -> dict[int, int]:
        """How many 200 answers each object_id got."""
        counts: dict[int, int] = {}
        for object_id, status, _ in self.answers:
            if status == 200:
                counts[object_id] = counts.get(object_id, 0) + 1
        return counts


def stored_counts(engine) -> dict[int, int]:
    """times_received of every stored event, by object_id (straight from the table)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT object_id, times_received FROM predictions")).all()
    return {int(row.object_id): int(row.times_received) for row in rows}


def health(port: int) -> tuple[int, dict]:
    """GET /health: status code and body."""
    response = requests.get(f"http://127.0.0.1:{port}/health", timeout=POST_TIMEOUT)
    return response.status_code, response.json()


def drained(port: int) -> bool:
    """True when /health is 200 with an empty spool (the call itself drains what it can)."""
    status, body = health(port)
    return status == 200 and body["spool"]["depth"] == 0


def no_tracebacks(log_path) -> None:
    """The app's log holds no unhandled exception."""
    log = log_path.read_text()
    assert "Traceback" not in log, log[-4000:]


# ----------------------------------------------------------------------------- Postgres goes away


@pytest.mark.postgres
def test_postgres_stopped_and_restarted_mid_stream_loses_and_doubles_nothing(
        fault_postgres, fault_db, tiny_model_path, tmp_path):
    """Answers stay 200 ('spooled' while Postgres is down); afterwards every post is counted exactly once."""
    url, engine = fault_db
    bodies = live_bodies(60, seed=21)
    plan = post_plan(list(bodies), resends=40, seed=21)  # 100 posts
    stop_at, down_from, up_from = 30, 55, 80  # posts 55..79 certainly meet a stopped database
    stopped, started = threading.Event(), threading.Event()
    port = free_port()
    app = start_gunicorn(app_env(port, tmp_path, url, tiny_model_path), tmp_path / "gunicorn.log")
    sender = Sender(port, bodies, plan, gates={down_from: stopped, up_from: started})
    try:
        sender.start()
        wait_for(lambda: sender.progress >= stop_at or sender.error, timeout=60, what="first posts")
        fault_postgres.stop("fast")  # posts carry on while it shuts down
        stopped.set()
        wait_for(lambda: sender.progress >= up_from or sender.error, timeout=60,
                 what="posts while the database is down")
        status, body = health(port)
        assert status == 503 and body["database"] == "unreachable", body
        assert body["spool"]["writable"] is True and body["spool"]["depth"] >= up_from - down_from, body
        fault_postgres.start()
        started.set()
        sender.finish()
        # Later writes drain the spool; /health drains too, so poll it until the spool is empty.
        wait_for(lambda: drained(port), timeout=30, what="the spool to drain and /health to be 200")
    finally:
        fault_postgres.start()
        stop_process(app)

    assert sender.failures == [], sender.failures
    assert [a for a in sender.answers if a[1] != 200] == [], "every post is answered 200, even with the database down"
    stored_as = [a[2] for a in sender.answers]
    assert set(stored_as) <= {"pending", "stored", "spooled"}
    # While the database is down a worker answers 'pending' (store after answering) at most once:
    # that write is spooled, and the worker then stores before answering until the database is back.
    assert stored_as[down_from:up_from].count("pending") <= 2, stored_as
    assert stored_as[down_from:up_from].count("spooled") >= up_from - down_from - 2, stored_as
    assert stored_as[up_from:].count("stored") > 0, "writes go straight to the database again once it is back"
    posted = {object_id: plan.count(object_id) for object_id in bodies}
    counts = settled(lambda: stored_counts(engine), posted)
    assert counts == posted, {k: (counts.get(k), v) for k, v in posted.items() if counts.get(k) != v}
    assert sum(counts.values()) == len(plan)
    no_tracebacks(tmp_path / "gunicorn.log")
    print(f"\npostgres outage: {len(plan)} posts of {len(bodies)} events, all answered 200, "
          f"{stored_as.count('spooled')} spooled and drained, each stored once with the right count")


# ----------------------------------------------------------------------------- the stream service restarts


@pytest.mark.postgres
def test_stream_service_restart_app_registers_again_unaided(fault_db, tiny_model_path, tmp_path):
    """A restarted stream service has forgotten the app; within a few intervals it is registered and pushing again."""
    import synth

    url, engine = fault_db
    data = tmp_path / "stream.json"
    data.write_text(json.dumps([synth.to_live(r) for r in synth.generate_events(10, seed=5)]))
    stream_port, port = free_port(), free_port()
    our_url = f"http://127.0.0.1:{port}"

    def registered():
        return our_url in requests.get(f"http://127.0.0.1:{stream_port}/status", timeout=5).json()["urls"]

    stream = start_stream(data, stream_port, tmp_path / "stream1.log", interval=0.2)
    env = app_env(port, tmp_path, url, tiny_model_path, STREAM_REGISTER_URL=f"http://127.0.0.1:{stream_port}/register",
                  PUBLIC_IP="127.0.0.1", PUBLIC_PORT=port, REGISTER_INTERVAL=1)
    app = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        wait_for(registered, timeout=15, what="the first registration")
        wait_for(lambda: sum(stored_counts(engine).values()) >= 3, timeout=20, what="pushed events stored")
        stop_process(stream)
        assert app.poll() is None and health(port)[0] == 200, "a missing stream service does not hurt the app"
        before = sum(stored_counts(engine).values())

        # A new process: it starts with no addresses, so only the app's own re-registration brings pushes.
        stream = start_stream(data, stream_port, tmp_path / "stream2.log", interval=0.2)
        wait_for(registered, timeout=10, what="registration with the restarted stream service")
        wait_for(lambda: sum(stored_counts(engine).values()) >= before + 3, timeout=20,
                 what="events pushed by the restarted stream service stored")
    finally:
        stop_process(stream)
        stop_process(app)
    assert app.returncode == 0
    no_tracebacks(tmp_path / "gunicorn.log")


# ----------------------------------------------------------------------------- the app restarts


def _review_state(engine, object_id) -> tuple:
    """What analysts decided on an event: status, latest review id and the whole audit trail."""
    row = db.get_prediction(engine, object_id)
    trail = [(r["id"], r["action"], r["analyst"], r["note"]) for r in db.reviews_for(engine, object_id)]
    return row["review_status"], row["last_review_id"], trail


@pytest.mark.postgres
def test_app_restarted_mid_stream_keeps_decisions_and_counts(fault_db, tiny_model_path, tmp_path):
    """SIGTERM to gunicorn mid-stream, start it again: no duplicates, no lost or changed decisions."""
    url, engine = fault_db
    bodies = live_bodies(40, seed=31)
    ids = list(bodies)
    first, later = ids[:20], ids[20:]
    port = free_port()
    env = app_env(port, tmp_path, url, tiny_model_path)
    app = start_gunicorn(env, tmp_path / "gunicorn1.log")
    try:
        for object_id in first:
            response = post_event(port, bodies[object_id])
            assert response.status_code == 200 and response.json()["stored"] == "pending"
        assert settled(lambda: stored_counts(engine), dict.fromkeys(first, 1)) == dict.fromkeys(first, 1)
        decisions = [(first[0], "flagged_fraud", "alice"), (first[1], "cleared", "bob"),
                     (first[2], "needs_info", "alice"), (first[3], "note", "bob")]
        for object_id, action, analyst in decisions:
            result = db.add_review(engine, [object_id], action, analyst, note=f"{action} by {analyst}",
                                   expected_review_ids=None if action == "note" else {object_id: None})
            assert result["applied"] == [object_id]
        reviewed = [d[0] for d in decisions]
        before = {object_id: _review_state(engine, object_id) for object_id in reviewed}

        # The stream goes on: new events and resends; the reviewed events are resent after the restart.
        plan = post_plan(later, resends=40, seed=31) + reviewed
        restarted = threading.Event()
        sender = Sender(port, bodies, plan, gates={len(plan) - len(reviewed): restarted}, retry=True)
        sender.start()
        wait_for(lambda: sender.progress >= 15 or sender.error, timeout=60, what="posts before the restart")
        stop_process(app, sig=signal.SIGTERM)
        assert app.returncode == 0, "gunicorn stops cleanly on SIGTERM"
        app = start_gunicorn(env, tmp_path / "gunicorn2.log")
        restarted.set()
        sender.finish()
    finally:
        stop_process(app)

    assert sender.failures, "some posts met the app while it was down (else the restart was not mid-stream)"
    assert all(status == 200 for _, status, _ in sender.answers)
    answered = sender.successes()
    expected = {object_id: 1 + answered.get(object_id, 0) for object_id in first}
    expected.update({object_id: answered[object_id] for object_id in later})
    # A post that got no answer was refused before the app read it (graceful stop): never stored.
    # An answered post was stored, even one answered just before SIGTERM: the worker finishes its write.
    assert settled(lambda: stored_counts(engine), expected) == expected
    for object_id in reviewed:
        assert _review_state(engine, object_id) == before[object_id], f"event {object_id}'s decision changed"
    assert [_review_state(engine, i)[0] for i in reviewed] == ["flagged_fraud", "cleared", "needs_info", "unreviewed"]
    no_tracebacks(tmp_path / "gunicorn1.log")
    no_tracebacks(tmp_path / "gunicorn2.log")
    print(f"\napp restart: {len(sender.failures)} attempts met the app down and were retried; "
          f"{len(plan)} posts stored exactly once; {len(reviewed)} reviewed events unchanged")


# ----------------------------------------------------------------------------- a worker dies


@pytest.mark.postgres
def test_killed_worker_is_replaced_and_the_others_keep_serving(fault_db, tiny_model_path, tmp_path):
    """SIGKILL each original worker in turn: requests keep succeeding, the master replaces both."""
    url, engine = fault_db
    bodies = live_bodies(60, seed=41)
    plan = post_plan(list(bodies), resends=60, seed=41)  # 120 posts
    port = free_port()
    app = start_gunicorn(app_env(port, tmp_path, url, tiny_model_path), tmp_path / "gunicorn.log")
    replaced = threading.Event()
    sender = Sender(port, bodies, plan, gates={90: replaced})
    try:
        wait_for(lambda: len(worker_pids(app.pid)) == 2, timeout=10, what="two workers")
        originals = worker_pids(app.pid)
        sender.start()
        for victim, kill_at in zip(sorted(originals), (20, 50)):
            wait_for(lambda: sender.progress >= kill_at or sender.error, timeout=60, what=f"{kill_at} posts")
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: victim not in worker_pids(app.pid) and len(worker_pids(app.pid)) == 2,
                     timeout=20, what=f"worker {victim} replaced")
        replaced.set()
        sender.finish()
        assert app.poll() is None, "the master survives its workers"
        assert worker_pids(app.pid).isdisjoint(originals), "both killed workers were replaced"
        assert health(port)[0] == 200
    finally:
        stop_process(app)

    # Each killed sync worker took at most one event with it: the request it was serving (no
    # answer), or the event it had just answered 'pending' and was storing. Nothing is doubled.
    assert len(sender.failures) <= 2, sender.failures
    assert all(status == 200 for _, status, _ in sender.answers)
    assert len(sender.answers) + len(sender.failures) == len(plan)
    assert sender.progress == len(plan) and len(sender.answers) >= len(plan) - 2
    posted = {object_id: plan.count(object_id) for object_id in set(plan)}
    counts = settled(lambda: stored_counts(engine), posted)
    missing = {object_id: attempts - counts.get(object_id, 0) for object_id, attempts in posted.items()}
    assert min(missing.values()) >= 0, "an event was doubled"
    assert sum(missing.values()) <= 2, {k: v for k, v in missing.items() if v}
    log = (tmp_path / "gunicorn.log").read_text()
    assert log.count("was sent SIGKILL") == 2, log[-3000:]
    print(f"\nworker kills: {len(sender.answers)} of {len(plan)} posts answered 200, "
          f"{len(sender.failures)} lost with the killed workers")


# ----------------------------------------------------------------------------- nowhere to write


@pytest.mark.postgres
def test_unwritable_spool_with_database_down_refuses_honestly(fault_postgres, fault_db, tiny_model_path, tmp_path):
    """Database down and spool unusable: /health says so (503), the log says so, /score answers 503."""
    url, engine = fault_db
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the spool's parent directory should be")
    port = free_port()
    env = app_env(port, tmp_path, url, tiny_model_path, SPOOL_DIR=blocker / "spool")
    log_path = tmp_path / "gunicorn.log"
    bodies = live_bodies(2, seed=51)
    first, second = bodies
    app = start_gunicorn(env, log_path)
    try:
        response = post_event(port, bodies[first])
        assert response.status_code == 200 and response.json()["stored"] == "stored"
        status, body = health(port)
        assert status == 503 and body["database"] == "ok" and body["spool"]["writable"] is False, body
        wait_for(lambda: f"spool at {blocker / 'spool'} is not writable" in log_path.read_text(), timeout=5,
                 what="the log to say the spool is not writable")

        fault_postgres.stop("fast")
        status, body = health(port)
        assert status == 503, body
        assert body["status"] == "degraded" and body["database"] == "unreachable", body
        assert body["spool"]["writable"] is False, body
        response = post_event(port, bodies[second])
        assert response.status_code == 503, response.text
        assert "could not be stored" in response.json()["message"]
        assert "stored" not in response.json()
    finally:
        fault_postgres.start()
        stop_process(app)

    log = log_path.read_text()
    assert f"event {second} could not be stored anywhere" in log, log[-3000:]
    assert f"cannot write the spool at {blocker / 'spool'}" in log, log[-3000:]
    assert stored_counts(engine) == {first: 1}, "the refused event was not stored behind the client's back"


# ----------------------------------------------------------------------------- threaded workers


def test_threaded_workers_answer_first_and_store_every_event(tiny_model_path, tmp_path):
    """GUNICORN_THREADS=4: concurrent posts in one worker all answer 'pending' (a write in progress
    on another thread does not make the others store first) and every event is stored once."""
    url = f"sqlite:///{tmp_path / 'fraud.db'}"
    port = free_port()
    app = start_gunicorn(app_env(port, tmp_path, url, tiny_model_path, GUNICORN_THREADS=4),
                         tmp_path / "gunicorn.log")
    bodies = live_bodies(60, seed=81)
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda body: post_event(port, body), bodies.values()))
    finally:
        stop_process(app)  # SIGTERM: the workers finish their writes first
    assert {(a.status_code, a.json()["stored"]) for a in answers} == {(200, "pending")}
    engine = db.make_engine(url)
    assert stored_counts(engine) == dict.fromkeys(bodies, 1)
    engine.dispose()
    no_tracebacks(tmp_path / "gunicorn.log")


def test_broken_http_framing_gets_a_json_400_and_is_recorded(tiny_model_path, tmp_path):
    """What only a real server shows: a body cut short of its Content-Length (the client stops
    sending), and bad chunked framing that gunicorn's reader raises on. Each gets a JSON 400
    naming the problem and a row in rejects, never a 500 or a stored prefix."""
    import socket

    url = f"sqlite:///{tmp_path / 'fraud.db'}"
    port = free_port()
    app = start_gunicorn(app_env(port, tmp_path, url, tiny_model_path), tmp_path / "gunicorn.log")

    def raw_post(head: bytes, body: bytes) -> tuple[int, dict]:
        with socket.create_connection(("127.0.0.1", port), timeout=POST_TIMEOUT) as sock:
            sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + head + b"\r\n" + body)
            sock.shutdown(socket.SHUT_WR)  # the client sends no more
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])

    try:
        cut = raw_post(b"Content-Length: 500\r\n", b'{"object_id": 17002, "name": "x"}')
        assert cut[0] == 400 and "ended after 33 of its 500 bytes" in cut[1]["message"], cut
        for framing in (b"zz\r\n{}\r\n0\r\n\r\n", b"-1\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"):
            bad = raw_post(b"Transfer-Encoding: chunked\r\n", framing)
            assert bad[0] == 400 and "could not be read" in bad[1]["message"], (framing, bad)
        fine = raw_post(b"Transfer-Encoding: chunked\r\n", b"14\r\n{\"object_id\": 17003}\r\n0\r\n\r\n")
        assert fine[0] == 200 and fine[1]["object_id"] == 17003, fine
    finally:
        stop_process(app)
    engine = db.make_engine(url)
    assert db.get_prediction(engine, 17002) is None and db.get_prediction(engine, 17003) is not None
    reasons = [r["reason"] for r in db.recent_rejects(engine)]
    assert sum("could not be read" in r for r in reasons) == 3 and sum("ended after" in r for r in reasons) == 1
    engine.dispose()
    no_tracebacks(tmp_path / "gunicorn.log")


def test_a_client_silent_mid_body_gets_a_408_before_the_worker_would_be_killed(tiny_model_path, tmp_path):
    """Two clients (one per worker) send half a body and then nothing, connections left open: each
    is answered 408 after BODY_IDLE_SECONDS and recorded; no worker is killed (it was: every
    /score waited for gunicorn's 30 s timeout, which killed the workers and answered 500)."""
    import socket

    url = f"sqlite:///{tmp_path / 'fraud.db'}"
    port = free_port()
    env = {**app_env(port, tmp_path, url, tiny_model_path), "BODY_IDLE_SECONDS": "1"}
    app = start_gunicorn(env, tmp_path / "gunicorn.log")
    silent = []
    try:
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", port), timeout=POST_TIMEOUT)
            sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"object_id\": 17004")
            silent.append(sock)
        answers = []
        for sock in silent:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            status_line, _, rest = answer.partition(b"\r\n")
            answers.append((int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])))
        for status, body in answers:
            assert status == 408 and "no byte of the body arrived for 1 s" in body["message"], answers
        fine = requests.post(f"http://127.0.0.1:{port}/score", json={"object_id": 17005}, timeout=POST_TIMEOUT)
        assert fine.status_code == 200, fine.text
    finally:
        for sock in silent:
            sock.close()
        stop_process(app)
    engine = db.make_engine(url)
    assert db.get_prediction(engine, 17004) is None
    assert sum("no byte of the body arrived" in r["reason"] for r in db.recent_rejects(engine)) == 2
    engine.dispose()
    log = (tmp_path / "gunicorn.log").read_text()
    assert "WORKER TIMEOUT" not in log and "SIGKILL" not in log, log[-3000:]
    no_tracebacks(tmp_path / "gunicorn.log")


# ----------------------------------------------------------------------------- a new model is rolled out


def test_reload_serves_a_new_model_and_keeps_the_running_one_when_the_new_one_is_broken(
        tiny_model_path, tmp_path):
    """`systemctl reload` (HUP) with the app preloaded in gunicorn's master: a new model at
    MODEL_PATH is served by the new workers; a broken one is refused and the old model serves on."""
    import shutil

    import model as model_module
    import synth

    live = tmp_path / "models" / "model.pkl"
    live.parent.mkdir()
    shutil.copy(tiny_model_path, live)
    candidate = model_module.train(synth.generate_events(1500, seed=71), seed=1, quick=True)
    model_module.save_model(candidate, tmp_path / "candidate.pkl")
    port = free_port()
    env = app_env(port, tmp_path, f"sqlite:///{tmp_path / 'fraud.db'}", live)
    log_path = tmp_path / "gunicorn.log"
    app = start_gunicorn(env, log_path)
    body = next(iter(live_bodies(1, seed=72).values()))

    def serving() -> tuple[str, str]:
        """The model version /health reports and the one a fresh /score is answered with."""
        version = health(port)[1]["model_version"]
        return version, post_event(port, body).json()["model_version"]

    def refused_gauge() -> str:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        return next(line for line in text.splitlines() if line.startswith("fraud_model_reload_refused "))

    try:
        old = serving()[0]
        assert serving() == (old, old)
        assert health(port)[1]["refused_reload"] is None and refused_gauge().endswith(" 0.0")
        originals = worker_pids(app.pid)

        live.write_bytes(b"a model file cut short by a bad copy")
        os.kill(app.pid, signal.SIGHUP)
        wait_for(lambda: "reload kept the running app" in log_path.read_text(), timeout=30,
                 what="the reload to refuse the broken model")
        wait_for(lambda: worker_pids(app.pid).isdisjoint(originals) and len(worker_pids(app.pid)) == 2,
                 timeout=30, what="the workers to be replaced")
        assert serving() == (old, old), "the broken file must not stop or change scoring"
        # ... and the operator can see that the file on disk is not what serves
        status, body_ = health(port)
        assert status == 200 and body_["status"] == "ok"
        assert "model" in body_["refused_reload"]["error"] and body_["refused_reload"]["at"].startswith("20")
        assert refused_gauge().endswith(" 1.0")

        shutil.copy(tmp_path / "candidate.pkl", live)
        os.kill(app.pid, signal.SIGHUP)
        wait_for(lambda: serving() == (candidate.version, candidate.version), timeout=30,
                 what="the new workers to serve the new model")
        assert candidate.version != old
        assert health(port)[1]["refused_reload"] is None and refused_gauge().endswith(" 0.0")
        assert app.poll() is None
    finally:
        stop_process(app)
    log = log_path.read_text()
    assert f"reloaded the app: model version {candidate.version}" in log, log[-3000:]
    no_tracebacks(log_path)


# ----------------------------------------------------------------------------- no usable model


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated"])
def test_missing_or_corrupt_model_stops_gunicorn_with_a_clear_error(damage, tiny_model_path, tmp_path):
    """gunicorn exits non-zero, saying why, instead of respawning workers that can never score."""
    model_path = tmp_path / "model.pkl"
    if damage == "garbage":
        model_path.write_bytes(b"this is not a model")
    elif damage == "truncated":
        artifact = tiny_model_path.read_bytes()
        model_path.write_bytes(artifact[: len(artifact) // 2])
    port = free_port()
    env = app_env(port, tmp_path, f"sqlite:///{tmp_path / 'fraud.db'}", model_path)
    log_path = tmp_path / "gunicorn.log"
    app = start_gunicorn(env, log_path, wait=False)
    try:
        returncode = app.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop_process(app, sig=signal.SIGKILL)
        pytest.fail("gunicorn kept running without a usable model:\n" + log_path.read_text()[-3000:])
    log = log_path.read_text()
    assert returncode != 0, log[-3000:]
    assert "fraud-triage cannot start: " in log, log[-3000:]
    expected = "no model at" if damage == "missing" else "corrupt"
    reason = next(line for line in log.splitlines() if "fraud-triage cannot start" in line)
    assert expected in reason and str(model_path) in reason, reason
    assert log.count("Booting worker") <= 2, "workers that cannot boot must not be respawned"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/hello", timeout=5)
