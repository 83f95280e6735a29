"""Shared pytest fixtures. Each section is owned by one part of the project; add yours as a new section."""
from __future__ import annotations


import pytest
from flask import Flask
from flask.testing import FlaskClient

import db
from tests.pgserver import PostgresServer, PostgresUnavailable
from tests.processes import system_missing


# ============================================================================ database fixtures
# (db.py / schema.sql) A real Postgres server is started once per session, lazily, only when a
# test asks for it; `db_url` runs a test on SQLite and on Postgres, each time on an empty database.

@pytest.fixture(scope="session")
def postgres_server():
    """A real, throwaway Postgres server for the whole session (fsync off: it is thrown away)."""
    try:
        server = PostgresServer(durable=False)
        server.start()
    except PostgresUnavailable as error:
        system_missing("POSTGRES", str(error))
    yield server
    server.cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """The URL of a fresh, empty database: a SQLite file, or a new database on the session's Postgres."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fraud.db'}"
        return
    with request.getfixturevalue("postgres_server").fresh_database() as url:
        yield url


@pytest.fixture
def engine(db_url):
    """An engine on the fresh database with schema.sql applied."""
    engine = db.make_engine(db_url)
    db.init_db(engine)
    yield engine
    engine.dispose()
# ============================================================================ end database fixtures


# ============================================================================ model fixtures
# A tiny model, trained once per session on a small synthetic set, for every test that scores.

@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """Path to a small model artifact (models/model.pkl shape) trained once for the session."""
    import model
    import synth

    path = tmp_path_factory.mktemp("model") / "model.pkl"
    trained = model.train(synth.generate_events(2000, seed=1), seed=0, quick=True)
    model.save_model(trained, path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    """The tiny model, loaded the way the app loads it."""
    import predict

    return predict.load_model(tiny_model_path)
# ============================================================================ end model fixtures


# ============================================================================ app fixtures
# flaskr-style: `make_app(**config)` builds an isolated app on the test's database; `app`,
# `client` and `runner` are the default one. Runs on SQLite and Postgres through `db_url`.

class ServerLikeClient(FlaskClient):
    """Flask's test client, reading every response to its end and closing it as a WSGI server
    does. Left unclosed, a response would not run its on-close work (/score stores an event
    after its answer is sent), and a test would look for a row before it was written."""

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


Flask.test_client_class = ServerLikeClient  # every app the tests build, however they build it

@pytest.fixture
def make_app(db_url, tiny_model_path, tmp_path):
    """A factory of isolated apps sharing this test's database, model and instance folder."""
    import app as app_module

    def build(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "MODEL_PATH": str(tiny_model_path),
            "DATABASE_URL": db_url,
            "SPOOL_DIR": str(tmp_path / "spool"),
            "RATELIMIT_STORAGE_URI": "memory://",
        }
        config.update(overrides)
        return app_module.create_app(config)

    return build


@pytest.fixture
def app(make_app):
    """The default test app."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client of the default app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A runner for the app's `flask` commands."""
    return app.test_cli_runner()
# ============================================================================ end app fixtures
