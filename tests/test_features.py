"""Tests for features.py: every shape and every kind of junk featurizes; no label leaks in."""
import json
import math
import pickle
import re
from datetime import datetime, timezone

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import features
import synth


@pytest.fixture(scope="module")
def events():
    """600 synthetic 44-key events with their labels."""
    records = synth.generate_events(600, seed=11)
    return records, np.array(["fraud" in r["acct_type"] for r in records], dtype=int)


@pytest.fixture(scope="module")
def fitted(events):
    """A featurizer fitted on the synthetic events (small text models)."""
    records, y = events
    featurizer = features.EventFeaturizer(max_vocab=300, text_folds=3, min_category_count=5)
    featurizer.fit(records, y)
    return featurizer


def _column(featurizer, X, name):
    return X[:, list(featurizer.get_feature_names_out()).index(name)]


@pytest.mark.parametrize("shape", [36, 38, 43])
def test_live_shapes_give_the_same_features_as_training_shape(fitted, events, shape):
    records, _ = events
    train_rows = fitted.transform(records[:50])
    live_rows = fitted.transform([json.loads(json.dumps(synth.to_live(r, shape))) for r in records[:50]])
    assert live_rows.shape == train_rows.shape
    # Only the fields a shape drops may differ: listed (38, 36) and has_header (36).
    dropped = {36: {"listed", "has_header"}, 38: {"listed"}, 43: set()}[shape]
    for j, name in enumerate(fitted.get_feature_names_out()):
        if name not in dropped:
            np.testing.assert_array_equal(np.isnan(live_rows[:, j]), np.isnan(train_rows[:, j]), err_msg=name)
            np.testing.assert_allclose(np.nan_to_num(live_rows[:, j]), np.nan_to_num(train_rows[:, j]), err_msg=name)


JUNK = [
    {},
    None,
    "not a record",
    {key: None for key in synth.FIELDS},
    {key: float("nan") for key in synth.FIELDS},
    {key: "" for key in synth.FIELDS},
    {key: "???" for key in synth.FIELDS},
    {key: [] for key in synth.FIELDS},
    {key: {"a": 1} for key in synth.FIELDS},
    {"ticket_types": [None, 3, {"cost": "abc", "quantity_total": float("inf")}, {"cost": -5}],
     "previous_payouts": [None, {"created": 12}, {"created": "yesterday", "amount": "x"}],
     "event_created": float("inf"), "event_start": -1, "user_age": True, "channels": "8.0",
     "description": "<script>alert(1)</script>" * 5000, "name": 12345, "email_domain": "a@b@c"},
]


@pytest.mark.parametrize("record", JUNK, ids=range(len(JUNK)))
def test_junk_records_never_raise(fitted, record):
    X = fitted.transform([record])
    assert X.shape == (1, len(fitted.get_feature_names_out()))
    assert not np.isinf(X).any()


def test_numeric_strings_are_parsed_and_garbage_is_missing(fitted):
    X = fitted.transform([{"user_age": " 12 ", "org_facebook": "7.5", "org_twitter": "lots"}])
    assert _column(fitted, X, "user_age")[0] == 12
    assert _column(fitted, X, "org_facebook")[0] == 7.5
    assert math.isnan(_column(fitted, X, "org_twitter")[0])


def test_more_missing_fields_raise_the_missing_count(fitted, events):
    record = dict(events[0][0])
    before = _column(fitted, fitted.transform([record]), "n_missing")[0]
    record.update(venue_name=float("nan"), org_name="", payout_type=None)
    after = _column(fitted, fitted.transform([record]), "n_missing")[0]
    assert after >= before + 2  # org_name, venue_name at least (payout_type may already be "")


@pytest.mark.parametrize("record, expected", [
    ({"ticket_types": [{"cost": 10.0, "quantity_total": 5}, {"cost": 2.5, "quantity_total": 4}]}, 60.0),
    ({"ticket_types": [{"cost": "10", "quantity_total": "3"}]}, 30.0),
    ({"ticket_types": [{"cost": float("nan"), "quantity_total": 5}, {"cost": 4, "quantity_total": 1}]}, 4.0),
    ({"ticket_types": [{"cost": -10, "quantity_total": 5}]}, 0.0),
    ({"ticket_types": None}, 0.0),
    ({"ticket_types": "junk"}, 0.0),
    ({}, 0.0),
    (None, 0.0),
])
def test_money_at_stake(record, expected):
    assert features.money_at_stake(record) == expected


