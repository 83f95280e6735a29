"""eda.py: the report names its source, its plots are real PNGs, its written numbers match the data."""
import json
import math
import re

import pytest

import dataset
import eda

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N_EVENTS = 1500
SEED = 3


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory):
    """One small synthetic report shared by the tests of this module (building it takes seconds)."""
    records, label = eda.load_records(None, n=N_EVENTS, seed=SEED)
    out = tmp_path_factory.mktemp("eda")
    report = eda.build_report(records, label, out)
    return report, report.read_text(encoding="utf-8"), records


def _section(text, heading):
    """The text of one '## heading' section of the report."""
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def _fraud_rate(records, keep=lambda r: True):
    chosen = [r for r in records if keep(r)]
    return sum(dataset.is_fraud(r["acct_type"]) for r in chosen) / len(chosen)


def test_report_exists_and_names_the_synthetic_source(synthetic_report):
    report, text, _ = synthetic_report
    assert report.name == "eda.md" and report.is_file()
    source = next(line for line in text.splitlines() if line.startswith("**Source:**"))
    assert "synthetic" in source and f"n={N_EVENTS}, seed={SEED}" in source
    assert "CONFIDENTIAL" not in text  # synthetic data is not the client's


def test_every_referenced_plot_is_a_real_png_and_none_is_orphaned(synthetic_report):
    report, text, _ = synthetic_report
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) >= 15  # class counts, acct_type, numeric, flags, categories, year, missing
    for image in images:
        path = report.parent / image
        assert path.is_file(), image
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 2000, image
    on_disk = {p.name for p in (report.parent / eda.PLOT_DIR_NAME).glob("*.png")}
    assert on_disk == {image.split("/")[-1] for image in images}
    for expected in ("class_counts.png", "acct_type.png", "num_user_age.png", "flags.png", "missing.png"):
        assert expected in on_disk


def test_written_overall_fraud_rate_matches_the_data(synthetic_report):
    _, text, records = synthetic_report
    reading = _section(text, "What the data says")
    match = re.search(r"Overall fraud rate: ([\d.]+)% \(([\d,]+) of ([\d,]+) events\)", reading)
    assert match, "the reading must state the overall fraud rate"
    n_fraud = sum(dataset.is_fraud(r["acct_type"]) for r in records)
    assert int(match.group(2).replace(",", "")) == n_fraud
    assert int(match.group(3).replace(",", "")) == len(records) == N_EVENTS
    assert float(match.group(1)) == pytest.approx(100 * n_fraud / len(records), abs=0.006)


def test_written_user_age_rates_match_the_data(synthetic_report):
    _, text, records = synthetic_report
    match = re.search(r"fraud rate is ([\d.]+)% when user_age == 0 \(([\d,]+) events\) vs ([\d.]+)% otherwise", text)
    assert match
    new = lambda r: r.get("user_age") == 0  # noqa: E731
    known_old = lambda r: r.get("user_age") is not None and r["user_age"] != 0  # noqa: E731
    assert int(match.group(2).replace(",", "")) == sum(1 for r in records if new(r))
    assert float(match.group(1)) == pytest.approx(100 * _fraud_rate(records, new), abs=0.051)
    assert float(match.group(3)) == pytest.approx(100 * _fraud_rate(records, known_old), abs=0.051)


def test_missing_values_table_lists_every_field_with_true_counts(synthetic_report):
    _, text, records = synthetic_report
    section = _section(text, "Missing values per field")
    rows = dict(re.findall(r"^\| `([a-z_0-9]+)` \| ([\d,]+) \|", section, flags=re.M))
    fields = {key for record in records for key in record} - {"fraud"}
    assert len(fields) == 44 and set(rows) == fields
    for field in ("has_header", "delivery_method", "venue_name", "org_facebook", "object_id"):
        assert int(rows[field].replace(",", "")) == sum(1 for r in records if dataset.is_missing(r.get(field)))
    assert int(rows["has_header"].replace(",", "")) > 0  # the generator leaves has_header missing often


