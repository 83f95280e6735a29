"""The local stream service speaks the client's protocol: register answers, pushes, drops."""
import json
import math
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import stream
from dataset import DataError
from tests.processes import free_port as closed_port, wait_for

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(60)

# Small hand-made records: some missing values (None / NaN), a label that must never be sent.
RECORDS = [
    {"object_id": 101, "acct_type": "premium", "has_header": None, "gts": 12.5, "country": "",
     "venue_name": None, "ticket_types": [{"event_id": 101, "cost": 25.0, "quantity_total": None}],
     "previous_payouts": []},
    {"object_id": 102, "acct_type": "fraudster", "has_header": float("nan"), "gts": 0.0, "country": "US",
     "venue_name": "Hall", "ticket_types": [], "previous_payouts": [{"amount": 10.0}]},
]
LIVE_KEYS = {k for k in RECORDS[0] if k != "acct_type"}


@contextmanager
def serve(app):
    """Run a WSGI app on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class ScoreCollector:
    """A fake scoring service: records every /score request body and content type."""

    def __init__(self, status=200):
        self.status = status
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []

    def __call__(self, environ, start_response):
        req = Request(environ)
        if req.path == "/score" and req.method == "POST":
            self.bodies.append(req.get_data())
            self.content_types.append(req.content_type)
        return Response("{}", status=self.status, content_type="application/json")(environ, start_response)


def host_port(url):
    """The (ip, port) form fields for a http://ip:port URL."""
    host, port = url.removeprefix("http://").split(":")
    return host, port


@pytest.fixture
def stream_app():
    app = stream.create_stream_app(RECORDS, interval=0.05, seed=1)
    yield app
    app.extensions["stream"].stop()


def test_register_answers_the_clients_message(stream_app):
    client = stream_app.test_client()
    reply = client.post("/register", data={"ip": "127.0.0.1", "port": "5050"})
    assert reply.status_code == 200
    assert reply.is_json
    assert reply.get_json() == {"Message": "Added url http://127.0.0.1:5050"}


def test_registering_twice_is_harmless(stream_app):
    client = stream_app.test_client()
    first = client.post("/register", data={"ip": "127.0.0.1", "port": "5050"})
    second = client.post("/register", data={"ip": "127.0.0.1", "port": "5050"})
    assert first.get_json() == second.get_json()
    assert client.get("/status").get_json()["urls"] == ["http://127.0.0.1:5050"]


@pytest.mark.parametrize("form", [
    {},
    {"ip": "127.0.0.1"},
    {"port": "5050"},
    {"ip": "127.0.0.1", "port": "http"},
    {"ip": "127.0.0.1", "port": "70000"},
    {"ip": "127.0.0.1/evil", "port": "5050"},
])
def test_register_rejects_bad_form(stream_app, form):
    client = stream_app.test_client()
    reply = client.post("/register", data=form)
    assert reply.status_code == 400
    assert "Message" in reply.get_json()
    assert client.get("/status").get_json()["urls"] == []


def test_register_takes_form_fields_not_json(stream_app):
    reply = stream_app.test_client().post("/register", json={"ip": "127.0.0.1", "port": 5050})
    assert reply.status_code == 400


def test_ipv6_address_is_bracketed():
    assert stream.score_url("::1", 5050) == "http://[::1]:5050"


def test_live_body_has_no_label_and_bare_nan():
    body = stream.encode_record(RECORDS[0]).decode()
    assert "acct_type" not in body
    assert '"has_header": NaN' in body and '"venue_name": NaN' in body
    parsed = json.loads(body)
    assert set(parsed) == LIVE_KEYS
    assert parsed["country"] == ""  # an empty string is a value, not a gap
    assert parsed["ticket_types"][0]["quantity_total"] is None  # nested values keep their shape
    tokens = []
    json.loads(body, parse_constant=tokens.append)
    assert tokens == ["NaN", "NaN"]  # exactly the two top-level gaps, as bare tokens


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".zip"])
def test_load_stream_records_keeps_nan_and_drops_label(tmp_path, suffix):
    text = json.dumps(RECORDS, allow_nan=True)
    assert "NaN" in text and "null" in text
    path = tmp_path / f"events{suffix}"
    if suffix == ".json":
        path.write_text(text)
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r, allow_nan=True) for r in RECORDS) + "\n")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("data.json", text)
    records = stream.load_stream_records(path)
    assert [r["object_id"] for r in records] == [101, 102]
    assert all("acct_type" not in r for r in records)
    assert math.isnan(records[0]["has_header"]) and math.isnan(records[1]["has_header"])
    assert math.isnan(records[0]["venue_name"])


