"""Reading settings from the environment, checked: the one place that says what each may be.

app.py (``config_from_env``), db.py (the ``DB_*`` settings) and deploy/gunicorn.conf.py all read
their settings through these functions, so a setting means the same wherever it is read. A blank
setting is unset (its default applies). A setting that cannot be used stops the start with one
line naming it and what is wanted (SystemExit), rather than a traceback, a service that refuses
every request, or a value quietly read as something else. Nothing here imports the app, so the
gunicorn master can use it without loading the model.
"""
from __future__ import annotations

import math
import os

# The smallest value each number setting can take and still serve (the dashboard's own settings
# are clamped where they are used). REGISTER_INTERVAL below 1 s is refused, not raised to 1 s, so
# the interval in use is always the one set: 0 re-registered with the stream service in a tight
# loop (thousands of POSTs in seconds). DB_CONNECT_TIMEOUT is whole seconds because libpq takes
# no fractions, and at least 1 because 0 there means "wait forever".
AT_LEAST = {
    "PORT": 1, "PUBLIC_PORT": 1, "MAX_CONTENT_LENGTH": 1024, "MAX_BATCH": 1, "REGISTER_INTERVAL": 1.0,
    "WEB_CONCURRENCY": 1, "GUNICORN_THREADS": 1, "GUNICORN_TIMEOUT": 0, "GUNICORN_MAX_REQUESTS": 0,
    "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0, "DB_POOL_TIMEOUT": 1, "DB_CONNECT_TIMEOUT": 1,
    "DB_BUSY_TIMEOUT_MS": 0, "BODY_IDLE_SECONDS": 0.1,
}
PORTS = ("PORT", "PUBLIC_PORT")

# Yes and no as settings write them.
YES_NO = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def cannot_start(message: str) -> SystemExit:
    """The exception that stops the start, saying why in one line."""
    return SystemExit(f"fraud-triage cannot start: {message}")


def from_env(name: str, default, read, environ=os.environ):
    """Setting ``name`` through ``read(name, raw)``, or ``default`` when it is unset or blank."""
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    return read(name, raw)


def whole_number(name: str, raw: str) -> int:
    return _number(name, raw, int)


def number(name: str, raw: str) -> float:
    return _number(name, raw, float)


def _number(name: str, raw: str, kind):
    """One number setting, checked: a number of the right kind, at least ``AT_LEAST[name]``."""
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    what = "a whole number" if kind is int else "a number"
    if value is None or not math.isfinite(value) or value < AT_LEAST.get(name, value):
        floor = f" of at least {AT_LEAST[name]:g}" if name in AT_LEAST else ""
        raise cannot_start(f"{name}={raw!r} is not {what}{floor}")
    if name in PORTS and value > 65535:
        raise cannot_start(f"{name}={raw!r} is not a port (1 to 65535)")
    return value


def yes_no(name: str, raw: str) -> bool:
    """A yes/no setting: 1, true, yes, on or 0, false, no, off (any case)."""
    value = YES_NO.get(raw.strip().lower())
    if value is None:
        raise cannot_start(f"{name}={raw!r} is not yes or no (1, true, yes, on or 0, false, no, off)")
    return value


def log_level(name: str, raw: str) -> str:
    """A log level's name, upper case."""
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise cannot_start(f"{name}={raw!r} is not a log level ({', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]})")
    return value