def test_only_payouts_dated_before_the_event_count():
    created = 1_350_000_000  # 2012-10-12
    record = {"event_created": created, "previous_payouts": [
        {"created": "2012-01-01 10:00:00", "amount": 100.0},
        {"created": "2012-10-11 23:59:59", "amount": 50.0},
        {"created": "2012-10-13 00:00:00", "amount": 999.0},
        {"created": "2013-05-01 00:00:00", "amount": 999.0},
        {"created": None, "amount": 5.0},
    ]}
    history = features.payout_history(record)
    assert history["prior_count"] == 2
    assert history["prior_total"] == 150.0
    assert 0 < history["days_since_last"] < 1
    assert history["later_count"] == 3


LEAKY_CHANGES = {
    "gts": 123456.0, "num_order": 500, "num_payouts": 40, "approx_payout_date": 2_000_000_000,
}


def test_leaky_fields_do_not_change_default_features(fitted, events):
    record = events[0][0]
    changed = dict(record, **LEAKY_CHANGES)
    changed["ticket_types"] = [dict(t, quantity_sold=99) for t in record["ticket_types"]]
    changed["previous_payouts"] = list(record["previous_payouts"]) + [
        {"created": "2030-01-01 00:00:00", "amount": 1e6}]
    np.testing.assert_array_equal(fitted.transform([record]), fitted.transform([changed]))
    leaky = features.EventFeaturizer(include_leaky=True, text=False).fit([record, changed])
    assert not np.array_equal(leaky.transform([record]), leaky.transform([changed]))
    assert not any(name.startswith("leaky_") for name in fitted.get_feature_names_out())


def test_text_scores_are_out_of_fold_during_fit_transform():
    """Pure-noise text: in-sample scores memorise the labels, out-of-fold scores cannot."""
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    words = ["".join(rng.choice(list("abcdefghijklmnop"), 10)) for _ in range(n)]
    # Each rare word appears in two random documents, so min_df keeps it and labels are noise.
    partner = rng.permutation(n)
    records = [{"description": f"{words[i]} {words[partner[i]]} common", "name": "event"} for i in range(n)]
    featurizer = features.EventFeaturizer(text_folds=5, stem=False)
    oof = _column(featurizer, featurizer.fit_transform(records, y), "text_description_score")
    in_sample = _column(featurizer, featurizer.transform(records), "text_description_score")
    assert roc_auc_score(y, in_sample) > 0.75
    assert roc_auc_score(y, oof) < 0.62


def test_text_scorer_matches_sklearn():
    docs = [["ticket", "party", "party"], ["music", "hall"], ["party", "cash"], ["hall", "music", "jazz"],
            ["cash", "cash", "now"], ["jazz", "hall"]] * 5
    y = np.array([1, 0, 1, 0, 1, 0] * 5)
    vectorizer = TfidfVectorizer(analyzer=features._identity, min_df=2, sublinear_tf=True)
    matrix = vectorizer.fit_transform(docs)
    classifier = LogisticRegression().fit(matrix, y)
    scorer = features.TextScorer(vectorizer, classifier)
    unseen = [["party", "jazz", "unknownword"], [], ["cash"]]
    expected = classifier.decision_function(vectorizer.transform(unseen))
    np.testing.assert_allclose([scorer.score(d) for d in unseen], expected, rtol=1e-9)


@pytest.mark.parametrize("use_stem", [True, False])
def test_text_scorer_fast_path_gives_the_same_number(use_stem):
    """score_text (count words first, stem each distinct word once) == score(tokens(text))."""
    texts = ["Party party PARTIES tonight, cash only!", "Jazz in the hall; music & jazz", "",
             "naïve café Fête — İstanbul ſtreet K", "x " * 3000 + "party " * 900, "cash " * 5]
    docs = [features.tokens(t, use_stem) for t in texts] * 3
    y = np.array([1, 0, 0, 1, 1, 0] * 3)
    vectorizer = TfidfVectorizer(analyzer=features._identity, min_df=1, sublinear_tf=True)
    scorer = features.TextScorer(vectorizer, LogisticRegression().fit(vectorizer.fit_transform(docs), y))
    for text in texts + ["unseen words only", "PARTY"]:
        for _ in range(2):  # the second call reads the word cache
            assert scorer.score_text(text, use_stem) == pytest.approx(
                scorer.score(features.tokens(text, use_stem)), rel=1e-12)
    assert "_word_index" not in pickle.loads(pickle.dumps(scorer)).__dict__  # the cache is not pickled


