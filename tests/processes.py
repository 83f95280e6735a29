"""Starting and stopping real processes on loopback ports, for end-to-end tests and bench.py."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (requests.RequestException, OSError) as exc:  # not up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def start_process(command, log_path, env=None, ready_url=None, timeout=30.0) -> subprocess.Popen:
    """Start ``command`` in the project root with its output in ``log_path``; wait for ``ready_url``."""
    log = open(log_path, "ab")
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )
    process.log_path = Path(log_path)
    if ready_url:
        def ready():
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n"
                                   + Path(log_path).read_text()[-3000:])
            return requests.get(ready_url, timeout=2).status_code < 500

        wait_for(ready, timeout=timeout, what=f"{ready_url} to answer")
    return process


def stop_process(process: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 15.0) -> None:
    """Stop a process and everything it started; kill it if it does not stop in time."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
