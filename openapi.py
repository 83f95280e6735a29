"""The OpenAPI 3 description of the scoring API, served at /openapi.json.

The event schema is built from validation.FIELD_TYPES, so the document and the checks that
/score applies cannot drift apart.
"""
from __future__ import annotations

import validation

_JSON_TYPES = {
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "string": {"type": "string"},
    "list": {"type": "array", "items": {"type": "object"}},
}


def event_schema() -> dict:
    """One raw event: every known field optional (missing is missing) except object_id."""
    properties = {}
    for field, kind in validation.FIELD_TYPES.items():
        properties[field] = {**_JSON_TYPES[kind], "nullable": True}  # OpenAPI 3.0's null
    properties["object_id"] = {"type": "integer", "minimum": 1, "maximum": validation.MAX_OBJECT_ID}
    return {
        "type": "object",
        "required": ["object_id"],
        "properties": properties,
        "additionalProperties": True,
        "description": "A raw event as the stream sends it (36, 38, 43 or 44 keys). Bare NaN tokens "
                       "are accepted and mean missing. acct_type, the label, is stored when it is "
                       "text but never used to score.",
    }


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def spec(max_batch: int = 1000) -> dict:
    """The whole document, for an app taking up to ``max_batch`` events per request (MAX_BATCH)."""
    score = {
        "type": "object",
        "required": ["object_id", "fraud_probability", "risk_tier", "money_at_stake", "expected_loss",
                     "reasons", "model_version", "stored"],  # every answer has them all
        "properties": {
            "object_id": {"type": "integer"},
            "fraud_probability": {"type": "number", "minimum": 0, "maximum": 1},
            "risk_tier": {"type": "string", "enum": ["low", "medium", "high"]},
            "money_at_stake": {"type": "number", "description": (
                "sum of price × quantity over the ticket tiers, in US dollars: converted from the "
                "event's currency at the service's rates (USD_RATES)")},
            "expected_loss": {"type": "number", "description": "fraud_probability × money_at_stake (US dollars)"},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "model_version": {"type": "string"},
            "stored": {"type": "string", "enum": ["pending", "stored", "spooled", "not stored (demo mode)"],
                       "description": "pending: answered first, stored by the same worker right after "
                                      "(database, or spool if the database fails then); stored or "
                                      "spooled: stored before answering (while the database is "
                                      "away, or with confirm=true)"},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Fraud triage scoring API", "version": "1.0.0",
                 "description": "Scores marketplace events for fraud review. The model ranks events "
                                "for human review; it does not declare fraud."},
        "paths": {
            "/hello": {"get": {"summary": "Liveness", "responses": {
                "200": {"description": "Hello, World!", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/score": {"post": {
                "summary": f"Score and store one event, or an array of up to {max_batch:,}",
                "parameters": [{"name": "confirm", "in": "query", "required": False,
                                "schema": {"type": "boolean"},
                                "description": "true: answer only once the event is stored (stored or "
                                               "spooled, or 503 if it could not be); default: answer "
                                               "once scored and store right after (pending)"}],
                "requestBody": {"required": True,
                                "description": "Sent as application/json or another +json type "
                                               "(application/vnd.example+json); not compressed",
                                "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Event"},
                     "minItems": 1, "maxItems": max_batch}]}}}},
                "responses": {
                    "200": {"description": "The score (an array of scores for an array)",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/Score"},
                                {"type": "array", "items": {"$ref": "#/components/schemas/Score"}}]}}}},
                    "400": _error("A body that cannot be read as one: empty, cut short of its "
                                  "Content-Length, badly chunked, not UTF-8, malformed JSON, JSON "
                                  "nested deeper than 20 levels or holding an unreadable number, "
                                  "neither an object nor an array, or an empty array; or a confirm "
                                  "that is not true or false"),
                    "401": _error("SCORE_API_KEY is set and X-API-Key is missing or wrong"),
                    "403": _error("SCORE_ALLOWLIST is set and the source address is not in it"),
                    "408": _error("The client sent no byte for BODY_IDLE_SECONDS in the middle of "
                                  "its body, its connection left open (served by gunicorn)"),
                    "413": _error(f"Body over the size limit (MAX_CONTENT_LENGTH), or more than "
                                  f"{max_batch:,} events"),
                    "415": _error("Content-Type is not application/json (or another +json type), "
                                  "or the body is compressed (Content-Encoding)"),
                    "422": _error("A field of the wrong type (named in the message); no object_id, "
                                  "or one that is not a positive whole number; an element of an "
                                  "array that is not an object"),
                    "503": _error("Scored, but neither the database nor the spool could store it"),
                }}},
            "/health": {"get": {"summary": "Model, database and spool status", "responses": {
                "200": {"description": "Healthy (`refused_reload`, when not null, says when and why the last "
                                       "reload could not load the model file: the running model serves on)",
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                "503": {"description": "Degraded (database unreachable, spool unwritable, or an event "
                                       "waiting in the spool over 60 s)",
                        "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/version": {"get": {"summary": "The serving model's version, thresholds and metrics", "responses": {
                "200": {"description": "Model metadata", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "The OpenAPI 3 description of this API",
                        "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": {
            "Event": event_schema(),
            "Score": score,
            "Error": {"type": "object", "required": ["error", "status", "message"], "properties": {
                "error": {"type": "string"}, "status": {"type": "integer"},
                "message": {"type": "string", "description": "what was wrong, naming the field"}}},
        }},
    }
