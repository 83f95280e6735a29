"""Access and hardening: who may reach what, and what the code never does.

- every route except the public API, sign-in and static files needs a signed-in analyst; the
  routes are read from app.url_map, so a route added later is checked without editing this file;
- sign-in attempts are rate limited; passwords are stored only as scrypt/pbkdf2 hashes;
- the session cookie is HttpOnly, SameSite and (when configured) Secure;
- every POST form carries a CSRF token and is refused (400) without it;
- every response carries the security headers (CSP without inline script, no framing, nosniff,
  Referrer-Policy);
- /score's API key and address allowlist work, and are off by default;
- static checks: no SQL text built from strings, no secrets in the sources, debug mode refused
  in production, gunicorn never reloading.

Apps here run on SQLite: access rules do not depend on the database (the dashboard and API tests
run both databases).
"""
from __future__ import annotations

import ast
import json
import logging
import os
import re
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from werkzeug.security import check_password_hash, generate_password_hash

import app as app_module
import dashboard
import db
import predict
import synth

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
# Paths anyone may reach: the machine API (protected by network, key and allowlist instead),
# sign-in itself and static files. Everything else is the analysts' dashboard.
PUBLIC_PATHS = ("/login", "/static", "/hello", "/score", "/health", "/version", "/metrics", "/openapi.json")
SAFE_REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def is_public(rule: str) -> bool:
    return any(rule == path or rule.startswith(path + "/") for path in PUBLIC_PATHS)


