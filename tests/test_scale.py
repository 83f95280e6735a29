"""Scale-out, shown: two app instances (gunicorn, two workers each) on ONE real Postgres.

Concurrent /score traffic goes to both instances, each event sent once to each of them, in a
shuffled order so the two copies of an event often arrive at the same moment. Analysts signed
in on different instances decide the same events at the same moment through the dashboard's
own forms (sign-in, CSRF token, last-seen review id). Nothing may live in one process that
another needs: the counts must add up across instances and no decision may be overwritten.

The combined throughput is printed; see it with ``pytest tests/test_scale.py -s``.
"""
from __future__ import annotations

import html
import json
import random
import re
import threading
import time

import pytest
import requests
from sqlalchemy import text
from werkzeug.security import generate_password_hash

import db
from tests.processes import app_env, free_port, settled, start_gunicorn, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

EVENTS = 300  # distinct events, each posted once to each instance: 600 posts
THREADS = 8
CONTESTED = 10  # events two analysts decide at the same moment
PASSWORD = "correct horse battery staple"
POST_TIMEOUT = 30


@pytest.fixture
def shared_db(postgres_server):
    """A fresh database on the session's Postgres: the one store both instances share."""
    with postgres_server.fresh_database("scale") as url:
        engine = db.make_engine(url)
        db.init_db(engine)
        yield url, engine
        engine.dispose()


@pytest.fixture
def two_instances(shared_db, tiny_model_path, tmp_path):
    """Two gunicorn instances (two workers each) on different ports, same database and SECRET_KEY."""
    url, _ = shared_db
    ports = [free_port(), free_port()]
    processes = []
    try:
        for port in ports:
            processes.append(start_gunicorn(app_env(port, tmp_path, url, tiny_model_path, LOG_LEVEL="WARNING"),
                                            tmp_path / f"gunicorn-{port}.log"))
        yield ports
    finally:
        for process in processes:
            stop_process(process)
    for port in ports:
        log = (tmp_path / f"gunicorn-{port}.log").read_text()
        assert "Traceback" not in log, log[-4000:]


def live_bodies(n: int, seed: int) -> dict[int, bytes]:
    """n distinct events as the stream sends them, by object_id."""
    import synth

    records = [synth.to_live(r) for r in synth.generate_events(n, seed=seed)]
    bodies = {int(r["object_id"]): json.dumps(r).encode() for r in records}
    assert len(bodies) == n
    return bodies


