"""gunicorn settings: ``gunicorn -c deploy/gunicorn.conf.py 'app:create_app()'``.

Every setting can be overridden from the environment (BIND, WEB_CONCURRENCY, ...), read and
checked by settings.py as the app reads its own: one that cannot be used stops gunicorn before it
listens, with one line naming it. (gunicorn itself reads WEB_CONCURRENCY before this file, so a
value that is not a whole number stops it there, with its own traceback.) This file is read by
the gunicorn master before any worker starts, which is why it also fixes the numerical
libraries' thread pools and runs the one stream registration of the whole deployment.
"""
import atexit
import os
import shutil
import tempfile

import settings  # from the project root: gunicorn's working directory, where it finds app.py too

# One numerical thread per worker: on 2 cores, several workers each starting an OpenMP pool
# the size of the machine fight each other (measured: 47 req/s with default threading vs
# thousands with one thread per worker). Workers inherit these before importing numpy.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# Workers must not each register with the stream service: the master does it once (when_ready).
os.environ["FRAUD_REGISTRAR"] = "gunicorn"

# Prometheus counters are summed across workers through files in this directory. It must exist
# before the app is loaded (preload_app: in the master, before on_starting runs).
# A folder made here (none was set) is removed when the master's Python exits, also after a
# failed start (a setting below, or preload_app's app, refused before gunicorn runs on_exit);
# in the master only: the workers are forked with its exit functions. It is named in the
# environment, because HUP reads this file again with the folder already set; a master started
# by USR2 gets gunicorn's original environment and makes a folder of its own.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fraud-metrics-")

    @atexit.register
    def _remove_own_metrics_dir(folder=os.environ["PROMETHEUS_MULTIPROC_DIR"], master=os.getpid()):
        if os.getpid() == master:
            shutil.rmtree(folder, ignore_errors=True)
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# The app (model, database engines) is built once in the master and the workers are forked from
# it, so they share one copy of the model in memory and in the processor's cache. Measured on
# 2 vCPUs, alternating runs against PRELOAD_APP=0: /score at concurrency 1 on Postgres about
# 0.1 ms faster in 5 of 6 rounds, and each worker's peak RSS 194-198 MB -> 156-158 MB.
# Database connections never cross the fork (db._guard_against_fork).
# PRELOAD_APP=0 loads the app in each worker instead (e.g. to debug a worker's start-up); a
# worker that cannot build it exits with status 3 (app.create_app), and then gunicorn stops.
preload_app = settings.from_env("PRELOAD_APP", True, settings.yes_no)

bind = os.environ.get("BIND", "").strip() or f"127.0.0.1:{settings.from_env('PORT', 8000, settings.whole_number)}"
workers = settings.from_env("WEB_CONCURRENCY", max(2, os.cpu_count() or 1), settings.whole_number)
threads = settings.from_env("GUNICORN_THREADS", 1, settings.whole_number)
timeout = settings.from_env("GUNICORN_TIMEOUT", 30, settings.whole_number)  # 0: never (gunicorn's)
graceful_timeout = 20
keepalive = 5
max_requests = settings.from_env("GUNICORN_MAX_REQUESTS", 0, settings.whole_number)
max_requests_jitter = 100
accesslog = os.environ.get("ACCESS_LOG", "-")
errorlog = "-"
loglevel = settings.from_env("LOG_LEVEL", "INFO", settings.log_level).lower()
# Read here, so that one that cannot be used stops the start (REGISTER_INTERVAL's floor of 1 s
# is explained in settings.AT_LEAST).
_register_interval = settings.from_env("REGISTER_INTERVAL", 60.0, settings.number)
_public_port_setting = settings.from_env("PUBLIC_PORT", None, settings.whole_number)
# The request id the app puts on every response, so access lines join the app's own logs.
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), so two
# deployments on one host (or tests, or bench) would fight over it; we do not use it.
control_socket_disable = True
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'


def on_starting(server):
    """Start each deployment with empty metric files (stale ones would be summed in)."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def when_ready(server):
    """Register with the stream service once for the whole deployment, and keep registered."""
    url = os.environ.get("STREAM_REGISTER_URL")
    if not url:
        return
    import register

    ip = os.environ.get("PUBLIC_IP") or register.local_ip()
    port = _public_port(server)
    if port is None:
        server.log.error("not registering with the stream service at %s: gunicorn listens on no "
                         "TCP port (%s); set PUBLIC_PORT", url, ", ".join(server.cfg.bind))
        return
    register.start_registrar(url, ip, port, _register_interval)
    server.log.info("registering %s:%s with the stream service at %s", ip, port, url)


def _public_port(server) -> int | None:
    """PUBLIC_PORT, else the port gunicorn really listens on: its --bind (the systemd unit and
    the Docker image pass one) or BIND, not this file's default."""
    if _public_port_setting is not None:
        return _public_port_setting
    for address in server.cfg.bind:
        if address.startswith(("unix:", "fd://")):
            continue
        host, _, port = address.rpartition(":")
        if host and port.isdigit():
            return int(port)
        if not host and not address.startswith("["):  # a host alone: gunicorn's port 8000
            return 8000
    return None


def on_reload(server):
    """HUP (``systemctl reload``): with preload_app the master holds the app, and gunicorn would
    fork the new workers from the old one, old model included. So build the app again here,
    reading MODEL_PATH afresh, before the new workers fork. If it cannot be built (a missing or
    broken model), keep serving the running app and say why: a bad file must not stop scoring."""
    if not server.cfg.preload_app:
        return
    import gc

    running = server.app.callable
    server.app.callable = None
    try:
        server.app.wsgi()
    except BaseException as exc:  # noqa: BLE001 -- create_app exits (SystemExit) on a bad model
        server.app.callable = running
        server.log.error("reload kept the running app (model version %s): the new one could not be built: %s",
                         running.extensions["fraud_model"].version, exc)
        # The new workers fork from the running app: /health and /metrics tell the operator that
        # the file at MODEL_PATH is not what serves (a restart would fail on it), until a reload works.
        from datetime import datetime, timezone

        running.extensions["refused_reload"] = {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "error": str(exc)[:500]}
        return
    import app as app_module

    app_module.dispose(running)  # the master's own connections for the old app
    del running
    gc.unfreeze()  # let the collector free the old app (its objects were frozen before forking)
    gc.collect()
    server.log.info("reloaded the app: model version %s", server.app.callable.extensions["fraud_model"].version)


def pre_fork(server, worker):
    """With preload_app, move what the master loaded out of the garbage collector's sight before
    forking (see post_worker_init): a collection in a worker then never writes to those shared
    objects, and the pages holding them stay shared instead of being copied into every worker."""
    import gc

    gc.freeze()


def post_worker_init(worker):
    """Exempt what the worker loaded at start (model, libraries: about 170,000 objects) from the
    cyclic garbage collector: a full collection over them took about 90 ms, and /hello's p99 at
    concurrency 1 was 68 ms without this, 0.5 ms with it. New objects are collected as usual."""
    import gc

    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    """Let the metrics of a worker that exited stop counting as live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Stop re-registering when the master exits (its metrics folder goes at exit: see above)."""
    import register

    register.stop_registrars()
