"""A real, throwaway Postgres server for tests and benchmarks (never a mock).

Usable from pytest (see the ``postgres_server`` fixture in conftest.py) and from scripts::

    from tests.pgserver import PostgresServer
    with PostgresServer() as server:
        url = server.url            # postgresql://postgres@127.0.0.1:PORT/fraud

Binaries come from the newest /usr/lib/postgresql/*/bin (or PG_BIN). As root the cluster is
run by the ``postgres`` user through runuser (Postgres refuses to run as root); otherwise as
the current user. Trust authentication, loopback only, socket in the data directory.
"""
from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

DEFAULT_DATABASE = "fraud"
SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No Postgres server binaries here (or they would not start); the message says which."""


def find_bin_dir() -> Path:
    """The newest Postgres bin directory: PG_BIN, else /usr/lib/postgresql/<version>/bin."""
    configured = os.environ.get("PG_BIN")
    candidates = [configured] if configured else glob.glob("/usr/lib/postgresql/*/bin")
    usable = [Path(c) for c in candidates if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists()]
    if not usable:
        raise PostgresUnavailable(
            "no Postgres server binaries (looked for initdb and pg_ctl in "
            f"{configured or '/usr/lib/postgresql/*/bin'}); install them with `make system-deps` "
            "(Debian package postgresql) or set PG_BIN")
    return max(usable, key=_version_key)


def _version_key(path: Path):
    """Sort key for .../postgresql/<version>/bin: numeric version parts."""
    return [int(part) for part in re.findall(r"\d+", path.parent.name)] or [0]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process has not
    handed out before: two calls in a row (an app's port and its stream service's) could
    otherwise both get the port the kernel just freed."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class PostgresServer:
    """One Postgres cluster in a temporary directory: start, stop, restart, create databases, clean up.

    durable=False turns fsync off (fine for tests: the cluster is thrown away); benchmarks that
    want honest commit costs pass durable=True.
    """

    def __init__(self, port: int | None = None, durable: bool = False, base_dir: str | None = None):
        self.bin_dir = find_bin_dir()
        self.port = port
        self.durable = durable
        self._base_dir = base_dir
        self.directory: Path | None = None
        self.running = False
        self._as_postgres = os.geteuid() == 0

    # ---- lifecycle
    def start(self) -> "PostgresServer":
        """Create the cluster on first use, then start the server and wait until it accepts connections."""
        if self.running:
            return self
        if self.directory is None:
            self._init_cluster()
            atexit.register(self.cleanup)
        if self.port is None:
            self.port = free_port()
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.directory / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self.running = True
        self._ensure_database(DEFAULT_DATABASE)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode smart, fast or immediate); the cluster stays for a restart."""
        if not self.running:
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def restart(self, mode: str = "fast") -> "PostgresServer":
        """Stop and start again on the same port with the same data."""
        self.stop(mode)
        return self.start()

    def cleanup(self) -> None:
        """Stop the server (immediately) and delete its directory."""
        if self.directory is None:
            return
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already gone; the directory still goes
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.cleanup()

    # ---- databases
    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The URL of the default database ('fraud')."""
        return self.url_for(DEFAULT_DATABASE)

    def create_database(self, name: str) -> str:
        """Create a database (name: letters, digits, underscores) and return its URL."""
        self._admin(f'CREATE DATABASE "{_identifier(name)}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still on it."""
        self._admin(f'DROP DATABASE IF EXISTS "{_identifier(name)}" WITH (FORCE)')

    @contextmanager
    def fresh_database(self, prefix: str = "test"):
        """A new, empty database for one test (the server is started if a test left it stopped);
        yields its URL and drops it afterwards."""
        self.start()
        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        url = self.create_database(name)
        try:
            yield url
        finally:
            self.start()  # a test may have left it stopped
            self.drop_database(name)

    def _ensure_database(self, name: str) -> None:
        with self._admin_connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            exists = cursor.fetchone() is not None
        if not exists:
            self.create_database(name)

    def _admin(self, statement: str) -> None:
        """Run one statement on the maintenance database, outside a transaction (CREATE DATABASE)."""
        with self._admin_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement)

    def _admin_connection(self):
        import contextlib

        import psycopg2

        @contextlib.contextmanager
        def connection():
            conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                                    connect_timeout=10)
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.close()
        return connection()

    # ---- plumbing
    def _init_cluster(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fraud-pg-", dir=self._base_dir))
        if self._as_postgres:
            shutil.chown(self.directory, user=SUPERUSER, group=SUPERUSER)
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                  "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C")

    def _run(self, program: str, *args: str) -> None:
        """Run a Postgres program (as the postgres user when we are root); errors carry its output."""
        command = [str(self.bin_dir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if completed.returncode != 0:
            log_tail = self._log_tail()
            raise subprocess.CalledProcessError(
                completed.returncode, command,
                output=completed.stdout, stderr=f"{completed.stderr}\n--- server.log ---\n{log_tail}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.directory / "server.log").read_text().splitlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Block until the server accepts TCP connections (pg_ctl -w already waits; for callers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"Postgres on port {self.port} did not come up in {timeout}s")


def _identifier(name: str) -> str:
    """A database name safe to quote into DDL (CREATE DATABASE cannot take a bound parameter)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"invalid database name {name!r}")
    return name


def _has_c_utf8() -> bool:
    """True when the C.UTF-8 locale exists (Debian has it; minimal images may not)."""
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(name.lower().replace("-", "") in ("c.utf8",) for name in listed.split())
