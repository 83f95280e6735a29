"""The Flask application: configuration, the scoring API, health, and the dashboard's home.

``create_app()`` is the only entry point (gunicorn runs ``'app:create_app()'``). It loads the
model and creates the database engine once per process and keeps both on ``app.extensions``;
nothing happens at import time.
"""
from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import re
import secrets
import time
import uuid
from pathlib import Path

from flask import Flask, Response, abort, current_app, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

import cli
import dashboard
import db
import exchange
import metrics
import openapi
import predict
import settings
import validation
from model import ModelLoadError

log = logging.getLogger("fraud.app")

API_PREFIXES = ("/score", "/health", "/version", "/hello", "/metrics", "/openapi.json", "/api")

DEFAULTS = {
    "DATABASE_URL": None,  # None: SQLite file under instance/
    "MODEL_PATH": str(predict.DEFAULT_MODEL_PATH),
    "SPOOL_DIR": None,  # None: instance/spool
    "STREAM_REGISTER_URL": None,  # None: do not register with a stream service
    "PUBLIC_IP": None,  # None: found with socket
    "PUBLIC_PORT": 8000,
    "REGISTER_INTERVAL": 60.0,
    "MAX_CONTENT_LENGTH": 1 << 20,  # 1 MiB: a real event is a few KB
    "MAX_BATCH": 1000,
    "BODY_IDLE_SECONDS": 10.0,  # a /score client silent this long in the middle of its body: 408
    "SCORE_API_KEY": None,  # set: /score requires the X-API-Key header
    "SCORE_ALLOWLIST": None,  # set: comma-separated addresses/networks allowed to POST /score
    "DEMO_MODE": False,  # True: /score stores nothing (a demo on stored test-set events)
    "STORE_AFTER_ANSWER": True,  # /score answers once scored, then stores (False: store, then answer)
    "TRUST_PROXY": False,  # True behind nginx: take the client address from X-Forwarded-For
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,  # set SESSION_COOKIE_SECURE=1 when served over HTTPS
    "REJECT_BODY_LIMIT": 4096,
    "ALLOW_DEBUG": False,  # debug mode (FLASK_DEBUG=1) starts only with ALLOW_DEBUG=1, never in production
    "LOG_LEVEL": "INFO",
}

# How each setting is read: settings.py checks it (a blank setting is unset: config_from_env skips it).
_BOOL = ("DEMO_MODE", "STORE_AFTER_ANSWER", "TRUST_PROXY", "SESSION_COOKIE_SECURE", "ALLOW_DEBUG")
# The dashboard's settings (QUEUE_PER_PAGE to LOGIN_ADDRESS_RATE_LIMIT) have their defaults in
# dashboard.CONFIG_DEFAULTS, which only fills what is not set here.
_INT = ("PUBLIC_PORT", "MAX_CONTENT_LENGTH", "MAX_BATCH", "QUEUE_PER_PAGE", "DASHBOARD_REFRESH_SECONDS")
_FLOAT = ("REGISTER_INTERVAL", "BODY_IDLE_SECONDS")
_STR = ("DATABASE_URL", "MODEL_PATH", "SPOOL_DIR", "STREAM_REGISTER_URL", "PUBLIC_IP",
        "SCORE_API_KEY", "SCORE_ALLOWLIST", "SECRET_KEY", "RATELIMIT_STORAGE_URI",
        "LOGIN_RATE_LIMIT", "LOGIN_ADDRESS_RATE_LIMIT")
_READ = {**dict.fromkeys(_STR, lambda _name, raw: raw), **dict.fromkeys(_BOOL, settings.yes_no),
         **dict.fromkeys(_INT, settings.whole_number), **dict.fromkeys(_FLOAT, settings.number),
         "LOG_LEVEL": settings.log_level}


