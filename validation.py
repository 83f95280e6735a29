"""What a raw event posted to /score may look like, checked before scoring.

The stream sends events in several shapes (36, 38, 43 or 44 keys), with bare ``NaN`` tokens
and integer columns as floats. A *missing* field is never an error; a field of the *wrong
type* (a list where a number belongs, a word where a timestamp belongs) is, and the answer
names the field. Unknown extra keys are kept in the raw payload and otherwise ignored.
"""
from __future__ import annotations

import json
import math

# JSON type expected for each known field. "number" accepts ints and floats (pandas sends
# integer columns with gaps as floats); "string" accepts text; lists hold objects.
FIELD_TYPES: dict[str, str] = {
    "object_id": "integer",
    "acct_type": "string",
    "approx_payout_date": "number",
    "body_length": "number",
    "channels": "number",
    "country": "string",
    "currency": "string",
    "delivery_method": "number",
    "description": "string",
    "email_domain": "string",
    "event_created": "number",
    "event_end": "number",
    "event_published": "number",
    "event_start": "number",
    "fb_published": "number",
    "gts": "number",
    "has_analytics": "number",
    "has_header": "number",
    "has_logo": "number",
    "listed": "string",
    "name": "string",
    "name_length": "number",
    "num_order": "number",
    "num_payouts": "number",
    "org_desc": "string",
    "org_facebook": "number",
    "org_name": "string",
    "org_twitter": "number",
    "payee_name": "string",
    "payout_type": "string",
    "previous_payouts": "list",
    "sale_duration": "number",
    "sale_duration2": "number",
    "show_map": "number",
    "ticket_types": "list",
    "user_age": "number",
    "user_created": "number",
    "user_type": "number",
    "venue_address": "string",
    "venue_country": "string",
    "venue_latitude": "number",
    "venue_longitude": "number",
    "venue_name": "string",
    "venue_state": "string",
    "sequence_number": "number",
}

MAX_OBJECT_ID = 2**63 - 1  # fits the database's BIGINT
MAX_EXACT_FLOAT = 2**53  # from it on, neighbouring whole numbers share one float
MAX_NESTING = 20  # the deepest a legitimate event goes is 3 (event > ticket_types > tier)


class InvalidEvent(ValueError):
    """A body that cannot be scored: ``status`` is the HTTP answer, ``field`` the culprit if any.

    400: not JSON at all, or JSON that is not an object/array; 422: an event with a field of the
    wrong type (named); 413: more events in one request than allowed.
    """

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field = field
        self.status = status


def describe(reason: str, field: str | None = None) -> str:
    """A refusal as /score answers it: the reason, naming the field when there is one."""
    return reason if field is None else f"{reason} (field: {field})"


def parse_json_body(body: bytes):
    """Parse a request body as the stream writes it: UTF-8 JSON with bare NaN/Infinity allowed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"body is not UTF-8 text (byte {exc.start})") from exc
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise InvalidEvent(f"JSON nested deeper than {MAX_NESTING} levels") from exc
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's conversion limit)
        raise InvalidEvent(f"a number cannot be read: {str(exc).split(';')[0]}") from exc
    if _nesting_depth(parsed) > MAX_NESTING:
        raise InvalidEvent(f"JSON nested deeper than {MAX_NESTING} levels")
    return parsed


def _nesting_depth(value) -> int:
    """Deepest list/object nesting of a parsed JSON value, level by level (iterative: hostile
    depth cannot recurse; one list per level instead of a tuple per container)."""
    depth, level = 0, [value]
    while True:
        level = [node for node in level if type(node) is dict or type(node) is list]
        if not level:
            return depth
        depth += 1
        children = []
        for node in level:
            children.extend(node.values() if type(node) is dict else node)
        level = children


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _missing_or_nonfinite(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def check_event(event, index: int | None = None) -> dict:
    """Return the event if every known field has an acceptable type; else raise InvalidEvent."""
    where = "" if index is None else f"event {index}: "
    if not isinstance(event, dict):
        raise InvalidEvent(f"{where}an event must be a JSON object, got {type(event).__name__}", status=400 if index is None else 422)
    object_id = event.get("object_id")
    if _missing_or_nonfinite(object_id):
        raise InvalidEvent(f"{where}object_id is required to store the event", "object_id", 422)
    if not _is_number(object_id) or object_id != int(object_id) or not 0 < object_id <= MAX_OBJECT_ID:
        raise InvalidEvent(f"{where}object_id must be a positive whole number", "object_id", 422)
    if isinstance(object_id, float) and object_id >= MAX_EXACT_FLOAT:
        raise InvalidEvent(f"{where}object_id from 2**53 on must be written as an integer (a decimal "
                           f"number that large does not name one event exactly)", "object_id", 422)
    for field, kind in FIELD_TYPES.items():
        value = event.get(field)
        if field == "object_id" or _missing_or_nonfinite(value):
            continue
        if not _has_type(value, kind):
            raise InvalidEvent(
                f"{where}field '{field}' must be {_describe(kind)}, got {type(value).__name__}",
                field,
                422,
            )
    return event


def _has_type(value, kind: str) -> bool:
    if kind in ("number", "integer"):
        return _is_number(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, list) and all(isinstance(item, dict) for item in value)
    raise ValueError(f"unknown field kind {kind}")


def _describe(kind: str) -> str:
    return {"number": "a number", "integer": "a whole number", "string": "a string",
            "list": "a list of objects"}[kind]


def events_from_payload(payload, max_batch: int) -> tuple[list[dict], bool]:
    """The events in a parsed body (one object or an array of them) and whether it was an array."""
    if isinstance(payload, dict):
        return [check_event(payload)], False
    if isinstance(payload, list):
        if not payload:
            raise InvalidEvent("the array holds no events")
        if len(payload) > max_batch:
            raise InvalidEvent(f"at most {max_batch} events per request, got {len(payload)}", status=413)
        return [check_event(event, i) for i, event in enumerate(payload)], True
    raise InvalidEvent(f"the body must be a JSON object or an array of objects, got {type(payload).__name__}")
