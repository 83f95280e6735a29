"""Train, compare, tune and calibrate the fraud model; choose risk tiers from cost; save it.

``python model.py`` trains the artifact: one scikit-learn Pipeline (EventFeaturizer ->
calibrated HistGradientBoostingClassifier) wrapped in :class:`FraudModel` with its metadata,
saved as models/model.pkl plus models/model.json. ``python model.py --compare`` writes
reports/model_comparison.md (two baselines, nine models, tuning, calibration, cost, tiers); built
from a data file or analyst labels it goes to reports/confidential/ instead, as eda.py's does.

Evaluation protocol, in one place: records are split by time (dataset.time_split): the latest
20 % of events are the test split, touched only for the final numbers. Inside the training
portion the latest 20 % are the validation slice on which cuts and tier thresholds are chosen
(by a model fitted on the earlier 80 %); stratified K-fold CV over the training portion
compares models. The saved model is fitted on the whole training portion, so its test
metrics are honest out-of-time numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import struct
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version as package_version
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController, threadpool_limits

import dataset
import exchange
import features

ARTIFACT_FORMAT = "fraud-triage-model/1"
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "model.pkl"  # the service's, from any directory
DEFAULT_REPORT_PATH = Path("reports/model_comparison.md")
SYNTHETIC_SIZE = 14337
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.2

# Chosen by the randomized search that `python model.py --compare` runs and reports
# (reports/model_comparison.md, "Tuning"): its best draw, rounded, on the synthetic data (seed 0).
# Copied here so that default training stays fast and deterministic.
HGB_PARAMS = {
    "learning_rate": 0.073,
    "max_iter": 200,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.77,
    "max_features": 0.8,
}
# Small and quick, for tests and smoke runs (train(..., quick=True)).
QUICK_HGB_PARAMS = {"learning_rate": 0.15, "max_iter": 60, "max_leaf_nodes": 15,
                    "min_samples_leaf": 20}
# Platt scaling keeps the ranking (AUC/AP) of the boosted trees exactly and smooths the
# probabilities; one calibrator over out-of-fold scores (ensemble=False) keeps prediction to a
# single model. Isotonic is compared in the report.
CALIBRATION_METHOD = "sigmoid"
CALIBRATION_FOLDS = 5
# Smallest change in log-odds worth naming as a reason (0.05 ~ a 5 % relative change in odds).
MIN_REASON_DELTA = 0.05
# A threshold no probability reaches (a tier that holds nothing); finite, so JSON can hold it.
NOTHING = float(np.nextafter(1.0, 2.0))
# The high tier must hold at least this many validation events to be trusted.
MIN_HIGH_EVENTS = 5
LIBRARIES = {"sklearn": "scikit-learn", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas"}


class ModelLoadError(RuntimeError):
    """The model artifact is missing, corrupt, or was built with other library versions."""


# ---------------------------------------------------------------- cost model

def _env_float(name: str, default: float) -> float:
    """A float from the environment, with a clear message when it is not one."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw.strip().rstrip("%")) / (100.0 if raw.strip().endswith("%") else 1.0)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class CostModel:
    """Money and capacity behind every cut: a review costs money, a missed fraud its stake."""

    review_cost: float = 15.0      # dollars per analyst review (REVIEW_COST)
    capacity: float = 0.10         # share of events analysts can review (REVIEW_CAPACITY)
    # Precision of the high tier, reviewed first and at once (an analyst may hold the payout while
    # checking; the model holds nothing): at 0.9, one event in ten there is an honest organiser's.
    high_precision: float = 0.90

    def __post_init__(self):
        """Values a cut can be chosen with, or a ValueError naming the setting."""
        checks = (("REVIEW_COST", self.review_cost, 0.0 <= self.review_cost < math.inf,
                   "dollars per review, 0 or more"),
                  ("REVIEW_CAPACITY", self.capacity, 0.0 < self.capacity <= 1.0,
                   "the share of events analysts can review, above 0 and at most 1 (or 100%)"),
                  ("HIGH_TIER_PRECISION", self.high_precision, 0.0 < self.high_precision <= 1.0,
                   "a share above 0 and at most 1 (or 100%)"))
        for name, value, good, wanted in checks:
            if not good:  # NaN fails every comparison
                raise ValueError(f"{name}={value!r} cannot be used: it must be {wanted}")

    @classmethod
    def from_env(cls) -> "CostModel":
        """REVIEW_COST, REVIEW_CAPACITY (share or percent) and HIGH_TIER_PRECISION, else defaults."""
        return cls(
            review_cost=_env_float("REVIEW_COST", cls.review_cost),
            capacity=_env_float("REVIEW_CAPACITY", cls.capacity),
            high_precision=_env_float("HIGH_TIER_PRECISION", cls.high_precision),
        )

    def review_slots(self, n_events: int) -> int:
        """k: how many of n events the analysts can review (the 'top k' of the metrics)."""
        return max(1, int(round(self.capacity * n_events)))


def expected_cost(y, flagged, money, review_cost: float) -> float:
    """Money lost at a cut: every flagged event costs a review, every missed fraud its stake."""
    y, flagged = np.asarray(y, bool), np.asarray(flagged, bool)
    return float(review_cost * flagged.sum() + np.asarray(money, float)[y & ~flagged].sum())


def _cut_value(ordered_p: np.ndarray, j: int) -> float:
    """The threshold that flags exactly the top j of the descending scores."""
    if j <= 0:  # flag nothing, whatever the scores of new data: just above any probability
        return NOTHING
    if j >= len(ordered_p):
        return float(ordered_p[-1])
    return float((ordered_p[j - 1] + ordered_p[j]) / 2)


def choose_thresholds(y, p, money, cost: CostModel) -> tuple[dict, dict]:
    """Tier thresholds from validation scores: cost-optimal review cut, high-precision band.

    medium: the cut with the least expected cost (reviews + missed fraud money) among cuts
    that flag no more than the review capacity. high: the lowest cut above it whose flagged
    events reach the target precision (so they can be acted on at once). Returns the
    thresholds and the figures that justify them.
    """
    y, p, money = np.asarray(y, bool), np.asarray(p, float), np.asarray(money, float)
    order = np.argsort(-p, kind="stable")
    ps, ys, ms = p[order], y[order], money[order]
    n = len(ps)
    j = np.arange(n + 1)
    caught_money = np.concatenate([[0.0], np.cumsum(np.where(ys, ms, 0.0))])
    caught = np.concatenate([[0], np.cumsum(ys)])
    fraud_money = caught_money[-1]
    costs = cost.review_cost * j + (fraud_money - caught_money)
    boundary = np.ones(n + 1, bool)
    boundary[1:n] = ps[:-1] > ps[1:]  # a cut can only fall between two different scores
    within = boundary & (j <= math.floor(cost.capacity * n))
    best = int(j[within][np.argmin(costs[within])])
    free_best = int(j[boundary][np.argmin(costs[boundary])])
    precision = caught / np.maximum(j, 1)
    good = boundary & (j >= MIN_HIGH_EVENTS) & (j <= best) & (precision >= cost.high_precision)
    high_j = int(j[good].max()) if good.any() else 0
    thresholds = {"medium": _cut_value(ps, best), "high": _cut_value(ps, high_j)}
    share = (lambda a, b: float(a / b) if b else 0.0)
    selection = {
        "validation_events": n,
        "validation_fraud": int(caught[-1]),
        "flagged_at_medium": best,
        "share_flagged_at_medium": share(best, n),
        "fraud_share_reviewed": share(caught[best], caught[-1]),
        "fraud_money_share_unreviewed": share(fraud_money - caught_money[best], fraud_money),
        "expected_cost_at_medium": float(costs[best]),
        "expected_cost_review_nothing": float(costs[0]),
        "unconstrained_best_share_flagged": share(free_best, n),
        "unconstrained_best_cost": float(costs[free_best]),
        "capacity_binds": bool(free_best > best),
        "events_high": high_j,
        "precision_high": float(precision[high_j]) if high_j else None,
    }
    return thresholds, selection


def risk_tier(p: float, thresholds: dict) -> str:
    """'high' if p >= thresholds['high'], 'medium' if p >= thresholds['medium'], else 'low'.

    A probability that is not a number is 'medium': an unknown score goes to a person.
    """
    if p != p:
        return "medium"
    if p >= thresholds["high"]:
        return "high"
    return "medium" if p >= thresholds["medium"] else "low"


# ---------------------------------------------------------------- metrics

def _safe(metric, y, p) -> float | None:
    """A ranking metric, or None when the labels hold one class only."""
    return float(metric(y, p)) if 0 < np.sum(y) < len(y) else None


