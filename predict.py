"""The scoring core: load the model once, turn raw records into scores, store them.

One scoring function, two callers: the ``/score`` endpoint in app.py and this file's command
line. Both hand raw records (as received) to :func:`score_records` and store the results with
:func:`db.save_scores` (directly, or through the spool when the database is away).
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import dataset
import exchange
import features
import validation
from model import DEFAULT_MODEL_PATH, FraudModel, ModelLoadError, load_model as _load_artifact, risk_tier

# The service's own files, found beside this one whatever directory a batch job is started
# from: the model, the app's instance folder (Flask's, beside app.py: the default SQLite file
# and spool) and the examples.
ROOT = Path(__file__).resolve().parent
INSTANCE_DIR = ROOT / "instance"
EXAMPLES_PATH = ROOT / "test_script_examples.json"
BATCH_SIZE = 2000
# A file of at least this many events is a bulk load: the table's statistics are refreshed after it.
SETTLE_AFTER = 10_000
# explain= value for batch jobs: reasons only for events at or above the medium tier.
REVIEW_TIERS = "review-tiers"
# Refused records of an input file are named one by one up to this many; after that only
# counted (and, when storing, all kept in the rejects table).
SHOWN_REFUSALS = 20


def model_path(path: str | Path | None = None) -> Path:
    """The artifact to load: the argument, else ``MODEL_PATH``, else models/model.pkl."""
    return Path(path or os.environ.get("MODEL_PATH") or DEFAULT_MODEL_PATH)


def load_model(path: str | Path | None = None) -> FraudModel:
    """Load the pickled model once; a missing file says how to train one."""
    path = model_path(path)
    if not path.exists():
        raise ModelLoadError(
            f"no model at {path}: train one with `python model.py` (or `make model`), "
            "or point MODEL_PATH at an existing artifact"
        )
    return _load_artifact(path)


def score_records(model: FraudModel, records: list[dict], explain: bool | str = True) -> list[dict]:
    """Score raw records in one vectorised pass: probability, tier, money, expected loss, reasons.

    ``explain``: True gives every record its reasons (/score); REVIEW_TIERS only the records at
    or above the medium tier, the ones analysts review (batch jobs: the dashboard explains the
    others when it shows them); False none.

    Records go to the model as received: the featurizer treats NaN, None, "" and unparseable
    values as missing itself (tested against dataset.normalise_record), so the hot path does
    not copy every record first.
    """
    if explain:
        probabilities, reasons = model.predict_and_explain(
            records, review_tiers_only=explain == REVIEW_TIERS)
    else:
        probabilities, reasons = model.predict_proba(records), [[] for _ in records]
    scores = []
    for record, p, why in zip(records, probabilities, reasons):
        p = float(p)
        money = min(exchange.to_usd(features.money_at_stake(record), _currency(record)), features.MAX_MONEY)
        scores.append({
            "object_id": _object_id(record),
            "fraud_probability": round(p, 6),
            "risk_tier": risk_tier(p, model.thresholds),
            "money_at_stake": round(money, 2),
            "expected_loss": round(p * money, 2),
            "reasons": why,
            "model_version": model.version,
        })
    return scores


def _currency(record: dict):
    """The record's currency code as sent (None when it is not a dict)."""
    return record.get("currency") if isinstance(record, dict) else None


def _object_id(record: dict):
    """The event id as an int when it is a whole number (pandas sends ids with gaps as floats)."""
    value = record.get("object_id") if isinstance(record, dict) else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Scored(NamedTuple):
    """One chunk's outcome: the scores of its usable records (in input order), their database
    rows (None unless asked for) and the input items it refused, as (where, reason, text)."""
    scores: list[dict]
    rows: list[dict] | None
    refused: list[tuple[str, str, bytes]]


def score_chunks(model: FraudModel, chunks, workers: int = 1, explain: bool | str = REVIEW_TIERS,
                 rows_for: str | None = None):
    """Yield a :class:`Scored` for each chunk, in order.

    A chunk holds records the app already has (dicts, scored as they are) or items of an input
    file (``(where, raw)`` pairs from :func:`read_input`), which are parsed and checked with
    /score's rules where they are scored; one that fails is refused with its reason, and the
    rest of the chunk is scored.

    With ``workers > 1`` the chunks are scored in that many forked processes, each scoring
    whole chunks with the model it inherited (nothing is re-loaded). At most two chunks per
    worker are in flight, so a large file still streams in constant memory, and the caller can
    store one chunk while the workers score the next ones. A worker that dies (killed, out of
    memory) stops the job with BrokenProcessPool instead of leaving it waiting forever. ``rows_for`` (a source such as
    "batch") also turns each chunk into database rows (db.prepare_rows) where it was scored,
    so the storing process only writes them.
    """
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if workers <= 1 or second is None:  # one chunk: forking would cost more than it saves
        for chunk in itertools.chain([first], [] if second is None else [second], chunks):
            yield _score_chunk(model, chunk, explain, rows_for)
        return
    global _POOL_MODEL
    _POOL_MODEL = (model, explain, rows_for)  # inherited by the forked workers
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            in_flight = collections.deque()
            for chunk in itertools.chain([first, second], chunks):
                in_flight.append(pool.submit(_score_in_worker, chunk))
                if len(in_flight) >= 2 * workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
    finally:
        _POOL_MODEL = None


