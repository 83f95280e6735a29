"""A local stand-in for the client's stream service, for demos and end-to-end tests.

It speaks the client's protocol (see ../shared/DATA.md): ``POST /register`` with form fields
``ip`` and ``port`` answers ``{"Message": "Added url http://<ip>:<port>"}``; every ``interval``
seconds it picks one random record (with replacement) and POSTs it, as JSON with bare ``NaN``
tokens for missing values and without ``acct_type``, to every registered ``http://ip:port/score``.
It ignores the answers and forgets an address whose connection fails, as the client's does.
``GET /status`` shows the registered URLs and counters.

Not for production: it runs on the werkzeug development server.

    python stream.py --data test_script_examples.json --port 5001 --interval 10
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import math
import random
import threading
from pathlib import Path

import requests
from flask import Flask, current_app, jsonify, request

from dataset import LABEL_FIELD, DataError, read_text

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0
# The client's service waits forever; a generous bound keeps demos and tests from hanging.
PUSH_TIMEOUT = 30.0


def parse_records(text: str, source: str) -> list[dict]:
    """Records from JSON text: an array of objects, one object, or JSON Lines; NaN tokens kept."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        try:
            parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise DataError(f"{source} is neither JSON nor JSON Lines: {exc}") from exc
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
        raise DataError(f"{source} must hold event objects (an array, one object or JSON Lines)")
    return parsed


def read_stream_file(path: str | Path) -> list[dict]:
    """Raw records from a .zip holding data.json, a .json or a .jsonl file, as parsed (NaN kept)."""
    return parse_records(*read_text(path))


def is_absent(value) -> bool:
    """True for a top-level value a pandas row would hold as NaN: None or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def live_record(record: dict) -> dict:
    """A record as the stream sends it: no label, missing top-level values as float NaN."""
    return {key: (math.nan if is_absent(value) else value)
            for key, value in record.items() if key != LABEL_FIELD}


def encode_record(record: dict) -> bytes:
    """The request body for one record: JSON with bare NaN tokens, as pandas-fed json.dumps writes."""
    return json.dumps(live_record(record), allow_nan=True).encode("utf-8")


def load_stream_records(path: str | Path) -> list[dict]:
    """Read a data file and return its records in live shape (see :func:`live_record`)."""
    records = [live_record(r) for r in read_stream_file(path)]
    if not records:
        raise DataError(f"{path} holds no records to stream")
    return records


def score_url(ip: str, port: int) -> str:
    """The URL the stream pushes to for a registered address (IPv6 literals in brackets)."""
    try:
        host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    except ValueError:
        host = ip
    return f"http://{host}:{port}"


def valid_host(text: str) -> bool:
    """True for an IP address or a plain host name (letters, digits, dots, hyphens)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(text) and len(text) <= 253 and all(c.isalnum() or c in ".-" for c in text)