def evaluate(y, p, money, cut: float, cost: CostModel) -> dict:
    """Ranking, calibration, cut, top-k and money metrics of scores p against labels y."""
    y, p, money = np.asarray(y, bool), np.asarray(p, float), np.asarray(money, float)
    flagged = p >= cut
    k = cost.review_slots(len(y))
    top = np.zeros(len(y), bool)
    top[np.argsort(-p, kind="stable")[:k]] = True
    tp = int((flagged & y).sum())
    precision = tp / flagged.sum() if flagged.any() else 0.0
    recall = tp / y.sum() if y.any() else 0.0
    fraud_money = float(money[y].sum())
    cost_at_cut = expected_cost(y, flagged, money, cost.review_cost)
    return {
        "events": int(len(y)),
        "fraud": int(y.sum()),
        "roc_auc": _safe(roc_auc_score, y, p),
        "average_precision": _safe(average_precision_score, y, p),
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
        "cut": float(cut),
        "flagged": int(flagged.sum()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "top_k": k,
        "precision_at_k": float((top & y).sum() / k),
        "recall_at_k": float((top & y).sum() / y.sum()) if y.any() else 0.0,
        "fraud_money": fraud_money,
        "expected_cost": cost_at_cut,
        "expected_cost_top_k": expected_cost(y, top, money, cost.review_cost),
        "cost_review_nothing": fraud_money,
        "fraud_money_share_caught": float(money[y & flagged].sum() / fraud_money) if fraud_money else 0.0,
        "fraud_money_share_caught_at_k": float(money[y & top].sum() / fraud_money) if fraud_money else 0.0,
    }


def bootstrap_intervals(y, p, money, thresholds: dict, cost: CostModel, draws: int = 1000,
                        seed: int = 0) -> dict:
    """95 % intervals (2.5th and 97.5th percentiles over ``draws`` resamples of the events, with
    replacement) of the figures a reader would quote: average precision, recall and fraud money
    caught when reviewing the top k, and the share of the high tier that is fraud."""
    y, p, money = np.asarray(y, bool), np.asarray(p, float), np.asarray(money, float)
    rng = np.random.default_rng(seed)
    samples = {"average_precision": [], "recall_at_k": [], "fraud_money_share_caught_at_k": [],
               "precision_high": []}
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        if not 0 < y[i].sum() < len(i):
            continue
        m = evaluate(y[i], p[i], money[i], thresholds["high"], cost)  # at the high cut: its precision is the tier's
        for name in ("average_precision", "recall_at_k", "fraud_money_share_caught_at_k"):
            samples[name].append(m[name])
        if m["flagged"]:
            samples["precision_high"].append(m["precision"])
    return {name: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v else None
            for name, v in samples.items()}


# Probability bands the calibration table reports: where most events sit, then up to each tier.
CALIBRATION_BANDS = (0.0, 0.02, 0.05, 0.1, 0.2)


def calibration_bands(y, p, thresholds: dict) -> list[dict]:
    """Predicted against observed fraud share by band of probability (the last two bands are the
    medium and high tiers), each with a 95 % Wilson interval for the observed share."""
    y, p = np.asarray(y, bool), np.asarray(p, float)
    edges = [e for e in CALIBRATION_BANDS if e < thresholds["medium"]] + [thresholds["medium"], thresholds["high"], 1.0]
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (p >= low) & ((p < high) if high < 1.0 else (p <= 1.0))
        n = int(inside.sum())
        if n == 0 and low == high:
            continue
        rows.append({"band": [float(low), float(high)], "events": n,  # None (JSON null) when empty
                     "predicted": float(p[inside].mean()) if n else None,
                     "observed": float(y[inside].mean()) if n else None,
                     "observed_interval": list(_wilson(int(y[inside].sum()), n)) if n else None})
    return rows


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion of n > 0 trials."""
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sold_usd(records: list[dict]) -> float:
    """Gross ticket sales (gts, known only afterwards) of records, in US dollars; missing as 0."""
    total = 0.0
    for record in records:
        gts = features.to_float(record.get("gts"))
        total += exchange.to_usd(gts, record.get("currency")) if gts > 0 else 0.0
    return total


def tier_table(y, p, money, thresholds: dict, review_cost: float) -> list[dict]:
    """Per tier: events, fraud and fraud money it holds (counts and shares), review cost."""
    y, money = np.asarray(y, bool), np.asarray(money, float)
    tiers = np.array([risk_tier(float(v), thresholds) for v in p])
    total_fraud, total_money = max(int(y.sum()), 1), float(money[y].sum()) or 1.0
    rows = []
    for name in ("high", "medium", "low"):
        inside = tiers == name
        rows.append({
            "tier": name,
            "events": int(inside.sum()),
            "share_events": float(inside.mean()) if len(y) else 0.0,
            "fraud": int((inside & y).sum()),
            "share_fraud": float((inside & y).sum() / total_fraud),
            "fraud_rate": float((inside & y).sum() / inside.sum()) if inside.any() else 0.0,
            "fraud_money": float(money[inside & y].sum()),
            "share_fraud_money": float(money[inside & y].sum() / total_money),
            "review_cost": float(review_cost * inside.sum()),
        })
    return rows


# ---------------------------------------------------------------- labels and data

def labels_of(records: list[dict]) -> np.ndarray:
    """The fraud label of each record: its 'fraud' flag (analyst labels) else from acct_type."""
    out = np.zeros(len(records), bool)
    for i, record in enumerate(records):
        flag = record.get("fraud")
        if isinstance(flag, (bool, np.bool_)):
            out[i] = bool(flag)
        elif record.get(dataset.LABEL_FIELD) is not None:
            out[i] = dataset.is_fraud(record[dataset.LABEL_FIELD])
        else:
            raise dataset.DataError(
                f"record {i} (object_id {record.get('object_id')}) has neither 'fraud' nor "
                f"'{dataset.LABEL_FIELD}': training needs labelled records")
    return out


def merge_analyst_labels(records: list[dict], labels: list[dict]) -> tuple[int, int]:
    """Let analyst decisions label training data: labels are [{object_id, fraud: bool, event?}].

    A label for a record in the data overrides its label. A label for an event the data does not
    hold adds that event, when the label carries it (``event``: the raw record, as
    ``flask export-labels`` writes it), so decisions on live events become training and test
    data; without it the label is ignored (a label without the event's fields teaches nothing).
    Changed and added records get label_source='analyst'. Returns (overridden, added); changes
    ``records`` in place. Used by ``python model.py --labels PATH``.
    """
    decided = {}
    for i, label in enumerate(labels):
        if not isinstance(label, dict) or not isinstance(label.get("fraud"), bool):
            raise dataset.DataError(f"label {i} must be an object with a boolean 'fraud'")
        key = features.to_float(label.get("object_id"))
        if math.isnan(key):
            raise dataset.DataError(f"label {i} has no usable object_id")
        if "event" in label and not isinstance(label["event"], dict):
            raise dataset.DataError(f"label {i}: 'event' must be the event's fields as an object")
        decided[int(key)] = label
    overridden, found = 0, set()
    for record in records:  # every copy of a repeated id in the data
        key = features.to_float(record.get("object_id"))
        if not math.isnan(key) and int(key) in decided:
            record["fraud"] = decided[int(key)]["fraud"]
            record["label_source"] = "analyst"
            found.add(int(key))
            overridden += 1
    added = [{**label["event"], "object_id": key, "fraud": label["fraud"], "label_source": "analyst"}
             for key, label in decided.items() if key not in found and label.get("event")]
    records.extend(added)
    return overridden, len(added)


def _analyst_labels_placement(records: list[dict]) -> str:
    """Where the analyst-labelled records fall in the time split: the split is by event_created,
    so labels on events newer than the data are all in the test split (evaluated on, not trained
    on) until newer events follow them at a later retrain."""
    train_part, test_part = dataset.time_split(records, TEST_FRACTION)
    trained = sum(r.get("label_source") == "analyst" for r in train_part)
    tested = sum(r.get("label_source") == "analyst" for r in test_part)
    text = (f"analyst labels in the time split: {trained} in the training portion, {tested} in the test "
            f"split (the latest {TEST_FRACTION:.0%} of events)")
    if tested and not trained:
        text += ("; none trains this model: they are newer than the data, so they measure it. They "
                 "train a later model once newer events follow them")
    return text


def read_labels(path: str | Path) -> list[dict]:
    """Analyst labels from a JSON file holding a list of {object_id, fraud}."""
    try:
        parsed = json.loads(Path(path).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise dataset.DataError(f"cannot read labels from {path}: {exc}") from exc
    if not isinstance(parsed, list):
        raise dataset.DataError(f"{path} must hold a JSON list of {{object_id, fraud}} objects")
    return parsed


def load_training_records(data_path: str | Path | None = None, seed: int = 0,
                          n_synthetic: int = SYNTHETIC_SIZE) -> tuple[list[dict], dict]:
    """Labelled records and where they came from: a file, data/data.zip, else synthetic."""
    path = Path(data_path) if data_path else dataset.DEFAULT_DATA_PATH
    if data_path or path.exists():
        records = dataset.load_labelled(path)
        return records, {"source": str(path), "sha256": dataset.file_hash(path)}
    import synth  # only needed without data; keeps the artifact free of the generator

    records = dataset.add_labels(synth.generate_events(n_synthetic, seed))
    return records, {"source": f"synthetic: synth.generate_events({n_synthetic}, seed={seed})",
                     "sha256": dataset.records_hash(records)}


def _money(records: list[dict]) -> np.ndarray:
    """Money at stake of each record, in US dollars (the cost model's currency)."""
    return np.array([exchange.to_usd(features.money_at_stake(r), r.get("currency")) for r in records],
                    dtype=float)


def _prepare(records: list[dict]) -> list[dict]:
    """Normalised copies (NaN/'' -> None) carrying a boolean 'fraud' label."""
    clean = [dataset.normalise_record(r) for r in records]
    for record, label in zip(clean, labels_of(clean)):
        record["fraud"] = bool(label)
    return clean


# ---------------------------------------------------------------- the pipeline

def make_featurizer(seed: int = 0, quick: bool = False, **options) -> features.EventFeaturizer:
    """The featurizer as trained (smaller text models in quick mode)."""
    if quick:
        options = {"max_vocab": 500, "text_folds": 3, "min_category_count": 10, **options}
    return features.EventFeaturizer(random_state=seed, **options)


def make_classifier(seed: int = 0, quick: bool = False, params: dict | None = None):
    """Calibrated boosted trees: one HGB (fixed seed, no early stopping) + one Platt calibrator."""
    params = dict(params or (QUICK_HGB_PARAMS if quick else HGB_PARAMS))
    booster = HistGradientBoostingClassifier(early_stopping=False, random_state=seed, **params)
    folds = 3 if quick else CALIBRATION_FOLDS
    return CalibratedClassifierCV(
        booster, method=CALIBRATION_METHOD, ensemble=False,
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed))


def fit_pipeline(records: list[dict], seed: int = 0, quick: bool = False,
                 params: dict | None = None, **feature_options) -> tuple[Pipeline, np.ndarray]:
    """Fit featurizer and classifier; return the Pipeline and the training feature matrix.

    Equivalent to Pipeline.fit (fit_transform, then fit on its output), done step by step
    so the training matrix (with out-of-fold text scores) is kept for the explanation reference.
    """
    y = labels_of(records).astype(int)
    featurizer = make_featurizer(seed, quick, **feature_options)
    X = featurizer.fit_transform(records, y)
    classifier = make_classifier(seed, quick, params).fit(X, y)
    return Pipeline([("features", featurizer), ("classifier", classifier)]), X


def occlusion_reference(X: np.ndarray, y: np.ndarray, groups: dict[str, list[int]]) -> np.ndarray:
    """A typical legit event: per-column median, or the commonest pattern of a one-hot group."""
    legit = X[~np.asarray(y, bool)] if (~np.asarray(y, bool)).any() else X
    with np.errstate(all="ignore"):
        reference = np.array([np.nanmedian(c) if np.isfinite(c).any() else np.nan for c in legit.T])
    for cols in groups.values():
        block = legit[:, cols]
        if len(cols) > 1 and np.isin(block, (0.0, 1.0)).all():  # one-hot: keep a valid pattern
            patterns, counts = np.unique(block, axis=0, return_counts=True)
            reference[cols] = patterns[np.argmax(counts)]
    return reference


# ---------------------------------------------------------------- the artifact

def library_versions() -> dict:
    """Versions the pickle depends on (python, sklearn, numpy, scipy, pandas)."""
    versions = {"python": platform.python_version()}
    for key, distribution in LIBRARIES.items():
        try:
            versions[key] = package_version(distribution)
        except PackageNotFoundError:
            versions[key] = None
    return versions


def version_mismatches(recorded: dict) -> list[str]:
    """Libraries whose version differs from the recorded one (python compared as major.minor)."""
    current = library_versions()
    problems = []
    for key, built in (recorded or {}).items():
        now = current.get(key)
        same = (built or "").split(".")[:2] == (now or "").split(".")[:2] if key == "python" else built == now
        if not same:
            problems.append(f"{key} {built} (this environment: {now})")
    return problems


@lru_cache(maxsize=1)
def _threadpools() -> ThreadpoolController:
    """The process's thread pools, inspected once (inspecting costs ~10 ms, limiting ~0)."""
    return ThreadpoolController()


def _one_thread():
    """Predict on one OpenMP thread: a one-row predict gains nothing from threads, and on a
    busy machine (or under many gunicorn workers) an OpenMP team waiting for a second core
    turns 1 ms into 100 ms."""
    return _threadpools().limit(limits=1, user_api="openmp")


class FraudModel:
    """The artifact: one fitted Pipeline, its metadata, and what explanations compare against."""

    def __init__(self, pipeline: Pipeline, metadata: dict, reference: np.ndarray):
        self.pipeline = pipeline
        self.metadata = metadata
        self.reference = reference

    @property
    def version(self) -> str:
        """Version id: creation time and the training data's hash."""
        return self.metadata["version"]

    @property
    def thresholds(self) -> dict:
        """{'medium': p, 'high': p}: the tier cuts chosen on validation data."""
        return self.metadata["tier_thresholds"]

    def predict_proba(self, records) -> np.ndarray:
        """Calibrated P(fraud) for each raw record (any shape; NaN and missing keys fine)."""
        records = list(records)
        if not records:
            return np.zeros(0)
        with _one_thread():
            return self.pipeline.predict_proba(records)[:, 1]

    def contributions(self, records) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """Occlusion: (features, probabilities, group names, n x groups contributions).

        Each feature group of each record is replaced by the value of a typical legit event; the
        drop in the log-odds of the calibrated probability is that group's contribution
        (positive: the record's own value pushes the score up). Log-odds, not raw probability,
        so that a score of 0.3 % still has readable reasons. One predict call on the records
        plus one row per (record, group) whose values differ from the reference.
        """
        X = self.pipeline[0].transform(list(records))
        p, deltas = self._occlusion(X)
        return X, p, self._groups()[0], deltas

    def _occlusion(self, X: np.ndarray, p: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, records x groups contributions) of feature rows, in one predict call:
        the occluded rows, stacked under X itself unless X's probabilities ``p`` are given."""
        names, membership = self._groups()
        # Only groups whose values differ from the reference can contribute; the others are 0
        # and are not predicted at all (about a third of them for a typical event).
        same = (X == self.reference) | (np.isnan(X) & np.isnan(self.reference))
        differs = (~same).astype(np.float64) @ membership > 0  # (records x groups)
        rows, which = np.nonzero(differs)
        occluded = np.where(membership[:, which].T.astype(bool), self.reference, X[rows])
        stacked = occluded if p is not None else np.vstack([X, occluded])
        p_all = np.zeros(0)
        if len(stacked):
            with _one_thread():
                p_all = self.pipeline[-1].predict_proba(stacked)[:, 1]
        if p is None:
            p, p_all = p_all[:len(X)], p_all[len(X):]
        deltas = np.zeros(differs.shape)
        deltas[rows, which] = _logit(p)[rows] - _logit(p_all)
        return p, deltas

    def _columns(self) -> list[str]:
        """The featurizer's column names, read once."""
        if "_column_cache" not in self.__dict__:
            self.__dict__["_column_cache"] = list(self.pipeline[0].get_feature_names_out())
        return self.__dict__["_column_cache"]

    def _groups(self) -> tuple[list[str], np.ndarray]:
        """Feature group names and a (columns x groups) 0/1 membership matrix, built once."""
        cached = self.__dict__.get("_group_cache")
        if cached is None:
            groups = self.pipeline[0].feature_groups()
            membership = np.zeros((len(self.reference), len(groups)))
            for g, cols in enumerate(groups.values()):
                membership[cols, g] = 1.0
            cached = self.__dict__["_group_cache"] = (list(groups), membership)
        return cached

    def __getstate__(self):
        """Pickle without the derived caches (they are rebuilt on first use)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def explain(self, records, top: int = 3) -> list[list[str]]:
        """Top reasons per record in plain words, from its own values and the model's response."""
        return self.predict_and_explain(records, top)[1]

    def predict_and_explain(self, records, top: int = 3,
                            review_tiers_only: bool = False) -> tuple[np.ndarray, list[list[str]]]:
        """Calibrated P(fraud) and the top reasons of each record, from one featurization and one
        predict call (the probability is the first row of the occlusion matrix).

        Events at or above the medium tier get the reasons that push their probability up,
        prefixed 'raises risk: '; lower scores get what pushes it down, prefixed 'lowers risk: '.

        ``review_tiers_only=True`` (batch jobs) explains only the events at or above the medium
        tier, the ones the review queue puts in front of analysts: the others get ``[]``, and the
        dashboard explains them when it shows them (dashboard.fill_reasons). Reasons cost about
        twice the rest of scoring, and most events are low risk.
        """
        records = list(records)
        if not records:
            return np.zeros(0), []
        X = self.pipeline[0].transform(records)
        if review_tiers_only:
            with _one_thread():
                p = self.pipeline[-1].predict_proba(X)[:, 1]
            explained = np.flatnonzero(p >= self.thresholds["medium"])
            _, deltas = self._occlusion(X[explained], p[explained])
        else:
            p, deltas = self._occlusion(X)
            explained = np.arange(len(records))
        names, columns = self._groups()[0], self._columns()
        out: list[list[str]] = [[] for _ in records]
        for row, i in enumerate(explained):
            risky = p[i] >= self.thresholds["medium"]
            signed = deltas[row] if risky else -deltas[row]
            chosen = [g for g in np.argsort(-signed, kind="stable")[:top] if signed[g] > MIN_REASON_DELTA]
            values = dict(zip(columns, X[i].tolist()))
            record = records[i] if isinstance(records[i], dict) else {}
            prefix = "raises risk: " if risky else "lowers risk: "
            out[i] = [prefix + features.phrase_reason(names[g], values, record, up=risky) for g in chosen]
        return p, out


def _logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, clipped away from 0 and 1."""
    return np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))


def train(records: list[dict], *, seed: int = 0, quick: bool = False, cost: CostModel | None = None,
          data_info: dict | None = None, params: dict | None = None) -> FraudModel:
    """Train the artifact on labelled records: time split, validation thresholds, test metrics.

    The latest 20 % of events (by event_created) are held out as the test split. Tier
    thresholds are chosen on the latest 20 % of the rest, scored by a model fitted on the
    earlier part; the saved model is then fitted on the whole training portion.
    """
    return _train(records, seed=seed, quick=quick, cost=cost, data_info=data_info, params=params)[0]


def model_threads() -> int:
    """MODEL_THREADS (default 1); ValueError naming it when it is not a whole number of at least 1."""
    raw = os.environ.get("MODEL_THREADS", "").strip()
    if not raw:
        return 1
    if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
        raise ValueError(f"MODEL_THREADS={raw!r} is not a whole number of at least 1")
    return int(raw)


def _thread_limit():
    """Limit OpenMP threads while training (MODEL_THREADS, default 1): the machine is shared,
    and an oversubscribed OpenMP pool can be ten times slower than one thread."""
    return threadpool_limits(limits=model_threads(), user_api="openmp")


def _check_enough(records: list[dict], folds: int) -> None:
    """Refuse, with a clear message, data too small for the calibration folds."""
    y = labels_of(records)
    if min(int(y.sum()), int((~y).sum())) < folds:
        raise dataset.DataError(
            f"too little data: the earliest {len(records)} events used for fitting hold {int(y.sum())} "
            f"fraud and {int((~y).sum())} legit events; at least {folds} of each are needed "
            f"(about {int(folds / 0.09 / 0.64) + 1} events at a 9 % fraud rate)")


def _train(records, *, seed=0, quick=False, cost=None, data_info=None, params=None):
    """train(), also returning the splits, fitted pipelines and matrices (the report reuses them)."""
    started = time.perf_counter()
    cost = cost or CostModel.from_env()
    records = _prepare(records)
    train_part, test_part = dataset.time_split(records, TEST_FRACTION)
    fit_part, val_part = dataset.time_split(train_part, VALIDATION_FRACTION)
    _check_enough(fit_part, 3 if quick else CALIBRATION_FOLDS)
    with _thread_limit():
        val_pipeline, X_fit = fit_pipeline(fit_part, seed, quick, params)
        X_val = val_pipeline[0].transform(val_part)
        p_val = val_pipeline[-1].predict_proba(X_val)[:, 1]
        thresholds, selection = choose_thresholds(labels_of(val_part), p_val, _money(val_part), cost)
        pipeline, X_train = fit_pipeline(train_part, seed, quick, params)
        X_test = pipeline[0].transform(test_part)
        p_test = pipeline[-1].predict_proba(X_test)[:, 1]
    y_train, y_test = labels_of(train_part), labels_of(test_part)
    reference = occlusion_reference(X_train, y_train, pipeline[0].feature_groups())
    metadata = _metadata(records, train_part, test_part, pipeline, thresholds, selection, cost,
                         seed, quick, data_info or {})
    metadata["test_metrics"] = evaluate(y_test, p_test, _money(test_part), thresholds["medium"], cost)
    metadata["test_tiers"] = tier_table(y_test, p_test, _money(test_part), thresholds, cost.review_cost)
    metadata["training_seconds"] = round(time.perf_counter() - started, 1)
    context = {
        "records": records, "train": train_part, "test": test_part, "fit": fit_part, "val": val_part,
        "val_pipeline": val_pipeline, "X_fit": X_fit, "X_val": X_val, "p_val": p_val,
        "X_train": X_train, "X_test": X_test, "p_test": p_test, "cost": cost,
    }
    return FraudModel(pipeline, metadata, reference), context


def _metadata(records, train_part, test_part, pipeline, thresholds, selection, cost, seed,
              quick, data_info) -> dict:
    """Everything model.json records about an artifact, except its test metrics."""
    created = datetime.now(timezone.utc)
    digest = data_info.get("sha256") or dataset.records_hash(records)
    featurizer, classifier = pipeline[0], pipeline[-1]
    booster = classifier.estimator
    names = list(featurizer.get_feature_names_out())
    return {
        "version": f"{created:%Y%m%dT%H%M%SZ}-{digest[:8]}",
        "created_at": created.isoformat(timespec="seconds"),
        "training_data": {
            "source": data_info.get("source", "records passed to train()"),
            "sha256": digest,
            "records": len(records),
            "train_records": len(train_part),
            "test_records": len(test_part),
            "fraud_rate": float(labels_of(records).mean()),
            "fraud_rate_train": float(labels_of(train_part).mean()),
            "fraud_rate_test": float(labels_of(test_part).mean()),
            "analyst_labels": sum(1 for r in records if r.get("label_source") == "analyst"),
            "labels_file": data_info.get("labels_file"),  # python model.py --labels FILE
            "split": (f"time-ordered by event_created: latest {TEST_FRACTION:.0%} test; "
                      f"thresholds on the latest {VALIDATION_FRACTION:.0%} of the rest"),
            "test_period": _period(test_part),
        },
        "features": names,
        "feature_descriptions": {n: features.describe_feature(n) for n in names},
        "fields_excluded": {**features.LEAKY_REASONS, **features.UNUSED_FIELDS},
        "estimator": {
            "pipeline": [name for name, _ in pipeline.steps],
            "classifier": type(booster).__name__,
            "params": {k: v for k, v in booster.get_params().items() if not callable(v)},
            "calibration": f"CalibratedClassifierCV(method={CALIBRATION_METHOD!r}, "
                           f"cv={classifier.cv.get_n_splits()}, ensemble=False)",
            "seed": seed,
            "quick": quick,
        },
        "tier_thresholds": thresholds,
        "threshold_selection": selection,
        "cost_model": {**asdict(cost), "usd_rates": exchange.rates()},  # money in US dollars at these rates
        "library_versions": library_versions(),
    }


def _period(records: list[dict]) -> list[str | None]:
    """First and last event_created of records, as dates."""
    stamps = [features.to_float(r.get("event_created")) for r in records]
    stamps = [s for s in stamps if s == s]
    if not stamps:
        return [None, None]
    day = lambda s: datetime.fromtimestamp(s, tz=timezone.utc).date().isoformat()  # noqa: E731
    return [day(min(stamps)), day(max(stamps))]


def save_model(model: FraudModel, path: str | Path = DEFAULT_MODEL_PATH) -> Path:
    """Write the pickle (a small version header, then the model) and its metadata as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": ARTIFACT_FORMAT, "version": model.version,
              "library_versions": model.metadata["library_versions"]}
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        pickle.dump(header, handle, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, path)  # readers never see a half-written model
    path.with_suffix(".json").write_text(json.dumps(model.metadata, indent=2, default=str) + "\n")
    return path


_UNPICKLING_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
                      KeyError, TypeError, ValueError, OverflowError, MemoryError, struct.error)