_POOL_MODEL = None


def _score_in_worker(chunk: list) -> Scored:
    """_score_chunk in a pool worker, with the model inherited from the parent."""
    model, explain, rows_for = _POOL_MODEL
    return _score_chunk(model, chunk, explain, rows_for)


def _score_chunk(model: FraudModel, chunk: list, explain: bool | str, rows_for: str | None) -> Scored:
    """Check, score and (if asked) turn into database rows one chunk."""
    records, refused = _usable(chunk)
    scores = score_records(model, records, explain)
    if rows_for is None:
        return Scored(scores, None, refused)
    import db  # only batch jobs that store need the database layer

    return Scored(scores, db.prepare_rows(list(zip(records, scores)), source=rows_for), refused)


def _usable(chunk: list) -> tuple[list[dict], list[tuple[str, str, bytes]]]:
    """The records of a chunk that can be scored and stored, and the refused items.

    A dict is a record the app already holds and is taken as it is. A ``(where, raw)`` pair
    comes from an input file: ``raw`` is the bytes of a .jsonl line, parsed as /score parses a
    body, or a record parsed from a .json array; either is checked as /score checks an event.
    """
    records, refused = [], []
    for item in chunk:
        if isinstance(item, dict):
            records.append(item)
            continue
        where, raw = item
        try:
            event = validation.parse_json_body(raw) if isinstance(raw, bytes) else raw
            records.append(validation.check_event(event))
        except validation.InvalidEvent as exc:
            text = raw.rstrip(b"\r\n") if isinstance(raw, bytes) else json.dumps(raw, default=str).encode("utf-8")
            refused.append((where, validation.describe(str(exc), exc.field), text))
    return records, refused


def default_workers() -> int:
    """Processes for batch scoring: SCORE_WORKERS, else one per core (a SCORE_WORKERS that is not
    a whole number of at least 1 is named on stderr, and stops the job with exit status 2)."""
    setting = (os.environ.get("SCORE_WORKERS") or "").strip()
    if not setting:
        return os.cpu_count() or 1
    try:
        workers = int(setting)
    except ValueError:
        workers = 0
    if workers < 1:
        print(f"error: SCORE_WORKERS={setting!r} is not a whole number of at least 1", file=sys.stderr)
        raise SystemExit(2)
    return workers


def read_input(path: Path):
    """An iterator of ``(where, raw)`` for each record of a .jsonl file (raw: the line's bytes,
    parsed and checked where it is scored) or of a .json file holding one object or an array, or
    a .zip holding data.json as the client exports it (raw: the parsed record); ``where``
    ("line 7", "record 3") names it in messages.

    The file is opened (a .json file also parsed) before this returns, so a missing file
    raises OSError and a .json file that is not JSON validation.InvalidEvent here.
    """
    if path.suffix == ".jsonl":
        return _jsonl_lines(open(path, "rb"))
    if path.suffix == ".zip":  # the client's export: data.json inside, read as model.py reads it
        try:
            body = dataset.read_text(path)[0].encode("utf-8")
        except dataset.DataError as exc:
            raise validation.InvalidEvent(str(exc)) from exc
    else:  # a byte-order mark some Windows tools put first is not part of the JSON (as dataset reads it)
        body = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    parsed = validation.parse_json_body(body)
    return ((f"record {number}", record)
            for number, record in enumerate(parsed if isinstance(parsed, list) else [parsed]))


def _jsonl_lines(handle):
    """(where, bytes) for each non-blank line of an open .jsonl file, closing it at the end."""
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield f"line {number}", line


def chunks(iterable, size: int):
    """Lists of at most ``size`` items from any iterable, so a large file streams in constant memory."""
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _index(text: str) -> int:
    """--index: a record's position in the input, counted from 0."""
    try:
        index = int(text)
    except ValueError:
        index = -1
    if index < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a position in the input (0, 1, 2, ...)")
    return index