def drive(plan: list[tuple[int, int]], bodies: dict[int, bytes], threads: int) -> tuple[list, float]:
    """POST every (port, object_id) of the plan from ``threads`` threads; the answers and the wall time."""
    answers, guard = [], threading.Lock()
    start = threading.Barrier(threads + 1)

    def work(share):
        mine = []
        start.wait()
        for port, object_id in share:
            began = time.perf_counter()
            try:
                response = requests.post(f"http://127.0.0.1:{port}/score", data=bodies[object_id],
                                         headers={"Content-Type": "application/json"}, timeout=POST_TIMEOUT)
                status = response.status_code
                stored = response.json().get("stored") if status == 200 else None
            except requests.RequestException as exc:
                status, stored = None, type(exc).__name__
            mine.append((port, object_id, status, stored, time.perf_counter() - began))
        with guard:
            answers.extend(mine)

    workers = [threading.Thread(target=work, args=(plan[i::threads],), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join(300)
    return answers, time.perf_counter() - began


def scores_counted(port: int) -> int:
    """Events this instance scored, summed over its workers (its /metrics counter)."""
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return round(sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                     if line.startswith("fraud_scores_total{")))


def stored_counts(engine) -> dict[int, int]:
    """times_received of every stored event, by object_id."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT object_id, times_received FROM predictions")).all()
    return {int(row.object_id): int(row.times_received) for row in rows}


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page's forms (csrf_token, expected_review_id, ...), unescaped."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return {name: html.unescape(value) for name, value in found}


def sign_in(port: int, name: str) -> requests.Session:
    """A browser-like session signed in to one instance's dashboard through its form."""
    session = requests.Session()
    base = f"http://127.0.0.1:{port}"
    form = hidden_fields(session.get(f"{base}/login", timeout=10).text)
    response = session.post(f"{base}/login", data={"csrf_token": form["csrf_token"], "name": name,
                                                   "password": PASSWORD}, timeout=10)
    assert response.status_code == 200 and response.history, f"{name} could not sign in: {response.status_code}"
    return session


def open_event(session: requests.Session, port: int, object_id: int) -> dict[str, str]:
    """Open an event's page as the analyst would; the decision form's hidden fields."""
    response = session.get(f"http://127.0.0.1:{port}/events/{object_id}", timeout=10)
    assert response.status_code == 200, response.status_code
    return hidden_fields(response.text)


def decide(session, port, object_id, form, action, gate, outcomes, key):
    """Submit the decision form (after the gate, so both analysts press at once); keep the page shown."""
    data = {name: form[name] for name in ("csrf_token", "expected_review_id")}
    data.update(action=action, note=f"{action} on instance {port}")
    gate.wait()
    response = session.post(f"http://127.0.0.1:{port}/events/{object_id}/review", data=data, timeout=POST_TIMEOUT)
    outcomes[key] = (response.status_code, html.unescape(response.text))


def review_state(engine, object_id) -> tuple:
    """Status, latest review id and audit trail of one event."""
    row = db.get_prediction(engine, object_id)
    trail = [(r["id"], r["action"], r["analyst"]) for r in db.reviews_for(engine, object_id)]
    return row["review_status"], row["last_review_id"], trail


def test_two_instances_share_one_postgres_without_losing_or_doubling(shared_db, two_instances):
    _, engine = shared_db
    port_a, port_b = two_instances
    bodies = live_bodies(EVENTS, seed=61)
    rng = random.Random(61)
    plan = [(port, object_id) for object_id in bodies for port in (port_a, port_b)]
    rng.shuffle(plan)  # the two copies of an event are often in flight at once, on different instances

    # ---- 1. concurrent scoring traffic at both instances
    answers, seconds = drive(plan, bodies, THREADS)
    ok = [a for a in answers if a[2] == 200]
    assert len(answers) == len(plan)
    assert len(ok) == len(plan), [a for a in answers if a[2] != 200][:5]
    assert {a[3] for a in ok} == {"pending"}, "the shared database stayed up: every event stored after its answer"
    latencies = sorted(a[4] for a in ok)
    print(f"\nscale-out: {len(ok)} /score posts ({EVENTS} events, each to both instances) from {THREADS} "
          f"threads to 2 instances x 2 workers on one Postgres in {seconds:.2f}s = {len(ok) / seconds:.0f} "
          f"req/s combined; latency p50 {latencies[len(ok) // 2] * 1000:.0f} ms, "
          f"p95 {latencies[int(len(ok) * 0.95)] * 1000:.0f} ms")

    counts = settled(lambda: stored_counts(engine), dict.fromkeys(bodies, 2))
    assert len(counts) == EVENTS, "one row per distinct event: nothing lost, nothing duplicated"
    assert set(counts.values()) == {2}, "each event counted once per instance that received it"
    assert sum(counts.values()) == len(ok)
    for port in (port_a, port_b):
        sent_here = sum(1 for a in ok if a[0] == port)
        assert sent_here == EVENTS
        assert scores_counted(port) == sent_here, f"instance {port}'s workers together scored what it answered"

    # ---- 2. two analysts on different instances decide the same events at once, while resends arrive
    for name in ("alice", "bob"):
        db.create_analyst(engine, name, generate_password_hash(PASSWORD))
    alice, bob = sign_in(port_a, "alice"), sign_in(port_b, "bob")
    contested = sorted(bodies)[:CONTESTED]
    resends = [(port, object_id) for object_id in contested for port in (port_a, port_b)] * 3
    rng.shuffle(resends)
    resend_answers: list = []
    traffic = threading.Thread(target=lambda: resend_answers.extend(drive(resends, bodies, 4)[0]), daemon=True)
    traffic.start()
    outcomes: dict = {}
    for object_id in contested:
        forms = {"alice": open_event(alice, port_a, object_id), "bob": open_event(bob, port_b, object_id)}
        assert forms["alice"]["expected_review_id"] == forms["bob"]["expected_review_id"] == ""
        gate = threading.Barrier(2)
        pair = [threading.Thread(target=decide, args=(alice, port_a, object_id, forms["alice"], "flagged_fraud",
                                                      gate, outcomes, (object_id, "alice"))),
                threading.Thread(target=decide, args=(bob, port_b, object_id, forms["bob"], "cleared",
                                                      gate, outcomes, (object_id, "bob")))]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join(60)
    traffic.join(120)
    assert not traffic.is_alive()
    assert len(resend_answers) == len(resends) and all(a[2] == 200 for a in resend_answers)

    action_of = {"alice": "flagged_fraud", "bob": "cleared"}
    done_text = {"alice": "Flagged as fraud: ", "bob": "Cleared: "}
    winners = {}
    for object_id in contested:
        applied = [who for who in ("alice", "bob") if done_text[who] in outcomes[(object_id, who)][1]]
        refused = [who for who in ("alice", "bob") if "Not applied to" in outcomes[(object_id, who)][1]]
        assert len(applied) == 1 and len(refused) == 1 and applied != refused, (object_id, applied, refused)
        winner, loser = applied[0], refused[0]
        winners[object_id] = winner
        assert outcomes[(object_id, winner)][0] == 200
        # The refused one sees the event again (409) with the note it wrote still in the box.
        assert outcomes[(object_id, loser)][0] == 409
        assert f"{action_of[loser]} on instance" in outcomes[(object_id, loser)][1]
        assert f"{winner} changed it to" in outcomes[(object_id, loser)][1], "the refusal names who decided"
        status, last_review_id, trail = review_state(engine, object_id)
        assert trail == [(last_review_id, action_of[winner], winner)], "exactly one decision recorded"
        assert status == action_of[winner], "the applied decision is the one stored, never overwritten"
    print(f"concurrent decisions: {CONTESTED} events decided at once on both instances: {CONTESTED} applied, "
          f"{CONTESTED} refused as conflicts (winners: alice {list(winners.values()).count('alice')}, "
          f"bob {list(winners.values()).count('bob')})")

    # ---- 3. more resends to both instances leave every decision as it was
    before = {object_id: review_state(engine, object_id) for object_id in contested}
    more = [(port, object_id) for object_id in contested for port in (port_a, port_b)]
    received = sum(stored_counts(engine).values())
    more_answers, _ = drive(more, bodies, 4)
    assert all(a[2] == 200 for a in more_answers)
    settled(lambda: sum(stored_counts(engine).values()), received + len(more))  # every resend written
    assert {object_id: review_state(engine, object_id) for object_id in contested} == before
    counts = stored_counts(engine)
    assert len(counts) == EVENTS
    assert sum(counts.values()) == len(plan) + len(resends) + len(more)
    assert all(counts[object_id] == 2 + 6 + 2 for object_id in contested)
    for port in (port_a, port_b):
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.status_code == 200 and health.json()["spool"]["depth"] == 0
        assert scores_counted(port) == sum(1 for a in ok + resend_answers + more_answers if a[0] == port)