def load_model(path: str | Path = DEFAULT_MODEL_PATH) -> FraudModel:
    """Load an artifact; ModelLoadError for a missing or corrupt file or other library versions.

    The version header is read first, so a model built under other versions is refused before
    any scikit-learn object is unpickled. Only load artifacts you built: pickle runs code.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except FileNotFoundError as exc:
        raise ModelLoadError(f"no model file at {path}: train one with `python model.py`") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot open model file {path}: {exc}") from exc
    with handle:
        try:
            header = pickle.load(handle)
        except _UNPICKLING_ERRORS as exc:
            raise ModelLoadError(f"{path} is not a readable model artifact (corrupt or truncated): {exc}") from exc
        if not isinstance(header, dict) or header.get("format") != ARTIFACT_FORMAT:
            raise ModelLoadError(f"{path} is not a {ARTIFACT_FORMAT} artifact")
        problems = version_mismatches(header.get("library_versions"))
        if problems:
            raise ModelLoadError(
                f"{path} (model {header.get('version')}) was built with other library versions: "
                + "; ".join(problems) + ". Retrain with `python model.py` or install the versions "
                "pinned in requirements.txt.")
        try:
            model = pickle.load(handle)
        except _UNPICKLING_ERRORS as exc:
            raise ModelLoadError(f"{path} is corrupt: the model part cannot be read: {exc}") from exc
    if not isinstance(model, FraudModel):
        raise ModelLoadError(f"{path} holds a {type(model).__name__}, not a FraudModel")
    return model


# ---------------------------------------------------------------- model comparison report

def signed_log(X):
    """sign(x) * log(1 + |x|): tames money and counts for linear models and kNN."""
    return np.sign(X) * np.log1p(np.abs(X))


class RuleBaseline(ClassifierMixin, BaseEstimator):
    """One-line rule: user_age == 0 and no payout before the event -> that group's fraud rate."""

    def __init__(self, age_column: int = 0, payouts_column: int = 1):
        self.age_column = age_column
        self.payouts_column = payouts_column

    def _rule(self, X) -> np.ndarray:
        X = np.asarray(X, float)
        return (X[:, self.age_column] == 0) & ~(X[:, self.payouts_column] > 0)

    def fit(self, X, y):
        """Learn the fraud rate inside and outside the rule."""
        y, rule = np.asarray(y, bool), self._rule(X)
        self.classes_ = np.array([0, 1])
        self.rates_ = tuple(float(y[m].mean()) if m.any() else float(y.mean()) for m in (~rule, rule))
        return self

    def predict_proba(self, X):
        """P(fraud) = the training fraud rate of the record's side of the rule."""
        p = np.where(self._rule(X), self.rates_[1], self.rates_[0])
        return np.column_stack([1 - p, p])


