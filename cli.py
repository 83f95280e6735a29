"""Operator commands on the app: ``flask --app app init-db | rescore | export-labels | backup``.

(``create-analyst`` and ``load-test-set`` belong to the dashboard and live in dashboard.py.)
"""
from __future__ import annotations

import json
import sys

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
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="new file for the copy (SQLite: a database file; Postgres: a pg_dump custom-format file)")
def backup_command(out: str):
    """Copy the whole database (events, decisions, analysts) while the service runs."""
    try:
        counts = db.backup(current_app.extensions["db_engine"], out)
    except (FileExistsError, RuntimeError) as exc:  # DatabaseUnavailable is a RuntimeError
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backed up to {out}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    waiting = current_app.extensions["score_writer"].spool.depth()
    if waiting:
        click.echo(f"{waiting} events wait in the spool ({current_app.extensions['score_writer'].spool.path}) "
                   "and are not in this backup: the service writes them to the database once it is reachable",
                   err=True)
