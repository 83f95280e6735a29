"""Hostile input: property-based tests (hypothesis), schema-driven API fuzzing (schemathesis) and
the request size and nesting limits.

What a fraudster, a broken feed or anyone on the network can send is generated here: every known
field with a random type, missing keys, 100 KB descriptions, nesting within and beyond
validation.MAX_NESTING, odd unicode (RTL overrides, emoji, NUL, private-use and last-plane code
points), NaN and the infinities, 1e308, integers far past 2**63, and lists of odd objects in
ticket_types / previous_payouts. The properties:

(a) predict.score_records never raises on what validation.check_event accepts, and returns a
    finite probability in [0, 1], a known tier and finite money and expected loss;
(b) the fitted featurizer never raises on anything and never returns an infinity (NaN is its
    documented marker of a missing number; the model handles it);
(c) POST /score never answers 5xx; it answers exactly what the validation layer decides (200, or
    the 4xx it names, as JSON with a non-empty message); every 200 stores a row whose raw_payload
    is the posted JSON with NaN/Infinity written as null;
(d) db.save_scores round-trips raw payloads with odd unicode on SQLite and Postgres.

Runs are deterministic by default (a fixed hypothesis derandomisation and schemathesis seed), so
CI is repeatable; ``FUZZ_RANDOM=1`` explores new examples (and prints the seed of a failure).
API properties run on SQLite (fast); one smaller run of (c) and (d) uses the real Postgres.
"""
from __future__ import annotations

import collections
import json
import logging
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import db
import features
import predict
import validation

RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
SCHEMATHESIS_SEED = None if RANDOM else 20131004
NAN, INF = float("nan"), float("inf")
TIERS = {"low", "medium", "high"}


def fuzz_settings(max_examples: int):
    """A few hundred examples, no deadline (the machine is shared), no example database in the repo."""
    return settings(
        max_examples=max_examples, deadline=None, database=None, derandomize=not RANDOM,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example, HealthCheck.filter_too_much],
    )


# --------------------------------------------------------------------------- strategies

ODD_STRINGS = [
    "", " ", "\x00", "a\x00b", "\u202egnp.exe\u202c", "مرحبا بالعالم", "שלום עולם", "😀🎟️👩‍👩‍👧‍👦",
    "\ufeffBOM", "\U0010fffd", "\ue000", "e\u0301\u0301\u0301", "ＡＢＣ", "İı", "ß", "NaN", "Infinity",
    "null", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "' OR 1=1 --", "\\", '"',
    "\r\n\t", "\u2028\u2029", "%s%n{0}", "2013-10-04 14:05:00", "0", "-1", "1e308",
]
ODD_NUMBERS = [
    0, -0.0, 1, -1, 0.5, 1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 2**53 + 1,
    2**63 - 1, 2**63, -(2**63), 2**64, 10**30, -(10**30), 10**400, -(10**400), NAN, INF, -INF,
    1380585600, 1380585600.5, 253402300800, 1e20,
]
HUGE_UNITS = ["x", "é", "😀", "\u202e", "<b>a</b> ", "\x00", "مرحبا "]

odd_text = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40),  # surrogate-free
)
# ~100 KB of one unit (as JSON text, so that two of them still fit the 1 MiB body limit).
huge_text = st.sampled_from(HUGE_UNITS).map(lambda unit: unit * (100_000 // len(json.dumps(unit))))
odd_number = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),  # NaN and the infinities included
)
scalars = st.one_of(st.none(), st.booleans(), odd_number, odd_text)
json_any = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(odd_text, children, max_size=4)),
    max_leaves=10,
)


def nested(depth: int, leaf=1, kind: str = "list"):
    """A value ``depth`` containers deep (alternating lists and objects), built without recursion."""
    value = leaf
    for level in range(depth):
        value = [value] if (level % 2 == 0) == (kind == "list") else {"k": value}
    return value