def test_fast_text_helpers_match_their_regex_definitions():
    """caps_share, whitespace collapsing and link counting, checked against the plain regexes."""
    samples = ["ABcd", "1234", "", "Ünïcödé UPPER lower", "\u00a0 a\u2003b\tC\n", "HTTP://X.Y www.Z https://q",
               "İSTANBUL ſ K wwww. http://www.x"]
    for text in samples:
        letters = len(re.findall(r"[A-Za-z]", text[:features.MAX_TEXT_CHARS]))
        upper = len(re.findall(r"[A-Z]", text[:features.MAX_TEXT_CHARS]))
        expected = upper / letters if letters else math.nan
        assert features.caps_share(text) == pytest.approx(expected, nan_ok=True)
        assert features.strip_html(text) == re.sub(r"\s+", " ", text).strip()
    assert features._links("", "HTTP://X.Y www.Z https://q") == 3.0
    assert features._links("<a href=x>1</a><A href=y>2</a>", "") == 2.0


TRICKY_TEXTS = ["Party party PARTIES tonight, cash only!", "", "a b c dd", "naïve café Fête — İstanbul ſtreet K",
                "x" * 5000, "word " * 900 + "tail", "ÀB cd\u00a0ef\tgh\n1a2bb3", "dON'T stop-me now_now",
                "\u212aelvin aİb"]  # the Kelvin sign and dotted İ lower-case into ASCII letters


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_tokens_are_the_words_of_the_word_regex(text):
    """The C-pass tokenizer finds exactly ``[a-z]{2,}`` in the lower-cased first MAX_TEXT_CHARS."""
    expected = re.findall(r"[a-z]{2,}", text[:features.MAX_TEXT_CHARS].lower())
    assert features.tokens(text, use_stem=False) == expected
    assert features.tokens(text) == [features.stem(w) for w in expected]


def test_text_scorer_gives_the_same_number_once_its_word_cache_is_full(monkeypatch):
    docs = [features.tokens(t) for t in TRICKY_TEXTS] * 2
    y = np.array([1, 0] * len(TRICKY_TEXTS))
    vectorizer = TfidfVectorizer(analyzer=features._identity, min_df=1, sublinear_tf=True)
    scorer = features.TextScorer(vectorizer, LogisticRegression().fit(vectorizer.fit_transform(docs), y))
    monkeypatch.setattr(features.TextScorer, "MAX_REMEMBERED_WORDS", 30)
    for text in TRICKY_TEXTS + ["party tonight unseen words", "PARTY"]:
        assert scorer.score_text(text) == scorer.score(features.tokens(text))
    assert len(scorer._word_index) <= 30


def test_long_words_and_values_are_looked_up_each_time_not_remembered(events):
    """Hostile made-up words and category values cannot fill a process's memory."""
    docs = [features.tokens(t) for t in TRICKY_TEXTS] * 2
    y = np.array([1, 0] * len(TRICKY_TEXTS))
    vectorizer = TfidfVectorizer(analyzer=features._identity, min_df=1, sublinear_tf=True)
    scorer = features.TextScorer(vectorizer, LogisticRegression().fit(vectorizer.fit_transform(docs), y))
    long_word = "party" * 20
    text = f"party tonight {long_word} cash {long_word}"
    for _ in range(2):
        assert scorer.score_text(text) == scorer.score(features.tokens(text))
    assert b"party" in scorer._word_index and long_word.encode() not in scorer._word_index

    records, labels = events
    featurizer = features.EventFeaturizer(text=False, min_category_count=5).fit(records, labels)
    for value in ("Z" * 41, 10**30, 2.5, None, "USD"):
        assert featurizer._one_hot("currency", value) == featurizer._encode("currency", value)
    remembered = featurizer._one_hot_rows["currency"]
    assert "USD" in remembered and "Z" * 41 not in remembered and 10**30 not in remembered


def test_missing_values_are_counted_by_the_missing_rule():
    values = [None, "", float("nan"), np.float64("nan"), 0, 0.0, " ", "x", [], {}, False, math.inf]
    assert features._count_missing(values) == sum(features._missing(v) for v in values) == 4


def test_payout_dates_are_read_with_and_without_a_time():
    def strptime(text, fmt):
        return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
    assert features._timestamp("2012-10-11 23:59:59") == strptime("2012-10-11 23:59:59", "%Y-%m-%d %H:%M:%S")
    assert features._timestamp("2012-10-11") == strptime("2012-10-11", "%Y-%m-%d")
    assert features._timestamp("2012-10-11 junk") == strptime("2012-10-11", "%Y-%m-%d")
    assert math.isnan(features._timestamp("2012-13-45 00:00:00"))