def _scaled(estimator):
    """signed log, median imputation and scaling in front of a model that needs them."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return Pipeline([("log", FunctionTransformer(signed_log)),
                     ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", StandardScaler()), ("model", estimator)])


def candidate_models(names: list[str], seed: int, quick: bool) -> list[tuple[str, str, object]]:
    """(label, columns used: structured/text/all, unfitted estimator) for every compared model."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    impute = lambda est: Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),  # noqa: E731
                                   ("model", est)])
    rule = RuleBaseline(names.index("user_age"), names.index("prior_payouts_count"))
    booster = HistGradientBoostingClassifier(early_stopping=False, random_state=seed,
                                             **(QUICK_HGB_PARAMS if quick else HGB_PARAMS))
    return [
        ("majority class = arrival order (baseline)", "structured", DummyClassifier(strategy="prior")),
        ("rule: user_age == 0 and no earlier payout (baseline)", "structured", rule),
        ("logistic regression", "structured", _scaled(LogisticRegression(C=0.5, max_iter=2000))),
        ("linear SVM (Platt-scaled)", "structured", _scaled(CalibratedClassifierCV(
            LinearSVC(C=0.05), method="sigmoid", cv=3))),
        ("decision tree (depth 6)", "structured", impute(DecisionTreeClassifier(
            max_depth=6, min_samples_leaf=30, random_state=seed))),
        ("k-nearest neighbours (k=50)", "structured", _scaled(KNeighborsClassifier(n_neighbors=50))),
        ("random forest", "structured", impute(RandomForestClassifier(
            n_estimators=60 if quick else 100, min_samples_leaf=2, random_state=seed, n_jobs=1))),
        ("gradient boosting (HGB)", "structured", booster),
        ("text only (TF-IDF logistic, stemmed)", "text", LogisticRegression(max_iter=1000)),
        ("logistic regression + text", "all", _scaled(LogisticRegression(C=0.5, max_iter=2000))),
        (CHOSEN_LABEL, "all", make_classifier(seed, quick)),
    ]


