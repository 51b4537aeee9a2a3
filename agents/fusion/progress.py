"""The fusion-results partitions' progress, told to the overlay stage (the sending half of
:mod:`agents.fusion.rules.ordering`).

After the runs of a result are on fusion-observations, the partition's owner sends, to every
fusion-observations partition, a progress record: every run it sends from now on has an
event time at or after ``newest - allowed_lateness_s``. It sends one whenever that moved by
``marker_step_s``, and an idle record when the partition has handled nothing for
``idle_partition_s`` with the broker reachable, and the broker shows nothing waiting in it.
The sends follow the runs they speak for on the same producer, so each fusion-observations
partition sees a source's runs before the progress that covers them.

Nothing here is durable: a restarted owner starts again from its first record, and the
overlay stage keeps the furthest progress each source has reported.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from prometheus_client import Counter

from agents.fusion.settings import OrderingSettings
from app.runtime.faust_app import Governor
from app.runtime.producer import send_to_partition
from schemas.overlay import ObservationKind, OverlayObservation

log = logging.getLogger(__name__)


class ProgressMarkers:
    """Progress and idle records for the fusion-results partitions this worker owns."""

    def __init__(self, gov: Governor, source: str, config: OrderingSettings, sent: Counter) -> None:
        self.gov = gov
        self.sent = sent
        self.config = config
        self.source_topic = gov.topic(source).get_topic_name()
        self.target = gov.topic("fusion-observations").get_topic_name()
        self.target_partitions = gov.catalogue["fusion-observations"].partitions
        self.newest_s: dict[int, float] = {}
        self.sent_s: dict[int, float] = {}
        self.quiet_since: dict[int, float] = {}
        """Owned partition → monotonic time of its last record (or of its assignment)."""
        self.idle: set[int] = set()
        self.answered_at: float | None = None
        """Monotonic time of the broker's last answer to an idle check."""

    async def after_result(self, partition: int, event_time_s: float) -> None:
        """A result of ``partition`` was handled and its runs sent."""
        self.quiet_since[partition] = time.monotonic()
        newest = max(self.newest_s.get(partition, event_time_s), event_time_s)
        self.newest_s[partition] = newest
        mark = newest - self.config.allowed_lateness_s
        sent = self.sent_s.get(partition)
        if partition in self.idle or sent is None or mark >= sent + self.config.marker_step_s:
            self.idle.discard(partition)
            self.sent_s[partition] = mark
            await self._send(ObservationKind.PROGRESS, partition, mark)

    def quiet(self, owned: set[int]) -> list[int]:
        """Owned partitions quiet for ``idle_partition_s`` and not yet reported idle."""
        now = time.monotonic()
        for partition in set(self.quiet_since) - owned:  # revoked: its next owner speaks
            self._forget(partition)
        for partition in owned:
            self.quiet_since.setdefault(partition, now)
        return sorted(
            p for p in owned
            if p not in self.idle and now - self.quiet_since[p] >= self.config.idle_partition_s
        )  # fmt: skip

    def answered(self, max_gap_s: float) -> bool:
        """The broker answered a check: ``False`` (and quiet time starts again) when the
        previous answer is more than ``max_gap_s`` ago, or there was none, since what
        happened in between (an outage, a rebalance, a stalled worker) is not quiet."""
        now = time.monotonic()
        previous, self.answered_at = self.answered_at, now
        if previous is None or now - previous > max_gap_s:
            self.unreachable()
            return False
        return True

    def unreachable(self) -> None:
        """The broker did not answer: time without it does not count as quiet (a source
        that only waited out an outage is not idle, and its next runs must not be late)."""
        now = time.monotonic()
        for partition in self.quiet_since:
            self.quiet_since[partition] = now

    async def report_idle(self, partitions: list[int]) -> None:
        """Tell the overlay stage not to wait for ``partitions`` (quiet, nothing waiting)."""
        for partition in partitions:
            self.idle.add(partition)
            await self._send(ObservationKind.IDLE, partition, None)

    def _forget(self, partition: int) -> None:
        for known in (self.newest_s, self.sent_s, self.quiet_since):
            known.pop(partition, None)
        self.idle.discard(partition)

    async def _send(self, kind: ObservationKind, partition: int, mark: float | None) -> None:
        """One record to every fusion-observations partition, keyless (it speaks for a
        source partition, not a scope)."""
        watermark = datetime.fromtimestamp(mark, UTC) if mark is not None else None
        record = OverlayObservation(
            kind=kind,
            event_id=f"{kind.value}-{partition}",
            scope=f"~{kind.value}",
            scenario_type="-",
            overlay="-",
            source_partition=partition,
            watermark=watermark,
            timestamp=watermark or datetime.now(UTC),
        ).to_json_bytes()
        for target in range(self.target_partitions):
            await send_to_partition(self.gov.faust, self.target, target, record)
        self.sent.labels(kind=kind.value).inc(self.target_partitions)
