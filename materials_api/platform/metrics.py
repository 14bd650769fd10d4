"""What the operations team watches (`GET /metrics`, Prometheus text format) and the request id
that ties a response to its log lines.

One registry per app (tests run several apps in one process). Counted as things happen: request
latency per route template, verdicts by subject, status and first failing reason, login
failures, anchor batch sizes and time to proof. Read at scrape time: the outbox backlog (rows
written ahead and not yet confirmed, and the age of the oldest) of every kind that registers a
`backlog` function, and the chain head's age.

Several processes (`qiyema serve --workers N`: HTTP workers, and the parent doing the background
work, anchoring included) count into files of one directory (prometheus_client's multiprocess
mode, `share_between_processes`); a scrape answered by any worker adds up every process's counts
and reads the scrape-time figures itself."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from chain.verdict import Status, Verdict

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")  # a caller's own id is kept only if it is this plain

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
Backlog = Callable[[], tuple[int, float]]  # (rows waiting, seconds the oldest has waited)
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable; workers inherit it


def share_between_processes(directory: Path) -> None:
    """From now on this process, and every process it starts, counts into files in `directory`
    (emptied first: counts start with the server). Call before any `Metrics` is made."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR] = str(directory)
    values.ValueClass = values.get_value_class()  # chosen at import time; choose again


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram("qiyema_http_request_seconds", "HTTP request latency by route template",
                                  ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.verdicts = Counter("qiyema_verdicts_total", "Verdicts given, by subject, status and first failing reason",
                                ["subject", "status", "reason"], registry=r)
        self.login_failures = Counter("qiyema_login_failures_total", "Refused sign-ins by reason", ["reason"],
                                      registry=r)
        self.batch_size = Histogram("qiyema_anchor_batch_size", "Leaves per anchored batch",
                                    buckets=(1, 16, 64, 256, 1024, 4096), registry=r)
        self.time_to_proof = Histogram("qiyema_time_to_proof_seconds", "From a material's confirmation to its proof",
                                       buckets=(1, 2, 5, 10, 30, 60, 120, 300, 900), registry=r)
        self.cache_lookups = Counter("qiyema_cache_lookups_total",
                                     "Look-ups in the scan caches (scan_answer: whole answers to anonymous "
                                     "scans of static codes; public_view: an enterprise's public view), by outcome",
                                     ["cache", "outcome"], registry=r)
        self._backlogs: dict[str, Backlog] = {}
        self._head: list[Callable[[], int]] = []
        # Read at scrape time, by the process that answers the scrape.
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self._now = _ScrapeTimeCollector(self)
        r.register(self._now)

    # --- wiring -----------------------------------------------------------------------------
    def watch_backlog(self, kind: str, backlog: Backlog) -> None:
        self._backlogs[kind] = backlog

    def watch_gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A figure read at scrape time (a read that fails gives -1)."""
        self._gauges[name] = (help_text, read)

    def watch_head(self, head_timestamp: Callable[[], int]) -> None:
        self._head[:] = [head_timestamp]

    # --- as things happen -----------------------------------------------------------------------
    def cache_lookup(self, cache: str, hit: bool) -> None:
        self.cache_lookups.labels(cache, "hit" if hit else "miss").inc()

    def verdict(self, subject: str, verdict: Verdict | dict) -> None:
        """Count a verdict (or a cached answer holding one) by its status and first failing reason."""
        # Read in place (this runs on every scan): a Verdict's checks, or the dicts of a cached answer.
        if isinstance(verdict, Verdict):
            status, pairs = verdict.status.value, ((c.status, c.reason) for c in verdict.checks)
        else:
            status, pairs = verdict["status"], ((c["status"], c["reason"]) for c in verdict["checks"])
        failing = next((reason for st, reason in pairs if st not in (Status.VALID, Status.SKIPPED)), "ok")
        self.verdicts.labels(subject, status, str(failing)).inc()

    def anchored(self, leaves: int, waited: list[float]) -> None:
        self.batch_size.observe(leaves)
        for seconds in waited:
            self.time_to_proof.observe(seconds)

    # --- read by the district page ------------------------------------------------------------------
    def verdict_totals(self, subject: str) -> dict[str, float]:
        """Verdicts given on `subject` since the server started, by status, every process's counts added."""
        if os.environ.get(MULTIPROCESS_DIR):
            everyone = CollectorRegistry()
            MultiProcessCollector(everyone)
            families = everyone.collect()
        else:
            families = self.verdicts.collect()
        totals: dict[str, float] = {}
        for family in families:
            for sample in family.samples:
                if sample.name == "qiyema_verdicts_total" and sample.labels.get("subject") == subject:
                    status = sample.labels["status"]
                    totals[status] = totals.get(status, 0) + sample.value
        return totals

    def backlogs(self) -> dict[str, tuple[int, float]]:
        """Chain writes written ahead and not yet confirmed, by kind: (rows, seconds the oldest waited)."""
        return {kind: backlog() for kind, backlog in self._backlogs.items()}

    def head_age(self) -> int:
        """Seconds since the chain node's newest block (-1: no node, or no answer)."""
        if not self._head:
            return -1
        try:
            return max(0, int(time.time()) - self._head[0]())
        except Exception:  # noqa: BLE001 - a node that does not answer is itself the figure
            return -1

    # --- scrape -----------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        if not os.environ.get(MULTIPROCESS_DIR):
            return generate_latest(self.registry)
        everyone = CollectorRegistry()
        MultiProcessCollector(everyone)  # every process's counts, added up
        everyone.register(self._now)
        return generate_latest(everyone)


class _ScrapeTimeCollector:
    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def collect(self):
        for name, (help_text, read) in self._metrics._gauges.items():
            try:
                value = read()
            except Exception:  # noqa: BLE001 - a part that does not answer is itself the figure
                value = -1
            yield GaugeMetricFamily(name, help_text, value=value)
        if self._metrics._head:
            yield GaugeMetricFamily("qiyema_chain_head_age_seconds",
                                    "Age of the chain node's newest block (-1: no answer)", value=self._metrics.head_age())
        depth = GaugeMetricFamily("qiyema_outbox_depth", "Chain writes written ahead, not yet confirmed", labels=["kind"])
        age = GaugeMetricFamily("qiyema_outbox_oldest_seconds", "How long the oldest waiting write has waited",
                                labels=["kind"])
        for kind, (n, oldest) in self._metrics.backlogs().items():
            depth.add_metric([kind], n)
            age.add_metric([kind], oldest)
        yield depth
        yield age


def new_request_id(presented: str | None) -> str:
    return presented if presented and _GOOD_ID.match(presented) else uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id (and the error)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                 "request_id": request_id.get()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


JsonFormatter.converter = time.gmtime