def config_from_env(environ=os.environ) -> dict:
    """Settings found in the environment, converted to their types.

    A setting that cannot be read (a yes/no that is neither, an unknown log level, a number that
    is not one or is below what can serve: ``settings.AT_LEAST``) stops the start with a message
    naming it (SystemExit), rather than a traceback, a service that refuses every request, or a
    value quietly taken as "no".
    """
    config = {}
    for name, read in _READ.items():
        value = settings.from_env(name, None, read, environ)
        if value is not None:
            config[name] = value
    return config


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: defaults, then the environment, then ``test_config``; load model and engine once.

    A setting, model or rate table it cannot use stops the start with one line saying why
    (SystemExit). That line is logged, and the exit status is 3: gunicorn's "worker failed to
    boot", on which its master stops instead of respawning workers that can never start (with
    PRELOAD_APP=0 the app is built in each worker). Python itself prints nothing for status 3.
    """
    try:
        return _build_app(test_config)
    except SystemExit as exc:
        if not isinstance(exc.code, str):
            raise
        log.critical("%s", exc.code)
        failure = SystemExit(exc.code)
        failure.code = 3
        raise failure from exc


def _build_app(test_config: dict | None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.update(config_from_env())
    if test_config:
        app.config.update(test_config)
    _refuse_unsafe_settings(app)
    os.makedirs(app.instance_path, exist_ok=True)
    _configure_logging(app)
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or _instance_secret(app)
    if app.config["TRUST_PROXY"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    try:
        exchange.rates()  # a USD_RATES setting that cannot be read stops the start, not a request
        app.extensions["fraud_model"] = predict.load_model(app.config["MODEL_PATH"])
    except (ModelLoadError, exchange.RatesError) as exc:
        # A half-working scorer is worse than none: refuse to start, saying why (see create_app).
        raise settings.cannot_start(str(exc)) from exc
    url = app.config["DATABASE_URL"] or db.database_url(app.instance_path)
    engine = db.make_engine(url)
    app.extensions["db_engine"] = engine
    spool_dir = Path(app.config["SPOOL_DIR"] or Path(app.instance_path) / "spool")
    app.extensions["score_writer"] = db.ScoreWriter(engine, db.Spool(spool_dir))
    app.extensions["schema_ready"] = _apply_schema(engine)

    metrics.init_app(app)
    _register_api(app)
    _register_errors(app)
    cli.register(app)
    app.after_request(_security_headers)

    dashboard.init_app(app)
    _start_registration(app)
    return app


def dispose(app: Flask) -> None:
    """Close the database connections the app opened (its engine and its score writer's pool)."""
    app.extensions["score_writer"].dispose()
    app.extensions["db_engine"].dispose()


class RequestContextFilter(logging.Filter):
    """Stamp every log record with the id of the request being served ("-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def _configure_logging(app: Flask) -> None:
    """One line per event, key=value, with the request id, unless the host set logging up already."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(
            "ts=%(asctime)s level=%(levelname)s logger=%(name)s request_id=%(request_id)s msg=%(message)r"))
        root.addHandler(handler)
        root.setLevel(app.config["LOG_LEVEL"])
    for handler in root.handlers:
        if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
            handler.addFilter(RequestContextFilter())


def _refuse_unsafe_settings(app: Flask) -> None:
    """Stop at start on settings that would be unsafe or fail every request later.

    Debug mode shows tracebacks (and, under ``flask run``, an interactive debugger) to anyone who
    triggers an error, so it needs ALLOW_DEBUG=1 and is refused outright where the app looks
    deployed: a Postgres DATABASE_URL or TRUST_PROXY (behind nginx). A SCORE_ALLOWLIST entry that
    is not an address or network would make every /score a 500, so it stops the start instead.
    """
    if app.debug and not app.testing:
        url = str(app.config["DATABASE_URL"] or "")
        deployed = url.startswith(("postgres://", "postgresql")) or app.config["TRUST_PROXY"]
        if deployed or not app.config["ALLOW_DEBUG"]:
            raise SystemExit(
                "fraud-triage refuses to start in debug mode (FLASK_DEBUG/DEBUG is on): debug mode is for "
                "a development machine only; set ALLOW_DEBUG=1 there, and never with a Postgres "
                "DATABASE_URL or TRUST_PROXY=1")
    for item in str(app.config["SCORE_ALLOWLIST"] or "").split(","):
        try:
            if item.strip():
                ipaddress.ip_network(item.strip(), strict=False)
        except ValueError as exc:
            raise SystemExit(f"fraud-triage cannot start: SCORE_ALLOWLIST entry {item.strip()!r} is not "
                             f"an address or network ({exc})") from exc


def _instance_secret(app: Flask) -> str:
    """A random secret kept in instance/ so every worker on this host signs sessions alike.

    Several hosts must share one SECRET_KEY from the environment instead.
    """
    path = Path(app.instance_path) / "secret_key"
    try:  # O_EXCL: when several workers start at once, exactly one writes the secret
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(50):  # another worker may be between creating and writing it
        if path.stat().st_size:
            break
        time.sleep(0.01)
    return path.read_text().strip()


