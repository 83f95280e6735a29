"""Registering with the stream service: form fields, retries, never raising, periodic re-registering."""
import ipaddress
import logging
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import register
import stream
from tests.processes import free_port as closed_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
RECORDS = [{"object_id": 1, "has_header": None}]

pytestmark = pytest.mark.timeout(60)


@contextmanager
def serve(app, port=0):
    """Run a WSGI app on a loopback port (0: any free one) in a thread; yields (base URL, port)."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class FlakyRegister:
    """A /register endpoint answering the given statuses in turn (then 200), recording each request."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests = []

    def __call__(self, environ, start_response):
        req = Request(environ)
        raw = req.get_data(as_text=True)  # read before .form, which would consume the body
        self.requests.append((req.content_type, req.form.to_dict(), raw))
        status = self.statuses.pop(0) if self.statuses else 200
        body = '{"Message": "Added url http://%s:%s"}' % (req.form.get("ip"), req.form.get("port"))
        return Response(body, status=status, content_type="application/json")(environ, start_response)


@contextmanager
def hang_up_server():
    """A TCP server that accepts and closes every connection at once, counting them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    accepted = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/register", accepted
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.fixture
def stream_app():
    return stream.create_stream_app(RECORDS, interval=60, seed=0)


@pytest.fixture(autouse=True)
def private_lock_dir(tmp_path, monkeypatch):
    """Each test gets its own lock directory, and registrars never outlive a test."""
    monkeypatch.setenv("REGISTER_LOCK_DIR", str(tmp_path / "locks"))
    yield
    register.stop_registrars(timeout=0.2)


def test_register_with_real_stream_service(stream_app, caplog):
    caplog.set_level(logging.INFO, logger="register")
    with serve(stream_app) as (base, _):
        assert register.register(f"{base}/register", "127.0.0.1", 5050) is True
        assert stream_app.extensions["stream"].status()["urls"] == ["http://127.0.0.1:5050"]
    assert "Added url http://127.0.0.1:5050" in caplog.text


def test_register_posts_form_fields():
    endpoint = FlakyRegister()
    with serve(endpoint) as (base, _):
        assert register.register(f"{base}/register", "10.1.2.3", 8000) is True
    [(content_type, form, raw)] = endpoint.requests
    assert content_type == "application/x-www-form-urlencoded"
    assert form == {"ip": "10.1.2.3", "port": "8000"}
    assert raw in ("ip=10.1.2.3&port=8000", "port=8000&ip=10.1.2.3")


def test_register_retries_5xx_then_succeeds():
    endpoint = FlakyRegister(statuses=[503, 500])
    with serve(endpoint) as (base, _):
        assert register.register(f"{base}/register", "127.0.0.1", 5050, retries=3, backoff=0.01) is True
    assert len(endpoint.requests) == 3


def test_register_gives_up_after_retries_on_5xx():
    endpoint = FlakyRegister(statuses=[503] * 10)
    with serve(endpoint) as (base, _):
        assert register.register(f"{base}/register", "127.0.0.1", 5050, retries=2, backoff=0.01) is False
    assert len(endpoint.requests) == 3  # first try + 2 retries


def test_register_does_not_retry_a_refusal():
    endpoint = FlakyRegister(statuses=[400])
    with serve(endpoint) as (base, _):
        assert register.register(f"{base}/register", "127.0.0.1", 5050, retries=3, backoff=0.01) is False
    assert len(endpoint.requests) == 1


def test_unreachable_stream_returns_false_quickly():
    url = f"http://127.0.0.1:{closed_port()}/register"
    started = time.monotonic()
    assert register.register(url, "127.0.0.1", 5050, retries=3, backoff=0.01, timeout=1.0) is False
    assert time.monotonic() - started < 5


def test_connection_errors_are_retried_and_counted():
    with hang_up_server() as (url, accepted):
        assert register.register(url, "127.0.0.1", 5050, retries=2, backoff=0.01, timeout=1.0) is False
        wait_for(lambda: len(accepted) >= 3, timeout=3)
        time.sleep(0.1)
    assert len(accepted) == 3  # first try + 2 retries, then it gives up without raising


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/register", "http://"])
def test_bad_url_returns_false_not_raises(url):
    assert register.register(url, "127.0.0.1", 5050, retries=0) is False


def test_non_json_answer_is_logged_and_accepted(caplog):
    def plain(environ, start_response):
        return Response("ok, noted", content_type="text/plain")(environ, start_response)
    caplog.set_level(logging.INFO, logger="register")
    with serve(plain) as (base, _):
        assert register.register(f"{base}/register", "127.0.0.1", 5050) is True
    assert "ok, noted" in caplog.text


def test_local_ip_is_an_address():
    ipaddress.ip_address(register.local_ip())


def test_local_ip_falls_back_to_loopback(monkeypatch):
    class NoNetwork:
        def __init__(self, *args, **kwargs):
            raise OSError("network unreachable")
    monkeypatch.setattr(register.socket, "socket", NoNetwork)
    assert register.local_ip() == "127.0.0.1"


def test_registrar_reregisters_after_stream_restart():
    port = closed_port()
    first = stream.create_stream_app(RECORDS, interval=60)
    with serve(first, port) as (base, _):
        registrar = register.start_registrar(f"{base}/register", "127.0.0.1", 5050, interval=0.1,
                                             retries=0, timeout=1.0)
        assert registrar is not None
        wait_for(lambda: first.extensions["stream"].status()["urls"] == ["http://127.0.0.1:5050"])
    # The stream service restarts on the same port and has forgotten everybody.
    second = stream.create_stream_app(RECORDS, interval=60)
    with serve(second, port):
        wait_for(lambda: second.extensions["stream"].status()["urls"] == ["http://127.0.0.1:5050"])
    assert registrar.successes >= 2


def test_registrar_survives_stream_forgetting(stream_app):
    service = stream_app.extensions["stream"]
    with serve(stream_app) as (base, _):
        registrar = register.start_registrar(f"{base}/register", "127.0.0.1", 5050, interval=0.1)
        wait_for(lambda: service.status()["urls"])
        service.forget_all()
        successes = registrar.successes
        wait_for(lambda: service.status()["urls"] and registrar.successes > successes)
        assert service.status()["urls"] == ["http://127.0.0.1:5050"]
        registrar.stop()


def test_start_registrar_never_blocks_on_a_dead_stream():
    url = f"http://127.0.0.1:{closed_port()}/register"
    started = time.monotonic()
    registrar = register.start_registrar(url, "127.0.0.1", 5050, interval=60, retries=5, backoff=2.0)
    assert time.monotonic() - started < 0.5
    assert registrar is not None and registrar.running


def test_start_registrar_twice_in_one_process_returns_the_running_one():
    url = f"http://127.0.0.1:{closed_port()}/register"
    one = register.start_registrar(url, "127.0.0.1", 5050, interval=60, retries=0)
    two = register.start_registrar(url, "127.0.0.1", 5050, interval=60, retries=0)
    assert one is two


def test_host_lock_allows_one_registrar(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/register"
    lock = tmp_path / "one.lock"
    first = register.Registrar(url, "127.0.0.1", 5050, interval=60, retries=0, lock_path=lock)
    second = register.Registrar(url, "127.0.0.1", 5050, interval=60, retries=0, lock_path=lock)
    assert first.start() is True
    try:
        assert second.start() is False
        assert not second.running
    finally:
        first.stop()
    assert second.start() is True  # the lock is free once the first stops
    second.stop()


def test_host_lock_is_held_against_other_processes(tmp_path):
    lock = tmp_path / "host.lock"
    probe = [sys.executable, "-c",
             "import sys, register; sys.exit(0 if register.acquire_host_lock(sys.argv[1]) else 3)", str(lock)]
    handle = register.acquire_host_lock(lock)
    assert handle is not None
    try:
        assert subprocess.run(probe, cwd=ROOT, timeout=30).returncode == 3
    finally:
        handle.close()
    assert subprocess.run(probe, cwd=ROOT, timeout=30).returncode == 0


def test_settings_from_env():
    assert register.settings_from_env({}) is None
    settings = register.settings_from_env({
        "STREAM_REGISTER_URL": "http://stream:5001/register", "PUBLIC_IP": "10.0.0.5",
        "PUBLIC_PORT": "8000", "REGISTER_INTERVAL": "30"})
    assert settings == {"register_url": "http://stream:5001/register", "ip": "10.0.0.5",
                        "port": 8000, "interval": 30.0}
    assert register.settings_from_env({"STREAM_REGISTER_URL": "http://s/register"}, default_port=9000) == {
        "register_url": "http://s/register", "ip": None, "port": 9000, "interval": 60.0}


def test_start_registrar_from_env_without_url_does_nothing():
    assert register.start_registrar_from_env({}) is None


def test_cli_registers_and_reports_failure(stream_app):
    with serve(stream_app) as (base, _):
        assert register.main(["--url", f"{base}/register", "--ip", "127.0.0.1", "--port", "5050"]) == 0
    assert stream_app.extensions["stream"].status()["urls"] == ["http://127.0.0.1:5050"]
    dead = f"http://127.0.0.1:{closed_port()}/register"
    assert register.main(["--url", dead, "--ip", "127.0.0.1", "--port", "5050", "--retries", "0"]) == 1


def test_cli_rejects_bad_port():
    with pytest.raises(SystemExit):
        register.main(["--url", "http://127.0.0.1:1/register", "--port", "99999"])
