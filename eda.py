"""Exploratory data analysis: who commits fraud, and what the fields say about it.

Writes ``reports/eda.md`` with PNG plots under ``reports/eda/``: class counts, account types, the
fraud rate and distribution of every field we expect to matter, missing values per field, and a
written reading whose every number is computed from the data in hand (so it stays true on the
client's data as well as on the synthetic data).

Source: the client's labelled data (``data/data.zip``) when present or named with ``--data``;
otherwise synthetic events from ``synth.generate_events``. The report only holds aggregates
(counts, rates, quantiles); categories with fewer than ``MIN_CELL`` events are pooled into
"other" so that no single event's label can be read off a table. A report built from a data
file is still confidential (it describes the client's business) and must not be committed.

    python eda.py [--data PATH] [--out reports] [--n 14337] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

import dataset

PROJECT_DIR = Path(__file__).resolve().parent
CONFIDENTIAL_DIR_NAME = "confidential"  # reports/confidential/ is ignored by git
REPORT_NAME = "eda.md"
PLOT_DIR_NAME = "eda"
MIN_CELL = 10  # smaller categories are pooled into "other": no table may expose one event's label
SECONDS_PER_DAY = 86_400
FRAUD_COLOUR = "#c0392b"
LEGIT_COLOUR = "#2e86c1"
OTHER = "other"
MISSING = "missing"


@dataclass(frozen=True)
class NumericFeature:
    """A numeric column of the analysis frame and how to show it."""

    column: str
    label: str
    log_scale: bool = True
    leaky: bool = False  # known only after tickets sell or the event ends: not usable live


NUMERIC_FEATURES = (
    NumericFeature("user_age", "account age when the event was created (days)"),
    NumericFeature("days_to_start", "days from event creation to event start"),
    NumericFeature("sale_duration", "sale_duration: days from publishing to start"),
    NumericFeature("body_length", "description length (characters)"),
    NumericFeature("name_length", "event name length (characters)", log_scale=False),
    NumericFeature("num_payouts", "num_payouts: the user's payouts before the event"),
    NumericFeature("prior_payouts", "previous_payouts entries dated before the event"),
    NumericFeature("mean_ticket_price", "mean ticket price over ticket tiers"),
    NumericFeature("face_value", "tickets on offer at face value (sum of cost x quantity)"),
    NumericFeature("ticket_tiers", "number of ticket tiers", log_scale=False),
    NumericFeature("org_facebook", "org_facebook (organiser's Facebook count)"),
    NumericFeature("org_twitter", "org_twitter (organiser's Twitter count)"),
    NumericFeature("gts", "gts: gross ticket sales so far (LEAKY)", leaky=True),
    NumericFeature("num_order", "num_order: orders so far (LEAKY)", leaky=True),
)

# yes/no columns known only after the event: shown to document the leak, never for the model
LEAKY_FLAGS = frozenset({"empty_payout_list"})

# column -> what 1 means
FLAG_FEATURES = {
    "has_logo": "the event has a logo",
    "has_analytics": "the organiser uses analytics",
    "fb_published": "published to Facebook",
    "has_header": "the page has a header image",
    "show_map": "the page shows a map",
    "listed": "the event is listed publicly (listed == 'y')",
    "new_account": "account created the same day as the event (user_age == 0)",
    "no_prior_payouts": "no previous_payouts entry dated before the event",
    "empty_payout_list": "previous_payouts is empty as extracted (LEAKY: includes later payouts)",
    "country_mismatch": "venue country differs from organiser country",
}

CATEGORY_FEATURES = {
    "user_type": "user_type (account type code)",
    "channels": "channels (sales channel code)",
    "currency": "currency",
    "payout_type": "payout_type (how the organiser is paid)",
    "delivery_method": "delivery_method (ticket delivery code)",
    "country": "country (organiser)",
}


# ---------------------------------------------------------------- loading

def resolve_data_path(data_arg: str | None, default_path: Path | None = None) -> Path | None:
    """The data file to analyse: --data if given (must exist), else the default file if present."""
    if data_arg:
        path = Path(data_arg)
        if not path.exists():
            raise dataset.DataError(f"no data file at {path}")
        return path
    default_path = default_path if default_path is not None else PROJECT_DIR / dataset.DEFAULT_DATA_PATH
    return default_path if default_path.exists() else None


def load_records(data_path: Path | None, n: int = 14337, seed: int = 0) -> tuple[list[dict], str]:
    """Records with the fraud label and a sentence naming their source (file or synthetic)."""
    if data_path is not None:
        records = dataset.load_labelled(data_path)
        return records, f"data file `{data_path}` ({len(records):,} labelled events)"
    import synth  # imported here: only needed when there is no data file

    records = dataset.add_labels([dataset.normalise_record(r) for r in synth.generate_events(n=n, seed=seed)])
    label = (f"synthetic data from `synth.generate_events(n={n}, seed={seed})` "
             f"({len(records):,} events); not the client's data")
    return records, label


# ---------------------------------------------------------------- one flat frame

def as_number(value) -> float:
    """A float for ints and floats (bools excluded); NaN for anything missing or non-numeric."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float("nan")


def as_category(value) -> str:
    """A category label: 'missing' for None, '1' rather than '1.0' so float-coded ints group together."""
    if dataset.is_missing(value):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _timestamp(text) -> float:
    """Unix seconds from a 'YYYY-MM-DD HH:MM:SS' string (treated as UTC); NaN if unparseable."""
    if not isinstance(text, str):
        return float("nan")
    try:
        # fromisoformat is C-fast and reads "YYYY-MM-DD HH:MM:SS"; strptime was the slowest step here
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return float("nan")