deep_value = st.integers(min_value=1, max_value=validation.MAX_NESTING + 25).map(nested)

odd_tier = st.fixed_dictionaries({}, optional={
    "event_id": json_any, "cost": st.one_of(odd_number, json_any), "availability": odd_number,
    "quantity_total": st.one_of(odd_number, json_any), "quantity_sold": odd_number,
})
odd_payout = st.fixed_dictionaries({}, optional={
    "created": st.one_of(st.sampled_from(["2013-01-01 00:00:00", "2013-13-45 99:99:99", "9999-12-31",
                                          "0001-01-01 00:00:00", "yesterday"]), json_any),
    "amount": st.one_of(odd_number, json_any), "name": odd_text, "country": odd_text,
    "state": odd_text, "address": odd_text, "zip_code": json_any, "uid": json_any, "event": json_any,
})
odd_objects = st.lists(
    st.one_of(odd_tier, odd_payout, st.dictionaries(odd_text, st.one_of(json_any, deep_value), max_size=3)),
    max_size=5,
)
valid_object_id = st.one_of(
    st.integers(min_value=1, max_value=validation.MAX_OBJECT_ID),
    st.sampled_from([1, 2**53, validation.MAX_OBJECT_ID]),
    st.integers(min_value=1, max_value=10**6).map(float),
)
# A value validation accepts for each kind of field (odd, but of the right JSON type or missing).
ACCEPTED = {
    "number": st.one_of(odd_number, st.none()),
    "integer": st.one_of(odd_number, st.none()),
    "string": st.one_of(odd_text, huge_text, st.none()),
    "list": st.one_of(odd_objects, st.none()),
}
# Anything at all, for the fields' "random type" runs.
ANYTHING = st.one_of(json_any, deep_value, odd_objects, st.lists(json_any, max_size=4), huge_text)


def _extra_keys():
    return st.dictionaries(odd_text.filter(lambda k: k not in validation.FIELD_TYPES),
                           st.one_of(json_any, deep_value), max_size=3)


@st.composite
def accepted_events(draw):
    """An event check_event accepts: every known field optional, odd but of an accepted type."""
    event = draw(st.fixed_dictionaries(
        {"object_id": valid_object_id},
        optional={f: ACCEPTED[kind] for f, kind in validation.FIELD_TYPES.items() if f != "object_id"},
    ))
    event.update(draw(_extra_keys()))
    return event


@st.composite
def random_events(draw):
    """An event with random types in any field (object_id included), missing keys and extra keys."""
    event = draw(st.fixed_dictionaries({}, optional={
        f: st.one_of(ACCEPTED[kind], ANYTHING) for f, kind in validation.FIELD_TYPES.items()}))
    if draw(st.booleans()):
        event["object_id"] = draw(valid_object_id)
    event.update(draw(_extra_keys()))
    return event


any_event = st.one_of(accepted_events(), random_events())


def json_safe(value):
    """What the database keeps of a posted value: NaN and the infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def depth_of(value) -> int:
    """Nesting depth of a JSON value (an object or array counts one level), iteratively."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def assert_sane_score(score: dict) -> None:
    """A score the database and the dashboard can hold: finite numbers in range, a known tier."""
    p = score["fraud_probability"]
    assert isinstance(p, float) and math.isfinite(p) and 0.0 <= p <= 1.0, score
    assert score["risk_tier"] in TIERS, score
    for key in ("expected_loss", "money_at_stake"):
        assert isinstance(score[key], float) and math.isfinite(score[key]) and score[key] >= 0, score
    assert score["money_at_stake"] <= features.MAX_MONEY
    assert isinstance(score["reasons"], list) and all(isinstance(r, str) for r in score["reasons"])


@pytest.fixture(autouse=True)
def quiet_reject_log():
    """Thousands of refused bodies are expected here: keep their warnings out of the output."""
    logger = logging.getLogger("fraud.app")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# --------------------------------------------------------------------------- (a) the scoring core


