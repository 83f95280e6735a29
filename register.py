"""Registering this scoring service with the client's stream service, so events get pushed to us.

The stream service takes form-encoded ``ip`` and ``port`` at its ``/register`` URL and from then
on POSTs one event at a time to ``http://<ip>:<port>/score``. It forgets an address after one
failed push (for example while we restart), so :class:`Registrar` registers again every
``REGISTER_INTERVAL`` seconds in a daemon thread; registering twice is harmless.

Under gunicorn the registrar runs once per host, not once per worker: the master starts it from
the ``when_ready`` hook, and a per-host file lock stops any other process (a worker whose
``create_app`` also asks for it, a second master) from running a second one.

Environment: ``STREAM_REGISTER_URL`` (e.g. ``http://stream-host:5001/register``), ``PUBLIC_IP``
(default: this host's outward address), ``PUBLIC_PORT``, ``REGISTER_INTERVAL`` (seconds, 60),
``REGISTER_LOCK_DIR`` (where the lock file lives; the system temp dir by default).

CLI: ``python register.py --url http://host:5001/register [--ip IP] [--port PORT]``.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import ipaddress
import logging
import os
import socket
import tempfile
import threading
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 60.0
DEFAULT_PORT = 5000
RETRY_STATUSES = (500, 502, 503, 504)
BACKOFF_MAX = 30.0
# A stream service that asks us to wait longer than this is treated as down until the next round.
RETRY_AFTER_MAX = 60
# Any routable address works for the UDP trick: connect() on UDP sends no packet.
PROBE_ADDRESS = ("192.0.2.1", 80)

# Registrars running in this process, by lock key, so asking twice returns the one already running.
_running: dict[str, "Registrar"] = {}
_running_guard = threading.Lock()


def retrying_session(retries: int = 5, backoff: float = 0.5) -> requests.Session:
    """A requests session that retries connection errors and 5xx answers with exponential backoff."""
    policy = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        # Registering is idempotent, so retrying the POST is safe.
        allowed_methods=frozenset({"POST"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff,
        backoff_max=BACKOFF_MAX,
        retry_after_max=RETRY_AFTER_MAX,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def stream_message(response: requests.Response) -> str:
    """The stream service's answer: the ``Message`` of its JSON reply, else the reply text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(body, dict) and "Message" in body:
        return str(body["Message"])
    return str(body)[:500]


def register(register_url: str, ip: str, port: int | str, retries: int = 5, backoff: float = 0.5,
             timeout: float = 5.0, session: requests.Session | None = None) -> bool:
    """Ask the stream service to push events to http://ip:port/score; True if it accepted.

    Never raises on network failure: the caller (a background thread, a CLI) decides what to do.
    A given ``session`` is used as it is (its adapters decide retries); by default a
    :func:`retrying_session` with ``retries`` and ``backoff`` is made and closed.
    """
    own_session = session is None
    if own_session:
        session = retrying_session(retries, backoff)
    fields = {"ip": str(ip), "port": str(port)}
    try:
        response = session.post(register_url, data=fields, timeout=(timeout, timeout))
    except requests.RequestException as exc:
        logger.warning("could not register %s:%s with %s: %s", ip, port, register_url, exc)
        return False
    finally:
        if own_session:
            session.close()
    message = stream_message(response)
    if not response.ok:
        logger.warning("stream service %s refused %s:%s: HTTP %s %s",
                       register_url, ip, port, response.status_code, message)
        return False
    logger.info("registered with %s: %s", register_url, message)
    return True


