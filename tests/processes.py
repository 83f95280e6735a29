"""Starting and stopping real processes on loopback ports, for end-to-end tests and bench.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.pgserver import free_port  # noqa: F401  (re-exported: one port picker for every test)

ROOT = Path(__file__).resolve().parent.parent


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


def settled(read, expected, timeout: float = 10.0, interval: float = 0.05):
    """``read()`` once it equals ``expected``, or its last value after ``timeout`` seconds, for the
    caller to assert on. /score answers before it stores, so a row lands just after its answer."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(interval)
    return value


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


# ---------------------------------------------------------------- the app and the stream service
# Shared by the end-to-end, fault and scale tests: one way to run each real process.

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def app_env(port: int, workdir, database_url: str, model_path, workers: int = 2, **extra) -> dict:
    """Environment for the app under gunicorn's production config on 127.0.0.1:port (extra overrides)."""
    workdir = Path(workdir)
    env = {
        "DATABASE_URL": database_url, "MODEL_PATH": str(model_path), "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers), "SECRET_KEY": "test-processes", "ACCESS_LOG": "/dev/null",
        "SPOOL_DIR": str(workdir / f"spool-{port}"), "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{port}"),
        "REGISTER_LOCK_DIR": str(workdir),
    }
    env.update({name: str(value) for name, value in extra.items()})
    return env


def start_gunicorn(env: dict, log_path, wait: bool = True, timeout: float = 60.0) -> subprocess.Popen:
    """``gunicorn -c deploy/gunicorn.conf.py 'app:create_app()'`` with ``env``; waits for /hello unless told not to."""
    ready_url = f"http://{env['BIND']}/hello" if wait else None
    return start_process([GUNICORN, "-c", "deploy/gunicorn.conf.py", "app:create_app()"], log_path,
                         env=env, ready_url=ready_url, timeout=timeout)


def worker_pids(master_pid: int) -> set[int]:
    """The pids of a gunicorn master's workers (its child processes), from /proc."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def start_stream(data_path, port: int, log_path, interval: float = 0.1, seed: int = 3,
                 count: int | None = None) -> subprocess.Popen:
    """The local stream service (stream.py) pushing records of ``data_path`` every ``interval`` seconds."""
    command = [sys.executable, "stream.py", "--data", str(data_path), "--port", str(port),
               "--interval", str(interval), "--seed", str(seed)]
    if count:
        command += ["--count", str(count)]
    return start_process(command, log_path, ready_url=f"http://127.0.0.1:{port}/status")


def system_missing(what: str, reason: str):
    """A system program the tests drive is missing: fail under CI (it must be there), else a
    loud skip that `pytest -ra` lists at the end of the run."""
    import pytest

    message = f"{what} TESTS NOT RUN: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