def _apply_schema(engine) -> bool:
    """Apply schema.sql at start; a database that is down now is retried on the next write."""
    try:
        db.init_db(engine)
        return True
    except db.DatabaseUnavailable as exc:
        log.warning("database unavailable at start-up, events will spool: %s", exc)
        return False


def _start_registration(app: Flask) -> None:
    """Register with the stream service, unless gunicorn's master does it once for all workers."""
    url = app.config["STREAM_REGISTER_URL"]
    if not url or os.environ.get("FRAUD_REGISTRAR") == "gunicorn" or app.testing:
        return
    import register

    register.start_registrar(
        url, app.config["PUBLIC_IP"] or register.local_ip(), app.config["PUBLIC_PORT"],
        app.config["REGISTER_INTERVAL"],
    )


# --------------------------------------------------------------------------- API


def _register_api(app: Flask) -> None:
    app.add_url_rule("/hello", view_func=hello)
    app.add_url_rule("/score", view_func=score, methods=["POST"])
    app.add_url_rule("/health", view_func=health)
    app.add_url_rule("/version", view_func=version)
    app.add_url_rule("/openapi.json", view_func=openapi_document)
    app.before_request(_start_request)


# A caller's X-Request-Id is taken when it looks like an id; anything else (too long, spaces,
# "key=value" text that would forge fields in the key=value log lines) gets a fresh one.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _start_request():
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex[:16]
    g.started = time.perf_counter()


def hello():
    """The classic liveness check the stream's operators know."""
    return Response("Hello, World!", mimetype="text/plain")


def _client_address() -> str:
    return request.remote_addr or ""


def _check_score_access() -> None:
    """Optional protection of /score: an API key and/or a source-address allowlist."""
    key = current_app.config["SCORE_API_KEY"]
    # Compared as bytes: compare_digest refuses non-ASCII str, and a hostile header may hold any.
    given = request.headers.get("X-API-Key", "").encode("utf-8", "surrogateescape")
    if key and not hmac.compare_digest(given, key.encode("utf-8", "surrogateescape")):
        abort(401, description="missing or wrong X-API-Key header")
    allowlist = current_app.config["SCORE_ALLOWLIST"]
    if allowlist and not _address_allowed(_client_address(), allowlist):
        abort(403, description=f"source address {_client_address()} is not allowed to post events")


