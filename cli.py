"""Operator commands on the app: ``flask --app app init-db | rescore | export-labels | backup``.

(``create-analyst`` and ``load-test-set`` belong to the dashboard and live in dashboard.py.)
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

import db
import predict


def register(app: Flask) -> None:
    """Attach the commands to the app's ``flask`` command line."""
    app.cli.add_command(init_db_command)
    app.cli.add_command(rescore_command)
    app.cli.add_command(export_labels_command)
    app.cli.add_command(backup_command)


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Apply schema.sql (creates what is missing, never drops data)."""
    db.init_db(current_app.extensions["db_engine"])
    click.echo("database schema applied")


@click.command("rescore")
@with_appcontext
@click.option("--batch-size", default=2000, show_default=True, help="events scored per batch")
@click.option("--workers", type=int, default=None,
              help="processes scoring in parallel (default SCORE_WORKERS or one per core)")
def rescore_command(batch_size: int, workers: int | None):
    """Re-score every stored event with the serving model, keeping the previous score beside it."""
    engine = current_app.extensions["db_engine"]
    model = current_app.extensions["fraud_model"]
    total = 0
    batches = db.iter_raw_payloads(engine, batch_size)
    for result in predict.score_chunks(model, batches, workers or predict.default_workers()):
        db.save_rescores(engine, result.scores)
        total += len(result.scores)
        click.echo(f"rescored {total} events", err=True)
    db.settle_after_bulk_load(engine)
    click.echo(f"rescored {total} events with model {model.version}")


@click.command("export-labels")
@with_appcontext
@click.option("--out", type=click.Path(dir_okay=False), default="-", help="JSON file (default stdout)")
def export_labels_command(out: str):
    """Write analysts' decisions as labels for retraining (flagged = fraud, cleared = not fraud)."""
    labels = db.export_labels(current_app.extensions["db_engine"])
    text = json.dumps(labels, indent=1, default=str)
    if out == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        click.echo(f"wrote {len(labels)} labels to {out}", err=True)


@click.command("backup")
@with_appcontext
@click.option("--out", type=click.Path(dir_okay=False),
              help="new file for the copy (SQLite: a database file; Postgres: a pg_dump custom-format file)")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="a folder: the copy is named fraud-triage-<UTC time>.db (or .dump) there")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="with --dir: then delete all but the newest KEEP copies this command made there")
def backup_command(out: str | None, directory: str | None, keep: int | None):
    """Copy the whole database (events, decisions, analysts) while the service runs."""
    if (out is None) == (directory is None):
        raise click.UsageError("give --out FILE or --dir FOLDER")
    if keep is not None and directory is None:
        raise click.UsageError("--keep needs --dir")
    engine = current_app.extensions["db_engine"]
    if directory is not None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out = str(Path(directory) / f"{BACKUP_PREFIX}{stamp}{'.db' if engine.dialect.name == 'sqlite' else '.dump'}")
    try:
        counts = db.backup(engine, out)
    except (FileExistsError, RuntimeError) as exc:  # DatabaseUnavailable is a RuntimeError
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backed up to {out}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    if keep is not None:
        made = sorted((p for p in Path(directory).iterdir() if BACKUP_NAME.fullmatch(p.name)),
                      key=lambda p: p.name, reverse=True)
        for old in made[keep:]:  # the names sort by time
            old.unlink()
            click.echo(f"deleted the older copy {old}")
    waiting = current_app.extensions["score_writer"].spool.depth()
    if waiting:
        click.echo(f"{waiting} events wait in the spool ({current_app.extensions['score_writer'].spool.path}) "
                   "and are not in this backup: the service writes them to the database once it is reachable",
                   err=True)


# Copies `backup --dir` makes, and the only files its --keep deletes.
BACKUP_PREFIX = "fraud-triage-"
BACKUP_NAME = re.compile(rf"{BACKUP_PREFIX}\d{{8}}T\d{{6}}Z\.(db|dump)")
