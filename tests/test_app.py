"""The scoring API: /hello, /score (every shape, every refusal), /health, /version, /openapi.json.

The ``app`` fixture runs on SQLite and on a real Postgres server (see conftest.py).
"""
import json
import math
from pathlib import Path

import pytest

import app as app_module
import db

EXAMPLES = json.loads(Path("test_script_examples.json").read_text())
SCORE_KEYS = {"object_id", "fraud_probability", "risk_tier", "expected_loss", "reasons", "model_version"}


def post_json(client, payload=None, data=None, **headers):
    body = data if data is not None else json.dumps(payload)
    return client.post("/score", data=body, headers={"Content-Type": "application/json", **headers})


def test_hello(client):
    response = client.get("/hello")
    assert response.status_code == 200 and response.text == "Hello, World!"


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_every_example_is_scored_and_stored(app, client, index):
    event = EXAMPLES[index]
    response = post_json(client, data=json.dumps(event))  # NaN tokens, as the stream sends
    assert response.status_code == 200, response.json
    body = response.json
    assert SCORE_KEYS <= set(body)
    assert 0 <= body["fraud_probability"] <= 1
    assert body["risk_tier"] in ("low", "medium", "high")
    # Answered once scored; stored when the server closed the response (see ServerLikeClient).
    assert body["object_id"] == event["object_id"] and body["stored"] == "pending"
    assert body["reasons"] and all(isinstance(r, str) for r in body["reasons"])
    row = db.get_prediction(app.extensions["db_engine"], event["object_id"])
    assert row["times_received"] == 1
    assert math.isclose(row["fraud_probability"], body["fraud_probability"], rel_tol=1e-6)


def test_resend_is_one_row_counted_twice(app, client):
    event = EXAMPLES[0]
    first = post_json(client, event).json
    second = post_json(client, event).json
    assert first["fraud_probability"] == second["fraud_probability"]
    engine = app.extensions["db_engine"]
    assert db.count_predictions(engine) == 1
    assert db.get_prediction(engine, event["object_id"])["times_received"] == 2


def test_array_of_events(app, client):
    response = post_json(client, EXAMPLES[:3])
    assert response.status_code == 200
    assert [s["object_id"] for s in response.json] == [e["object_id"] for e in EXAMPLES[:3]]
    assert db.count_predictions(app.extensions["db_engine"]) == 3


def test_confirm_answers_after_storing(app, client):
    """?confirm=true, or STORE_AFTER_ANSWER off: the answer says where the event went."""
    engine = app.extensions["db_engine"]
    response = client.post("/score?confirm=true", json={**EXAMPLES[0], "object_id": 901})
    assert response.status_code == 200 and response.json["stored"] == "stored"
    assert db.get_prediction(engine, 901)["times_received"] == 1
    assert client.post("/score?confirm=false", json=EXAMPLES[1]).json["stored"] == "pending"
    # The spec makes confirm a boolean: its values are true and false, nothing else.
    for value in ("maybe", "1", "yes", "TRUE", ""):
        refused = client.post(f"/score?confirm={value}", json=EXAMPLES[2])
        assert refused.status_code == 400 and "confirm must be true or false" in refused.json["message"], value
        assert "(field: confirm)" in refused.json["message"]
    assert db.get_prediction(engine, EXAMPLES[2]["object_id"]) is None, "a refused post is not stored"
    for query in ("confirm=false&confirm=true", "confirm=true&confirm=true"):
        refused = client.post(f"/score?{query}", json=EXAMPLES[2])
        assert refused.status_code == 400 and "more than once" in refused.json["message"], query


def test_store_after_answer_can_be_turned_off(make_app):
    app = make_app(STORE_AFTER_ANSWER=False)
    response = post_json(app.test_client(), EXAMPLES[0])
    assert response.status_code == 200 and response.json["stored"] == "stored"
    assert db.get_prediction(app.extensions["db_engine"], EXAMPLES[0]["object_id"])["times_received"] == 1


