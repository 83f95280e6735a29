"""Reading raw event records: data/data.zip, a .json array or .jsonl; the fraud label; the time split.

This is the edge where raw data enters the project. Everything downstream sees records in one
normal form: plain dicts whose missing values are ``None``, whatever the source said (a bare
``NaN`` token, ``null``, or an empty string where a value was expected).
"""
from __future__ import annotations

import hashlib
import json
import math
import zipfile
from pathlib import Path

LABEL_FIELD = "acct_type"
DEFAULT_DATA_PATH = Path("data/data.zip")
ZIP_MEMBER = "data.json"


class DataError(ValueError):
    """The data could not be read or does not have the shape the project needs."""


def is_missing(value) -> bool:
    """True for the values that mean 'not known': None, NaN (any float that is NaN) and ''."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value == ""


def normalise_value(value):
    """One value in normal form: missing becomes None; lists and dicts are normalised inside."""
    if is_missing(value):
        return None
    if isinstance(value, list):
        return [normalise_value(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise_value(v) for k, v in value.items()}
    return value


def normalise_record(record: dict) -> dict:
    """A copy of a raw record with every missing value (NaN, None, '') turned into None."""
    if not isinstance(record, dict):
        raise DataError(f"a record must be a JSON object, got {type(record).__name__}")
    return {key: normalise_value(value) for key, value in record.items()}


def is_fraud(acct_type) -> bool:
    """The client's label: an account type containing 'fraud' (fraudster, fraudster_event, ...),
    in any case ('Fraudster' from a hand-edited export is fraud too)."""
    return isinstance(acct_type, str) and "fraud" in acct_type.lower()


def add_labels(records: list[dict]) -> list[dict]:
    """Set the boolean ``fraud`` label on each record from ``acct_type``, which is kept."""
    for i, record in enumerate(records):
        if record.get(LABEL_FIELD) is None:
            raise DataError(
                f"record {i} (object_id {record.get('object_id')}) has no '{LABEL_FIELD}': "
                "training and evaluation need labelled records"
            )
        if not isinstance(record[LABEL_FIELD], str):  # a number would silently read as not fraud
            raise DataError(
                f"record {i} (object_id {record.get('object_id')}) has '{LABEL_FIELD}' "
                f"{record[LABEL_FIELD]!r}, not text such as 'premium' or 'fraudster_event'"
            )
        record["fraud"] = is_fraud(record[LABEL_FIELD])
    return records


def _parse_json_text(text: str, source: str):
    """Parse JSON, accepting the bare NaN/Infinity tokens pandas writes."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{source} is not valid JSON: {exc}") from exc


def _records_from_array(parsed, source: str) -> list[dict]:
    if not isinstance(parsed, list):
        raise DataError(f"{source} must hold a JSON array of event objects")
    return [normalise_record(r) for r in parsed]


def read_text(path: str | Path) -> tuple[str, str]:
    """The JSON text of a data file and a name for it: data.json inside a .zip, or the file itself."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no data file at {path}")
    # utf-8-sig: UTF-8, and the byte-order mark some Windows tools put first is not part of the JSON
    try:
        if path.suffix != ".zip":
            return path.read_text("utf-8-sig"), str(path)
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if Path(n).name == ZIP_MEMBER]
            if not names:
                raise DataError(f"{path} does not contain {ZIP_MEMBER}")
            return archive.read(names[0]).decode("utf-8-sig"), f"{path}:{ZIP_MEMBER}"
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start})") from exc


def read_raw(path: str | Path) -> list[dict]:
    """Read records from a .zip holding data.json, a .json array or a .jsonl file (one per line)."""
    path = Path(path)
    if path.suffix not in (".zip", ".json", ".jsonl"):
        raise DataError(f"{path}: expected a .zip, .json or .jsonl file")
    if path.suffix == ".jsonl":
        if not path.exists():
            raise DataError(f"no data file at {path}")
        return list(iter_jsonl(path))
    text, source = read_text(path)
    return _records_from_array(_parse_json_text(text, source), str(path))


def iter_jsonl(path: str | Path):
    """Yield normalised records from a .jsonl file one at a time (memory stays flat)."""
    with open(path, encoding="utf-8-sig") as handle:  # as read_text
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield normalise_record(_parse_json_text(line, f"{path} line {number}"))


def load_labelled(path: str | Path) -> list[dict]:
    """Read records and add the fraud label; every record must carry ``acct_type``."""
    return add_labels(read_raw(path))


def time_split(records: list[dict], test_fraction: float = 0.2) -> tuple[list[dict], list[dict]]:
    """Split by ``event_created``: the earliest events train, the latest ``test_fraction`` test.

    Ties are broken by object_id so the split is deterministic; no event is in both parts.
    """
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    ordered = sorted(records, key=lambda r: (_sort_number(r.get("event_created")), _sort_number(r.get("object_id"))))
    cut = len(ordered) - max(1, round(len(ordered) * test_fraction))
    return ordered[:cut], ordered[cut:]


def _sort_number(value) -> float:
    """A number to order records by: numbers and numeric text as themselves, anything else
    (missing, NaN, other text, lists) as 0, so the earliest. (Not features.to_float: this module
    stays free of numpy and scikit-learn, for stream.py, which imports it.)"""
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else 0.0
    except (ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def file_hash(path: str | Path) -> str:
    """SHA-256 of a data file, recorded beside the model so an artifact names its training data."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def records_hash(records: list[dict]) -> str:
    """SHA-256 of records as canonical JSON, for data that was generated rather than read."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    return digest.hexdigest()