def _parse_args(argv):
    parser = argparse.ArgumentParser(description="Score raw events and store them in the database.")
    parser.add_argument("--input", type=Path, default=EXAMPLES_PATH, help="a .json, .jsonl or .zip (holding data.json) file of raw events")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--index", type=_index, default=0, help="which example of the input to score (default 0)")
    which.add_argument("--all", action="store_true", help="score every record of the input")
    parser.add_argument("--model", type=Path, default=None, help="model artifact (default MODEL_PATH or models/model.pkl)")
    parser.add_argument("--no-db", action="store_true", help="print scores without storing them")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")
    parser.add_argument("--all-reasons", action="store_true",
                        help="with --all: give every event its reasons (default: only events at or "
                             "above the medium tier; the dashboard explains the others when shown)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes scoring in parallel (default SCORE_WORKERS or one per core)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Score examples or a file, print one JSON line per record, store each unless --no-db."""
    args = _parse_args(argv)
    try:
        exchange.rates()  # an unreadable USD_RATES stops the job before it scores or stores
        model = load_model(args.model)
    except (ModelLoadError, exchange.RatesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    writer = None
    if not args.no_db:
        import db  # only the storing path needs the database layer

        engine = db.make_engine(db.database_url(INSTANCE_DIR))
        try:
            db.init_db(engine)
        except db.DatabaseUnavailable as exc:  # down from the start: nothing to spool yet, stop
            print(f"error: the database cannot be reached, nothing was scored: {exc}", file=sys.stderr)
            return 2
        writer = db.ScoreWriter(engine, db.Spool(Path(os.environ.get("SPOOL_DIR") or INSTANCE_DIR / "spool")))
    try:
        records = read_input(args.input)
    except (OSError, validation.InvalidEvent) as exc:  # no such file, or a .json file that is not JSON
        print(f"error: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    if not args.all:
        records = itertools.islice(records, args.index, args.index + 1)
    total, refused, started = 0, 0, time.perf_counter()
    printing = not args.quiet
    workers = args.workers or default_workers()
    rows_for = None if writer is None else "batch"
    explain = REVIEW_TIERS if args.all and not args.all_reasons else True
    for result in score_chunks(model, chunks(records, BATCH_SIZE), workers, explain, rows_for):
        if writer is not None:
            try:
                writer.write_rows(result.rows)
            except db.SpoolUnavailable as exc:
                print(f"error: neither the database nor the spool can take events now ({exc}); "
                      f"stopped after {total} stored or spooled record(s): this chunk and the rest "
                      "of the input were not stored", file=sys.stderr)
                return 2
        for where, reason, text in result.refused:
            refused += 1
            _report_refused(args.input, where, reason, text, refused, writer)
        total += len(result.scores)
        if printing:
            try:
                for score in result.scores:
                    print(json.dumps({k: score[k] for k in (
                        "object_id", "fraud_probability", "risk_tier", "reasons", "model_version")}))
            except BrokenPipeError:  # the reader went away (`predict.py --all | head`)
                printing = False
                _silence_stdout()
                if writer is None:  # the lines were all this job was for
                    print(f"stopped: the output was closed (for example by `head`) after {total} "
                          "record(s) were scored (exit status 2)", file=sys.stderr)
                    return 2
                # A storing job goes on: stopping part-way would leave the file half stored,
                # and running it again would count the stored half twice.
    if total == 0 and refused == 0:
        print(f"error: no record at index {args.index} of {args.input}", file=sys.stderr)
        return 2
    waiting = 0 if writer is None else _still_spooled(writer)
    if writer is not None and total >= SETTLE_AFTER and not waiting:
        db.settle_after_bulk_load(writer.engine)
    elapsed = time.perf_counter() - started
    status = 3 if waiting else 1 if refused else 0
    summary = f"scored {total} record(s) in {elapsed:.2f}s ({total / elapsed:,.0f}/s)"
    if waiting:
        summary += (f"; {waiting} event(s) wait in the spool at {writer.spool.path}, not yet in the "
                    "database: the service writes them when the database is back")
    elif writer is not None:
        summary += ", stored in the database"
    if refused:
        summary += f"; refused {refused}"
    if not printing and not args.quiet:
        summary += "; the output was closed early, so not every record was printed"
    print(summary + (f" (exit status {status})" if status else ""), file=sys.stderr)
    return status


def _still_spooled(writer) -> int:
    """Events left in the spool once the job is done (a write the database refused went there),
    after one more try to move them into the database; 0 when all are stored."""
    import db

    if writer.spool.is_empty():
        return 0
    try:
        writer.drain()
    except (db.DatabaseUnavailable, OSError):  # still away, or the spool's disk fails: report what waits
        pass
    return writer.spool.depth()


def _report_refused(path: Path, where: str, reason: str, text: bytes, count: int, writer) -> None:
    """Name a refused input record on stderr and keep it in the rejects table when storing."""
    if count <= SHOWN_REFUSALS:
        print(f"refused {path} {where}: {reason}", file=sys.stderr)
    elif count == SHOWN_REFUSALS + 1:
        print(f"(further refusals are counted, not listed{'' if writer is None else '; all are in the rejects table'})",
              file=sys.stderr)
    if writer is not None:
        import db

        try:
            db.record_reject(writer.engine, reason, text, f"{path} {where}")
        except db.DatabaseUnavailable as exc:
            print(f"could not keep the refused {where} in the database: {exc}", file=sys.stderr)


def _silence_stdout() -> None:
    """Send what is left of standard output nowhere, once its reader has gone (else Python's
    own flush at exit fails again)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    exit_status = main()
    try:
        sys.stdout.flush()  # the last lines: the job's work is done whether or not they arrive
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(exit_status)