def prior_payout_count(record: dict) -> float:
    """Payout-history entries created before the event: the only part of the history usable live."""
    history = record.get("previous_payouts")
    created = as_number(record.get("event_created"))
    if not isinstance(history, list) or np.isnan(created):
        return float("nan")
    return float(sum(1 for p in history if isinstance(p, dict) and _timestamp(p.get("created")) < created))


def ticket_summary(record: dict) -> tuple[float, float, float]:
    """(mean ticket price, face value on offer = sum of cost * quantity_total, number of tiers)."""
    tiers = record.get("ticket_types")
    if not isinstance(tiers, list) or not tiers:
        return float("nan"), float("nan"), float(0 if isinstance(tiers, list) else "nan")
    costs = [as_number(t.get("cost")) for t in tiers if isinstance(t, dict)]
    quantities = [as_number(t.get("quantity_total")) for t in tiers if isinstance(t, dict)]
    known = [c for c in costs if not np.isnan(c)]
    face = sum(c * q for c, q in zip(costs, quantities) if not (np.isnan(c) or np.isnan(q)))
    return (float(np.mean(known)) if known else float("nan")), float(face), float(len(tiers))


def _flag(value) -> float:
    """1.0 / 0.0 for a yes/no value (0/1 numbers, 'y'/'n'); NaN when missing."""
    if isinstance(value, str):
        return {"y": 1.0, "n": 0.0}.get(value.lower(), float("nan"))
    number = as_number(value)
    return float("nan") if np.isnan(number) else float(number != 0)


def _mismatch(a, b) -> float:
    """1.0 if two known values differ, 0.0 if equal, NaN if either is missing."""
    if dataset.is_missing(a) or dataset.is_missing(b):
        return float("nan")
    return float(a != b)


def analysis_row(record: dict) -> dict:
    """The flat, derived view of one labelled record that every table and plot is built from."""
    created = as_number(record.get("event_created"))
    start = as_number(record.get("event_start"))
    user_age = as_number(record.get("user_age"))
    history = record.get("previous_payouts")
    mean_price, face_value, tiers = ticket_summary(record)
    prior = prior_payout_count(record)
    row = {
        "fraud": bool(record["fraud"]),
        "acct_type": as_category(record.get(dataset.LABEL_FIELD)),
        "year": datetime.fromtimestamp(created, tz=timezone.utc).year if not np.isnan(created) else np.nan,
        "days_to_start": (start - created) / SECONDS_PER_DAY,
        "prior_payouts": prior,
        "mean_ticket_price": mean_price,
        "face_value": face_value,
        "ticket_tiers": tiers,
        "new_account": float("nan") if np.isnan(user_age) else float(user_age == 0),
        "no_prior_payouts": float("nan") if np.isnan(prior) else float(prior == 0),
        "empty_payout_list": float(not history) if isinstance(history, list) or history is None else np.nan,
        "country_mismatch": _mismatch(record.get("country"), record.get("venue_country")),
    }
    for column in ("user_age", "sale_duration", "body_length", "name_length", "num_payouts",
                   "org_facebook", "org_twitter", "gts", "num_order"):
        row[column] = as_number(record.get(column))
    for column in ("has_logo", "has_analytics", "fb_published", "has_header", "show_map", "listed"):
        row[column] = _flag(record.get(column))
    for column in CATEGORY_FEATURES:
        row[column] = as_category(record.get(column))
    return row


def analysis_frame(records: list[dict]) -> pd.DataFrame:
    """One row per labelled record with the derived columns used by the report."""
    return pd.DataFrame([analysis_row(r) for r in records])


# ---------------------------------------------------------------- statistics

def rate(fraud: pd.Series) -> float | None:
    """Share of True in a boolean series; None when empty."""
    return float(fraud.mean()) if len(fraud) else None


def rate_where(frame: pd.DataFrame, mask: pd.Series) -> tuple[float | None, int]:
    """Fraud rate and event count where mask holds; the rate is None (suppressed) under MIN_CELL events."""
    subset = frame.loc[mask.fillna(False).astype(bool), "fraud"]
    return (rate(subset) if len(subset) >= MIN_CELL else None), int(len(subset))


