"""validation.py: which bodies /score refuses, with which status, naming which field."""
import json

import pytest

import validation as v


def _one(body: bytes):
    return v.events_from_payload(v.parse_json_body(body), max_batch=1000)


def test_nan_tokens_and_missing_fields_are_accepted():
    events, is_batch = _one(b'{"object_id": 5, "has_header": NaN, "gts": Infinity, "name": null}')
    assert not is_batch and events[0]["object_id"] == 5


def test_integer_columns_sent_as_floats_are_accepted():
    events, _ = _one(b'{"object_id": 5.0, "user_age": 3.0, "channels": 8.0}')
    assert events[0]["user_age"] == 3.0


@pytest.mark.parametrize("body, status, text", [
    (b"{not json", 400, "malformed JSON"),
    (b"\xff\xfe", 400, "not UTF-8"),
    (b'"a string"', 400, "object or an array"),
    (b"42", 400, "object or an array"),
    (b"[]", 400, "no events"),
    (b"[1, 2]", 422, "event 0"),
    (b'{"name": "x"}', 422, "object_id is required"),
    (b'{"object_id": NaN}', 422, "object_id is required"),
    (b'{"object_id": "12"}', 422, "object_id must be"),
    (b'{"object_id": -3}', 422, "object_id must be"),
    (b'{"object_id": 1.5}', 422, "object_id must be"),
    (b'{"object_id": 1e30}', 422, "object_id must be"),
    (b'{"object_id": 1, "user_age": "old"}', 422, "'user_age' must be a number"),
    (b'{"object_id": 1, "name": 12}', 422, "'name' must be a string"),
    (b'{"object_id": 1, "ticket_types": {"cost": 1}}', 422, "'ticket_types' must be a list"),
    (b'{"object_id": 1, "ticket_types": [1, 2]}', 422, "'ticket_types' must be a list"),
    (b'{"object_id": 1, "has_logo": true}', 422, "'has_logo' must be a number"),
])
def test_refusals_name_the_problem(body, status, text):
    with pytest.raises(v.InvalidEvent) as caught:
        _one(body)
    assert caught.value.status == status
    assert text in str(caught.value)


def test_field_is_named_on_type_errors():
    with pytest.raises(v.InvalidEvent) as caught:
        _one(b'[{"object_id": 1}, {"object_id": 2, "currency": ["USD"]}]')
    assert caught.value.field == "currency" and "event 1" in str(caught.value)


def test_deep_nesting_is_refused_without_recursion_errors():
    for depth in (25, 100_000):
        body = b'{"object_id": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"
        with pytest.raises(v.InvalidEvent, match="nested deeper"):
            _one(body)
    wide = [{"a": [1, {"b": []}]}, [[]], {}, 3, "s"]  # depth 5: list, dict, list, dict, list
    assert v._nesting_depth(wide) == 5 and v._nesting_depth(7) == 0 and v._nesting_depth({}) == 1


def test_nesting_up_to_the_limit_is_accepted():
    def body(levels):  # the event object is one level, the list inside it the others
        return b'{"object_id": 1, "x": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"
    assert v.parse_json_body(body(v.MAX_NESTING))["object_id"] == 1
    with pytest.raises(v.InvalidEvent, match="nested deeper"):
        v.parse_json_body(body(v.MAX_NESTING + 1))


def test_batch_limit():
    body = json.dumps([{"object_id": i + 1} for i in range(3)]).encode()
    with pytest.raises(v.InvalidEvent) as caught:
        v.events_from_payload(v.parse_json_body(body), max_batch=2)
    assert caught.value.status == 413
    events, is_batch = v.events_from_payload(v.parse_json_body(body), max_batch=3)
    assert is_batch and len(events) == 3


def test_unknown_keys_are_kept():
    events, _ = _one(b'{"object_id": 1, "sequence_number": 9, "something_new": {"a": 1}}')
    assert events[0]["something_new"] == {"a": 1}
