"""Decision topics → the hash-chained ledger and its signed checkpoints.

Not a Faust agent: Faust's per-message stream path is far below the ledger's 20,000
appends/s target, and the ledger needs its own partition assignment. Each worker runs one
aiokafka consumer in the group ``<app id>-ledger`` over every decision topic, with the
range assignor, so partition p of every decision topic goes to the same worker, and that
worker alone writes chain p (ledger partition p). The rules are in :mod:`app.ledger.chain`.

Per batch: decide the records of each chain, send them with the checkpoints due among them
in one transaction per chain, then commit the consumed offsets. A crash anywhere leaves the
log a prefix of what was intended; the next owner fences the chain's earlier writers (its
transactional producer, :mod:`app.runtime.fenced_writer`), reads the chain's head back from
the ledger, checked (:mod:`app.ledger.loading`), and skips what the chain holds. Each send
is also checked against the offset the chain expects: a writer that is not Governor's is
detected, and the worker stops rather than fork a chain.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
import threading
import time
from functools import partial
from typing import Any

from agents.ledger.metrics import LedgerMetrics
from app.ledger.chain import (
    append_decisions,
    new_head,
    read_decision,
)
from app.ledger.chain_writer import ChainWriter
from app.ledger.gaps import GapLetters, dead_letter_gaps
from app.ledger.loading import ChainLocation, load_head
from app.ledger.note import Signer, Verifier, checkpoint_text
from app.ledger.resume import Untrusted
from app.metrics import Metrics
from app.runtime.connection import aiokafka_options
from app.runtime.failstop import fail_stop
from app.runtime.faust_app import Governor
from app.runtime.fenced_writer import FencedWriter, Queued, RecordBytes
from app.runtime.group_consumer import GroupConsumer
from app.runtime.processes import on_own_thread, supervise
from app.runtime.retry import ride_out
from app.runtime.sender import Sender
from app.settings import Settings
from app.topics import Catalogue
from schemas.ledger import LedgerCheckpoint

log = logging.getLogger(__name__)

PIPELINE = "ledger"
CHUNK = 500
"""Most decisions decided between two awaits (about 7 ms of work at 70k appends/s)."""


class LedgerAppender:
    """Appends every decision to its chain; one per worker."""

    def __init__(self, settings: Settings, catalogue: Catalogue, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.config = settings.ledger
        prefix = settings.kafka.topic_prefix
        self.prefix = prefix
        self.id_fields = {
            spec.name: spec.ledger_id
            for spec in catalogue.decision_topics()
            if spec.ledger_id is not None
        }
        self.ledger_topic = prefix + "ledger"
        self.checkpoint_topic = prefix + "ledger-checkpoints"
        seed = self.config.resolved_seed()
        self.signer = Signer.from_seed(self.config.key_name, seed) if seed else None
        self.writers: dict[int, ChainWriter] = {}
        self.to_load: set[int] = set()
        self.halted: set[int] = set()
        self.lock = asyncio.Lock()
        self.consumer: GroupConsumer | None = None
        self.sender: Sender | None = None
        self.gap_letters: GapLetters | None = None
        self.ledger_metrics = LedgerMetrics(metrics)
        self.appended = self.ledger_metrics.records.labels(outcome="appended")
        self.skipped = self.ledger_metrics.records.labels(outcome="skipped")
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ask the append loop to finish its batch and stop (thread- and signal-safe)."""
        self._stopping.set()

    def chain_name(self, partition: int) -> str:
        return f"{self.config.origin}/{partition}"

    async def run_beside_worker(self) -> None:
        """Run the append loop on its own thread and event loop until the worker stops: the
        pipelines' event loop then never waits behind a batch of appends."""
        try:
            await on_own_thread(self.run, "ledger-appender")
        finally:
            self._stopping.set()

    async def run(self) -> None:
        """The append loop; any failure to append stops the process (fail-stop).

        ``governor ledger run`` runs this as its own process; a worker runs it on a thread
        (:meth:`run_beside_worker`) in ``ledger.mode: thread``.
        """
        try:
            await ride_out(
                self._start, "ledger: starting", self.settings.worker.broker_outage_deadline_s
            )
            while not self._stopping.is_set():
                await self._step()
        except Exception as exc:
            fail_stop(PIPELINE, exc)
        finally:
            await self._stop()

    async def _start(self) -> None:
        options = aiokafka_options(self.settings.kafka)
        if self.signer is None:
            log.warning("ledger: no signing key (ledger.signing_key[_file]): no checkpoints")
        if self.sender is None:  # tried again while the broker is down: start what is not
            self.sender = await Sender.start(options)
            self.gap_letters = GapLetters(
                self.sender, self.prefix, self.settings.worker.dead_letter_max_bytes, self.metrics
            )
        if self.consumer is None:
            topics = [self.prefix + name for name in self.id_fields]
            consumer = GroupConsumer(options, f"{self.settings.worker.app_id}-ledger", topics)
            await consumer.start(self.on_assigned, self.on_revoked)
            self.consumer = consumer

    async def _stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        for writer in self.writers.values():
            await writer.out.stop()
        if self.sender is not None:
            await self.sender.stop()

    async def _step(self) -> None:
        """One poll: load newly assigned chains, append, checkpoint, then commit."""
        assert self.consumer is not None
        batch = await self.consumer.fetch(500, self.config.max_batch_records)
        consumed: dict[tuple[str, int], int] = {}
        async with self.lock:
            for partition in sorted(self.to_load):
                try:
                    self.writers[partition] = await ride_out(
                        partial(self.load_chain, partition), f"ledger: loading chain {partition}",
                        self.settings.worker.broker_outage_deadline_s,
                    )  # fmt: skip
                except Untrusted as exc:
                    self._halt(partition, exc)
            self.to_load.clear()
            by_chain: dict[int, list[tuple[str, Any]]] = {}
            for fetched in batch:
                if not fetched.records:
                    continue
                if fetched.partition not in self.writers:  # revoked meanwhile: for its owner
                    continue
                topic = fetched.topic.removeprefix(self.prefix)
                chain = by_chain.setdefault(fetched.partition, [])
                chain.extend((topic, m) for m in fetched.records)
                consumed[(fetched.topic, fetched.partition)] = fetched.records[-1].offset + 1
            sends = [self._append_committed(self.writers[p], ds)
                     for p, ds in sorted(by_chain.items())]  # fmt: skip
            await asyncio.gather(*sends)
            await self._checkpoint_due()
        if consumed:  # outside the lock (see GroupConsumer.commit); re-delivery is skipped
            await self.consumer.commit(consumed)

    async def _append_committed(self, writer: ChainWriter, messages: list[tuple[str, Any]]) -> None:
        """One transaction per chain and poll: the records and the checkpoints among them."""
        async with writer.out.transaction():
            await self._append(writer, messages)

    async def _append(self, writer: ChainWriter, messages: list[tuple[str, Any]]) -> None:
        """Append in chunks of at most ``CHUNK`` records, each ending where a checkpoint is
        due (so one lands every ``checkpoint_every_records`` records however large the
        batch). Chunks are sent without waiting for the previous one's acknowledgement;
        everything sent is confirmed before a checkpoint covers it and before returning."""
        every = self.config.checkpoint_every_records
        pending: Queued = []
        done = 0
        while done < len(messages):
            room = every - writer.head.since_checkpoint if self.signer else len(messages)
            size = max(1, min(room, CHUNK))
            taken = messages[done : done + size]
            ids = self.id_fields
            chunk = [
                read_decision(t, m.partition, m.offset, m.key, m.value, ids[t]) for t, m in taken
            ]
            done += size
            head, out = append_decisions(writer.head, chunk)
            if out.gaps:
                assert self.gap_letters is not None
                await dead_letter_gaps(self.gap_letters, out.gaps, taken)
            records = [(k.encode() if k else None, v) for k, v in out.records]
            pending += await self._enqueue(writer, records)
            writer.head = head
            self.appended.inc(len(out.records))
            self.skipped.inc(out.skipped)
            if self.signer is not None and head.since_checkpoint >= every:
                await writer.out.confirm(pending)
                pending = []
                await self._checkpoint(writer, time.monotonic())
        await writer.out.confirm(pending)

    async def _send(self, writer: ChainWriter, records: list[RecordBytes]) -> None:
        """Send records to the writer's partition and wait until they are in the log."""
        await writer.out.confirm(await self._enqueue(writer, records))

    async def _enqueue(self, writer: ChainWriter, records: list[RecordBytes]) -> Queued:
        if not records:
            await asyncio.sleep(0)  # a chunk of skips still lets the loop breathe
            return []
        return await writer.out.enqueue(records)

    async def _checkpoint_due(self) -> None:
        """Checkpoint chains idle past ``checkpoint_every_s``, and chains that came back from
        the log with more unsigned records than ``checkpoint_every_records``."""
        if self.signer is None:
            return
        now = time.monotonic()
        due = [
            w
            for w in self.writers.values()
            if w.head.since_checkpoint >= self.config.checkpoint_every_records
            or (
                w.head.since_checkpoint
                and now - w.checkpointed_at >= self.config.checkpoint_every_s
            )
        ]
        await asyncio.gather(*(self._checkpoint_committed(w, now) for w in due))

    async def _checkpoint_committed(self, writer: ChainWriter, now: float) -> None:
        async with writer.out.transaction():
            await self._checkpoint(writer, now)

    async def _checkpoint(self, writer: ChainWriter, now: float) -> None:
        """Sign the tree head over every record of the chain so far and publish it."""
        assert self.signer is not None
        frontier = writer.head.frontier
        chain = writer.head.chain
        root = frontier.root()
        checkpoint = LedgerCheckpoint(
            chain=chain,
            partition=writer.partition,
            tree_size=frontier.size,
            root_hash=base64.b64encode(root).decode(),
            ledger_offset=writer.out.last_offset,
            frontier=[base64.b64encode(h).decode() for h in frontier.hashes],
            note=self.signer.sign(checkpoint_text(chain, frontier.size, root)),
        )
        await writer.out.send_beside(
            self.checkpoint_topic, checkpoint.to_json_bytes(), chain.encode(), writer.partition
        )
        writer.head.since_checkpoint = 0
        writer.checkpointed_at = now
        self.ledger_metrics.checkpoints.inc()

    async def load_chain(self, partition: int) -> ChainWriter:
        """The head of chain ``partition`` read back, and checked, from the log (genesis if
        it is empty); raises :class:`Untrusted` if it must not be built on."""
        chain = self.chain_name(partition)
        options = aiokafka_options(self.settings.kafka)
        where = ChainLocation(
            options, self.prefix, partition, chain, self.id_fields,
            self.config.recent_ids_per_chain,
        )  # fmt: skip
        verifier = Verifier.parse(self.signer.verifier_key()) if self.signer else None
        # Fence first: once the producer has started, no earlier writer's record can still
        # reach the log, so the head read next is the chain's last word.
        txn_id = f"{self.settings.worker.app_id}-ledger-{partition}"
        out = await FencedWriter.fence(options, txn_id, self.ledger_topic, partition)
        try:
            found, end, last = await load_head(where, verifier)
            head, genesis = found, None
            if head is None:
                head, genesis = new_head(chain, self.config.recent_ids_per_chain)
            now = time.monotonic()
            out.resume_at(end, last)
            writer = ChainWriter(head, out, now)
            if genesis is not None:
                async with out.transaction():
                    await self._send(writer, [(None, genesis)])
                log.info("ledger chain %s started with its genesis record", chain)
            else:
                log.info("ledger chain %s continues at seq %d (offset %d)", chain, head.seq, end)
            return writer
        except BaseException:
            await out.stop()
            raise

    def _halt(self, partition: int, why: Untrusted) -> None:
        """Append nothing to a chain whose log cannot be trusted (its decisions stay
        uncommitted, so none is lost) and say so, until an operator has looked."""
        assert self.consumer is not None
        self.halted.add(partition)
        self.ledger_metrics.chain_halted.labels(chain=self.chain_name(partition)).set(1)
        log.error("ledger chain %s HALTED: %s", self.chain_name(partition), why)
        self.consumer.pause(partition)

    async def on_assigned(self, assigned: set[int]) -> None:
        """Chains are loaded by the append loop before its next batch: a rebalance callback
        must not do slow work or wait on the consumer."""
        self.to_load |= assigned - set(self.writers)

    async def on_revoked(self, revoked: set[int]) -> None:
        """Finish the batch in flight, then let the chains go."""
        async with self.lock:
            for partition in revoked:
                if (writer := self.writers.pop(partition, None)) is not None:
                    await writer.out.stop()
                self.to_load.discard(partition)
                if partition in self.halted:  # its next owner checks the log again
                    self.halted.discard(partition)
                    self.ledger_metrics.chain_halted.labels(chain=self.chain_name(partition)).set(0)


def register(gov: Governor) -> LedgerAppender:
    """The worker's ledger appender, run as ``ledger.mode`` says."""
    appender = LedgerAppender(gov.settings, gov.catalogue, gov.metrics)
    if gov.settings.ledger.mode == "thread":
        gov.faust.task(appender.run_beside_worker)
    elif gov.settings.ledger.mode == "process":
        gov.faust.task(supervise_child_process)
    return appender


async def supervise_child_process() -> None:
    """Run ``governor ledger run`` as a child of this worker, for as long as the worker runs,
    with the worker's environment and configuration. If it fails while the worker runs,
    the worker stops too (fail-stop), so that the pair restarts together."""

    def failed(code: int) -> None:
        fail_stop(PIPELINE, RuntimeError(f"the ledger process exited with code {code}"))

    await supervise([sys.executable, "-m", "app.cli", "ledger", "run"], failed)