def test_load_stream_records_refuses_bad_files(tmp_path):
    with pytest.raises(DataError):
        stream.load_stream_records(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataError):
        stream.load_stream_records(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(DataError):
        stream.load_stream_records(tmp_path / "empty.json")


def test_same_seed_same_sequence():
    def sequence(seed):
        service = stream.StreamService(RECORDS, seed=seed)
        return [json.loads(service.random.choice(service.bodies))["object_id"] for _ in range(20)]
    assert sequence(7) == sequence(7)
    assert set(sequence(7)) == {101, 102}  # with replacement, both records come up


def test_pushes_reach_registered_score_url():
    app = stream.create_stream_app(RECORDS[:1], interval=0.05, seed=0)
    service = app.extensions["stream"]
    collector = ScoreCollector()
    with serve(collector) as score_base:
        ip, port = host_port(score_base)
        app.test_client().post("/register", data={"ip": ip, "port": port})
        service.start()
        try:
            wait_for(lambda: len(collector.bodies) >= 3)
        finally:
            service.stop()
    assert all(ct == "application/json" for ct in collector.content_types)
    for raw in collector.bodies:
        text = raw.decode()
        assert "NaN" in text  # the record has missing values: bare NaN tokens, as the client sends
        record = json.loads(text)
        assert isinstance(record, dict)
        assert "acct_type" not in record
        assert set(record) == LIVE_KEYS
    assert service.status()["pushes_sent"] >= 3


def test_failed_connection_drops_address_and_others_still_get_pushes():
    app = stream.create_stream_app(RECORDS, interval=0.05, seed=0)
    service = app.extensions["stream"]
    client = app.test_client()
    dead = closed_port()
    collector = ScoreCollector(status=500)  # a failing answer is ignored, not a reason to drop
    with serve(collector) as score_base:
        ip, port = host_port(score_base)
        client.post("/register", data={"ip": ip, "port": port})
        client.post("/register", data={"ip": "127.0.0.1", "port": str(dead)})
        service.start()
        try:
            wait_for(lambda: len(collector.bodies) >= 3)
        finally:
            service.stop()
    status = client.get("/status").get_json()
    assert status["dropped"] == [f"http://127.0.0.1:{dead}"]
    assert status["urls"] == [score_base]
    assert status["failures"] == 1


def test_count_stops_pushing():
    app = stream.create_stream_app(RECORDS, interval=0.05, seed=0, count=2)
    service = app.extensions["stream"]
    collector = ScoreCollector()
    with serve(collector) as score_base:
        service.add(*host_port(score_base))
        service.start()
        wait_for(lambda: not service.running)
    assert len(collector.bodies) == 2
    assert service.status()["records_sent"] == 2


def test_no_push_without_registrations():
    service = stream.StreamService(RECORDS)
    assert service.tick() == 0
    assert service.status()["records_sent"] == 0


@pytest.mark.e2e
def test_cli_serves_register_and_pushes(tmp_path):
    data = tmp_path / "events.json"
    data.write_text(json.dumps(RECORDS, allow_nan=True))
    port = closed_port()
    collector = ScoreCollector()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "stream.py"), "--data", str(data), "--port", str(port),
         "--interval", "0.05", "--seed", "3"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with serve(collector) as score_base:
            ip, score_port = host_port(score_base)
            reply = None
            deadline = time.monotonic() + 15
            while reply is None and time.monotonic() < deadline:
                try:
                    reply = requests.post(f"http://127.0.0.1:{port}/register",
                                          data={"ip": ip, "port": score_port}, timeout=2)
                except requests.ConnectionError:
                    time.sleep(0.1)
            assert reply is not None, "stream.py did not start"
            assert reply.json() == {"Message": f"Added url {score_base}"}
            wait_for(lambda: len(collector.bodies) >= 2)
    finally:
        proc.terminate()
        proc.wait(10)
    assert all("acct_type" not in json.loads(b) for b in collector.bodies)