def test_report_holds_aggregates_not_raw_records(synthetic_report):
    _, text, records = synthetic_report
    checked = 0
    for record in records:
        if record["object_id"] >= 100_000:  # ids are ~500k-8M; smaller numbers could be coincidences
            checked += 1
            assert not re.search(rf"(?<![\d,.]){record['object_id']}(?![\d,.])", text)
        name = record.get("name")
        if isinstance(name, str) and len(name) >= 15:
            assert name not in text
        email = record.get("email_domain")
        if isinstance(email, str) and email not in ("gmail.com", "yahoo.com", "hotmail.com"):
            assert email not in text
    assert checked > 0


def test_small_categories_are_pooled_so_no_cell_exposes_single_events(synthetic_report):
    _, _, records = synthetic_report
    frame = eda.analysis_frame(records)
    for column in eda.CATEGORY_FEATURES:
        table = eda.category_rates(frame, column)
        named = table.drop(index=[eda.OTHER], errors="ignore")
        assert (named["events"] >= eda.MIN_CELL).all(), column
        assert int(table["events"].sum()) == len(records)


def test_explicit_data_file_is_used_named_and_flagged_confidential(tmp_path, capsys):
    import synth

    path = tmp_path / "small.json"
    path.write_text(json.dumps(synth.generate_events(n=400, seed=11)), encoding="utf-8")
    out = tmp_path / "out"
    assert eda.main(["--data", str(path), "--out", str(out)]) == 0
    text = (out / "eda.md").read_text(encoding="utf-8")
    source = next(line for line in text.splitlines() if line.startswith("**Source:**"))
    assert f"data file `{path}`" in source and "400 labelled events" in source
    assert "synthetic" not in source
    assert "CONFIDENTIAL" in text
    captured = capsys.readouterr()
    assert "WARNING" in captured.err and "confidential" in captured.err


def test_missing_data_file_is_a_clear_error(tmp_path, capsys):
    assert eda.main(["--data", str(tmp_path / "absent.json"), "--out", str(tmp_path / "out")]) == 2
    assert "no data file" in capsys.readouterr().err
    assert not (tmp_path / "out" / "eda.md").exists()


def test_default_source_is_the_data_file_only_when_present(tmp_path):
    absent = tmp_path / "data.zip"
    assert eda.resolve_data_path(None, default_path=absent) is None
    absent.write_bytes(b"")
    assert eda.resolve_data_path(None, default_path=absent) == absent
    assert eda.resolve_data_path(str(absent), default_path=tmp_path / "other.zip") == absent


@pytest.mark.parametrize("a, b, word", [(5, 30, "sooner"), (30, 5, "later"), (10, 10.1, "about the same as"),
                                        (None, 3, "not comparable with")])
def test_compare_picks_the_word_the_numbers_support(a, b, word):
    assert eda.compare(a, b, "later", "sooner") == word


@pytest.mark.parametrize("value, text", [(None, "n/a"), (0.0902, "9.0%"), (1.0, "100.0%")])
def test_pct_formats_shares(value, text):
    assert eda.pct(value) == text


def test_prior_payouts_count_only_entries_before_the_event():
    record = {"event_created": 1_300_000_000,  # 2011-03-13
              "previous_payouts": [{"created": "2011-01-01 00:00:00"}, {"created": "2012-01-01 00:00:00"},
                                   {"created": None}]}
    assert eda.prior_payout_count(record) == 1
    assert math.isnan(eda.prior_payout_count({"event_created": 1, "previous_payouts": None}))  # unknown


def test_tiny_groups_are_pooled_and_their_fraud_figures_hidden():
    import pandas as pd

    frame = pd.DataFrame({"channel": ["a"] * 20 + ["b"] * 3, "fraud": [False] * 19 + [True] + [True] * 3})
    table = eda.category_rates(frame, "channel")
    assert list(table.index) == ["a", eda.OTHER]
    assert table.loc["a", "fraud_rate"] == pytest.approx(0.05)
    assert table.loc[eda.OTHER, "events"] == 3 and math.isnan(table.loc[eda.OTHER, "fraud_rate"])
    assert eda.rate_where(frame, frame["channel"] == "b") == (None, 3)


def test_an_infinite_value_ranks_as_the_largest_not_a_crash():
    import pandas as pd

    frame = pd.DataFrame({"money": [1.0, 2.0, 3.0, float("inf"), 0.5], "fraud": [False, False, True, True, False]})
    auc, direction, known = eda.single_feature_auc(frame, "money")
    assert known == 5 and auc == 1.0 and direction == "higher means more fraud"