def test_one_hot_rows_are_remembered_per_fit_and_not_pickled(events):
    """Remembered one-hot rows equal fresh encodings, are not pickled, and are dropped by a refit."""
    records, y = events
    featurizer = features.EventFeaturizer(text=False, min_category_count=5).fit(records, y)
    before = featurizer.transform(records)
    assert featurizer._one_hot_rows  # the rows were remembered
    for field in features.CATEGORICAL_FIELDS:
        for value in {r.get(field) for r in records if isinstance(r.get(field), (str, int))}:
            assert featurizer._one_hot(field, value) == featurizer._encode(field, value)
    np.testing.assert_array_equal(featurizer.transform(records), before)
    assert "_one_hot_rows" not in pickle.loads(pickle.dumps(featurizer)).__dict__
    assert featurizer._one_hot_rows  # pickling left the running featurizer's rows alone
    featurizer.fit([dict(r, currency="ZZZ") for r in records] * 5, np.tile(y, 5))
    assert [n for n in featurizer.get_feature_names_out() if n.startswith("currency=")] == [
        "currency=ZZZ", "currency=other", "currency=missing"]
    assert featurizer._one_hot("currency", "ZZZ") == (1.0, 0.0, 0.0)
    assert featurizer._one_hot("currency", records[0]["currency"]) == (0.0, 1.0, 0.0)  # now "other"


def test_html_is_stripped_for_features():
    text = features.strip_html("<p style='x'>Hello&nbsp;&amp; <b>WORLD</b></p><script>var a='<p>';</script>\r\n")
    assert text == "Hello & WORLD"  # &nbsp; becomes an ordinary space
    assert features.caps_share("ABcd") == 0.5
    assert math.isnan(features.caps_share("1234"))


def test_script_and_tag_removal_is_the_regular_expressions_in_linear_time():
    """strip_html drops script/style blocks and tags exactly as the plain regular expressions do
    (tag names ignoring case in ASCII), and hostile text that made them take time in the square
    of its length (every opening tag looking to the end for a closing one) costs little."""
    import html
    import random
    import time

    blocks = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)  # as it was
    tags = re.compile(r"<[^>]*>")
    pieces = ["<script>", "</script>", "<SCRIPT a='>'>", "</Script >", "<style>", "</style\n>", "</STYLE>",
              "<scripts>", "</scripts>", "<style", "<script", "</script", "</", "<", ">", "x", " ", "&amp;",
              "<b>", "\t", "é", "\u3000", "\u00a0", "</sTyLe\u2003>", "<scriptè>", "<style_x>", "Ω"]
    rng = random.Random(11)
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert features._drop_scripts(text) == blocks.sub(" ", text), repr(text)
        assert features._drop_tags(text) == tags.sub(" ", text), repr(text)
        assert features.strip_html(text) == " ".join(html.unescape(tags.sub(" ", blocks.sub(" ", text))).split())
    # The one difference: tag names ignore case in ASCII only, as browsers read them (Unicode
    # case-insensitive matching took the long s of '<ſcript>' for an 's').
    assert features._drop_scripts("<ſcript>x</ſcript>") == "<ſcript>x</ſcript>"
    assert blocks.sub(" ", "<ſcript>x</ſcript>") == " "
    # 2 MB of hostile text (uncut, so the square would be 10^12 steps: hours); linear: milliseconds
    for hostile in ("<script>" * 250_000, "<script " * 250_000, "<style><script>" * 130_000 + "</style>",
                    "</style>" + "<style>" * 280_000, "<" * 2_000_000):
        started = time.perf_counter()
        features._drop_tags(features._drop_scripts(hostile))
        assert time.perf_counter() - started < 5, hostile[:20]


def test_style_features_read_name_and_description(fitted):
    X = fitted.transform([{"name": "FREE TICKETS NOW", "description": '<a href="http://x">a</a> see www.y.com'}])
    assert _column(fitted, X, "name_caps_share")[0] == 1.0
    assert _column(fitted, X, "name_words")[0] == 3
    assert _column(fitted, X, "desc_links")[0] >= 1


def test_email_domain_classes(fitted):
    known = next(iter(sorted(fitted.known_domains_)), None)
    if known is None:
        pytest.skip("no repeated company domain in the sample")
    rows = fitted.transform([{"email_domain": "gmail.com"}, {"email_domain": known},
                             {"email_domain": "never-seen-before.example"}, {"email_domain": None}])
    block = rows[:, [list(fitted.get_feature_names_out()).index(n) for n in
                     ("email_freemail", "email_known", "email_other", "email_missing")]]
    np.testing.assert_array_equal(block, np.eye(4))