def local_ip() -> str:
    """This machine's outward-facing IPv4 address (the UDP connect trick), or 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(PROBE_ADDRESS)
            address = probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    return address if address and address != "0.0.0.0" else "127.0.0.1"


def lock_key(register_url: str, ip: str, port: int | str) -> str:
    """A short name for one registration (stream URL, our address), used for the lock file."""
    text = f"{register_url}|{ip}|{port}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_lock_path(register_url: str, ip: str, port: int | str) -> Path:
    """Where the per-host lock for one registration lives (REGISTER_LOCK_DIR or the temp dir)."""
    directory = Path(os.environ.get("REGISTER_LOCK_DIR") or tempfile.gettempdir())
    return directory / f"fraud-triage-register-{lock_key(register_url, ip, port)}.lock"


def acquire_host_lock(path: str | Path):
    """Take an exclusive, non-blocking lock on ``path``; the open file, or None if another holds it.

    flock locks die with the process that holds them, so a crashed registrar never blocks the
    next one. Keep the returned file open for as long as the lock is wanted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class Registrar:
    """Registers with the stream service now, then again every ``interval`` seconds, in a daemon thread."""

    def __init__(self, register_url: str, ip: str, port: int | str, interval: float = DEFAULT_INTERVAL,
                 retries: int = 5, backoff: float = 0.5, timeout: float = 5.0,
                 lock_path: str | Path | None = None):
        self.register_url = register_url
        self.ip = str(ip)
        self.port = int(port)
        self.interval = float(interval)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.lock_path = Path(lock_path) if lock_path else default_lock_path(register_url, ip, port)
        self.attempts = 0
        self.successes = 0
        self.last_result: bool | None = None
        self._lock_handle = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the thread unless another process on this host holds the lock; never blocks."""
        if self.running:
            return True
        self._lock_handle = acquire_host_lock(self.lock_path)
        if self._lock_handle is None:
            logger.info("another process holds %s: it registers for this host", self.lock_path)
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stream-registrar", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float | None = 1.0) -> None:
        """Stop re-registering and release the host lock.

        Waits at most ``timeout`` for a registration in flight (it may be sleeping between
        retries); the daemon thread then ends on its own after that attempt.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def register_once(self) -> bool:
        """One registration (with retries); records the outcome."""
        self.attempts += 1
        ok = register(self.register_url, self.ip, self.port, retries=self.retries,
                      backoff=self.backoff, timeout=self.timeout)
        self.last_result = ok
        if ok:
            self.successes += 1
        return ok

    def _run(self) -> None:
        """Register at once, then every interval until stopped."""
        while True:
            self.register_once()
            if self._stop.wait(self.interval):
                return


def start_registrar(register_url: str, ip: str | None, port: int | str,
                    interval: float = DEFAULT_INTERVAL, **options) -> Registrar | None:
    """Start (once per process, once per host) the background registrar; None if another runs it.

    Returns at once: start-up never waits on the stream service. ``ip`` None means
    :func:`local_ip`. ``options`` go to :class:`Registrar` (retries, backoff, timeout, lock_path).
    """
    ip = ip or local_ip()
    key = lock_key(register_url, ip, port)
    with _running_guard:
        current = _running.get(key)
        if current is not None and current.running:
            return current
        registrar = Registrar(register_url, ip, port, interval=interval, **options)
        if not registrar.start():
            return None
        _running[key] = registrar
        return registrar


def stop_registrars(timeout: float | None = 1.0) -> None:
    """Stop every registrar this process started (for shutdown hooks and tests)."""
    with _running_guard:
        registrars = list(_running.values())
        _running.clear()
    for registrar in registrars:
        registrar.stop(timeout)


def settings_from_env(environ=None, default_port: int = DEFAULT_PORT) -> dict | None:
    """register_url, ip, port, interval from the environment; None when STREAM_REGISTER_URL is unset."""
    environ = os.environ if environ is None else environ
    register_url = (environ.get("STREAM_REGISTER_URL") or "").strip()
    if not register_url:
        return None
    return {
        "register_url": register_url,
        "ip": (environ.get("PUBLIC_IP") or "").strip() or None,
        "port": int(environ.get("PUBLIC_PORT") or default_port),
        "interval": float(environ.get("REGISTER_INTERVAL") or DEFAULT_INTERVAL),
    }


def start_registrar_from_env(environ=None, default_port: int = DEFAULT_PORT) -> Registrar | None:
    """Start the registrar the environment describes; None if not configured or run elsewhere."""
    settings = settings_from_env(environ, default_port)
    if settings is None:
        logger.info("STREAM_REGISTER_URL is not set: not registering with a stream service")
        return None
    return start_registrar(**settings)


def port_number(text: str) -> int:
    """argparse type: a TCP port 1-65535."""
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return port


def ip_text(text: str) -> str:
    """argparse type: an IPv4/IPv6 address or a host name."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        if text and all(c.isalnum() or c in ".-" for c in text):
            return text
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or host name") from None


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options; defaults come from the environment."""
    parser = argparse.ArgumentParser(description="Register this scoring service with the stream service.")
    parser.add_argument("--url", default=os.environ.get("STREAM_REGISTER_URL"),
                        help="the stream service's register URL (env STREAM_REGISTER_URL)")
    parser.add_argument("--ip", type=ip_text, default=os.environ.get("PUBLIC_IP") or None,
                        help="address the stream service should push to (env PUBLIC_IP; default: this host's)")
    parser.add_argument("--port", type=port_number, default=int(os.environ.get("PUBLIC_PORT") or DEFAULT_PORT),
                        help="port the scoring service listens on (env PUBLIC_PORT; default %(default)s)")
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--backoff", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url (or STREAM_REGISTER_URL) is required")
    return args


def main(argv=None) -> int:
    """Register once from the command line; exit status 0 on success, 1 on failure."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    ip = args.ip or local_ip()
    ok = register(args.url, ip, args.port, retries=args.retries, backoff=args.backoff, timeout=args.timeout)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
