"""Prometheus metrics: scores by tier, request latency, rejects, spool depth, model version.

Under gunicorn every worker is its own process, so counters go through prometheus_client's
multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (deploy/gunicorn.conf.py sets it);
one scrape of ``/metrics`` then adds up all workers. Gauges that describe the host (spool depth,
model version) are read fresh at scrape time instead of being kept in a process.
"""
from __future__ import annotations

import glob
import os

from flask import Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY, multiprocess
from prometheus_client.core import GaugeMetricFamily

SCORES = Counter("fraud_scores_total", "Events scored, by risk tier.", ["tier"])
UNSTORED = Counter("fraud_events_unstored_total",
                   "Events answered but then stored nowhere (database and spool both failed).")
REJECTS = Counter("fraud_score_rejects_total", "Bodies refused by /score, by HTTP status.", ["status"])
LATENCY = Histogram(
    "fraud_request_duration_seconds", "Time to answer a request, by endpoint and status.",
    ["endpoint", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def init_app(app: Flask) -> None:
    """Serve /metrics; the multiprocess folder is made if missing (a `flask` command run with the
    deployment's environment would otherwise fail on its first count)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    app.add_url_rule("/metrics", view_func=metrics_view)


def observe_scores(scores: list[dict]) -> None:
    """Count scored events by tier."""
    for score in scores:
        SCORES.labels(tier=score["risk_tier"]).inc()


def observe_unstored(count: int) -> None:
    """Count events that were answered but could not be stored anywhere afterwards."""
    UNSTORED.inc(count)


def observe_reject(status: int) -> None:
    """Count a refused /score body."""
    REJECTS.labels(status=str(status)).inc()


def observe_request(endpoint: str, status: int, seconds: float) -> None:
    """Record one request's latency."""
    LATENCY.labels(endpoint=endpoint, status=str(status)).observe(seconds)


class _HostGauges:
    """Spool depth and model version, read when scraped (they belong to the host, not a worker)."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        depth = GaugeMetricFamily("fraud_spool_depth", "Scored events waiting in the local spool.")
        spool = self.app.extensions["score_writer"].spool
        depth.add_metric([], spool.depth())
        yield depth
        aside = GaugeMetricFamily("fraud_spool_set_aside",
                                  "Spooled writes the database refused for good, kept aside in the spool's "
                                  "dead.jsonl for a person to look at.")
        aside.add_metric([], spool.dead_depth())
        yield aside
        model = GaugeMetricFamily("fraud_model_info", "The model serving scores (value is always 1).",
                                  labels=["version"])
        model.add_metric([self.app.extensions["fraud_model"].version], 1)
        yield model
        refused = GaugeMetricFamily("fraud_model_reload_refused",
                                    "1 when the last reload could not load the model file and the running "
                                    "model serves on (a restart would fail on that file), else 0.")
        refused.add_metric([], 1 if self.app.extensions.get("refused_reload") else 0)
        yield refused


class _WrittenFilesCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's collector over the workers' files, skipping a file a worker is making
    this instant. A worker started by a reload creates its file empty, then sizes it; read in
    between, the stock collector raised struct.error and /metrics answered 500. Such a file
    holds no count yet, so nothing is lost by skipping it."""

    def collect(self):
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) >= 8:  # the header: how much of the file is used
                    files.append(path)
            except OSError:  # removed meanwhile (a worker that exited)
                continue
        return self.merge(files, accumulate=True)


def metrics_view():
    """All workers' counters plus the host gauges, in the Prometheus text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _WrittenFilesCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    host = CollectorRegistry()
    host.register(_HostGauges(current_app._get_current_object()))
    # content_type, not mimetype: the constant has its charset already, and mimetype adds another
    return Response(text + generate_latest(host), content_type=CONTENT_TYPE_LATEST)
