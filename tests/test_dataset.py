"""dataset.py: reading every format, missing values at the edge, labels, the time split."""
import json
import math
import zipfile

import pytest

import dataset


def _write_zip(path, text, member="data.json"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, text)
    return path


RAW = ('[{"object_id": 1, "acct_type": "premium", "has_header": NaN, "country": "", '
       '"event_created": 300, "ticket_types": [{"cost": NaN}]},'
       ' {"object_id": 2, "acct_type": "fraudster_event", "has_header": 1.0, "country": "US", '
       '"event_created": 100, "ticket_types": []},'
       ' {"object_id": 3, "acct_type": "fraudster_att", "has_header": null, "country": null, '
       '"event_created": 200, "ticket_types": []}]')


@pytest.mark.parametrize("kind", ["zip", "json", "jsonl"])
def test_reads_every_format_with_nan_tokens(tmp_path, kind):
    if kind == "zip":
        path = _write_zip(tmp_path / "data.zip", RAW)
    elif kind == "json":
        path = tmp_path / "data.json"
        path.write_text(RAW)
    else:
        path = tmp_path / "data.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in json.loads(RAW)) + "\n\n")
    records = dataset.read_raw(path)
    assert [r["object_id"] for r in records] == [1, 2, 3]
    # NaN, null and "" all become one missing value, including inside nested lists.
    assert records[0]["has_header"] is None and records[0]["country"] is None
    assert records[0]["ticket_types"] == [{"cost": None}]
    assert records[2]["country"] is None and records[1]["country"] == "US"


def test_labels_from_acct_type_and_keeps_it(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(RAW)
    records = dataset.load_labelled(path)
    assert [r["fraud"] for r in records] == [False, True, True]
    assert records[1]["acct_type"] == "fraudster_event"


@pytest.mark.parametrize("acct_type, expected", [
    ("fraudster", True), ("fraudster_event", True), ("fraudster_att", True),
    ("premium", False), ("spammer_warn", False), ("tos_lock", False), (None, False),
    ("Fraudster", True), ("FRAUDSTER_EVENT", True),  # a hand-edited export
])
def test_is_fraud(acct_type, expected):
    assert dataset.is_fraud(acct_type) is expected


def test_missing_label_is_a_clear_error(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"object_id": 7, "acct_type": "premium"}, {"object_id": 8}]')
    with pytest.raises(dataset.DataError, match="object_id 8.*acct_type"):
        dataset.load_labelled(path)


def test_a_byte_order_mark_is_read_past_and_other_encodings_are_a_clear_error(tmp_path):
    text = '[{"object_id": 7, "acct_type": "premium", "name": "Caf\u00e9"}]'
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + text[1:-1].encode() + b"\n")
    assert dataset.load_labelled(tmp_path / "bom.json")[0]["name"] == "Café"
    assert dataset.read_raw(tmp_path / "bom.jsonl")[0]["object_id"] == 7
    (tmp_path / "latin.json").write_bytes(text.replace("\\u00e9", "\xe9").encode("latin-1"))
    with pytest.raises(dataset.DataError, match="not UTF-8"):
        dataset.read_raw(tmp_path / "latin.json")


def test_a_label_that_is_not_text_is_a_clear_error(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"object_id": 7, "acct_type": "premium"}, {"object_id": 8, "acct_type": 3}]')
    with pytest.raises(dataset.DataError, match="object_id 8.*'acct_type' 3, not text"):
        dataset.load_labelled(path)


def test_time_split_orders_creation_times_of_any_type():
    """A creation time as text, a list or missing is ordered, not a crash (text as its number)."""
    records = [{"object_id": 1, "event_created": "1330560000"}, {"object_id": 2, "event_created": 1330000000},
               {"object_id": 3, "event_created": [1]}, {"object_id": 4}, {"object_id": 5, "event_created": "soon"},
               {"object_id": 6, "event_created": 1340000000}, {"object_id": 7, "event_created": 10**400}]
    train, test = dataset.time_split(records, test_fraction=0.3)
    assert [r["object_id"] for r in train + test] == [3, 4, 5, 7, 2, 1, 6]


def test_clear_errors_for_missing_file_and_bad_zip(tmp_path):
    with pytest.raises(dataset.DataError, match="no data file"):
        dataset.read_raw(tmp_path / "absent.zip")
    with pytest.raises(dataset.DataError, match="does not contain data.json"):
        dataset.read_raw(_write_zip(tmp_path / "other.zip", "[]", member="other.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(dataset.DataError, match="not valid JSON"):
        dataset.read_raw(bad)
    obj = tmp_path / "obj.json"
    obj.write_text('{"object_id": 1}')
    with pytest.raises(dataset.DataError, match="JSON array"):
        dataset.read_raw(obj)


def test_time_split_orders_by_creation_and_never_overlaps():
    records = [{"object_id": i, "event_created": (i * 7919) % 1000} for i in range(1, 101)]
    train, test = dataset.time_split(records, test_fraction=0.2)
    assert len(test) == 20 and len(train) == 80
    assert max(r["event_created"] for r in train) <= min(r["event_created"] for r in test)
    assert not {r["object_id"] for r in train} & {r["object_id"] for r in test}


def test_normalise_keeps_real_values():
    record = dataset.normalise_record({"a": 0, "b": 0.0, "c": "x", "d": float("nan"), "e": [1, ""]})
    assert record == {"a": 0, "b": 0.0, "c": "x", "d": None, "e": [1, None]}
    assert not math.isnan(record["b"])


def test_hashes_are_stable(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(RAW)
    assert dataset.file_hash(path) == dataset.file_hash(path)
    assert dataset.records_hash([{"a": 1}]) != dataset.records_hash([{"a": 2}])