CHOSEN_LABEL = "HGB + text, calibrated (chosen)"
# The majority class scores every event alike, so its top k are the k that arrived first: the
# queue analysts would work without a model.
BASELINES = ("majority class = arrival order (baseline)", "rule: user_age == 0 and no earlier payout (baseline)")


def _columns(names: list[str], kind: str) -> np.ndarray:
    """Column indices for a model's feature set."""
    is_text = np.array([n.startswith("text_") for n in names])
    return np.flatnonzero({"structured": ~is_text, "text": is_text, "all": np.ones_like(is_text)}[kind])


def _fit_predict(names, X_fit, y_fit, X_eval, seed, quick) -> dict[str, np.ndarray]:
    """Fit every candidate on one matrix and score another: label -> P(fraud)."""
    scores = {}
    for label, kind, estimator in candidate_models(names, seed, quick):
        cols = _columns(names, kind)
        estimator.fit(X_fit[:, cols], y_fit)
        scores[label] = estimator.predict_proba(X_eval[:, cols])[:, 1]
    return scores


def cross_validate(records: list[dict], seed: int, quick: bool, folds: int) -> dict[str, dict]:
    """Stratified K-fold CV on the training portion, featurizer refitted inside every fold."""
    y = labels_of(records).astype(int)
    per_model: dict[str, list] = {}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in splitter.split(np.zeros(len(y)), y):
        featurizer = make_featurizer(seed, quick)
        X_fit = featurizer.fit_transform([records[i] for i in fit_rows], y[fit_rows])
        X_held = featurizer.transform([records[i] for i in held_rows])
        names = list(featurizer.get_feature_names_out())
        for label, p in _fit_predict(names, X_fit, y[fit_rows], X_held, seed, quick).items():
            yh = y[held_rows]
            per_model.setdefault(label, []).append(
                (roc_auc_score(yh, p), average_precision_score(yh, p), brier_score_loss(yh, p)))
    summary = {}
    for label, rows in per_model.items():
        a = np.array(rows)
        summary[label] = {"auc": a[:, 0].mean(), "auc_sd": a[:, 0].std(), "ap": a[:, 1].mean(),
                          "ap_sd": a[:, 1].std(), "brier": a[:, 2].mean()}
    return summary


def tune_hgb(X, y, seed: int, n_iter: int, folds: int) -> dict:
    """Randomized search over HGB hyper-parameters (average precision, stratified CV)."""
    from scipy.stats import loguniform
    from sklearn.model_selection import RandomizedSearchCV, cross_val_score

    space = {
        "learning_rate": loguniform(0.02, 0.3),
        "max_iter": [100, 200, 300],
        "max_leaf_nodes": [7, 15, 31, 63],
        "min_samples_leaf": [10, 20, 40, 80],
        "l2_regularization": loguniform(1e-3, 10.0),
        "max_features": [0.5, 0.8, 1.0],
    }
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    base = HistGradientBoostingClassifier(early_stopping=False, random_state=seed)
    search = RandomizedSearchCV(base, space, n_iter=n_iter, scoring="average_precision", cv=cv,
                                random_state=seed, refit=False, n_jobs=1).fit(X, y)
    results = search.cv_results_
    order = np.argsort(results["rank_test_score"], kind="stable")
    current = cross_val_score(base.set_params(**HGB_PARAMS), X, y, cv=cv, scoring="average_precision")
    return {
        "space": {k: (f"log-uniform({v.a:g}, {v.b:g})" if hasattr(v, "a") else v) for k, v in space.items()},
        "n_iter": n_iter, "folds": folds,
        "top": [{"params": results["params"][i], "ap": float(results["mean_test_score"][i]),
                 "ap_sd": float(results["std_test_score"][i])} for i in order[:8]],
        "best_params": search.best_params_,
        "current_params": HGB_PARAMS,
        "current_ap": float(current.mean()), "current_ap_sd": float(current.std()),
    }


def _calibration_variants(context: dict, seed: int, quick: bool) -> dict[str, np.ndarray]:
    """Test scores of the chosen model uncalibrated, Platt-scaled (shipped) and isotonic."""
    y_train = labels_of(context["train"]).astype(int)
    shipped = context["pipeline"][-1]
    raw = shipped.calibrated_classifiers_[0].estimator.predict_proba(context["X_test"])[:, 1]
    isotonic = make_classifier(seed, quick).set_params(method="isotonic").fit(context["X_train"], y_train)
    return {"uncalibrated HGB": raw, "Platt / sigmoid (shipped)": context["p_test"],
            "isotonic": isotonic.predict_proba(context["X_test"])[:, 1]}


def _variant_scores(context: dict, seed: int, quick: bool) -> dict[str, dict]:
    """What leaky fields would add, and what stemming adds to the text model (test split)."""
    y_train = labels_of(context["train"]).astype(int)
    y_test = labels_of(context["test"])
    out = {}
    leaky = make_featurizer(seed, quick, include_leaky=True)
    X_tr = leaky.fit_transform(context["train"], y_train)
    X_te = leaky.transform(context["test"])
    booster = make_classifier(seed, quick).fit(X_tr, y_train)
    p = booster.predict_proba(X_te)[:, 1]
    out["HGB + text + LEAKY fields (not usable live)"] = p
    plain = make_featurizer(seed, quick, stem=False)
    X_tr = plain.fit_transform(context["train"], y_train)
    X_te = plain.transform(context["test"])
    cols = _columns(list(plain.get_feature_names_out()), "text")
    from sklearn.linear_model import LogisticRegression

    out["text only, no stemming"] = LogisticRegression(max_iter=1000).fit(
        X_tr[:, cols], y_train).predict_proba(X_te[:, cols])[:, 1]
    return {label: {"auc": roc_auc_score(y_test, p), "ap": average_precision_score(y_test, p),
                    "brier": brier_score_loss(y_test, p)} for label, p in out.items()}


def _latency(model: FraudModel, records: list[dict], n: int = 300) -> dict:
    """p50/p95 milliseconds to featurize+predict (and to explain) one raw record in-process."""
    timings = {"predict": [], "explain": []}
    for record in records[:n]:
        started = time.perf_counter()
        model.predict_proba([record])
        timings["predict"].append(time.perf_counter() - started)
        started = time.perf_counter()
        model.explain([record])
        timings["explain"].append(time.perf_counter() - started)
    return {f"{k}_{q}": float(np.percentile(v, q) * 1000) for k, v in timings.items() for q in (50, 95)}