def test_training_rows_read_a_known_domain_as_new_events_do():
    """A domain is "known" to a new event when training saw it twice. A training row must not
    count itself: it is "known" only when two *other* rows have its domain."""
    records = ([{"email_domain": "twice.example"}] * 2 + [{"email_domain": "thrice.example"}] * 3
               + [{"email_domain": "once.example"}, {"email_domain": "gmail.com"}])
    featurizer = features.EventFeaturizer(text=False)
    X = featurizer.fit_transform(records)
    names = list(featurizer.get_feature_names_out())
    known, other = X[:, names.index("email_known")], X[:, names.index("email_other")]
    assert known.tolist() == [0, 0, 1, 1, 1, 0, 0] and other.tolist() == [1, 1, 0, 0, 0, 1, 0]
    served = featurizer.transform(records)  # a new event with either domain: training saw it twice
    assert served[:5, names.index("email_known")].tolist() == [1] * 5
    assert featurizer.known_domains_ == {"twice.example", "thrice.example"}


def test_names_descriptions_and_groups_cover_every_column(fitted):
    names = list(fitted.get_feature_names_out())
    assert len(names) == fitted.transform([{}]).shape[1]
    for name in names:
        assert features.describe_feature(name) != name, name
    grouped = sorted(i for cols in fitted.feature_groups().values() for i in cols)
    assert grouped == list(range(len(names)))


def test_featurizer_is_a_cloneable_sklearn_transformer():
    featurizer = features.EventFeaturizer(include_leaky=True, max_vocab=100)
    copy = clone(featurizer)
    assert copy.get_params() == featurizer.get_params()


def test_without_labels_text_scores_are_zero(events):
    records, _ = events
    featurizer = features.EventFeaturizer().fit(records[:50])
    X = featurizer.transform(records[:5])
    assert (_column(featurizer, X, "text_description_score") == 0).all()


def test_reason_phrases_use_the_records_values():
    values = {"user_age": 12.0, "prior_payouts_count": 0.0, "prior_payouts_total": 0.0,
              "days_since_last_payout": float("nan"), "body_length": 0.0, "desc_text_length": 0.0}
    assert features.phrase_reason("user_age", values, {}, up=True) == "account created 12 days before the event"
    assert features.phrase_reason("user_age", {"user_age": 0.0}, {}, up=True) == \
        "account created the same day as the event"
    assert features.phrase_reason("prior_payouts", values, {}, up=True) == "no payout history before the event"
    assert features.phrase_reason("description_length", values, {}, up=True) == "empty description"
    assert features.phrase_reason("country_mismatch", {}, {"country": "GB", "venue_country": "US"}, up=True) == \
        "organiser country GB differs from venue country US"


def test_raw_live_records_featurize_like_normalised_ones(fitted):
    """predict.score_records hands records to the model as received; that is only safe while the
    featurizer reads NaN, None and "" exactly as dataset.normalise_record would."""
    import dataset

    live = [synth.to_live(r, shape=shape) for shape in (43, 38, 36) for r in synth.generate_events(300, seed=21)]
    raw = fitted.transform(live)
    normalised = fitted.transform([dataset.normalise_record(r) for r in live])
    np.testing.assert_array_equal(raw, normalised)


def test_reasons_state_amounts_in_the_events_own_currency():
    """A GBP event's reasons say GBP, not "$"; without a currency code the bare number."""
    values = {"money_at_stake": 19350.0, "price_min": 12.0, "price_max": 40.5}
    assert features.phrase_reason("money_at_stake", values, {"currency": "GBP"}, up=True) == \
        "19,350 GBP of tickets at stake"
    assert features.phrase_reason("ticket_prices", values, {"currency": "aud"}, up=True) == \
        "ticket prices 12.00 to 40.50 AUD"
    for record in ({}, {"currency": None}, {"currency": "<b>"}, {"currency": 5}):
        assert features.phrase_reason("money_at_stake", values, record, up=True) == "19,350 of tickets at stake"
    assert features.phrase_reason("money_at_stake", {"money_at_stake": 0.0}, {}, up=False) == \
        "no priced tickets on offer"  # not "0 of tickets at stake"


def test_reasons_count_characters_in_good_english():
    assert features.phrase_reason("name_style", {"name_length": 1.0, "name_caps_share": 0.0}, {}, up=True) \
        .startswith("event name of 1 character")
    assert "of 1 character" not in features.phrase_reason(
        "name_style", {"name_length": 12.0, "name_caps_share": 0.0}, {}, up=True)
