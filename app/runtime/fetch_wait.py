"""Workaround: faust-streaming hard-codes its worker consumer's fetch wait to 1.5 s.

``AIOKafkaConsumerThread._create_worker_consumer`` (faust/transport/drivers/aiokafka.py)
builds the aiokafka consumer with ``fetch_max_wait_ms=1500``, and no setting changes it.
With many assigned partitions that wait decides latency: aiokafka leaves partitions whose
fetched records are not yet consumed out of the next fetch request and sends one request
per broker at a time, so once the partitions that carry traffic have data in hand, the
next request asks only for quiet ones (other input topics, idle partitions) and the broker
holds it for the whole wait. Records arriving meanwhile on the busy partitions wait for it.
Measured on the carbon pipeline at 400 readings/s (2026-12-03): input reached the agent in
bursts about every 0.4 s, 0.9 s behind its producer at the median, 1.9 s at p99, with the
worker idle most of the time; a bare Faust agent on a single 6-partition topic, where no
request asks only for quiet partitions, saw 19 ms.

The worker's transport is Faust's own aiokafka transport with one change: the consumer it
builds waits at most ``worker.consumer_fetch_max_wait_ms`` (set on the consumer before it
starts, which is when aiokafka builds its fetcher from it).
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

from app.runtime.delivery_in_place import DeliveryInPlace


def transport_with_fetch_wait(
    app: Any, fetch_max_wait_ms: int, deliver_in_place: bool = False
) -> faust_aiokafka.Transport:
    """Faust's aiokafka transport for ``app``, its worker consumer waiting at most
    ``fetch_max_wait_ms`` for a fetch, and delivering records without a task each when
    ``deliver_in_place`` (:mod:`app.runtime.delivery_in_place`)."""

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(
            self, transport: faust_aiokafka.Transport
        ) -> aiokafka.AIOKafkaConsumer:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class WaitingConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class InPlaceConsumer(DeliveryInPlace, WaitingConsumer):
        pass

    class Transport(faust_aiokafka.Transport):
        Consumer = InPlaceConsumer if deliver_in_place else WaitingConsumer

    return Transport(app.conf.broker_consumer, app)