def _queue_order(y, p, money, cost: CostModel, capacity: float | None = None) -> dict:
    """Fraud and fraud money reviewed at a capacity when the queue is ordered by p or p * money."""
    y, money = np.asarray(y, bool), np.asarray(money, float)
    k = cost.review_slots(len(y)) if capacity is None else max(1, int(round(capacity * len(y))))
    total = float(money[y].sum()) or 1.0
    out = {}
    for label, key in (("probability", p), ("expected loss", p * money)):
        top = np.argsort(-key, kind="stable")[:k]
        caught = money[top][y[top]].sum()
        out[label] = {"fraud_share": float(y[top].sum() / max(y.sum(), 1)),
                      "money_unreviewed_share": float(1 - caught / total),
                      "cost": float(cost.review_cost * k + total - caught)}
    return out


CAPACITY_GRID = (0.02, 0.05, 0.10, 0.15, 0.20, 0.30)


def run_comparison(records: list[dict], *, seed: int = 0, quick: bool = False, folds: int = 5,
                   search_iter: int = 16, search_folds: int = 3, cost: CostModel | None = None) -> dict:
    """Every number of the report: CV on the training portion, cuts on validation, test split."""
    started = time.perf_counter()
    timings = {}
    cost = cost or CostModel.from_env()
    with _thread_limit():
        model, context = _train(records, seed=seed, quick=quick, cost=cost)
        context["pipeline"] = model.pipeline
        timings["train (artifact)"] = time.perf_counter() - started
        mark = time.perf_counter()
        cv = cross_validate(context["train"], seed, quick, folds)
        timings["cross-validation"] = time.perf_counter() - mark
        mark = time.perf_counter()
        y_fit, y_val = labels_of(context["fit"]).astype(int), labels_of(context["val"])
        y_train, y_test = labels_of(context["train"]).astype(int), labels_of(context["test"])
        names_val = list(context["val_pipeline"][0].get_feature_names_out())
        names = list(model.pipeline[0].get_feature_names_out())
        p_val = _fit_predict(names_val, context["X_fit"], y_fit, context["X_val"], seed, quick)
        p_test = _fit_predict(names, context["X_train"], y_train, context["X_test"], seed, quick)
        p_val[CHOSEN_LABEL], p_test[CHOSEN_LABEL] = context["p_val"], context["p_test"]
        money_val, money_test = _money(context["val"]), _money(context["test"])
        test = {}
        for label, p in p_test.items():
            cut = (model.thresholds["medium"] if label == CHOSEN_LABEL
                   else choose_thresholds(y_val, p_val[label], money_val, cost)[0]["medium"])
            test[label] = evaluate(y_test, p, money_test, cut, cost)
        timings["validation cuts + test fits"] = time.perf_counter() - mark
        mark = time.perf_counter()
        variants = _variant_scores(context, seed, quick)
        calibration = _calibration_variants(context, seed, quick)
        timings["leaky / stemming / calibration variants"] = time.perf_counter() - mark
        mark = time.perf_counter()
        tuning = tune_hgb(context["X_train"], y_train, seed, search_iter, search_folds)
        timings["hyper-parameter search"] = time.perf_counter() - mark
    latency = _latency(model, [features_free(r) for r in context["test"]])
    p_chosen = context["p_test"]
    fraud_test = [r for r, fraud in zip(context["test"], y_test) if fraud]
    return {
        "intervals": bootstrap_intervals(y_test, p_chosen, money_test, model.thresholds, cost, seed=seed),
        "calibration_bands": calibration_bands(y_test, p_chosen, model.thresholds),
        "test_fraud_sold": sold_usd(fraud_test),
        "model": model, "context": context, "cv": cv, "test": test, "p_test": p_test,
        "y_test": y_test, "money_test": money_test, "variants": variants,
        "calibration": calibration, "tuning": tuning, "latency": latency, "cost": cost,
        "queue": _queue_order(y_test, context["p_test"], money_test, cost),
        "capacity_grid": {c: _queue_order(y_test, context["p_test"], money_test, cost, c)
                          for c in CAPACITY_GRID},
        "timings": timings, "folds": folds, "seconds": time.perf_counter() - started,
    }


def features_free(record: dict) -> dict:
    """A record as it arrives live: without the label and the fields added in training."""
    return {k: v for k, v in record.items() if k not in (dataset.LABEL_FIELD, "fraud", "label_source")}


# ---------------------------------------------------------------- report writing