def test_score_records_on_accepted_events(tiny_model):
    @fuzz_settings(250)
    @given(st.lists(accepted_events(), min_size=1, max_size=3))
    def check(events):
        for event in events:
            validation.check_event(event)  # the precondition: validation accepts each one
        scores = predict.score_records(tiny_model, events)
        assert len(scores) == len(events)
        for event, score in zip(events, scores):
            assert_sane_score(score)
            assert score["object_id"] == event["object_id"]

    check()


def test_score_records_or_validation_refuses_random_types(tiny_model):
    """With random types in any field, validation names the field or the event scores sanely."""
    @fuzz_settings(200)
    @given(random_events())
    def check(event):
        try:
            validation.check_event(event)
        except validation.InvalidEvent as exc:
            assert exc.status in (400, 422) and str(exc)
            assert exc.field is None or exc.field in str(exc)
            return
        assert_sane_score(predict.score_records(tiny_model, [event])[0])

    check()


@pytest.mark.parametrize("event", [
    {"object_id": 1, "ticket_types": [{"cost": 1e308, "quantity_total": 1e308}] * 3},
    {"object_id": 1, "ticket_types": [{"cost": 10**400, "quantity_total": 2}], "user_age": -(10**400)},
    {"object_id": 1, "event_created": 1e308, "event_start": 1e-300, "event_end": 1e308,
     "previous_payouts": [{"created": "2013-01-01 00:00:00", "amount": 1e308}] * 2},
    {"object_id": 1, "event_created": 6.8e16, "user_created": -1e308, "sale_duration": -1e308},
    {"object_id": validation.MAX_OBJECT_ID, "gts": INF, "num_order": -INF, "body_length": NAN},
], ids=["1e308-prices", "ints-past-float", "timestamps-past-year-9999", "negative-absurd", "non-finite"])
def test_absurd_numbers_score_finitely(tiny_model, event):
    """The overflows fuzzing found (inf money, gmtime/float overflow) stay fixed."""
    validation.check_event(event)
    assert_sane_score(predict.score_records(tiny_model, [event])[0])


# --------------------------------------------------------------------------- (b) the featurizer


def test_featurizer_never_raises_and_never_returns_infinity(tiny_model):
    featurizer = tiny_model.pipeline[0]
    width = len(featurizer.get_feature_names_out())

    @fuzz_settings(300)
    @given(st.lists(st.one_of(any_event, ANYTHING), min_size=1, max_size=3))
    def check(records):
        X = featurizer.transform(records)
        assert X.shape == (len(records), width) and X.dtype == float
        assert not np.isinf(X).any(), featurizer.get_feature_names_out()[np.isinf(X).any(axis=0)]
        assert (np.abs(X[~np.isnan(X)]) <= features.MAX_FEATURE).all()
        for record in records:
            money = features.money_at_stake(record) if isinstance(record, dict) else 0.0
            assert math.isfinite(money) and 0.0 <= money <= features.MAX_MONEY

    check()


# --------------------------------------------------------------------------- (c) POST /score


def expected_answer(body: bytes, app) -> tuple[int, str | None]:
    """What /score must answer for a JSON body: 413 past the size limit, else validation's verdict."""
    if len(body) > app.config["MAX_CONTENT_LENGTH"]:
        return 413, None
    try:
        payload = validation.parse_json_body(body)
        validation.events_from_payload(payload, app.config["MAX_BATCH"])
    except validation.InvalidEvent as exc:
        return exc.status, exc.field
    return 200, None