def test_settings_from_the_environment_read_yes_and_no_and_blank_as_unset():
    read = app_module.config_from_env
    assert read({"STORE_AFTER_ANSWER": "0", "DEMO_MODE": "Yes"}) == {"STORE_AFTER_ANSWER": False, "DEMO_MODE": True}
    assert read({"STORE_AFTER_ANSWER": "off", "TRUST_PROXY": " true "}) == {"STORE_AFTER_ANSWER": False,
                                                                            "TRUST_PROXY": True}
    assert read({"STORE_AFTER_ANSWER": " ", "SECRET_KEY": "", "MAX_BATCH": "7"}) == {"MAX_BATCH": 7}
    assert read({"LOG_LEVEL": " warning ", "DEMO_MODE": ""}) == {"LOG_LEVEL": "WARNING"}


@pytest.mark.parametrize("setting, message", [
    ({"MAX_BATCH": "abc"}, "MAX_BATCH='abc' is not a whole number of at least 1"),
    ({"MAX_BATCH": "0"}, "MAX_BATCH='0' is not a whole number of at least 1"),
    ({"MAX_CONTENT_LENGTH": "-1"}, "MAX_CONTENT_LENGTH='-1' is not a whole number of at least 1024"),
    ({"QUEUE_PER_PAGE": "lots"}, "QUEUE_PER_PAGE='lots' is not a whole number"),
    ({"PUBLIC_PORT": "70000"}, "PUBLIC_PORT='70000' is not a port"),
    ({"REGISTER_INTERVAL": "nan"}, "REGISTER_INTERVAL='nan' is not a number of at least 1"),
    ({"REGISTER_INTERVAL": "inf"}, "REGISTER_INTERVAL='inf' is not a number of at least 1"),
    # not quietly read as "no" (DEMO_MODE=maybe, a cookie without Secure), nor a traceback
    ({"DEMO_MODE": "maybe"}, "DEMO_MODE='maybe' is not yes or no (1, true, yes, on or 0, false, no, off)"),
    ({"SESSION_COOKIE_SECURE": "enabled"}, "SESSION_COOKIE_SECURE='enabled' is not yes or no"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose' is not a log level (DEBUG, INFO, WARNING, ERROR or CRITICAL)"),
])
def test_a_setting_that_cannot_serve_stops_the_start_naming_it(setting, message):
    with pytest.raises(SystemExit, match="fraud-triage cannot start: ") as stopped:
        app_module.config_from_env(setting)
    assert message in str(stopped.value)


def test_a_setting_that_stops_the_start_exits_with_status_3(tmp_path, monkeypatch, caplog):
    """Status 3 is gunicorn's "worker failed to boot": with PRELOAD_APP=0 its master then stops
    instead of respawning workers that can never start. Python prints nothing for it, so the
    reason is logged."""
    monkeypatch.setenv("MAX_BATCH", "0")
    with pytest.raises(SystemExit, match="MAX_BATCH='0' is not a whole number") as stopped:
        app_module.create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert stopped.value.code == 3
    assert "fraud-triage cannot start: MAX_BATCH='0'" in caplog.text


@pytest.mark.parametrize("setting, message", [
    ("LOGIN_RATE_LIMIT", "LOGIN_RATE_LIMIT='garbage' is not a rate limit"),
    ("LOGIN_ADDRESS_RATE_LIMIT", "LOGIN_ADDRESS_RATE_LIMIT='garbage' is not a rate limit"),
    ("RATELIMIT_STORAGE_URI", "RATELIMIT_STORAGE_URI 'garbage' cannot be used"),
])
def test_sign_in_limits_that_cannot_be_used_stop_the_start(make_app, setting, message):
    """Else flask-limiter drops a limit it cannot parse with a log line, and sign-in is unlimited."""
    with pytest.raises(SystemExit, match="fraud-triage cannot start: ") as stopped:
        make_app(**{setting: "garbage"})
    assert message in str(stopped.value)


def test_dashboard_settings_come_from_the_environment(make_app, monkeypatch):
    """The dashboard's settings are read like the others (ints, and rate limits as text) and
    replace the defaults in dashboard.CONFIG_DEFAULTS."""
    settings = {"QUEUE_PER_PAGE": "25", "DASHBOARD_REFRESH_SECONDS": "30",
                "LOGIN_RATE_LIMIT": "5 per minute", "LOGIN_ADDRESS_RATE_LIMIT": "20 per minute"}
    expected = {"QUEUE_PER_PAGE": 25, "DASHBOARD_REFRESH_SECONDS": 30,
                "LOGIN_RATE_LIMIT": "5 per minute", "LOGIN_ADDRESS_RATE_LIMIT": "20 per minute"}
    assert app_module.config_from_env(settings) == expected
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    built = make_app()
    assert {name: built.config[name] for name in expected} == expected


def _unstored(client) -> float:
    """fraud_events_unstored_total from /metrics (process-wide: compare before and after)."""
    lines = client.get("/metrics").text.splitlines()
    return float(next(line.split()[-1] for line in lines if line.startswith("fraud_events_unstored_total ")))


def _break_database_writes(app, monkeypatch):
    """Make every database write fail as a lost connection does."""
    from sqlalchemy.exc import OperationalError

    def refuse(rows):
        raise OperationalError("INSERT ...", {}, Exception("connection to server lost"))
    monkeypatch.setattr(app.extensions["score_writer"], "_write_direct", refuse)


def test_a_write_that_fails_after_the_answer_is_spooled_and_later_answers_wait(app, client, monkeypatch, caplog):
    """The event answered 'pending' whose write then fails goes to the spool; from then on /score
    stores before answering ('spooled'), until a write reaches the database again."""
    engine = app.extensions["db_engine"]
    assert post_json(client, EXAMPLES[0]).json["stored"] == "pending"
    _break_database_writes(app, monkeypatch)
    assert post_json(client, EXAMPLES[1]).json["stored"] == "pending"  # the failure is not known yet
    assert f"event {EXAMPLES[1]['object_id']} was answered, then spooled" in caplog.text
    assert post_json(client, EXAMPLES[2]).json["stored"] == "spooled"
    assert app.extensions["score_writer"].spool.depth() >= 1  # (only direct writes are broken: drains work)
    monkeypatch.undo()
    assert post_json(client, EXAMPLES[3]).json["stored"] == "stored", "the spool drains first, then the event"
    assert post_json(client, EXAMPLES[4]).json["stored"] == "pending"
    assert app.extensions["score_writer"].spool.depth() == 0
    assert all(db.get_prediction(engine, e["object_id"])["times_received"] == 1 for e in EXAMPLES[:5])


def test_a_write_that_finds_no_home_after_the_answer_is_logged_counted_and_then_refused(
        app, client, monkeypatch, caplog):
    _break_database_writes(app, monkeypatch)
    writer = app.extensions["score_writer"]

    def no_spool(entry):
        raise db.SpoolUnavailable("disk full")
    monkeypatch.setattr(writer.spool, "append_entry", no_spool)

    before = _unstored(client)
    assert post_json(client, EXAMPLES[0]).json["stored"] == "pending"
    assert f"event {EXAMPLES[0]['object_id']} was answered but could not be stored anywhere" in caplog.text
    assert _unstored(client) == before + 1
    refused = post_json(client, EXAMPLES[1])
    assert refused.status_code == 503 and "could not be stored" in refused.json["message"]


def test_an_unexpected_error_after_the_answer_is_logged_and_counted_not_raised(app, client, monkeypatch, caplog):
    def broken(items, source="stream", received_at=None):
        raise RuntimeError("a bug in storing")
    monkeypatch.setattr(app.extensions["score_writer"], "write", broken)
    before = _unstored(client)
    response = post_json(client, EXAMPLES[0])
    assert response.status_code == 200 and response.json["stored"] == "pending"
    assert f"event {EXAMPLES[0]['object_id']} was answered but storing it failed" in caplog.text
    assert "RuntimeError: a bug in storing" in caplog.text
    assert _unstored(client) == before + 1
    assert client.get("/hello").status_code == 200, "the app serves on"


def test_acct_type_is_ignored_for_scoring(client):
    plain = post_json(client, EXAMPLES[1]).json
    labelled = post_json(client, {**EXAMPLES[1], "acct_type": "fraudster"}).json
    assert plain["fraud_probability"] == labelled["fraud_probability"]


def test_missing_fields_are_scored_as_missing(client):
    response = post_json(client, {"object_id": 123456789})
    assert response.status_code == 200
    assert response.json["risk_tier"] in ("low", "medium", "high")


@pytest.mark.parametrize("data, content_type, status, words", [
    ("{not json", "application/json", 400, "malformed JSON"),
    ('"text"', "application/json", 400, "object or an array"),
    ('{"object_id": 1}', "text/plain", 415, "content type"),
    ('{"object_id": 1}', "", 415, "content type"),
    ('{"name": "no id"}', "application/json", 422, "object_id"),
    ('{"object_id": 1, "user_age": "ten"}', "application/json", 422, "user_age"),
    ('{"object_id": 1, "ticket_types": "lots"}', "application/json", 422, "ticket_types"),
    ("", "application/json", 400, "body is empty"),
    ('{"object_id": 1, "x": ' + "9" * 4301 + "}", "application/json", 400, "number cannot be read"),
    ('{"object_id": 9.0e18}', "application/json", 422, "written as an integer"),
    ('{"object_id": 9007199254740993.0}', "application/json", 422, "written as an integer"),
])
def test_bad_bodies_get_a_4xx_that_names_the_problem(app, client, data, content_type, status, words):
    response = client.post("/score", data=data, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.is_json and words in response.json["message"]
    rejects = db.recent_rejects(app.extensions["db_engine"])
    assert rejects and words.split()[0] in rejects[0]["reason"]
    assert rejects[0]["body"] == data[:app.config["REJECT_BODY_LIMIT"]]  # 415s too: the body is read first


def test_compressed_bodies_are_refused_naming_the_encoding(app, client):
    import gzip

    body = json.dumps({"object_id": 4242}).encode()
    for encoding, data in (("gzip", gzip.compress(body)), ("br", body)):
        response = client.post("/score", data=data, headers={
            "Content-Type": "application/json", "Content-Encoding": encoding})
        assert response.status_code == 415 and f"Content-Encoding {encoding}" in response.json["message"]
    assert db.get_prediction(app.extensions["db_engine"], 4242) is None
    plain = client.post("/score", data=body, headers={
        "Content-Type": "application/json", "Content-Encoding": "identity"})
    assert plain.status_code == 200


def test_whole_float_ids_below_2_53_and_any_integer_id_are_taken(client):
    assert post_json(client, data='{"object_id": 9007199254740991.0}').json["object_id"] == 2**53 - 1
    assert post_json(client, data='{"object_id": 9007199254740993}').json["object_id"] == 2**53 + 1


def test_oversized_body_is_413_and_recorded(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = json.dumps({"object_id": 1, "description": "x" * (limit + 10)})
    response = post_json(client, data=big)
    assert response.status_code == 413 and response.is_json
    assert f"larger than {limit} bytes (Content-Length {len(big)})" in response.json["message"]
    reject = db.recent_rejects(app.extensions["db_engine"])[0]
    assert "larger than" in reject["reason"] and reject["body"] == ""  # refused unread


def test_body_shorter_than_its_content_length_is_refused(app):
    """A server hands over what came when a client stops early; a prefix that happens to be
    valid JSON must not be scored as the event."""
    import io

    from werkzeug.test import EnvironBuilder

    body = b'{"object_id": 17002, "name": "x"}'
    environ = EnvironBuilder(path="/score", method="POST", input_stream=io.BytesIO(body),
                             content_type="application/json").get_environ()
    environ["CONTENT_LENGTH"] = "500"
    environ["wsgi.input_terminated"] = True  # gunicorn's stream: reads end where the data ends
    response = app.response_class.from_app(app, environ, buffered=True)
    assert response.status_code == 400
    assert "ended after 33 of its 500 bytes" in response.get_json()["message"]
    assert db.get_prediction(app.extensions["db_engine"], 17002) is None
    assert "ended after" in db.recent_rejects(app.extensions["db_engine"])[0]["reason"]


def test_body_the_server_cannot_read_is_400_naming_why(app):
    """Bad chunked framing raises in the server's reader (gunicorn's InvalidChunkSize here)."""
    from gunicorn.http.errors import InvalidChunkSize
    from werkzeug.test import EnvironBuilder

    class BadlyChunked:
        def read(self, *args):
            raise InvalidChunkSize(b"zz")

        readline = read

    environ = EnvironBuilder(path="/score", method="POST", content_type="application/json",
                             headers={"Transfer-Encoding": "chunked"}).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": BadlyChunked(), "wsgi.input_terminated": True})
    response = app.response_class.from_app(app, environ, buffered=True)
    assert response.status_code == 400 and response.is_json
    assert "could not be read: Invalid chunk size" in response.get_json()["message"]
    assert "could not be read" in db.recent_rejects(app.extensions["db_engine"])[0]["reason"]


def test_too_many_events_is_413(app, client):
    events = [{"object_id": i + 1} for i in range(app.config["MAX_BATCH"] + 1)]
    response = post_json(client, events)
    assert response.status_code == 413 and "at most" in response.json["message"]


def test_hostile_html_is_stored_verbatim_and_scored(app, client):
    event = {**EXAMPLES[0], "object_id": 999001,
             "name": "<script>window.__pwned=1</script>", "description": '<img src=x onerror="alert(1)">'}
    response = post_json(client, event)
    assert response.status_code == 200
    row = db.get_prediction(app.extensions["db_engine"], 999001)
    assert row["raw_payload"]["name"] == event["name"]  # kept as data; the dashboard escapes it


def test_health_version_openapi(client):
    health = client.get("/health")
    assert health.status_code == 200 and health.json["database"] == "ok"
    assert health.json["spool"] == {"depth": 0, "writable": True, "set_aside": 0, "oldest_waiting_seconds": None}
    version = client.get("/version").json
    assert version["version"] and set(version["thresholds"]) == {"medium", "high"}
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/score" in spec["paths"]
    assert set(spec["paths"]) == {"/hello", "/score", "/health", "/version", "/metrics", "/openapi.json"}
    assert "user_age" in spec["components"]["schemas"]["Event"]["properties"]


def test_openapi_document_is_valid_and_follows_the_batch_limit(make_app):
    """A strict validator (code generators use one) takes the document, and the batch limit it
    states is the one the app applies."""
    from openapi_spec_validator import validate

    app = make_app(MAX_BATCH=5)
    spec = app.test_client().get("/openapi.json").json
    validate(spec)
    body = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == 5 and "up to 5" in spec["paths"]["/score"]["post"]["summary"]
    assert post_json(app.test_client(), [{"object_id": i} for i in range(1, 7)]).status_code == 413
    # the answer's fields are all required (a client can rely on each), and nothing else is sent
    answer = post_json(app.test_client(), {"object_id": 7}).json
    assert sorted(spec["components"]["schemas"]["Score"]["required"]) == sorted(answer)


def test_security_headers(client):
    response = client.get("/hello")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Request-Id"]


def test_request_id_is_taken_only_when_it_looks_like_one(client):
    """A caller's id is echoed and logged; one that could forge key=value log fields is replaced."""
    assert client.get("/hello", headers={"X-Request-Id": "abc-123.x:9"}).headers["X-Request-Id"] == "abc-123.x:9"
    for hostile in ("x level=CRITICAL msg='spool lost'", "a" * 65, "id next", "<b>"):
        answered = client.get("/hello", headers={"X-Request-Id": hostile}).headers["X-Request-Id"]
        assert answered != hostile and len(answered) == 16, hostile


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and response.is_json


def test_api_key_when_configured(make_app):
    client = make_app(SCORE_API_KEY="s3cret").test_client()
    assert post_json(client, EXAMPLES[0]).status_code == 401
    assert post_json(client, EXAMPLES[0], **{"X-API-Key": "wrong"}).status_code == 401
    assert post_json(client, EXAMPLES[0], **{"X-API-Key": "s3cret"}).status_code == 200


def test_allowlist_when_configured(make_app):
    client = make_app(SCORE_ALLOWLIST="10.0.0.0/8").test_client()
    response = post_json(client, EXAMPLES[0])
    assert response.status_code == 403 and "not allowed" in response.json["message"]
    client = make_app(SCORE_ALLOWLIST="10.0.0.0/8, 127.0.0.1").test_client()
    assert post_json(client, EXAMPLES[0]).status_code == 200


def test_demo_mode_scores_without_writing(make_app):
    demo = make_app(DEMO_MODE=True)
    response = post_json(demo.test_client(), EXAMPLES[0])
    assert response.status_code == 200 and response.json["stored"].startswith("not stored")
    assert db.count_predictions(demo.extensions["db_engine"]) == 0


def test_database_down_spools_and_health_says_so(make_app, tmp_path):
    down = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=1",
                    SPOOL_DIR=str(tmp_path / "spool"))
    client = down.test_client()
    for event in EXAMPLES[:3]:
        response = post_json(client, event)
        assert response.status_code == 200 and response.json["stored"] == "spooled"
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json["database"] == "unreachable" and health.json["spool"]["depth"] == 3


def test_events_stuck_in_the_spool_while_the_database_answers_are_degraded(app, client, monkeypatch):
    """The database answers, but spooled events do not reach it (another process holds the drain,
    retrying against a write lock): /health says how long the oldest has waited, and after
    SPOOL_STUCK_SECONDS that the service is degraded."""
    import time

    import predict

    writer = app.extensions["score_writer"]
    raw = {**EXAMPLES[0], "object_id": 880001}
    pair = [(raw, predict.score_records(app.extensions["fraud_model"], [raw])[0])]
    with writer.spool.drain_lock(blocking=True):  # another drainer: this /health cannot drain
        writer.spool.append(pair)
        fresh = client.get("/health")
        assert fresh.status_code == 200 and fresh.json["status"] == "ok"
        assert fresh.json["spool"]["depth"] == 1 and 0 <= fresh.json["spool"]["oldest_waiting_seconds"] < 5
        monkeypatch.setattr(time, "time", lambda real=time.time: real() + app_module.SPOOL_STUCK_SECONDS + 5)
        stuck = client.get("/health")
        assert stuck.status_code == 503 and stuck.json["status"] == "degraded"
        assert stuck.json["database"] == "ok" and stuck.json["spool"]["oldest_waiting_seconds"] > 60
    monkeypatch.undo()
    drained = client.get("/health")  # the drain is free again: this /health drains it
    assert drained.status_code == 200 and drained.json["spool"] == {
        "depth": 0, "writable": True, "set_aside": 0, "oldest_waiting_seconds": None}
    assert db.get_prediction(app.extensions["db_engine"], 880001) is not None


def test_database_down_and_spool_unwritable_is_503(make_app, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the spool directory should be")
    down = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=1",
                    SPOOL_DIR=str(blocked))
    client = down.test_client()
    response = post_json(client, EXAMPLES[0])
    assert response.status_code == 503 and "could not be stored" in response.json["message"]
    health = client.get("/health").json
    assert health["spool"]["writable"] is False and health["status"] == "degraded"


def test_missing_or_corrupt_model_refuses_to_start(tmp_path):
    with pytest.raises(SystemExit, match="no model at"):
        app_module.create_app({"TESTING": True, "MODEL_PATH": str(tmp_path / "absent.pkl"),
                               "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(b"this is not a pickle")
    with pytest.raises(SystemExit, match="cannot start"):
        app_module.create_app({"TESTING": True, "MODEL_PATH": str(corrupt),
                               "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})


def test_metrics_count_the_traffic(client):
    def counter(text, name, label):
        for line in text.splitlines():
            if line.startswith(f"{name}{{{label}}}"):
                return float(line.split()[-1])
        return 0.0

    before = client.get("/metrics").text
    tiers = [post_json(client, e).json["risk_tier"] for e in EXAMPLES[:4]]
    post_json(client, data="{bad")
    after = client.get("/metrics").text
    for tier in set(tiers):
        label = f'tier="{tier}"'
        assert counter(after, "fraud_scores_total", label) - counter(before, "fraud_scores_total", label) \
            == tiers.count(tier)
    assert counter(after, "fraud_score_rejects_total", 'status="400"') \
        - counter(before, "fraud_score_rejects_total", 'status="400"') == 1
    assert "fraud_spool_depth 0.0" in after and "fraud_model_info{version=" in after
    assert "fraud_spool_set_aside 0.0" in after


def test_writes_set_aside_are_counted_where_operators_look(client):
    """A spooled write the database refused for good is kept in dead.jsonl: /health and
    /metrics say how many, so someone looks at them."""
    client.application.extensions["score_writer"].spool.bury(b'{"id": "x", "rows": []}', "index row too big")
    assert client.get("/health").json["spool"]["set_aside"] == 1
    assert "fraud_spool_set_aside 1.0" in client.get("/metrics").text


def test_metrics_skip_a_worker_file_being_made(client, tmp_path, monkeypatch):
    """A worker started by a reload creates its metrics file empty, then sizes it: a scrape in
    between used to fail (struct.error, a 500). Such a file holds no count yet and is skipped."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"")
    (folder / "histogram_4243.db").write_bytes(b"\x00\x00")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    response = client.get("/metrics")
    assert response.status_code == 200 and "fraud_model_info{version=" in response.text


def test_metrics_content_type_has_one_charset(client):
    """Prometheus 3 refuses a scrape whose Content-Type repeats a parameter."""
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain; version=") and content_type.count("charset") == 1
