"""Prometheus metrics of one running bot process, in a registry of its own.

The services know nothing of Prometheus: the handler latency comes through the inbox
workers' `on_handled` callback, the send outcomes from the counters the outbox sender and
the delivery engine keep, and the queue depths from a query made when `/metrics` is read.
A registry per `Metrics` (not the global one) lets tests build several in one process.
Sending runs only in the leader process, so only the leader's send counters move.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.inbox import inbox_depth
from bot.services.outbox import outbox_depth

if TYPE_CHECKING:
    from bot.channels.telegram import Serving

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "bebas_cemas"
# Handling an update is a few database statements: milliseconds, seconds when it is wrong.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters, gauges and histogram one bot process exposes on `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(
            f"{_PREFIX}_updates_received",
            "Updates Telegram delivered to this process (repeats included)",
            registry=self.registry,
        )
        self.handled = Counter(
            f"{_PREFIX}_updates_handled", "Updates this process handled", registry=self.registry
        )
        self.latency = Histogram(
            f"{_PREFIX}_handler_seconds",
            "Time to handle one update, its transaction included",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inbox_depth = Gauge(
            f"{_PREFIX}_inbox_depth", "Updates stored and not yet handled", registry=self.registry
        )
        self.inbox_lag = Gauge(
            f"{_PREFIX}_inbox_lag_seconds",
            "Age of the oldest update waiting to be handled",
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            f"{_PREFIX}_outbox_depth",
            "Outgoing messages waiting to be sent",
            registry=self.registry,
        )
        self._serving: Serving | None = None
        self.registry.register(_ServingCollector(self))

    def observe_handled(self, _chat_id: int, seconds: float) -> None:
        """Count one handled update and how long it took (InboxWorkers' `on_handled`)."""
        self.handled.inc()
        self.latency.observe(seconds)

    def watch(self, serving: Serving) -> None:
        """Read the send counters and the leadership of this running bot."""
        self._serving = serving

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Read the queue depths from the database (shared by every replica)."""
        async with sessions() as session:
            pending, lag = await inbox_depth(session)
            waiting = await outbox_depth(session)
        self.inbox_depth.set(pending)
        self.inbox_lag.set(lag)
        self.outbox_depth.set(waiting)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _ServingCollector(Collector):
    """The counters the services keep themselves, read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        serving = self.metrics._serving
        replies = CounterMetricFamily(
            f"{_PREFIX}_replies", "Outbox rows settled, by outcome", labels=["outcome"]
        )
        deliveries = CounterMetricFamily(
            f"{_PREFIX}_deliveries", "Broadcast sends recorded, by outcome", labels=["outcome"]
        )
        limited = CounterMetricFamily(
            f"{_PREFIX}_rate_limited", "Sends Telegram refused with 429 (retry_after)"
        )
        dropped = CounterMetricFamily(
            f"{_PREFIX}_updates_dropped", "Updates the flood gate dropped unhandled"
        )
        failed = CounterMetricFamily(
            f"{_PREFIX}_updates_failed", "Updates set aside after failing every attempt"
        )
        leader = GaugeMetricFamily(
            f"{_PREFIX}_leader", "1 while this process leads (sends and runs the jobs)"
        )
        if serving is not None:
            for kind, count in sorted(serving.outbox.outcomes.items()):
                replies.add_metric([kind], count)
            for kind, count in sorted(serving.delivery.outcomes.items()):
                deliveries.add_metric([kind], count)
            limited.add_metric(
                [],
                serving.outbox.outcomes["retry_after"] + serving.delivery.outcomes["retry_after"],
            )
            dropped.add_metric([], serving.intake.dropped)
            failed.add_metric([], serving.workers.failed)
            leader.add_metric([], 1.0 if serving.leadership.leading.is_set() else 0.0)
        yield from (replies, deliveries, limited, dropped, failed, leader)