def _address_allowed(address: str, allowlist: str) -> bool:
    """True when ``address`` falls in one of the comma-separated addresses or networks. An IPv4
    address a dual-stack socket reports as IPv6 (``::ffff:10.0.0.5``) is checked as the IPv4
    address it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    forms = [ip, *filter(None, [getattr(ip, "ipv4_mapped", None)])]
    return any(form in ipaddress.ip_network(item.strip(), strict=False)
               for item in allowlist.split(",") if item.strip() for form in forms)


def score():
    """Score one event (a JSON object) or up to MAX_BATCH events (an array), store, answer."""
    _check_score_access()
    body = _request_body()
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        _reject(f"unsupported content type {request.mimetype or 'none'}", 415, body)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):  # a compressed body would read as "not UTF-8" below
        _reject(f"Content-Encoding {encoding[:40]} is not accepted: send the JSON uncompressed", 415, body)
    try:
        payload = validation.parse_json_body(body)
        events, is_batch = validation.events_from_payload(payload, current_app.config["MAX_BATCH"])
    except validation.InvalidEvent as exc:
        _reject(str(exc), exc.status, body, field=exc.field)
    confirm = _confirm_requested(body)
    model = current_app.extensions["fraud_model"]
    scores = predict.score_records(model, events)
    if current_app.config["DEMO_MODE"]:
        return _answer(scores, is_batch, "not stored (demo mode)")
    items = list(zip(events, scores))
    if not confirm and _may_store_after_answer():
        response = _answer(scores, is_batch, "pending")
        response.call_on_close(functools.partial(
            _store_after_answer, current_app._get_current_object(), items, g.request_id))
        return response
    try:
        stored = _store(items)
    except db.SpoolUnavailable as exc:
        log.error("event %s could not be stored anywhere: %s", scores[0]["object_id"], exc)
        abort(503, description="the event was scored but could not be stored: database and spool "
                               "are both unavailable; send it again later")
    return _answer(scores, is_batch, stored)


def _answer(scores: list[dict], is_batch: bool, stored: str) -> Response:
    """The scores as JSON, each saying where its event went; counted in the metrics."""
    metrics.observe_scores(scores)
    for item in scores:
        item["stored"] = stored
    return jsonify(scores if is_batch else scores[0])


def _confirm_requested(body: bytes) -> bool:
    """``?confirm=true``: answer only once the event is stored. The API spec makes ``confirm`` a
    boolean, so ``true`` and ``false`` are its values; anything else is a 400 naming it."""
    values = request.args.getlist("confirm")
    if len(values) > 1:
        _reject("confirm is given more than once", 400, body, field="confirm")
    value = values[0] if values else None
    if value is None or value == "false":
        return False
    if value != "true":
        _reject(f"confirm must be true or false, not {value[:40]!r}", 400, body, field="confirm")
    return True


def _may_store_after_answer() -> bool:
    """Answer first, store right after (see _store_after_answer), when storing is expected to work."""
    app = current_app
    return (app.config["STORE_AFTER_ANSWER"] and app.extensions["schema_ready"]
            and app.extensions["score_writer"].can_write_later())


def _store_after_answer(app: Flask, items, request_id: str) -> None:
    """Store events whose answer has been sent: the WSGI server calls this when it closes the
    response, in the same worker, before that worker takes another request. The event goes to
    the database, or to the spool if the database fails now; the next request then stores
    before answering again (ScoreWriter.can_write_later), so failures are reported to callers.
    Nothing is raised into the server: a write that found no home is logged and counted."""
    def ids() -> str:  # for the log lines only
        return ", ".join(str(score["object_id"]) for _, score in items[:10])

    with app.app_context():
        try:
            outcome = _store(items)
        except db.SpoolUnavailable as exc:
            log.error("event %s was answered but could not be stored anywhere: %s request_id=%s", ids(), exc,
                      request_id)
            metrics.observe_unstored(len(items))
        except Exception:  # noqa: BLE001 -- the answer is sent; this worker must go on serving
            log.exception("event %s was answered but storing it failed request_id=%s", ids(), request_id)
            metrics.observe_unstored(len(items))
        else:
            if outcome != "stored":
                log.warning("event %s was answered, then %s request_id=%s", ids(), outcome, request_id)


def _request_body() -> bytes:
    """The whole body; a body that is too large, cut short or unreadable is refused (and
    recorded, as every refusal of /score is) with what was wrong.

    Werkzeug refuses a Content-Length over the limit, but a chunked body (no length; gunicorn
    de-chunks it) is only cut off at the limit, which would score a truncated body. So when a
    body without a length fills the limit, one more byte from the server decides. A server
    hands over what arrived when a client stops early, so the length read is checked too.
    Under gunicorn, a client that goes silent mid-body (its connection left open) is answered
    408 after BODY_IDLE_SECONDS, before the worker's own timeout would kill the worker.
    """
    limit, declared = request.max_content_length, request.content_length
    if limit is not None and declared is not None and declared > limit:
        _reject(f"the body is larger than {limit} bytes (Content-Length {declared})", 413)
    sock = request.environ.get("gunicorn.socket")
    idle = current_app.config["BODY_IDLE_SECONDS"]
    previous = sock.gettimeout() if sock is not None else None
    try:
        if sock is not None:
            sock.settimeout(idle)  # for each read of the socket, not for the whole body
        body = request.get_data(cache=False)
        over = (limit is not None and declared is None and len(body) >= limit
                and request.environ["wsgi.input"].read(1))
    except Exception as exc:  # noqa: BLE001 -- bad chunked framing, a client gone mid-body: its fault
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):  # Werkzeug wraps it
            _reject(f"no byte of the body arrived for {idle:g} s: send the whole body without pausing", 408)
        _reject(f"the body could not be read: {str(exc)[:200] or type(exc).__name__}", 400)
    finally:
        if sock is not None:
            sock.settimeout(previous)
    if over:
        _reject(f"the body is larger than {limit} bytes", 413, body)
    if declared is not None and len(body) < declared:
        _reject(f"the body ended after {len(body)} of its {declared} bytes (Content-Length)", 400, body)
    if not body:
        _reject("the body is empty: send the event as JSON", 400)
    return body


def _store(items) -> str:
    """Write through the score writer (database, or the spool while the database is away)."""
    app = current_app
    if not app.extensions["schema_ready"]:
        app.extensions["schema_ready"] = _apply_schema(app.extensions["db_engine"])
    if not app.extensions["schema_ready"]:
        app.extensions["score_writer"].spool.append(items, source="stream")
        return "spooled"
    return app.extensions["score_writer"].write(items, source="stream")


def _reject(reason: str, status: int, body: bytes = b"", field: str | None = None):
    """Record a refused body (so nothing the stream sent vanishes without trace) and abort."""
    limit = current_app.config["REJECT_BODY_LIMIT"]
    log.warning("rejected /score body from %s: %s (%d bytes) request_id=%s",
                _client_address(), reason, len(body), g.get("request_id"))
    metrics.observe_reject(status)
    try:
        db.record_reject(current_app.extensions["db_engine"], reason, body[:limit], _client_address())
    except db.DatabaseUnavailable as exc:
        log.error("could not record the rejected body in the database: %s", exc)
    abort(status, description=validation.describe(reason, field))


# How long a spooled event may wait for the database before /health says the service is degraded.
SPOOL_STUCK_SECONDS = 60


def health():
    """Model loaded, database reachable, spool depth and writability; 503 when degraded."""
    app = current_app
    writer = app.extensions["score_writer"]
    database_ok = db.ping(app.extensions["db_engine"])
    spool_ok = writer.spool.writable()
    if not spool_ok:
        log.error("spool at %s is not writable: events cannot be kept while the database is away",
                  writer.spool.path)
    depth = writer.spool.depth()
    if database_ok and depth:
        try:
            writer.drain()
            depth = writer.spool.depth()
        except db.DatabaseUnavailable:
            database_ok = False
    # Events that wait in the spool longer than SPOOL_STUCK_SECONDS are not reaching the database
    # even though it answers (a write lock held elsewhere, another process's drain retrying):
    # degraded, as when it is unreachable.
    since = writer.spool.oldest_waiting_since() if depth else None
    waiting = None if since is None else round(max(0.0, time.time() - since), 1)
    stuck = waiting is not None and waiting > SPOOL_STUCK_SECONDS
    body = {
        "status": "ok" if database_ok and spool_ok and not stuck else "degraded",
        "model_loaded": True,
        "model_version": app.extensions["fraud_model"].version,
        "database": "ok" if database_ok else "unreachable",
        "spool": {"depth": depth, "writable": spool_ok, "set_aside": writer.spool.dead_depth(),
                  "oldest_waiting_seconds": waiting},
        "demo_mode": app.config["DEMO_MODE"],
        # The last reload refused the model file (when, why); the running model serves on, so
        # the status is not changed by it. None once a reload works (and after a restart).
        "refused_reload": app.extensions.get("refused_reload"),
    }
    return jsonify(body), 200 if body["status"] == "ok" else 503


def version():
    """Which model is serving: version, thresholds, training data summary and test metrics."""
    model = current_app.extensions["fraud_model"]
    meta = model.metadata
    return jsonify({
        "version": model.version,
        "thresholds": model.thresholds,
        "created_at": meta.get("created_at"),
        "training_data": meta.get("training_data"),
        "test_metrics": meta.get("test_metrics"),
        "cost_model": meta.get("cost_model"),
        "library_versions": meta.get("library_versions"),
    })


def openapi_document():
    """The OpenAPI description of the scoring API."""
    return jsonify(openapi.spec(current_app.config["MAX_BATCH"]))


# --------------------------------------------------------------------------- errors and headers


def _wants_json() -> bool:
    return request.path.startswith(API_PREFIXES) or request.accept_mimetypes.best == "application/json"


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Every HTTP error is an answer: JSON for the API, a page for people; an error that
        carries its own answer (a sign-in refused on a decision's not-saved page) gives that."""
        if exc.response is not None:
            return exc.response
        if _wants_json():
            response = jsonify({"error": exc.name, "status": exc.code, "message": exc.description})
            response.status_code = exc.code
            response.headers.extend(_error_headers(exc))
            return response
        from flask import render_template

        return render_template("error.html", error=exc), exc.code, _error_headers(exc)


def _error_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """The error's own headers (Allow on a 405, as RFC 9110 requires), without its Content-Type."""
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]


def _security_headers(response: Response) -> Response:
    """Headers that keep the dashboard from running injected code or being framed."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if "started" in g:
        metrics.observe_request(request.endpoint or "unknown", response.status_code,
                                time.perf_counter() - g.started)
    return response


if __name__ == "__main__":
    # Development only: gunicorn (deploy/gunicorn.conf.py) serves production.
    port = settings.from_env("PORT", 5000, settings.whole_number)
    # The stream service is told the port served here, unless PUBLIC_PORT names another.
    served = {} if os.environ.get("PUBLIC_PORT", "").strip() else {"PUBLIC_PORT": port}
    create_app(served).run(host="127.0.0.1", port=port)