def check_score_exchange(app, client, payload) -> int:
    """POST one generated payload as the stream would (bare NaN tokens) and check the answer."""
    body = json.dumps(payload).encode()  # allow_nan: NaN/Infinity travel as bare tokens
    response = client.post("/score", data=body, headers={"Content-Type": "application/json"})
    status, field = expected_answer(body, app)
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.is_json
    if status != 200:
        message = response.get_json()["message"]
        assert isinstance(message, str) and message.strip()
        assert field is None or field in message
        return status
    answer = response.get_json()
    events = payload if isinstance(payload, list) else [payload]
    answers = answer if isinstance(payload, list) else [answer]
    last = {int(e["object_id"]): e for e in events}  # a repeated id keeps its last payload
    engine = app.extensions["db_engine"]
    for object_id, event in last.items():
        row = db.get_prediction(engine, object_id)
        assert row is not None and row["raw_payload"] == json_safe(event)
    for score in answers:
        assert_sane_score(score)
        assert score["stored"] == "pending"  # stored once the answer was sent: the rows above
    return status


score_payloads = st.one_of(any_event, st.lists(any_event, min_size=1, max_size=3))


@pytest.mark.parametrize(("db_url", "examples", "min_ok", "min_refused"), [
    ("sqlite", 300, 50, 20),
    pytest.param("postgres", 60, 10, 0, marks=pytest.mark.postgres),  # fewer: each is a real round trip
], indirect=["db_url"])
def test_score_api_properties(make_app, examples, min_ok, min_refused):
    app = make_app()
    client = app.test_client()
    statuses = collections.Counter()

    @fuzz_settings(examples)
    @given(score_payloads)
    def check(payload):
        statuses[check_score_exchange(app, client, payload)] += 1

    check()
    assert statuses[200] >= min_ok and sum(n for s, n in statuses.items() if 400 <= s < 500) >= min_refused, statuses


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lone_surrogates_and_nul_survive_the_api(make_app):
    """Escaped lone surrogates and NUL are valid JSON: scored, and the payload kept exactly."""
    app = make_app()
    body = b'{"object_id": 77, "name": "\\ud800x\\u0000", "description": "\\udfff", "\\ud83d": "key"}'
    response = app.test_client().post("/score", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.get_json()
    row = db.get_prediction(app.extensions["db_engine"], 77)
    assert row["raw_payload"] == json.loads(body)
    assert row["name"] == "?x"  # the typed copy is cleaned for both databases (db._clean_text)


def test_reasons_quoting_hostile_values_are_strict_json_text():
    """A reason quoting the record (here its currency) carries no lone surrogate or NUL, so the
    answer parses in strict JSON parsers and says what the database stores."""
    phrase = features.phrase_reason("currency", {}, {"currency": "\udfffX\x00"}, up=True)
    assert phrase == "currency ?X"
    assert features.phrase_reason("currency", {}, {"currency": "€UR"}, up=True) == "currency €UR"


# --------------------------------------------------------------------------- (d) the database


def test_save_scores_round_trips_odd_unicode(engine, db_url):
    score = {"fraud_probability": 0.5, "risk_tier": "medium", "expected_loss": 1.0,
             "money_at_stake": 2.0, "reasons": ["ok"], "model_version": "fuzz"}
    odd_record = st.fixed_dictionaries(
        {"object_id": st.integers(min_value=1, max_value=50)},
        optional={"name": odd_text, "org_name": odd_text, "description": st.one_of(odd_text, huge_text),
                  "venue_address": odd_text, "ticket_types": odd_objects,
                  "previous_payouts": st.lists(odd_payout, max_size=3)},
    ).flatmap(lambda record: _extra_keys().map(lambda extra: {**extra, **record}))

    @fuzz_settings(150 if db_url.startswith("sqlite") else 50)
    @given(odd_record)
    def check(record):
        db.save_scores(engine, [(record, {**score, "object_id": record["object_id"]})])
        row = db.get_prediction(engine, record["object_id"])
        assert row["raw_payload"] == json_safe(record)
        name = record.get("name")  # the typed copy: '' is missing, NUL is dropped (Postgres refuses it)
        assert row["name"] == (None if name in (None, "") else name.replace("\x00", ""))

    check()


# --------------------------------------------------------------------------- size and nesting limits


def post(client, body: bytes, **kwargs):
    return client.post("/score", data=body, headers={"Content-Type": "application/json"}, **kwargs)


def assert_json_error(response, status: int, words: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json and words in response.get_json()["message"], response.get_json()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_body_over_the_limit_is_413_json(make_app):
    app = make_app()
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 1 << 20  # the documented default, and nginx's client_max_body_size 1m
    body = json.dumps({"object_id": 1, "description": "x" * limit}).encode()
    assert_json_error(post(app.test_client(), body), 413, "")
    just_under = json.dumps({"object_id": 2, "description": "x" * (limit - 100)}).encode()
    assert len(just_under) <= limit and post(app.test_client(), just_under).status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_chunked_body_without_content_length_is_limited_too(make_app):
    """A chunked body has no Content-Length; gunicorn de-chunks it and marks the stream terminated.

    Werkzeug alone would only cut such a body off at the limit (and the truncated JSON would be
    answered 400 or, worse, scored); the app must answer 413 like for a declared length.
    """
    import io

    from werkzeug.test import EnvironBuilder

    limit = 64 * 1024
    app = make_app(MAX_CONTENT_LENGTH=limit)

    def send(body: bytes):
        environ = EnvironBuilder(path="/score", method="POST", input_stream=io.BytesIO(body), headers={
            "Transfer-Encoding": "chunked", "Content-Type": "application/json"}).get_environ()
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True  # what gunicorn sets for a chunked request
        return app.response_class.from_app(app, environ, buffered=True)  # closed, as a server does

    big = json.dumps({"object_id": 3, "description": "y" * 100_000}).encode()
    assert_json_error(send(big), 413, f"larger than {limit} bytes")
    # A valid object followed by padding: cut at the limit it would parse; it must not be scored.
    padded = b'{"object_id": 5}' + b" " * (2 * limit)
    assert_json_error(send(padded), 413, "larger than")
    assert db.get_prediction(app.extensions["db_engine"], 5) is None
    exact = json.dumps({"object_id": 4, "name": "chunked"}).encode()
    exact = exact + b" " * (limit - len(exact))  # exactly at the limit is allowed
    assert len(exact) == limit and send(exact).status_code == 200
    assert db.get_prediction(app.extensions["db_engine"], 4)["name"] == "chunked"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_nesting_limit(make_app):
    app = make_app()
    client = app.test_client()
    limit = validation.MAX_NESTING

    def event(depth: int, object_id: int) -> bytes:
        """An event (one level) whose extra key holds ``depth - 1`` more levels."""
        payload = {"object_id": object_id, "extra": nested(depth - 1)}
        assert depth_of(payload) == depth
        return json.dumps(payload).encode()

    assert post(client, event(limit, 11)).status_code == 200
    assert db.get_prediction(app.extensions["db_engine"], 11)["raw_payload"]["extra"] == nested(limit - 1)
    assert_json_error(post(client, event(limit + 1, 12)), 400, f"nested deeper than {limit}")
    # Far past Python's recursion limit: the parser's RecursionError is a 400 as well, not a 500.
    for hostile in (b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        assert_json_error(post(client, hostile), 400, f"nested deeper than {limit}")
    batch = json.dumps([{"object_id": 13}, {"object_id": 14, "ticket_types": [nested(limit)]}]).encode()
    assert_json_error(post(client, batch), 400, "nested deeper")
    assert db.get_prediction(app.extensions["db_engine"], 13) is None  # nothing of a refused batch stored


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_batch_limit(make_app):
    app = make_app(MAX_BATCH=5)
    client = app.test_client()
    ok = post(client, json.dumps([{"object_id": i} for i in range(1, 6)]).encode())
    assert ok.status_code == 200 and len(ok.get_json()) == 5
    assert_json_error(post(client, json.dumps([{"object_id": i} for i in range(1, 7)]).encode()),
                      413, "at most 5 events")
    default = make_app()
    over = json.dumps([{"object_id": 1}] * (default.config["MAX_BATCH"] + 1)).encode()
    assert_json_error(post(default.test_client(), over), 413, "at most 1000 events")


# --------------------------------------------------------------------------- schemathesis


class RecordingWsgi:
    """WSGI middleware keeping (method, path, status, content type, body) of every exchange."""

    def __init__(self, app):
        self.app = app
        self.exchanges: list[tuple[str, str, int | str, str, bytes]] = []

    def __call__(self, environ, start_response):
        seen = {}

        def recording_start(status, headers, exc_info=None):
            seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)
            return start_response(status, headers, exc_info)

        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        try:
            body = b"".join(self.app(environ, recording_start))
        except BaseException:
            self.exchanges.append((method, path, "exception", "", b""))
            raise
        self.exchanges.append((method, path, seen["status"], seen["headers"].get("Content-Type", ""), body))
        return [body]


def schemathesis_config():
    """Every built-in check on; the statuses the spec documents are the ones each mode may get."""
    from schemathesis.config import SchemathesisConfig

    seed = {} if SCHEMATHESIS_SEED is None else {"seed": SCHEMATHESIS_SEED}
    return SchemathesisConfig.from_dict({
        **seed,
        "workers": 1,
        "generation": {"max-examples": 500, "mode": "all"},
        "phases": {"stateful": {"enabled": False}},  # the API has no links between operations
        "checks": {
            "enabled": True,
            # /score documents 413 for a batch over maxItems, so a refused negative body may be 413;
            # no 5xx is acceptable for bad input (schemathesis' default list tolerates 5xx).
            "negative_data_rejection": {"expected-statuses": ["400", "405", "413", "415", "422"]},
            "positive_data_acceptance": {"expected-statuses": ["200"]},
        },
    })


def run_schemathesis(schema) -> list[str]:
    """Run every phase of the engine; return one line per failed check or error."""
    from schemathesis.engine import events, from_schema

    problems = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for nodes in event.recorder.checks.values():
                problems += [f"{event.recorder.label}: {node.name}: {node.failure_info.failure}"
                             for node in nodes if node.failure_info is not None]
        elif isinstance(event, events.NonFatalError):  # e.g. an exception raised inside the app
            problems.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    return sorted(set(problems))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_schemathesis_fuzzes_the_api_from_its_own_spec(make_app):
    import openapi
    import schemathesis

    app = make_app()
    assert app.test_client().get("/openapi.json").get_json() == openapi.spec()
    recorder = RecordingWsgi(app.wsgi_app)
    app.wsgi_app = recorder
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=schemathesis_config())
    operations = sorted(f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations())
    assert operations == ["GET /health", "GET /hello", "GET /metrics", "GET /version", "POST /score"]

    problems = run_schemathesis(schema)
    seed = f"(schemathesis seed {schema.config.seed})"
    assert problems == [], f"{seed}\n" + "\n\n".join(problems[:10])

    generated = [x for x in recorder.exchanges if x[1] != "/openapi.json"]
    per_route = collections.Counter(f"{method} {path} {status}" for method, path, status, _, _ in generated)
    assert len(generated) >= 1000, (seed, per_route)
    score_statuses = {status for method, path, status, _, _ in generated if (method, path) == ("POST", "/score")}
    assert 200 in score_statuses and {400, 422} <= score_statuses, per_route  # both modes ran
    for path in ("/hello", "/health", "/version", "/metrics"):
        assert any(p == path and m == "GET" for m, p, *_ in generated), path
    for method, path, status, content_type, body in generated:
        assert status != "exception" and status < 500, (method, path, status, body[:300])
        if 400 <= status < 500 and method != "HEAD":  # every refusal says why, as JSON
            assert content_type.startswith("application/json"), (method, path, status, content_type)
            message = json.loads(body)["message"]
            assert isinstance(message, str) and message.strip(), (method, path, status, body[:300])