def class_quantiles(frame: pd.DataFrame, column: str, qs=(0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
    """Quantiles of a column for fraud and for other events (missing values ignored)."""
    result = {}
    for name, is_fraud in (("fraud", True), ("not fraud", False)):
        values = frame.loc[frame["fraud"] == is_fraud, column].dropna()
        result[name] = [float(values.quantile(q)) if len(values) else None for q in qs]
    return result


def class_median(frame: pd.DataFrame, column: str, is_fraud: bool) -> float | None:
    """Median of a column within one class; None when the class has no known value."""
    values = frame.loc[frame["fraud"] == is_fraud, column].dropna()
    return float(values.median()) if len(values) else None


def share_in_class(frame: pd.DataFrame, mask: pd.Series, is_fraud: bool) -> float | None:
    """Share of one class's events (with a known value) for which mask holds."""
    in_class = frame["fraud"] == is_fraud
    known = in_class & mask.notna()
    return float(mask[known].astype(bool).mean()) if known.any() else None


def single_feature_auc(frame: pd.DataFrame, column: str) -> tuple[float | None, str, int]:
    """How well one column alone ranks fraud first (ROC AUC folded to >= 0.5) and in which direction."""
    known = frame[[column, "fraud"]].dropna()
    if known["fraud"].nunique() < 2 or known[column].nunique() < 2:
        return None, "", int(len(known))
    # Only the order counts: an infinite value (a price of 1e308 times its tickets) ranks as the
    # largest finite one, which roc_auc_score takes (it refuses infinity).
    largest = np.finfo(float).max
    auc = float(roc_auc_score(known["fraud"].astype(int), known[column].astype(float).clip(-largest, largest)))
    direction = "higher means more fraud" if auc >= 0.5 else "lower means more fraud"
    return max(auc, 1 - auc), direction, int(len(known))


def category_rates(frame: pd.DataFrame, column: str, min_cell: int = MIN_CELL) -> pd.DataFrame:
    """Events, fraud events and fraud rate per category; categories under min_cell pooled as 'other'."""
    counts = frame[column].value_counts()
    small = set(counts[counts < min_cell].index)
    pooled = frame[column].where(~frame[column].isin(small), OTHER)
    table = frame.groupby(pooled)["fraud"].agg(events="size", fraud="sum")
    table["fraud_rate"] = table["fraud"] / table["events"]
    # a pooled group can still be tiny: hide its fraud figures rather than expose a few labels
    table.loc[table["events"] < min_cell, ["fraud", "fraud_rate"]] = np.nan
    table = table.sort_values("events", ascending=False)
    if OTHER in table.index and len(table) > 1:  # "other" last, whatever its size
        table = pd.concat([table.drop(index=OTHER), table.loc[[OTHER]]])
    return table


def extreme_category(table: pd.DataFrame, highest: bool) -> tuple[str, float, int] | None:
    """The named category (not 'other' or 'missing') with the highest or lowest fraud rate."""
    named = table.drop(index=[i for i in (OTHER, MISSING) if i in table.index])
    if named.empty:
        return None
    label = named["fraud_rate"].idxmax() if highest else named["fraud_rate"].idxmin()
    return str(label), float(named.loc[label, "fraud_rate"]), int(named.loc[label, "events"])


def missing_table(records: list[dict], fields: list[str] | None = None) -> pd.DataFrame:
    """Per raw field: events where it is missing (absent, null, NaN or ''), empty lists, fraud rate when missing."""
    if fields is None:
        fields = sorted({key for record in records for key in record} - {"fraud"})
    fraud = np.array([bool(r["fraud"]) for r in records])
    rows = []
    for field in fields:
        values = [r.get(field) for r in records]
        missing = np.array([dataset.is_missing(v) for v in values])
        empty = sum(1 for v in values if isinstance(v, list) and not v)
        rows.append({
            "field": field,
            "missing": int(missing.sum()),
            "missing_share": float(missing.mean()) if len(records) else 0.0,
            "empty_list": int(empty),
            # suppressed for small groups: it would reveal individual labels
            "fraud_rate_when_missing": float(fraud[missing].mean()) if missing.sum() >= MIN_CELL else None,
        })
    return pd.DataFrame(rows).set_index("field")


# ---------------------------------------------------------------- formatting

def pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage string; 'n/a' when unknown."""
    return "n/a" if value is None or pd.isna(value) else f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 1) -> str:
    """A number with thousands separators, integers without decimals; 'n/a' when unknown."""
    if value is None or pd.isna(value):
        return "n/a"
    text = f"{value:,.{digits}f}"
    return text[: -(digits + 1)] if digits and text.endswith("." + "0" * digits) else text


def compare(a: float | None, b: float | None, more: str, less: str, same: str = "about the same as") -> str:
    """The word that truthfully compares a to b (so prose never contradicts the numbers)."""
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return "not comparable with"
    if np.isclose(a, b, rtol=0.02, atol=1e-9):
        return same
    return more if a > b else less


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- plots

def _save(fig: Figure, plot_dir: Path, name: str) -> str:
    """Save a figure as PNG under plot_dir; return its path relative to the report."""
    fig.tight_layout()
    fig.savefig(plot_dir / name, dpi=90)
    return f"{PLOT_DIR_NAME}/{name}"


def plot_class_counts(frame: pd.DataFrame, plot_dir: Path) -> str:
    """Bar chart: fraud vs not-fraud event counts."""
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    counts = [int((~frame["fraud"]).sum()), int(frame["fraud"].sum())]
    bars = ax.bar(["not fraud", "fraud"], counts, color=[LEGIT_COLOUR, FRAUD_COLOUR])
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts])
    ax.set_ylabel("events")
    ax.set_title("Events by class")
    return _save(fig, plot_dir, "class_counts.png")


def plot_acct_types(table: pd.DataFrame, plot_dir: Path) -> str:
    """Horizontal bars: events per acct_type, fraud types in red."""
    fig = Figure(figsize=(6, 0.35 * len(table) + 1.2))
    ax = fig.subplots()
    colours = [FRAUD_COLOUR if dataset.is_fraud(t) else LEGIT_COLOUR for t in table.index]
    bars = ax.barh(list(table.index)[::-1], list(table["events"])[::-1], color=colours[::-1])
    ax.bar_label(bars, labels=[f"{c:,}" for c in list(table["events"])[::-1]], padding=2)
    ax.set_xscale("log")
    ax.set_xlabel("events (log scale); red = fraud label")
    ax.set_title("acct_type")
    return _save(fig, plot_dir, "acct_type.png")


def _bin_edges(values: np.ndarray, log_scale: bool, bins: int = 30) -> np.ndarray:
    """Histogram edges between the 1st and 99th percentile, spaced evenly on the axis used."""
    low, high = np.nanpercentile(values, [1, 99])
    if high <= low:
        high = low + 1
    if not log_scale:
        return np.linspace(low, high, bins + 1)
    signed = lambda x: np.sign(x) * np.log1p(np.abs(x))  # noqa: E731 - even spacing on a symlog axis
    grid = np.linspace(signed(low), signed(high), bins + 1)
    return np.unique(np.sign(grid) * np.expm1(np.abs(grid)))


def rate_by_quantile_bin(frame: pd.DataFrame, column: str, bins: int = 8) -> pd.DataFrame:
    """Fraud rate within quantile bins of a column (tied edges merged), plus a 'missing' row."""
    known = frame[[column, "fraud"]].dropna()
    rows = []
    if known[column].nunique() > 1:
        codes = pd.qcut(known[column], q=bins, duplicates="drop")
        for _, group in known.groupby(codes, observed=True):
            low, high = group[column].min(), group[column].max()  # labels from the values really in the bin
            rows.append({"bin": num(low) if low == high else f"{num(low)} to {num(high)}",
                         "events": len(group), "fraud_rate": group["fraud"].mean()})
    missing = frame.loc[frame[column].isna(), "fraud"]
    if len(missing) >= MIN_CELL:
        rows.append({"bin": MISSING, "events": len(missing), "fraud_rate": missing.mean()})
    return pd.DataFrame(rows, columns=["bin", "events", "fraud_rate"])


def plot_numeric(frame: pd.DataFrame, feature: NumericFeature, plot_dir: Path) -> str | None:
    """Two panels: the distribution per class, and the fraud rate across quantile bins."""
    values = frame[feature.column].to_numpy(dtype=float)
    if np.isnan(values).all():
        return None
    edges = _bin_edges(values[~np.isnan(values)], feature.log_scale)
    fig = Figure(figsize=(10, 3.4))
    left, right = fig.subplots(1, 2)
    for is_fraud, colour, name in ((False, LEGIT_COLOUR, "not fraud"), (True, FRAUD_COLOUR, "fraud")):
        v = frame.loc[frame["fraud"] == is_fraud, feature.column].dropna().to_numpy(dtype=float)
        if len(v):
            clipped = np.clip(v, edges[0], edges[-1])
            left.hist(clipped, bins=edges, weights=np.full(len(v), 1 / len(v)),
                      histtype="step", linewidth=2, color=colour, label=f"{name} (n={len(v):,})")
    if feature.log_scale:
        left.set_xscale("symlog", linthresh=1)
    left.set_xlabel(feature.label + (" (symlog)" if feature.log_scale else ""))
    left.set_ylabel("share of the class's events")
    left.legend(fontsize=8)
    left.set_title("Distribution by class (clipped to p1-p99)", fontsize=10)
    bins = rate_by_quantile_bin(frame, feature.column)
    right.bar(range(len(bins)), bins["fraud_rate"], color=FRAUD_COLOUR)
    right.axhline(frame["fraud"].mean(), color="grey", linestyle="--", label="overall fraud rate")
    right.set_xticks(range(len(bins)), bins["bin"], rotation=35, ha="right", fontsize=7)
    right.set_ylabel("fraud rate")
    right.legend(fontsize=8)
    right.set_title("Fraud rate by quantile bin", fontsize=10)
    return _save(fig, plot_dir, f"num_{feature.column}.png")


def plot_flags(table: pd.DataFrame, plot_dir: Path) -> str:
    """Grouped bars: fraud rate when each yes/no field is 0 and when it is 1."""
    fig = Figure(figsize=(10, 3.8))
    ax = fig.subplots()
    x = np.arange(len(table))
    # suppressed rates (None, under MIN_CELL events) are drawn as no bar
    ax.bar(x - 0.2, table["rate_0"].astype(float).fillna(0), width=0.4, color=LEGIT_COLOUR, label="when 0 / no")
    ax.bar(x + 0.2, table["rate_1"].astype(float).fillna(0), width=0.4, color=FRAUD_COLOUR, label="when 1 / yes")
    labels = [f"{c} (LEAKY)" if c in LEAKY_FLAGS else c for c in table.index]
    ax.set_xticks(x, labels, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("fraud rate")
    ax.legend(fontsize=8)
    ax.set_title("Fraud rate by yes/no field")
    return _save(fig, plot_dir, "flags.png")


def plot_category(table: pd.DataFrame, column: str, overall: float, plot_dir: Path) -> str:
    """Horizontal bars: fraud rate per category, labelled with event counts."""
    fig = Figure(figsize=(6, 0.32 * len(table) + 1.3))
    ax = fig.subplots()
    labels = [str(i) for i in table.index][::-1]
    bars = ax.barh(labels, list(table["fraud_rate"].fillna(0))[::-1], color=FRAUD_COLOUR)  # suppressed: no bar
    ax.bar_label(bars, labels=[f"n={n:,}" for n in list(table["events"])[::-1]], padding=2, fontsize=7)
    ax.axvline(overall, color="grey", linestyle="--", label="overall fraud rate")
    ax.set_xlabel("fraud rate")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Fraud rate by {column}")
    return _save(fig, plot_dir, f"cat_{column}.png")


def plot_by_year(table: pd.DataFrame, plot_dir: Path) -> str:
    """Bars of events per year of creation with the fraud rate as a line."""
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    years = [str(i) for i in table.index]
    ax.bar(years, table["events"], color=LEGIT_COLOUR, alpha=0.6)
    ax.set_ylabel("events", color=LEGIT_COLOUR)
    twin = ax.twinx()
    twin.plot(years, table["fraud_rate"], color=FRAUD_COLOUR, marker="o")  # suppressed years leave a gap
    twin.set_ylabel("fraud rate", color=FRAUD_COLOUR)
    twin.set_ylim(bottom=0)
    ax.set_title("Events and fraud rate by year of event_created")
    return _save(fig, plot_dir, "by_year.png")


def plot_missing(table: pd.DataFrame, plot_dir: Path) -> str:
    """Horizontal bars: share of events missing each field (fields never missing left out)."""
    shown = table[table["missing"] > 0].sort_values("missing_share")
    fig = Figure(figsize=(6, 0.3 * max(len(shown), 1) + 1.2))
    ax = fig.subplots()
    ax.barh(list(shown.index), list(shown["missing_share"]), color="grey")
    ax.set_xlabel("share of events missing (null, NaN, '' or absent)")
    ax.set_title("Missing values per field")
    return _save(fig, plot_dir, "missing.png")


# ---------------------------------------------------------------- tables

def flag_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per yes/no field: fraud rate when 0 and when 1, and the share of each class with 1."""
    rows = {}
    for column in FLAG_FEATURES:
        r0, n0 = rate_where(frame, frame[column] == 0)
        r1, n1 = rate_where(frame, frame[column] == 1)
        rows[column] = {"rate_0": r0, "n_0": n0, "rate_1": r1, "n_1": n1,
                        "share_fraud": share_in_class(frame, frame[column] == 1, True),
                        "share_legit": share_in_class(frame, frame[column] == 1, False),
                        "missing": int(frame[column].isna().sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


def year_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Events, fraud events and fraud rate per year of event creation (small years pooled)."""
    years = frame["year"].dropna().astype(int).astype(str)
    return category_rates(frame.loc[years.index].assign(year=years), "year").sort_index()


def auc_table(frame: pd.DataFrame) -> list[tuple[str, float, str, int, bool]]:
    """Single-feature AUCs for numeric and yes/no columns, best first."""
    rows = []
    candidates = [(f.column, f.leaky) for f in NUMERIC_FEATURES] + [(c, c in LEAKY_FLAGS) for c in FLAG_FEATURES]
    for column, leaky in candidates:
        auc, direction, known = single_feature_auc(frame, column)
        if auc is not None:
            rows.append((column, auc, direction, known, leaky))
    return sorted(rows, key=lambda row: -row[1])


# ---------------------------------------------------------------- the written reading

def _category_sentence(frame: pd.DataFrame, column: str) -> str | None:
    """Which category of a field has the highest and lowest fraud rate, with its size."""
    table = category_rates(frame, column)
    high, low = extreme_category(table, True), extreme_category(table, False)
    if high is None or low is None or high[0] == low[0]:
        return None
    return (f"`{column}`: the highest fraud rate among categories with at least {MIN_CELL} events is "
            f"{pct(high[1])} for `{high[0]}` ({high[2]:,} events); the lowest is {pct(low[1])} "
            f"for `{low[0]}` ({low[2]:,} events).")


def _median_sentence(frame: pd.DataFrame, column: str, what: str, more: str, less: str) -> str:
    """'Fraud <what> is <more|less> ...: median X vs Y' with the word chosen from the numbers."""
    mf, ml = class_median(frame, column, True), class_median(frame, column, False)
    return f"{what}: the fraud median is {num(mf)} vs {num(ml)} for other events ({compare(mf, ml, more, less)})."


def written_reading(frame: pd.DataFrame, missing: pd.DataFrame, flags: pd.DataFrame,
                    aucs: list, years: pd.DataFrame) -> list[str]:
    """Plain-language findings, every figure and every comparison word computed from the data."""
    n, n_fraud = len(frame), int(frame["fraud"].sum())
    overall = n_fraud / n if n else None
    out = [f"Overall fraud rate: {pct(overall, 2)} ({n_fraud:,} of {n:,} events). A rule that calls "
           f"nothing fraud would be {pct(None if overall is None else 1 - overall)} accurate and catch no "
           "fraud at all, so accuracy cannot be the measure of success."]

    r_new, n_new = rate_where(frame, frame["new_account"] == 1)
    r_old, n_old = rate_where(frame, frame["new_account"] == 0)
    out.append(f"New accounts: the fraud rate is {pct(r_new)} when user_age == 0 ({n_new:,} events) vs "
               f"{pct(r_old)} otherwise ({n_old:,} events); {pct(flags.loc['new_account', 'share_fraud'])} of "
               f"fraud events vs {pct(flags.loc['new_account', 'share_legit'])} of other events come from an "
               "account created the same day.")

    r_none, n_none = rate_where(frame, frame["num_payouts"] == 0)
    r_some, n_some = rate_where(frame, frame["num_payouts"] > 0)
    out.append(f"Payout history: the fraud rate is {pct(r_none)} when num_payouts == 0 ({n_none:,} events) "
               f"vs {pct(r_some)} when it is above 0 ({n_some:,} events).")

    joint = (frame["user_age"] <= 1) & (frame["no_prior_payouts"] == 1)
    r_joint, n_joint = rate_where(frame, joint)
    both = (frame["new_account"] == 1) & (frame["no_prior_payouts"] == 1)
    out.append(f"Together: among events with user_age <= 1 and no payout dated before the event the fraud rate "
               f"is {pct(r_joint)} ({n_joint:,} events), so {pct(None if r_joint is None else 1 - r_joint)} of "
               f"them are not fraud. user_age == 0 with no earlier payout describes "
               f"{pct(share_in_class(frame, both, True))} of fraud vs {pct(share_in_class(frame, both, False))} "
               "of other events.")

    out.append(_payout_leak_sentence(flags))
    out.append(_median_sentence(frame, "days_to_start", "Days from creation to start", "later", "sooner"))
    r_empty, n_empty = rate_where(frame, frame["body_length"] == 0)
    r_text, _ = rate_where(frame, frame["body_length"] > 0)
    out.append(_median_sentence(frame, "body_length", "Description length", "longer", "shorter")
               + f" The fraud rate is {pct(r_empty)} for events with an empty description ({n_empty:,} events)"
               f" vs {pct(r_text)} for the rest.")
    out.append(_median_sentence(frame, "name_length", "Event name length", "longer", "shorter"))

    for column in ("has_logo", "has_analytics", "fb_published", "has_header", "show_map"):
        row = flags.loc[column]
        out.append(f"`{column}` is 1 for {pct(row['share_fraud'])} of fraud vs {pct(row['share_legit'])} of "
                   f"other events; the fraud rate is {pct(row['rate_0'])} when it is 0 and "
                   f"{pct(row['rate_1'])} when it is 1"
                   + (f" ({int(row['missing']):,} events have it missing)." if row["missing"] else "."))

    for column in CATEGORY_FEATURES:
        sentence = _category_sentence(frame, column)
        if sentence:
            out.append(sentence)
    r_no_payout, n_no_payout = rate_where(frame, frame["payout_type"] == MISSING)
    if n_no_payout >= MIN_CELL:
        out.append(f"An empty payout_type has a fraud rate of {pct(r_no_payout)} ({n_no_payout:,} events).")

    out.append(_median_sentence(frame, "mean_ticket_price", "Mean ticket price", "higher", "lower"))
    out.append(_median_sentence(frame, "face_value", "Face value of tickets on offer (money at stake)",
                                "higher", "lower"))
    for column in ("org_facebook", "org_twitter"):
        zero = frame[column] == 0
        out.append(f"`{column}` is 0 for {pct(share_in_class(frame, zero.where(frame[column].notna()), True))} "
                   f"of fraud vs {pct(share_in_class(frame, zero.where(frame[column].notna()), False))} "
                   "of other events.")
    row = flags.loc["country_mismatch"]
    out.append(f"Venue country differs from organiser country in {pct(row['share_fraud'])} of fraud vs "
               f"{pct(row['share_legit'])} of other events (where both are known).")

    out.append(_year_sentence(years))
    out.append(_missing_sentence(missing, overall))
    out.append(_auc_sentence(aucs))

    gf = share_in_class(frame, (frame["gts"] == 0).where(frame["gts"].notna()), True)
    gl = share_in_class(frame, (frame["gts"] == 0).where(frame["gts"].notna()), False)
    out.append(f"Leakage check: gts (sales so far) is 0 for {pct(gf)} of fraud vs {pct(gl)} of other events. "
               "Whatever it shows, it is only known after tickets sell, so the model must not use it "
               "(nor num_order, approx_payout_date, quantity_sold, or payouts dated after the event).")
    return [sentence for sentence in out if sentence]


def _payout_leak_sentence(flags: pd.DataFrame) -> str:
    """Compare the as-extracted payout list with the usable 'payouts before the event' view."""
    leak, usable = flags.loc["empty_payout_list"], flags.loc["no_prior_payouts"]
    gap_leak = (leak["share_fraud"] or 0) - (leak["share_legit"] or 0)
    gap_usable = (usable["share_fraud"] or 0) - (usable["share_legit"] or 0)
    verdict = ("far sharper than the usable view, a sign the extracted list leaks what happened after the "
               "event" if gap_leak > gap_usable + 0.05 else "no sharper than the usable view")
    return (f"Payout list as extracted: previous_payouts is empty for {pct(leak['share_fraud'])} of fraud vs "
            f"{pct(leak['share_legit'])} of other events, while 'no payout dated before the event' holds for "
            f"{pct(usable['share_fraud'])} vs {pct(usable['share_legit'])}: {verdict}. Only entries dated before "
            "the event may be used.")


def _year_sentence(years: pd.DataFrame) -> str | None:
    """How much the yearly fraud rate moves, judged from the numbers (1 point or more = it moves)."""
    named = years.drop(index=[OTHER], errors="ignore")
    if len(named) < 2:
        return None
    high, low = named["fraud_rate"].idxmax(), named["fraud_rate"].idxmin()
    spread = named.loc[high, "fraud_rate"] - named.loc[low, "fraud_rate"]
    verdict = ("the base rate moves, so thresholds need checking on recent data" if spread >= 0.01
               else "the base rate is stable across these years")
    return (f"Over time the yearly fraud rate ranges from {pct(named.loc[low, 'fraud_rate'])} ({low}) to "
            f"{pct(named.loc[high, 'fraud_rate'])} ({high}): {verdict}.")


def _missing_sentence(missing: pd.DataFrame, overall: float) -> str | None:
    """The most-missing fields, and the fields whose absence changes the fraud rate at least twofold."""
    gaps = missing[missing["missing"] > 0].sort_values("missing_share", ascending=False)
    if gaps.empty:
        return "No field is ever missing in this data."
    text = "Most often missing: " + ", ".join(f"`{f}` {pct(s)}" for f, s in gaps["missing_share"].head(3).items())
    rates = gaps["fraud_rate_when_missing"].dropna()
    telling = rates[(rates >= 2 * overall) | (rates <= overall / 2)]
    if telling.empty:
        return text + ". No field's absence moves the fraud rate twofold from the overall rate."
    return (text + ". Missing is itself a signal for " + ", ".join(f"`{f}` (fraud rate {pct(r)} when missing)"
                                                                   for f, r in telling.items())
            + ", so the model should see 'missing' rather than a silently filled value.")


def _auc_sentence(aucs: list) -> str | None:
    """The strongest usable single fields, and whether any one of them alone nearly separates the classes."""
    usable = [row for row in aucs if not row[4]]
    if not usable:
        return None
    listed = ", ".join(f"`{c}` ({auc:.2f}, {d})" for c, auc, d, _, _ in usable[:3])
    text = f"Strongest single usable fields by AUC (0.5 = chance, 1.0 = perfect on its own): {listed}."
    best_field, best = usable[0][0], usable[0][1]
    if best >= 0.95:
        return text + (f" `{best_field}` alone nearly separates the classes: check it for leakage or a data "
                       "quirk before trusting it.")
    return text + " No single field separates the classes on its own, so a model must combine them."


# ---------------------------------------------------------------- the report

def _numeric_section(frame: pd.DataFrame, plot_dir: Path) -> list[str]:
    """Quantile tables by class and a plot for each numeric feature."""
    lines = ["## Numeric fields by class", "",
             "Quantiles p10 / p25 / p50 (median) / p75 / p90 per class, missing values left out. "
             "Left plot: distribution per class; right plot: fraud rate in each quantile bin "
             "(dashed line = overall rate).", ""]
    for feature in NUMERIC_FEATURES:
        quantiles = class_quantiles(frame, feature.column)
        lines += [f"### {feature.label}", ""]
        if feature.leaky:
            lines += ["*Known only after tickets sell: shown to document the leak, not usable by the model.*", ""]
        known = frame.groupby("fraud")[feature.column].count()  # non-missing values per class
        rows = [[name] + [num(v) for v in values] + [f"{int(known.get(name == 'fraud', 0)):,}"]
                for name, values in quantiles.items()]
        lines += [markdown_table(["class", "p10", "p25", "p50", "p75", "p90", "known"], rows), ""]
        image = plot_numeric(frame, feature, plot_dir)
        if image:
            lines += [f"![{feature.column}]({image})", ""]
    return lines


def _category_section(frame: pd.DataFrame, plot_dir: Path, overall: float) -> list[str]:
    """Per categorical field: events, fraud events, fraud rate per category, and a plot."""
    lines = ["## Categorical fields", "",
             f"Categories with fewer than {MIN_CELL} events are pooled into `{OTHER}`; `{MISSING}` means "
             "null or empty.", ""]
    for column, label in CATEGORY_FEATURES.items():
        table = category_rates(frame, column)
        rows = [[f"`{i}`", f"{int(r.events):,}", _count_cell(r.fraud), pct(r.fraud_rate)] for i, r in table.iterrows()]
        lines += [f"### {label}", "", markdown_table(["value", "events", "fraud", "fraud rate"], rows), "",
                  f"![{column}]({plot_category(table, column, overall, plot_dir)})", ""]
    return lines


def _rate_cell(value: float | None, events: int) -> str:
    """A fraud rate with its event count; 'suppressed' when the group is under MIN_CELL events."""
    shown = pct(value) if events >= MIN_CELL else "suppressed"
    return f"{shown} (n={int(events):,})"


def _count_cell(value: float) -> str:
    """A count for a table cell, or a note that it was suppressed (NaN) for a group under MIN_CELL."""
    return f"suppressed (< {MIN_CELL} events)" if pd.isna(value) else f"{int(value):,}"


def _missing_rate_cell(row: pd.Series) -> str:
    """The 'fraud rate when missing' cell: blank if never missing, suppressed for small groups."""
    if row["missing"] == 0:
        return ""
    if row["missing"] < MIN_CELL:
        return f"suppressed (< {MIN_CELL} events)"
    return pct(row["fraud_rate_when_missing"])


def _clear_old_plots(plot_dir: Path) -> None:
    """Remove PNGs from a previous run so the folder holds exactly what the report references."""
    for old in plot_dir.glob("*.png"):
        old.unlink()


def build_report(records: list[dict], source_label: str, out_dir: str | Path,
                 confidential: bool = False) -> Path:
    """Write out_dir/eda.md and out_dir/eda/*.png from labelled records; return the report path."""
    if not records:
        raise dataset.DataError("no records to analyse")
    if any("fraud" not in r for r in records):  # raw records: label copies, never the caller's dicts
        records = dataset.add_labels([dict(r) for r in records])
    out_dir = Path(out_dir)
    plot_dir = out_dir / PLOT_DIR_NAME
    plot_dir.mkdir(parents=True, exist_ok=True)
    _clear_old_plots(plot_dir)

    frame = analysis_frame(records)
    overall = float(frame["fraud"].mean())
    missing = missing_table(records)
    flags = flag_table(frame)
    aucs = auc_table(frame)
    years = year_table(frame)
    accounts = category_rates(frame, "acct_type", min_cell=1)  # counts only: no per-event label exposed

    lines = ["# Exploratory data analysis: fraud in event listings", "",
             f"**Source:** {source_label}.", ""]
    if confidential:
        lines += ["> **CONFIDENTIAL:** built from a data file. It holds only aggregates, but they describe the "
                  "client's business: do not commit, share or attach this report.", ""]
    lines += ["Regenerate with `python eda.py` (add `--data PATH` for a data file). Only aggregates appear "
              f"here: counts, rates and quantiles; categories under {MIN_CELL} events are pooled.", "",
              "## What the data says", ""]
    lines += [f"- {sentence}" for sentence in written_reading(frame, missing, flags, aucs, years)]

    lines += ["", "## Fraud vs not fraud", "",
              markdown_table(["class", "events", "share"],
                             [["not fraud", f"{int((~frame['fraud']).sum()):,}", pct(1 - overall, 2)],
                              ["fraud", f"{int(frame['fraud'].sum()):,}", pct(overall, 2)]]), "",
              f"![class counts]({plot_class_counts(frame, plot_dir)})", "",
              "## Account types (acct_type, the label)", "",
              "Fraud is any acct_type containing `fraud`; spammers and terms-of-service cases are not fraud.", "",
              markdown_table(["acct_type", "events", "counts as fraud"],
                             [[f"`{i}`", f"{int(r.events):,}", "yes" if dataset.is_fraud(i) else "no"]
                              for i, r in accounts.iterrows()]), "",
              f"![acct_type]({plot_acct_types(accounts, plot_dir)})", "",
              "## Which single fields separate fraud best", "",
              "ROC AUC of each field used alone (0.5 = no better than chance, 1.0 = separates perfectly). "
              "Leaky fields are marked: they are known only after sales and must not be used.", "",
              markdown_table(["field", "AUC alone", "direction", "events with a value", "leaky"],
                             [[f"`{c}`", f"{a:.3f}", d, f"{k:,}", "LEAKY" if leaky else ""]
                              for c, a, d, k, leaky in aucs]), ""]
    lines += _numeric_section(frame, plot_dir)
    lines += ["## Yes/no fields", "",
              markdown_table(["field", "meaning of 1", "fraud rate when 0", "fraud rate when 1",
                              "share of fraud with 1", "share of others with 1", "missing"],
                             [[f"`{c}`", FLAG_FEATURES[c], _rate_cell(r.rate_0, r.n_0),
                               _rate_cell(r.rate_1, r.n_1), pct(r.share_fraud), pct(r.share_legit),
                               f"{int(r.missing):,}"] for c, r in flags.iterrows()]), "",
              f"![flags]({plot_flags(flags, plot_dir)})", ""]
    lines += _category_section(frame, plot_dir, overall)
    lines += ["## Over time", "",
              markdown_table(["year created", "events", "fraud", "fraud rate"],
                             [[i, f"{int(r.events):,}", _count_cell(r.fraud), pct(r.fraud_rate)]
                              for i, r in years.iterrows()]), ""]
    if len(years):
        lines += [f"![by year]({plot_by_year(years, plot_dir)})", ""]
    lines += ["## Missing values per field", "",
              "Missing = absent, null, NaN or empty string. Fraud rate when missing is shown only for "
              f"{MIN_CELL} or more events.", "",
              markdown_table(["field", "missing", "share", "empty list", "fraud rate when missing"],
                             [[f"`{f}`", f"{int(r.missing):,}", pct(r.missing_share), f"{int(r.empty_list):,}",
                               _missing_rate_cell(r)] for f, r in missing.iterrows()]), "",
              f"![missing]({plot_missing(missing, plot_dir)})", ""]

    report = out_dir / REPORT_NAME
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


# ---------------------------------------------------------------- command line

def default_report_dir(reports_dir: str | Path, data_path) -> Path:
    """Where a report goes unless told: ``reports_dir`` for synthetic data, its ``confidential/``
    folder (ignored by git) for a report built from a data file (``data_path`` not None)."""
    return Path(reports_dir) / CONFIDENTIAL_DIR_NAME if data_path is not None else Path(reports_dir)


def confidential_warning(written: str, data_path) -> str:
    """The warning printed after writing ``written`` (files named in words) from a data file."""
    return (f"WARNING: {written} contain aggregates of confidential data from {data_path}. "
            f"Do not commit or share them (reports/{CONFIDENTIAL_DIR_NAME}/ is ignored by git).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="Write the exploratory report (reports/eda.md + plots).")
    parser.add_argument("--data", help="labelled data file (.zip/.json/.jsonl); default data/data.zip if "
                                       "present, else synthetic data")
    parser.add_argument("--out", default=None,
                        help="output folder (default: reports for synthetic data, reports/confidential "
                             "(ignored by git) for a data file)")
    parser.add_argument("--n", type=int, default=14337, help="synthetic events when no data file is used")
    parser.add_argument("--seed", type=int, default=0, help="seed for synthetic data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the report from the data file if any, else from synthetic data; warn if confidential."""
    args = parse_args(argv)
    try:
        data_path = resolve_data_path(args.data)
        records, label = load_records(data_path, n=args.n, seed=args.seed)
        out = args.out or default_report_dir(PROJECT_DIR / "reports", data_path)
        report = build_report(records, label, out, confidential=data_path is not None)
    except dataset.DataError as exc:
        print(f"eda: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {report} from {label}")
    if data_path is not None:
        print(confidential_warning(f"{report} and its plots", data_path), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