def json_post(client, payload, **kwargs):
    return client.post("/score", data=json.dumps(payload), headers={"Content-Type": "application/json",
                                                                     **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture(scope="module")
def password_hash():
    return generate_password_hash(PASSWORD, method="scrypt")


@pytest.fixture(scope="module")
def scored(tiny_model_path):
    records = synth.generate_events(4, seed=5)
    return list(zip(records, predict.score_records(predict.load_model(tiny_model_path), records)))


@pytest.fixture
def build(tiny_model_path, tmp_path, password_hash, scored, monkeypatch):
    """Build an app on a fresh SQLite file with four scored events and the analyst alice."""
    for name in ("SCORE_API_KEY", "SCORE_ALLOWLIST", "SESSION_COOKIE_SECURE", "FLASK_DEBUG", "ALLOW_DEBUG",
                 "TRUST_PROXY", "DATABASE_URL", "STREAM_REGISTER_URL"):
        monkeypatch.delenv(name, raising=False)  # the defaults are what is tested
    counter = iter(range(1000))

    def build(**config):
        settings = {"TESTING": True, "SECRET_KEY": "test-secret", "MODEL_PATH": str(tiny_model_path),
                    "DATABASE_URL": f"sqlite:///{tmp_path / f'security-{next(counter)}.db'}",
                    "SPOOL_DIR": str(tmp_path / "spool"), "RATELIMIT_STORAGE_URI": "memory://"}
        settings.update(config)
        app = app_module.create_app(settings)
        engine = app.extensions["db_engine"]
        db.save_scores(engine, scored)
        db.create_analyst(engine, "alice", password_hash)
        return app

    return build


def sign_in(client, name="alice", password=PASSWORD, csrf=False, **kwargs):
    data = {"name": name, "password": password}
    if csrf:
        data["csrf_token"] = form_fields(client.get("/login").get_data(as_text=True))[0]["fields"]["csrf_token"]
    return client.post("/login", data=data, **kwargs)


class FormParser(HTMLParser):
    """Every <form> of a page: method, action, named fields (checkboxes ticked) and buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self._form = [], None

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = {"method": attrs.get("method", "get").lower(), "action": attrs.get("action", ""),
                          "fields": {}, "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and "name" in attrs:
            if tag == "button" or (tag == "input" and attrs.get("type") in ("submit", "image")):
                self._form["buttons"].append((attrs["name"], attrs.get("value", "")))
            elif tag in ("input", "select", "textarea"):
                self._form["fields"].setdefault(attrs["name"], attrs.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def form_fields(page: str) -> list[dict]:
    parser = FormParser()
    parser.feed(page)
    return parser.forms


# --------------------------------------------------------------------------- sign-in required


def sample_url(app, rule, method: str, object_id: int = 1) -> str:
    """A URL for the rule with placeholder values (an int fits int, string and path converters)."""
    adapter = app.url_map.bind("localhost")
    return adapter.build(rule.endpoint, {name: object_id for name in rule.arguments}, method=method)


def protected_routes(app, object_id: int = 1) -> list[tuple[str, str, str]]:
    """(rule, method, url) for every route and method that is not public."""
    routes = []
    for rule in app.url_map.iter_rules():
        if is_public(rule.rule):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.rule, method, sample_url(app, rule, method, object_id)))
    return routes


def test_every_dashboard_route_and_action_requires_sign_in(build):
    app = build(WTF_CSRF_ENABLED=False)  # so that the sign-in check, not CSRF, is what refuses
    engine = app.extensions["db_engine"]
    target = db.queue(engine, per_page=1)[0][0]["object_id"]  # a real event, so actions could apply
    routes = protected_routes(app, target)
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if not is_public(rule.rule)}
    # Not vacuous: the known pages, actions and JSON endpoints are among the routes checked.
    assert {"dashboard.queue", "dashboard.event", "dashboard.review", "dashboard.bulk_review",
            "dashboard.logout", "dashboard.charts", "dashboard.api_queue_summary"} <= endpoints
    assert any(method == "POST" for _, method, _ in routes) and len(routes) >= 12
    signed_out = app.test_client()
    form = {"action": "flagged_fraud", "object_id": str(target), "note": "signed out"}
    for rule, method, url in routes:
        response = signed_out.open(url, method=method, data=form if method == "POST" else None)
        redirected = response.status_code == 302 and response.headers["Location"].startswith("/login")
        assert redirected or response.status_code == 401, (rule, method, response.status_code)
        if response.status_code == 401 and method == "POST" and not url.startswith("/api/"):
            # a decision form: the page says it was not saved, and keeps the note to copy
            assert "NOT saved" in response.get_data(as_text=True), (rule, method)
        elif response.status_code == 401:
            assert response.is_json and response.get_json()["message"]
    assert db.reviews_for(engine, target) == []  # no signed-out action was applied
    # The same URLs are real: signed in, none of them sends the analyst to the sign-in page.
    signed_in = app.test_client()
    assert sign_in(signed_in).status_code == 302
    for rule, method, url in routes:
        if method == "GET":
            response = signed_in.get(url)  # a page, or (a decision's address) a page to go to
            moved = response.status_code == 302 and not response.headers["Location"].startswith("/login")
            assert response.status_code == 200 or moved, (rule, response.status_code)


def test_signed_out_actions_with_csrf_on_are_refused_too(build):
    app = build()
    engine = app.extensions["db_engine"]
    client = app.test_client()
    token = form_fields(client.get("/login").get_data(as_text=True))[0]["fields"]["csrf_token"]
    for rule, method, url in protected_routes(app):
        if method == "POST":
            response = client.post(url, data={"csrf_token": token, "action": "cleared", "object_id": "1"})
            assert response.status_code in (302, 401), (rule, response.status_code)
            assert response.status_code == 401 or response.headers["Location"].startswith("/login")
    assert all(db.reviews_for(engine, r["object_id"]) == [] for r in db.queue(engine)[0])


# --------------------------------------------------------------------------- sign-in attempts


def test_sign_in_attempts_are_rate_limited_per_address(build):
    """Credential stuffing: many names from one address hit the per-address limit (429)."""
    app = build(WTF_CSRF_ENABLED=False)
    limit = int(re.match(r"\d+", app.config["LOGIN_ADDRESS_RATE_LIMIT"]).group())
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    statuses = [sign_in(attacker, f"user{i}", "guess").status_code for i in range(limit)]
    assert statuses == [401] * limit
    refused = sign_in(attacker, "alice")  # even the right password waits now
    assert refused.status_code == 429 and "Too many" in refused.get_data(as_text=True)
    assert attacker.get("/queue").status_code == 302
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.8"
    assert sign_in(other).status_code == 302  # the limit is per address, not global


def test_sign_in_attempts_are_rate_limited_per_name(build):
    app = build(WTF_CSRF_ENABLED=False)
    limit = int(re.match(r"\d+", app.config["LOGIN_RATE_LIMIT"]).group())
    client = app.test_client()
    assert [sign_in(client, "alice", f"guess {i}").status_code for i in range(limit)] == [401] * limit
    assert sign_in(client, "alice").status_code == 429


def test_the_rate_limiter_runs_for_dashboard_requests_only(build, monkeypatch):
    """Its hooks were moved from the whole app to the dashboard blueprint: /score skips them,
    and sign-in (tests above) is still limited."""
    app = build(WTF_CSRF_ENABLED=False)
    limiter = app.extensions["dashboard_limiter"]
    calls = []
    original = limiter._check_request_limit
    hooks = app.before_request_funcs["dashboard"]
    hooks[hooks.index(original)] = lambda *a, **k: calls.append(1) or original(*a, **k)
    client = app.test_client()
    assert json_post(client, {"object_id": 5151}).status_code == 200
    assert calls == [], "the limiter ran for /score"
    assert client.get("/login").status_code == 200 and calls == [1]
    everywhere = [app.before_request_funcs[None], app.after_request_funcs[None], app.teardown_request_funcs[None]]
    assert not [hook for hooks in everywhere for hook in hooks if "limiter" in repr(hook).lower()]


# --------------------------------------------------------------------------- passwords


def test_passwords_are_stored_only_as_current_hashes(build, monkeypatch, caplog):
    app = build(WTF_CSRF_ENABLED=False)
    engine = app.extensions["db_engine"]
    secret = "Tr0ub4dor&3-unique-password"
    monkeypatch.setenv("ANALYST_PASSWORD", secret)
    result = app.test_cli_runner().invoke(args=["create-analyst", "carol"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(text("SELECT * FROM analysts")).mappings()]
    assert {row["name"] for row in rows} == {"alice", "carol"}
    for row in rows:
        assert row["password_hash"].split(":")[0] in ("scrypt", "pbkdf2"), row["password_hash"][:20]
        assert all(secret not in str(value) and PASSWORD not in str(value) for value in row.values())
    carol = next(row for row in rows if row["name"] == "carol")
    assert check_password_hash(carol["password_hash"], secret)
    assert dashboard._dummy_hash().startswith("scrypt:")  # unknown names cost the same
    with caplog.at_level(logging.DEBUG):
        assert sign_in(app.test_client(), "carol", "wrong-" + secret).status_code == 401
        assert sign_in(app.test_client(), "carol", secret).status_code == 302
    assert secret not in caplog.text  # never logged, not even a failed attempt's


# --------------------------------------------------------------------------- the session cookie


def cookie_attributes(response, name: str) -> dict:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(name + "="):
            parts = [p.strip() for p in header.split(";")[1:]]
            return {p.split("=")[0].lower(): (p.split("=", 1)[1] if "=" in p else True) for p in parts}
    raise AssertionError(f"no {name} cookie set")


def test_session_cookie_flags(build, monkeypatch):
    app = build(WTF_CSRF_ENABLED=False)
    response = sign_in(app.test_client())
    assert response.status_code == 302
    flags = cookie_attributes(response, app.config["SESSION_COOKIE_NAME"])
    assert flags.get("httponly") is True
    assert flags.get("samesite", "").lower() in ("lax", "strict")
    assert "secure" not in flags  # plain http on a developer's machine still works
    assert "remember_token" not in " ".join(response.headers.getlist("Set-Cookie"))

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")  # as /etc/fraud-triage.env sets behind TLS
    secure = build(WTF_CSRF_ENABLED=False)
    assert secure.config["SESSION_COOKIE_SECURE"] is True
    flags = cookie_attributes(sign_in(secure.test_client()), secure.config["SESSION_COOKIE_NAME"])
    assert flags.get("secure") is True and flags.get("httponly") is True


# --------------------------------------------------------------------------- CSRF on every form


def test_every_post_form_has_a_csrf_token_and_is_refused_without_it(build, monkeypatch):
    app = build()  # CSRF on, as in production
    engine = app.extensions["db_engine"]
    target = db.queue(engine, per_page=1)[0][0]["object_id"]
    signed_out, analyst = app.test_client(), app.test_client()
    assert sign_in(analyst, csrf=True).status_code == 302
    pages = {"/login (signed out)": signed_out.get("/login")}
    for path in ("/queue", "/queue?tier=all", f"/events/{target}", "/charts"):
        pages[path] = analyst.get(path)
    with monkeypatch.context() as patch:  # the 'decision NOT saved' page carries a retry form
        patch.setattr(db, "add_review", lambda *a, **k: (_ for _ in ()).throw(db.DatabaseUnavailable("down")))
        token = form_fields(pages[f"/events/{target}"].get_data(as_text=True))[1]["fields"]["csrf_token"]
        pages["not saved"] = analyst.post(f"/events/{target}/review",
                                          data={"csrf_token": token, "action": "flagged_fraud"})
        assert pages["not saved"].status_code == 503

    checked = []
    for name, response in pages.items():
        for form in form_fields(response.get_data(as_text=True)):
            if form["method"] != "post":
                continue  # GET forms (the queue's filters) change nothing
            assert form["fields"].get("csrf_token"), (name, form["action"])
            data = {k: v for k, v in form["fields"].items() if k != "csrf_token"}
            if form["buttons"]:
                data.setdefault(*form["buttons"][0])
            client = signed_out if name.startswith("/login") else analyst
            refused = client.post(form["action"], data=data)
            assert refused.status_code == 400, (name, form["action"], refused.status_code)
            assert "security token" in refused.get_data(as_text=True)
            checked.append((name, form["action"], data))
    actions = {action.split("?")[0] for _, action, _ in checked}
    assert {"/login", "/logout", f"/events/{target}/review", "/reviews/bulk"} <= actions, actions
    assert db.reviews_for(engine, target) == []  # nothing was applied without a token
    assert analyst.get("/queue").status_code == 200  # and the analyst was not signed out

    # With its token the same form goes through: the 400 above was the CSRF check, nothing else.
    page = analyst.get(f"/events/{target}").get_data(as_text=True)
    form = next(f for f in form_fields(page) if f["action"].endswith("/review"))
    accepted = analyst.post(form["action"], data={**form["fields"], "action": "needs_info"})
    assert accepted.status_code == 302
    assert [r["action"] for r in db.reviews_for(engine, target)] == ["needs_info"]


# --------------------------------------------------------------------------- security headers


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_security_headers(response, where: str) -> None:
    headers = response.headers
    csp = csp_directives(headers.get("Content-Security-Policy", ""))
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts, (where, "no script-src/default-src")
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & set(scripts), (where, scripts)
    assert csp.get("object-src") == ["'none'"] and csp.get("base-uri") == ["'none'"], (where, csp)
    assert csp.get("frame-ancestors") == ["'none'"], (where, csp)
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in SAFE_REFERRER_POLICIES, where


def test_security_headers_on_every_page(build):
    app = build(WTF_CSRF_ENABLED=False)
    target = db.queue(app.extensions["db_engine"], per_page=1)[0][0]["object_id"]
    analyst, anonymous = app.test_client(), app.test_client()
    assert sign_in(analyst).status_code == 302
    seen = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        if rule.endpoint == "static":
            urls = [f"/static/{p.relative_to(ROOT / 'static')}" for p in sorted((ROOT / "static").rglob("*"))
                    if p.is_file()]
        else:
            values = {name: target if name == "object_id" else 1 for name in rule.arguments}
            urls = [app.url_map.bind("localhost").build(rule.endpoint, values)]
        for url in urls:
            for who, client in (("analyst", analyst), ("anonymous", anonymous)):
                response = client.get(url)
                assert response.status_code < 500, (url, response.status_code)
                assert_security_headers(response, f"{who} GET {url} -> {response.status_code}")
                seen += 1
    # Error answers as well: 404 page, 404 JSON, 405 with Allow, refused /score bodies.
    errors = [anonymous.get("/no-such-page"), anonymous.get("/api/no-such-thing"), anonymous.put("/hello"),
              anonymous.post("/score", data="{", headers={"Content-Type": "application/json"}),
              anonymous.post("/score", data="x", headers={"Content-Type": "text/plain"})]
    assert [r.status_code for r in errors] == [404, 404, 405, 400, 415]
    assert "GET" in errors[2].headers.get("Allow", "")
    for response in errors:
        assert_security_headers(response, f"error {response.status_code}")
    assert seen >= 30


# --------------------------------------------------------------------------- /score access


def test_score_key_and_allowlist_are_off_by_default(build):
    app = build()
    assert app.config["SCORE_API_KEY"] is None and app.config["SCORE_ALLOWLIST"] is None
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"  # any address, no key, no CSRF token
    response = json_post(client, {"object_id": 424242})
    assert response.status_code == 200 and response.get_json()["stored"] == "pending"
    assert db.get_prediction(app.extensions["db_engine"], 424242) is not None


def test_score_api_key_from_the_environment(build, monkeypatch):
    monkeypatch.setenv("SCORE_API_KEY", "k3y-from-env")
    client = build().test_client()
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": "k3y-from-env "}, {"X-API-Key": "é"},
                    {"X-API-Key": "k3y-from-env\u00ff"}):
        response = json_post(client, {"object_id": 1}, headers=headers)
        assert response.status_code == 401, headers  # a non-ASCII key is refused, not a 500
        assert "X-API-Key" in response.get_json()["message"]
    assert json_post(client, {"object_id": 1}, headers={"X-API-Key": "k3y-from-env"}).status_code == 200


def test_score_allowlist_from_the_environment(build, monkeypatch):
    monkeypatch.setenv("SCORE_ALLOWLIST", "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
    client = build().test_client()
    for address, status in (("127.0.0.1", 403), ("10.20.30.40", 200), ("192.0.2.7", 200),
                            ("192.0.2.8", 403), ("2001:db8::1", 200), ("2001:db9::1", 403),
                            # an IPv4 client on a dual-stack socket ([::]:8000) arrives mapped into IPv6
                            ("::ffff:10.0.0.5", 200), ("::ffff:172.16.0.1", 403)):
        client.environ_base["REMOTE_ADDR"] = address
        response = json_post(client, {"object_id": 2})
        assert response.status_code == status, address
        if status == 403:
            assert "not allowed" in response.get_json()["message"]


def test_score_key_and_allowlist_together(build):
    client = build(SCORE_API_KEY="k", SCORE_ALLOWLIST="10.0.0.0/8").test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.1"
    assert json_post(client, {"object_id": 3}).status_code == 401
    assert json_post(client, {"object_id": 3}, headers={"X-API-Key": "k"}).status_code == 200
    client.environ_base["REMOTE_ADDR"] = "172.16.0.1"
    assert json_post(client, {"object_id": 3}, headers={"X-API-Key": "k"}).status_code == 403


@pytest.mark.parametrize("allowlist", ["10.0.0.0/8, not-an-address", "10.0.0.0/33", "*"])
def test_a_malformed_allowlist_stops_the_start(build, allowlist):
    """Else every /score would be a 500 (ipaddress raising inside the request)."""
    with pytest.raises(SystemExit, match="SCORE_ALLOWLIST"):
        build(SCORE_ALLOWLIST=allowlist)


# --------------------------------------------------------------------------- debug mode and gunicorn


@pytest.mark.parametrize("config, env, starts", [
    ({"DEBUG": True}, {}, False),  # debug needs an explicit ALLOW_DEBUG
    ({}, {"FLASK_DEBUG": "1"}, False),  # `flask run --debug` sets FLASK_DEBUG
    ({"DEBUG": True, "ALLOW_DEBUG": True}, {}, True),  # a developer's machine, SQLite
    ({}, {"FLASK_DEBUG": "1", "ALLOW_DEBUG": "1"}, True),
    ({"DEBUG": True, "ALLOW_DEBUG": True, "DATABASE_URL": "postgresql://fraud@db.example/fraud"}, {}, False),
    ({}, {"FLASK_DEBUG": "1", "ALLOW_DEBUG": "1", "TRUST_PROXY": "1"}, False),  # behind nginx
    ({"DEBUG": True, "TESTING": True}, {}, True),  # tests may run in debug mode
    ({}, {}, True),  # the default: no debug mode
])
def test_debug_mode_is_refused_in_production(build, monkeypatch, config, env, starts):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = {"TESTING": False, **config}
    if starts:
        app = build(**config)
        assert app.debug == bool(config.get("DEBUG") or env.get("FLASK_DEBUG"))
    else:
        with pytest.raises(SystemExit, match="debug mode"):
            build(**config)


def test_gunicorn_config_never_reloads_or_debugs(tmp_path):
    """Load deploy/gunicorn.conf.py the way gunicorn does (in a child: the file sets env vars)."""
    code = (
        "import json, sys\n"
        "sys.argv = ['gunicorn', '-c', 'deploy/gunicorn.conf.py', 'app:create_app()']\n"
        "from gunicorn.app.wsgiapp import WSGIApplication\n"
        "cfg = WSGIApplication().cfg\n"
        "print(json.dumps({k: getattr(cfg, k) for k in ('reload', 'reload_extra_files', 'spew')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GUNICORN_CMD_ARGS", "FLASK_DEBUG", "ALLOW_DEBUG")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"reload": False, "reload_extra_files": [],
                                                                    "spew": False}
    # No start command in deploy/ turns reload or debugging on, or sets the debug switches.
    for path in sorted((ROOT / "deploy").iterdir()):
        if path.is_file():
            content = path.read_text(errors="replace")
            for word in ("--reload", "--spew", "--debug", "FLASK_DEBUG", "ALLOW_DEBUG", "reload = True"):
                assert word not in content, (path.name, word)


# --------------------------------------------------------------------------- static checks


def source_files() -> list[Path]:
    """Python sources that ship: the top level, deploy/ and scripts/ (tests excluded)."""
    files = [*ROOT.glob("*.py"), *ROOT.glob("deploy/*.py"), *ROOT.glob("scripts/*.py")]
    return sorted(p for p in files if p.is_file())


RAW_SQL_SINKS = {"text", "exec_driver_sql", "executescript", "literal_column"}
ALL_SQL_SINKS = RAW_SQL_SINKS | {"execute", "executemany"}
# Reviewed exceptions, by file and function: raw SQL text that is not a literal in the call.
REVIEWED_RAW_SQL = {
    ("db.py", "init_db"): "schema.sql statements after db.schema_statements() replaced the {{id}} "
                          "placeholder per dialect (db.SCHEMA_PLACEHOLDERS): repository text, no values",
    ("db.py", "_execute_prepared_upsert"): "PREPARE/EXECUTE text rendered once by _prepared_upsert_sql() "
                                           "from the SQLAlchemy upsert: values travel as bound parameters",
    ("db.py", "_add_missing_columns"): "ALTER TABLE statements written out in db.ADDED_COLUMNS: "
                                       "repository text, no values",
    ("db.py", "_upsert_rows"): "SQLite's upsert compiled once by _sqlite_upsert_sql() from the same "
                               "SQLAlchemy upsert: values travel as bound parameters",
}


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _is_number_cast(node) -> bool:
    """int(...) or float(...): a number cannot carry SQL (SQLite's PRAGMA takes no bound parameter)."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "float")


def _is_built_string(node) -> bool:
    """An f-string with values, %- or +-formatting, or .format/.join/.replace: text built from parts."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) and not _is_number_cast(v.value) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and node.func.attr in ("format", "join", "replace", "format_map")


def sql_findings(source: str, filename: str) -> list[tuple[str, str, int, str]]:
    """(file, function, line, problem) for each SQL call whose text is built, or raw but not a literal."""
    findings = []
    tree = ast.parse(source)

    def visit(node, function: str, built_names: set[str]):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = {target.id for child in ast.walk(node)
                     for target in (child.targets if isinstance(child, ast.Assign) else
                                    [child.target] if isinstance(child, ast.AugAssign) else [])
                     if isinstance(target, ast.Name)
                     and (isinstance(child, ast.AugAssign) or _is_built_string(child.value))}
            for child in ast.iter_child_nodes(node):
                visit(child, node.name, names)
            return
        if isinstance(node, ast.Call) and _call_name(node) in ALL_SQL_SINKS and node.args:
            arg, name = node.args[0], _call_name(node)
            if _is_built_string(arg) or (isinstance(arg, ast.Name) and arg.id in built_names):
                findings.append((filename, function, node.lineno, f"{name}() of text built from strings"))
            elif name in RAW_SQL_SINKS and not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                if (filename, function) not in REVIEWED_RAW_SQL:
                    findings.append((filename, function, node.lineno, f"{name}() of non-literal SQL text"))
        for child in ast.iter_child_nodes(node):
            visit(child, function, built_names)

    visit(tree, "<module>", set())
    return findings


def test_the_sql_check_catches_string_built_sql():
    bad = (
        "def a(conn, x):\n    conn.execute(text(f'SELECT * FROM t WHERE id = {x}'))\n"
        "def b(conn, x):\n    conn.exec_driver_sql('DELETE FROM t WHERE id = ' + x)\n"
        "def c(conn, x):\n    sql = 'SELECT %s' % x\n    conn.execute(text(sql))\n"
        "def d(conn, x):\n    conn.execute(text('SELECT {}'.format(x)))\n"
        "def e(conn, query):\n    conn.execute(text(query))\n"
    )
    assert [f[1] for f in sql_findings(bad, "bad.py")] == ["a", "b", "c", "d", "e"]
    good = ("def f(conn, x):\n    conn.execute(text('SELECT * FROM t WHERE id = :x'), {'x': x})\n"
            "def g(cursor, ms):\n    cursor.execute(f'PRAGMA busy_timeout={int(ms)}')\n")
    assert sql_findings(good, "good.py") == []


def test_no_sql_is_built_from_strings():
    findings = []
    raw_calls = set()
    for path in source_files():
        source = path.read_text("utf-8")
        findings += sql_findings(source, path.name)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (path.name, node.name) in REVIEWED_RAW_SQL:
                raw_calls |= {(path.name, node.name) for call in ast.walk(node)
                              if isinstance(call, ast.Call) and _call_name(call) in RAW_SQL_SINKS}
    assert findings == []
    assert raw_calls == set(REVIEWED_RAW_SQL)  # the reviewed exception still exists (else drop it)
    # ... and its substitution only ever inserts fixed column definitions, never a value.
    assert all(set(p) == {"{{id}}"} and all(isinstance(v, str) for v in p.values())
               for p in db.SCHEMA_PLACEHOLDERS.values())
    assert "{{" not in " ".join(db.schema_statements("sqlite") + db.schema_statements("postgresql"))
    # ... and the prepared upsert takes every value as a parameter: $n in PREPARE, %s in EXECUTE.
    prepare, execute, order = db._prepared_upsert_sql()
    assert re.fullmatch(rf"EXECUTE {db.PREPARED_UPSERT} \((%s, )*%s\)", execute)
    assert prepare.count("$") == len(order) == len(db.ROW_KEYS) and "%" not in prepare
    sqlite_sql, sqlite_order = db._sqlite_upsert_sql()
    assert sqlite_sql.count("?") == len(sqlite_order) == len(db.ROW_KEYS)


# Reviewed exceptions, by file and name.
REVIEWED_SECRET_LITERALS: dict = {}
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|API_KEY|TOKEN)", re.IGNORECASE)


def secret_literals(source: str, filename: str) -> list[tuple[str, int, str]]:
    """String literals given to a secret-looking name (assignment, keyword, dict or config key)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        pairs = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    pairs.append((target.id, node.value))
                elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
                    pairs.append((str(target.slice.value), node.value))
        elif isinstance(node, ast.keyword) and node.arg:
            pairs.append((node.arg, node.value))
        elif isinstance(node, ast.Dict):
            pairs += [(k.value, v) for k, v in zip(node.keys, node.values)
                      if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        for name, value in pairs:
            if SECRET_NAME.search(name) and isinstance(value, ast.Constant) \
                    and isinstance(value.value, str) and value.value.strip():
                found.append((filename, node.lineno, name))
    return found


def test_secrets_come_only_from_the_environment():
    assert secret_literals("SECRET_KEY = 'dev'\nenv = {'SECRET_KEY': 'bench'}\nf(password='x')\n", "x.py") \
        == [("x.py", 1, "SECRET_KEY"), ("x.py", 2, "SECRET_KEY"), ("x.py", 3, "password")]
    found = [hit for path in source_files() for hit in secret_literals(path.read_text("utf-8"), path.name)
             if (hit[0], hit[2]) not in REVIEWED_SECRET_LITERALS]
    assert found == []
    assert "SECRET_KEY" not in app_module.DEFAULTS  # from the environment, else the instance file
    for name in ("deploy/compose.yaml", "deploy/compose.env.example"):
        for line in (ROOT / name).read_text().splitlines():
            match = re.match(r"\s*(\w*(?:SECRET|PASSWORD|API_KEY)\w*)\s*[:=]\s*(\S*)", line)
            if match and match.group(2):
                assert match.group(2).startswith("${"), (name, line)  # interpolated, never a value


def test_the_instance_secret_fallback_is_random_and_private(tmp_path):
    """No SECRET_KEY in the environment: a random key kept in instance/ (0600), the same for every worker."""
    fake = SimpleNamespace(instance_path=str(tmp_path))
    first = app_module._instance_secret(fake)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert app_module._instance_secret(fake) == first
    other = tmp_path / "other"
    other.mkdir()
    assert app_module._instance_secret(SimpleNamespace(instance_path=str(other))) != first