def _plots(result: dict, out_dir: Path) -> dict[str, str]:
    """ROC/PR, reliability, cost-vs-reviews and tier plots as PNG files; name -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    y, money, cost = result["y_test"], result["money_test"], result["cost"]
    files = {}

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5))
    for label, p in result["p_test"].items():
        style = {"linewidth": 2.5, "color": "black"} if label == CHOSEN_LABEL else {"linewidth": 1}
        fpr, tpr, _ = roc_curve(y, p)
        ax1.plot(fpr, tpr, label=label, **style)
        precision, recall, _ = precision_recall_curve(y, p)
        ax2.plot(recall, precision, **style)
    ax1.plot([0, 1], [0, 1], ":", color="grey")
    ax1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test split")
    ax2.set(xlabel="recall", ylabel="precision", title="Precision-recall, test split")
    ax1.legend(fontsize=7, loc="lower right")
    files["roc_pr"] = "model_roc_pr.png"
    fig.tight_layout()
    fig.savefig(out_dir / files["roc_pr"], dpi=90)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.5, 7), gridspec_kw={"height_ratios": [3, 1]})
    for label, p in result["calibration"].items():
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
        ax1.plot(predicted, observed, "o-", label=f"{label} (Brier {brier_score_loss(y, p):.4f})")
    ax1.plot([0, 1], [0, 1], ":", color="grey")
    ax1.set(xlabel="predicted probability", ylabel="observed fraud share",
            title="Reliability, test split (10 equal-width bins)")
    ax1.legend(fontsize=8)
    ax2.hist(result["context"]["p_test"], bins=40, color="grey")
    ax2.set(xlabel="shipped model's probability", ylabel="events", yscale="log")
    files["reliability"] = "model_reliability.png"
    fig.tight_layout()
    fig.savefig(out_dir / files["reliability"], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    shares = np.linspace(0, 0.6, 121)
    for label in (CHOSEN_LABEL, "logistic regression", BASELINES[1]):
        order = np.argsort(-result["p_test"][label], kind="stable")
        costs = [expected_cost(y, np.isin(np.arange(len(y)), order[: int(s * len(y))]), money,
                               cost.review_cost) for s in shares]
        ax.plot(shares * 100, np.array(costs) / 1e6, label=label)
    ax.axvline(cost.capacity * 100, linestyle="--", color="grey", label="review capacity")
    ax.set(xlabel="% of events reviewed (highest scores first)", ylabel="expected cost, $ million",
           title=f"Expected cost on the test split (review ${cost.review_cost:g}, miss = money at stake)")
    ax.legend(fontsize=8)
    files["cost"] = "model_cost_curve.png"
    fig.tight_layout()
    fig.savefig(out_dir / files["cost"], dpi=90)
    plt.close(fig)

    rows = result["model"].metadata["test_tiers"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width, x = 0.27, np.arange(len(rows))
    for i, (key, label) in enumerate((("share_events", "events"), ("share_fraud", "fraud"),
                                      ("share_fraud_money", "fraud money"))):
        ax.bar(x + (i - 1) * width, [r[key] * 100 for r in rows], width, label=label)
    ax.set_xticks(x, [r["tier"] for r in rows])
    ax.set(ylabel="% of the test split", title="What each risk tier holds (test split)")
    ax.legend()
    files["tiers"] = "model_tiers.png"
    fig.tight_layout()
    fig.savefig(out_dir / files["tiers"], dpi=90)
    plt.close(fig)
    return files


def _money_text(value: float) -> str:
    """$1,234,567 style."""
    return f"${value:,.0f}"


def _num(value, fmt=".3f") -> str:
    """A metric for a table cell ('n/a' when undefined)."""
    return "n/a" if value is None or value != value else format(value, fmt)


def _interval(bounds, fmt=".3f") -> str:
    """'(0.851 to 0.921)', or '(n/a)'."""
    if not bounds or any(b is None or b != b for b in bounds):
        return "(n/a)"
    return f"({format(bounds[0], fmt)} to {format(bounds[1], fmt)})"


def report_markdown(result: dict, info: dict, files: dict, seed: int) -> str:
    """The comparison report as Markdown, every number taken from this run."""
    model, cost, test, cv = result["model"], result["cost"], result["test"], result["cv"]
    meta, chosen = model.metadata, test[CHOSEN_LABEL]
    data = meta["training_data"]
    best_ap_base = max(BASELINES, key=lambda b: test[b]["average_precision"] or 0)
    others = [k for k in test if k != CHOSEN_LABEL]
    secret = _confidential_source(info)
    lines = [
        "# Model comparison",
        "",
        *([f"> **CONFIDENTIAL:** built from {secret}. It holds only aggregates, but "
           "they describe the client's business: do not commit, share or attach this report.", ""]
          if secret is not None else []),
        f"Generated by `python model.py --compare` in {result['seconds'] / 60:.1f} minutes "
        f"(seed {seed}, {os.environ.get('MODEL_THREADS', '1')} OpenMP thread). "
        "Every number below comes from this run.",
        "",
        f"- Data: {info.get('source')} (sha256 `{str(info.get('sha256'))[:12]}…`), "
        f"{data['records']:,} events, fraud rate {data['fraud_rate']:.2%}.",
        f"- Split by time (`dataset.time_split`): training portion {data['train_records']:,} events "
        f"(fraud {data['fraud_rate_train']:.2%}); test split = latest {data['test_records']:,} events "
        f"({data['test_period'][0]} to {data['test_period'][1]}, fraud {data['fraud_rate_test']:.2%}).",
        f"- Cost model: a review costs {_money_text(cost.review_cost)} (REVIEW_COST); a missed fraud "
        "costs its money at stake (sum of price x quantity over its ticket tiers, in US dollars at "
        "exchange.py's rates and USD_RATES); review capacity "
        f"{cost.capacity:.0%} of events (REVIEW_CAPACITY), so top-k uses k = {chosen['top_k']} of "
        f"{chosen['events']:,} test events. Fraud money in the test split: {_money_text(chosen['fraud_money'])}.",
        "",
        "## Protocol",
        "",
        f"1. **Model selection**: stratified {result['folds']}-fold CV on the training portion. The "
        "featurizer (category levels, text models) is refitted inside every fold, so no fold's "
        "held-out labels reach its features.",
        "2. **Cuts and tiers**: every model's review cut is chosen on the *validation slice* (the "
        "latest 20 % of the training portion, scored by a fit on the earlier 80 %) as the cut of "
        "least expected cost that flags no more than the review capacity.",
        "3. **Final numbers**: every model refitted on the whole training portion, scored once on the "
        "time-ordered test split at its validation cut. The chosen row is the saved artifact itself.",
        "",
        "## Cross-validation on the training portion",
        "",
        "| model | ROC AUC | average precision | Brier |",
        "|---|---|---|---|",
    ]
    for label, row in cv.items():
        lines.append(f"| {label} | {row['auc']:.3f} ± {row['auc_sd']:.3f} | "
                     f"{row['ap']:.3f} ± {row['ap_sd']:.3f} | {row['brier']:.4f} |")
    lines += [
        "",
        "## Test split (time-ordered, out of time)",
        "",
        "| model | ROC AUC | AP | precision @cut | recall @cut | F1 @cut | flagged | "
        f"precision @k={chosen['top_k']} | recall @k | fraud money caught @k | Brier | expected cost @cut | "
        "expected cost @k |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, m in test.items():
        name = f"**{label}**" if label == CHOSEN_LABEL else label
        lines.append(
            f"| {name} | {_num(m['roc_auc'])} | {_num(m['average_precision'])} | {m['precision']:.3f} | "
            f"{m['recall']:.3f} | {m['f1']:.3f} | {m['flagged']} | {m['precision_at_k']:.3f} | "
            f"{m['recall_at_k']:.3f} | {m['fraud_money_share_caught_at_k']:.1%} | {m['brier']:.4f} | "
            f"{_money_text(m['expected_cost'])} | "
            f"{_money_text(m['expected_cost_top_k'])} |")
    ap_gain = chosen["average_precision"] - (test[best_ap_base]["average_precision"] or 0)
    cheapest = {key: min(BASELINES, key=lambda b: test[b][key])
                for key in ("expected_cost", "expected_cost_top_k")}
    saving = {key: test[b][key] - chosen[key] for key, b in cheapest.items()}
    best_other_ap = max(others, key=lambda k: test[k]["average_precision"] or 0)
    best_other_cost = min(others, key=lambda k: test[k]["expected_cost"])
    lines += [
        "",
        "*@cut*: at the model's own cut chosen on the validation slice; *@k*: reviewing exactly the "
        f"k = {chosen['top_k']} highest scores (ties in order of arrival), which lets the rule, whose "
        "matches alone exceed the capacity, be compared at the same workload.",
        "",
        f"**Against the baselines**: the chosen model's average precision is {chosen['average_precision']:.3f}, "
        f"{ap_gain:+.3f} over the best baseline ({best_ap_base}: {test[best_ap_base]['average_precision']:.3f}). "
        f"Its expected cost at its cut is {_money_text(chosen['expected_cost'])}, "
        f"{_money_text(saving['expected_cost'])} "
        f"({saving['expected_cost'] / test[cheapest['expected_cost']]['expected_cost']:.0%}) less than the "
        f"cheapest baseline ({cheapest['expected_cost']}: {_money_text(test[cheapest['expected_cost']]['expected_cost'])}); "
        f"at the same workload of k reviews it is {_money_text(chosen['expected_cost_top_k'])}, "
        f"{_money_text(saving['expected_cost_top_k'])} "
        f"({saving['expected_cost_top_k'] / test[cheapest['expected_cost_top_k']]['expected_cost_top_k']:.0%}) "
        f"less than the cheapest baseline ({cheapest['expected_cost_top_k']}: "
        f"{_money_text(test[cheapest['expected_cost_top_k']]['expected_cost_top_k'])}). Reviewing nothing "
        f"would lose {_money_text(chosen['cost_review_nothing'])}.",
        "",
        f"**Read the dollars as weights, not as money saved.** Money at stake is the face value of "
        f"every ticket an event offers: what a fraud *could* collect. The test split's frauds had "
        f"sold {_money_text(result['test_fraud_sold'])} of tickets when the data was taken (gts, "
        "known only afterwards), "
        f"{result['test_fraud_sold'] / (chosen['fraud_money'] or 1.0):.1%} of their "
        f"{_money_text(chosen['fraud_money'])} at stake, and a few events with a very large face value "
        "carry much of the total. The dollar figures rank models and set the cuts; the share of fraud "
        "found and the share of fraud money reviewed are the figures to quote.",
        "",
        f"**How sure** (95 % intervals over 1,000 bootstrap resamples of the "
        f"{chosen['events']:,} test events, {chosen['fraud']} of them fraud): average precision "
        f"{_interval(result['intervals']['average_precision'], '.3f')}; recall at k "
        f"{_interval(result['intervals']['recall_at_k'], '.1%')}; fraud money caught at k "
        f"{_interval(result['intervals']['fraud_money_share_caught_at_k'], '.1%')}; share of the high "
        f"tier that is fraud {_interval(result['intervals']['precision_high'], '.1%')}.",
        "",
        f"**Against every other model**: best AP among the others is {best_other_ap} "
        f"({test[best_other_ap]['average_precision']:.3f}); lowest expected cost at its cut among the "
        f"others is {best_other_cost} ({_money_text(test[best_other_cost]['expected_cost'])}). Expected "
        "cost is dominated by a few events with a very large face value, so it is a noisy ranking "
        "criterion; average precision and the CV figures are steadier.",
        "",
        f"![ROC and precision-recall]({files['roc_pr']})",
        "",
        "## What the leaky fields and stemming would change (test split)",
        "",
        "| variant | ROC AUC | AP | Brier |",
        "|---|---|---|---|",
        f"| {CHOSEN_LABEL} | {_num(chosen['roc_auc'])} | {_num(chosen['average_precision'])} | {chosen['brier']:.4f} |",
        f"| text only (TF-IDF logistic, stemmed) | {_num(test['text only (TF-IDF logistic, stemmed)']['roc_auc'])} | "
        f"{_num(test['text only (TF-IDF logistic, stemmed)']['average_precision'])} | "
        f"{test['text only (TF-IDF logistic, stemmed)']['brier']:.4f} |",
    ]
    for label, m in result["variants"].items():
        lines.append(f"| {label} | {m['auc']:.3f} | {m['ap']:.3f} | {m['brier']:.4f} |")
    lines += [
        "",
        "The leaky row uses gts, num_order, num_payouts, tickets sold and payouts dated after the "
        "event: known only after tickets sell (or, for num_payouts, not in the later live feed). "
        "It shows how much an offline score would flatter a model that the live feed cannot feed.",
        "",
        "## Calibration (test split)",
        "",
        "| scores | Brier | log loss |",
        "|---|---|---|",
    ]
    from sklearn.metrics import log_loss

    for label, p in result["calibration"].items():
        lines.append(f"| {label} | {brier_score_loss(result['y_test'], p):.4f} | "
                     f"{log_loss(result['y_test'], np.clip(p, 1e-9, 1 - 1e-9)):.4f} |")
    lines += [
        "",
        f"Platt scaling (`CALIBRATION_METHOD = \"{CALIBRATION_METHOD}\"`) was fixed before any test "
        "figure was seen: one calibrator, so prediction runs one booster. The other rows are shown "
        "for information; nothing here chooses between them.",
        "",
        "The shipped model by band of probability (the last two bands are the medium and high "
        "tiers; observed with its 95 % Wilson interval). The overall figures are dominated by the "
        "many events scored near zero; these rows show the calibration where the tiers are drawn:",
        "",
        "| probability | events | mean predicted | observed fraud share |",
        "|---|---|---|---|",
    ]
    for row in result["calibration_bands"]:
        low, high = row["band"]
        lines.append(f"| {low:.3f} to {high:.3f} | {row['events']:,} | {_num(row['predicted'], '.3f')} | "
                     f"{_num(row['observed'], '.3f')} {_interval(row['observed_interval'], '.3f')} |")
    lines += ["", f"![Reliability]({files['reliability']})", ""]
    tuning = result["tuning"]
    lines += [
        "## Tuning the chosen model",
        "",
        f"Randomized search (`RandomizedSearchCV`, {tuning['n_iter']} draws, stratified "
        f"{tuning['folds']}-fold CV on the training portion, scoring average precision) over "
        "HistGradientBoostingClassifier (early stopping off, fixed random_state). Space:",
        "",
    ]
    lines += [f"- `{k}`: {v}" for k, v in tuning["space"].items()]
    lines += ["", "| rank | params | CV AP |", "|---|---|---|"]
    for rank, row in enumerate(tuning["top"], 1):
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in sorted(row["params"].items()))
        lines.append(f"| {rank} | {params} | {row['ap']:.4f} ± {row['ap_sd']:.4f} |")
    lines += [
        "",
        "Parameters the artifact uses (`HGB_PARAMS` in model.py): "
        + ", ".join(f"{k}={v}" for k, v in tuning["current_params"].items())
        + f"; the same CV gives them AP {tuning['current_ap']:.4f} ± {tuning['current_ap_sd']:.4f}. "
        "The text-feature columns inside this search are out-of-fold over the whole training "
        "portion, which flatters every draw equally; the order, not the level, is what is used.",
        "",
    ]
    thresholds, selection = model.thresholds, meta["threshold_selection"]
    lines += [
        "## Risk tiers",
        "",
        f"Chosen on the validation slice ({selection['validation_events']:,} events, "
        f"{selection['validation_fraud']} fraud), never on the test split:",
        "",
        f"- **medium** (review): p >= {thresholds['medium']:.3f}, the cut of least expected cost "
        f"within capacity. It flags {selection['share_flagged_at_medium']:.1%} of validation events, "
        f"sends {selection['fraud_share_reviewed']:.0%} of fraud to review and leaves "
        f"{selection['fraud_money_share_unreviewed']:.1%} of fraud money unreviewed. Without the "
        f"capacity limit the cost model would review {selection['unconstrained_best_share_flagged']:.0%} "
        "of events: at $15 a review, almost any event with a few thousand dollars at stake is worth a "
        "look, so capacity, not money, sets the cut.",
        f"- **high** (reviewed first, at once: the analyst decides whether to hold the payout while "
        f"checking; the model holds nothing): p >= {thresholds['high']:.3f}, the widest band whose "
        f"validation precision reaches {cost.high_precision:.0%} ({selection['events_high']} events, "
        f"precision {_num(selection['precision_high'], '.2f')}; a band chosen at that edge reads high "
        "on the data that chose it: see the test split's fraud rate below).",
        "- **low**: the rest; not reviewed.",
        "",
        "On the test split:",
        "",
        "| tier | events | % events | fraud | % fraud | fraud rate | fraud money | % fraud money | review cost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in meta["test_tiers"]:
        lines.append(
            f"| {row['tier']} | {row['events']:,} | {row['share_events']:.1%} | {row['fraud']} | "
            f"{row['share_fraud']:.1%} | {row['fraud_rate']:.1%} | {_money_text(row['fraud_money'])} | "
            f"{row['share_fraud_money']:.1%} | {_money_text(row['review_cost'])} |")
    queue = result["queue"]
    lines += [
        "",
        f"Ordering the review queue: with the same {cost.capacity:.0%} capacity on the test split, "
        "taking the highest probabilities first leaves "
        f"{queue['probability']['money_unreviewed_share']:.1%} of fraud money unreviewed; taking the "
        "highest expected loss (probability x money at stake, which predict.py returns) first leaves "
        f"{queue['expected loss']['money_unreviewed_share']:.1%} (but reviews "
        f"{queue['expected loss']['fraud_share']:.0%} instead of "
        f"{queue['probability']['fraud_share']:.0%} of fraud events).",
        "",
        "How the capacity (REVIEW_CAPACITY) trades reviews against missed fraud on the test split "
        "(chosen model, the top share of events reviewed):",
        "",
        "| capacity | reviews | fraud reviewed (by p) | fraud money unreviewed (by p) | expected cost (by p) "
        "| fraud money unreviewed (by expected loss) | expected cost (by expected loss) |",
        "|---|---|---|---|---|---|---|",
    ]
    for capacity, row in result["capacity_grid"].items():
        lines.append(
            f"| {capacity:.0%} | {max(1, int(round(capacity * chosen['events'])))} | "
            f"{row['probability']['fraud_share']:.0%} | {row['probability']['money_unreviewed_share']:.1%} | "
            f"{_money_text(row['probability']['cost'])} | {row['expected loss']['money_unreviewed_share']:.1%} | "
            f"{_money_text(row['expected loss']['cost'])} |")
    lines += [
        "",
        f"![Expected cost]({files['cost']})",
        "",
        f"![Tiers]({files['tiers']})",
        "",
        "## Speed",
        "",
        f"Featurize + predict one raw record in-process: p50 {result['latency']['predict_50']:.2f} ms, "
        f"p95 {result['latency']['predict_95']:.2f} ms; explain one record (occlusion, one predict on a "
        f"small matrix): p50 {result['latency']['explain_50']:.2f} ms, p95 {result['latency']['explain_95']:.2f} ms "
        f"(300 test records, one at a time). Training the artifact: {meta['training_seconds']} s.",
        "",
        "Time spent by this report: " + ", ".join(f"{k} {v:.0f} s" for k, v in result["timings"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def write_report(records: list[dict], info: dict, *, seed: int = 0,
                 report_path: Path = DEFAULT_REPORT_PATH, quick: bool = False) -> Path:
    """Run the comparison and write the Markdown report with its PNG plots beside it."""
    result = run_comparison(records, seed=seed, quick=quick, folds=3 if quick else 5,
                            search_iter=4 if quick else 16)
    report_path = Path(report_path)
    files = _plots(result, report_path.parent)
    report_path.write_text(report_markdown(result, info, files, seed), encoding="utf-8")
    summary = {label: {k: m[k] for k in ("roc_auc", "average_precision", "expected_cost", "brier")}
               for label, m in result["test"].items()}
    report_path.with_suffix(".json").write_text(json.dumps(
        {"test": summary, "intervals": result["intervals"], "calibration_bands": result["calibration_bands"],
         "test_fraud_sold": result["test_fraud_sold"], "cv": result["cv"], "tuning": result["tuning"],
         "latency": result["latency"], "seconds": result["seconds"]}, indent=2, default=str) + "\n")
    return report_path


# ---------------------------------------------------------------- command line

def _confidential_source(info: dict) -> str | None:
    """The file that makes records confidential: the data file, else the analyst labels file
    (its events are the client's); None when every record is synthetic."""
    if not str(info.get("source", "")).startswith("synthetic"):
        return str(info["source"])
    return (info.get("labels_file") or {}).get("path")


def main(argv: list[str] | None = None) -> int:
    """Train and save the model, or (--compare) write the model comparison report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="labelled .zip/.json/.jsonl (default data/data.zip, else synthetic)")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="artifact path (.pkl; .json beside it)")
    parser.add_argument("--compare", action="store_true", help="write the model comparison report instead")
    parser.add_argument("--report", type=Path, help=f"report path for --compare (default {DEFAULT_REPORT_PATH}, "
                                                    "or under reports/confidential/ for a data file or labels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=Path, help="analyst labels, as `flask export-labels` writes them: a JSON list of {object_id, fraud, event?}")
    parser.add_argument("--n", type=int, default=SYNTHETIC_SIZE, help="synthetic events when no data file")
    parser.add_argument("--quick", action="store_true", help="small fast model (smoke runs)")
    args = parser.parse_args(argv)
    try:
        exchange.rates()  # the cost model's currency: an unreadable USD_RATES stops before training
        CostModel.from_env()  # and its settings
        model_threads()
    except (exchange.RatesError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        records, info = load_training_records(args.data, args.seed, args.n)
        if args.labels:
            labels = read_labels(args.labels)
            info["labels_file"] = {"path": str(args.labels), "sha256": dataset.file_hash(args.labels)}
            overridden, added = merge_analyst_labels(records, labels)
            print(f"analyst labels: {overridden} records of the data relabelled, {added} events "
                  f"added from the labels, {max(0, len(labels) - overridden - added)} ignored (repeated, or "
                  f"for an event neither in the data nor in the label)")
            print(_analyst_labels_placement(records))
    except dataset.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.compare:
        import eda  # the reports' confidentiality rule, shared with the exploratory report

        secret = _confidential_source(info)
        report_path = args.report or (eda.default_report_dir(DEFAULT_REPORT_PATH.parent, secret)
                                      / DEFAULT_REPORT_PATH.name)
        report = write_report(records, info, seed=args.seed, report_path=report_path, quick=args.quick)
        print(f"wrote {report}")
        if secret is not None:
            print(eda.confidential_warning(f"{report}, {report.with_suffix('.json')} and the plots beside "
                                           f"them", secret), file=sys.stderr)
        return 0
    try:
        model = train(records, seed=args.seed, quick=args.quick, data_info=info)
    except dataset.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = save_model(model, args.out)
    m = model.metadata["test_metrics"]
    print(f"model {model.version}: trained in {model.metadata['training_seconds']} s on "
          f"{model.metadata['training_data']['train_records']} events; test ROC AUC {m['roc_auc']:.3f}, "
          f"AP {m['average_precision']:.3f}; tiers medium >= {model.thresholds['medium']:.3f}, "
          f"high >= {model.thresholds['high']:.3f}")
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    import model as _model  # pickles must name model.FraudModel, not __main__.FraudModel

    sys.exit(_model.main())