class StreamService:
    """Registered addresses, the records to send, and the pusher thread."""

    def __init__(self, records: list[dict], interval: float = DEFAULT_INTERVAL, seed: int | None = None,
                 count: int | None = None, timeout: float = PUSH_TIMEOUT):
        if not records:
            raise ValueError("the stream needs at least one record")
        self.bodies = [encode_record(r) for r in records]
        self.interval = float(interval)
        self.count = count
        self.timeout = timeout
        self.random = random.Random(seed)
        self.urls: set[str] = set()
        self.dropped: list[str] = []
        self.records_sent = 0
        self.pushes_sent = 0
        self.failures = 0
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, ip: str, port: int) -> str:
        """Register an address; a second registration of the same address changes nothing."""
        url = score_url(ip, port)
        with self._guard:
            self.urls.add(url)
        return url

    def forget_all(self) -> None:
        """Forget every address, as a restarted stream service would."""
        with self._guard:
            self.urls.clear()

    def status(self) -> dict:
        """Counters and registered URLs, for tests and demos."""
        with self._guard:
            return {
                "urls": sorted(self.urls),
                "dropped": list(self.dropped),
                "records": len(self.bodies),
                "records_sent": self.records_sent,
                "pushes_sent": self.pushes_sent,
                "failures": self.failures,
                "interval": self.interval,
                "count": self.count,
                "running": self.running,
            }

    @property
    def done(self) -> bool:
        """True once ``count`` records have been pushed."""
        return self.count is not None and self.records_sent >= self.count

    def push_one(self, url: str, body: bytes) -> bool:
        """POST one body to url/score; drop the address if the connection fails. Answer ignored."""
        try:
            # A fresh connection per push, like the client's plain requests.post.
            requests.post(f"{url}/score", data=body, timeout=self.timeout,
                          headers={"Content-Type": "application/json"})
        except requests.ConnectionError as exc:
            self._record_failure(url, drop=True)
            logger.warning("push to %s failed, address dropped: %s", url, exc)
            return False
        except requests.RequestException as exc:
            # A slow or odd answer: the connection worked, so the address stays (as the client's).
            self._record_failure(url, drop=False)
            logger.warning("push to %s failed: %s", url, exc)
            return False
        with self._guard:
            self.pushes_sent += 1
        return True

    def _record_failure(self, url: str, drop: bool) -> None:
        """Count a failed push; with ``drop``, forget the address until it registers again."""
        with self._guard:
            self.failures += 1
            if drop and url in self.urls:
                self.urls.discard(url)
                self.dropped.append(url)

    def tick(self) -> int:
        """Pick one random record and push it to every registered address; how many got it."""
        with self._guard:
            targets = sorted(self.urls)
        if not targets or self.done:
            return 0
        body = self.random.choice(self.bodies)
        delivered = sum(self.push_one(url, body) for url in targets)
        with self._guard:
            self.records_sent += 1
        return delivered

    @property
    def running(self) -> bool:
        """True while the pusher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start pushing every interval in a daemon thread."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stream-pusher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the pusher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        """Push every interval until stopped or ``count`` records are out."""
        while not self._stop.wait(self.interval):
            self.tick()
            if self.done:
                logger.info("sent %s records: pushing stopped", self.records_sent)
                return


def register_view():
    """POST /register: form fields ip and port; answers the client's message."""
    ip = (request.form.get("ip") or "").strip()
    port_text = (request.form.get("port") or "").strip()
    if not valid_host(ip):
        return jsonify(Message="form field 'ip' must be an IP address or host name"), 400
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return jsonify(Message="form field 'port' must be a TCP port number"), 400
    url = current_app.extensions["stream"].add(ip, int(port_text))
    logger.info("added %s", url)
    return jsonify(Message=f"Added url {url}")


def status_view():
    """GET /status: registered URLs and push counters."""
    return jsonify(current_app.extensions["stream"].status())


def create_stream_app(records: list[dict], interval: float = DEFAULT_INTERVAL, seed: int | None = None,
                      count: int | None = None, timeout: float = PUSH_TIMEOUT) -> Flask:
    """The stream service as a Flask app; the pusher is ``app.extensions["stream"]`` (call .start())."""
    app = Flask(__name__)
    app.extensions["stream"] = StreamService(records, interval=interval, seed=seed, count=count, timeout=timeout)
    app.add_url_rule("/register", "register", register_view, methods=["POST"])
    app.add_url_rule("/status", "status", status_view, methods=["GET"])
    return app


def positive_float(text: str) -> float:
    """argparse type: a number of seconds above zero."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above zero")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="Local stream service speaking the client's protocol.")
    parser.add_argument("--data", required=True, help="records to send: .json, .jsonl or .zip holding data.json")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=5001, help="port to listen on (default %(default)s)")
    parser.add_argument("--interval", type=positive_float, default=DEFAULT_INTERVAL,
                        help="seconds between pushes (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the record choice")
    parser.add_argument("--count", type=int, default=None, help="stop pushing after this many records")
    parser.add_argument("--timeout", type=positive_float, default=PUSH_TIMEOUT,
                        help="seconds to wait for a /score answer (default %(default)s)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the stream service until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    records = load_stream_records(args.data)
    app = create_stream_app(records, interval=args.interval, seed=args.seed, count=args.count,
                            timeout=args.timeout)
    service = app.extensions["stream"]
    service.start()
    logger.info("streaming %s records from %s every %ss; register at http://%s:%s/register",
                len(records), args.data, args.interval, args.host, args.port)
    try:
        app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
