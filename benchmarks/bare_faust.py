"""The ceiling of the engine: a bare Faust agent (``stream.events()`` plus ``orjson``) over a
topic, in its own process, as benchmarks/throughput.py's second baseline.

Run: .venv/bin/python benchmarks/bare_faust.py --bootstrap HOST:PORT --topic T --count N
Prints one JSON line: {"events": N, "seconds": first event to the Nth}.

``--deliver-in-place``: the same agent on Faust's transport with Governor's one change to
its delivery (app/runtime/delivery_in_place.py; the fetch wait stays Faust's 1,500 ms), to
see what that change is worth to the engine itself.

``--profile FILE``: py-spy records the agent from its first event to its last (see
benchmarks/profiling.py): where the engine's own time per event goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import faust
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.runtime.fetch_wait import transport_with_fetch_wait
from benchmarks.profiling import Recording

FAUST_FETCH_WAIT_MS = 1_500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--take", type=int, default=0,
        help="take batches of up to this many events (stream.take_events) instead of one by one",
    )  # fmt: skip
    parser.add_argument("--within-ms", type=float, default=10.0)
    parser.add_argument("--deliver-in-place", action="store_true")
    parser.add_argument(
        "--profile", type=Path, default=None,
        help="record the agent with py-spy from its first event to its last into this file",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = faust.App(
        f"bare-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_enabled=False,
        datadir=tempfile.mkdtemp(prefix="bare-faust-"),
        consumer_auto_offset_reset="earliest",
        topic_partitions=args.partitions,
    )
    if args.deliver_in_place:
        app.transport = transport_with_fetch_wait(app, FAUST_FETCH_WAIT_MS, True)
    topic = app.topic(args.topic, key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "first": 0.0}
    recording: list[Recording] = []

    def seen_one(event: Any) -> None:
        orjson.loads(event.value)
        seen["n"] += 1
        if seen["n"] == 1:
            seen["first"] = time.perf_counter()
            if args.profile is not None:
                recording.append(Recording(os.getpid(), args.profile))
        if seen["n"] == args.count:
            took = time.perf_counter() - seen["first"]
            for profile in recording:
                profile.stop()
            print(json.dumps({"events": args.count, "seconds": took}), flush=True)
            os._exit(0)  # the figure is out; no graceful stop to wait for

    @app.agent(topic)
    async def bare(stream: Any) -> None:
        if args.take:
            async for events in stream.take_events(args.take, args.within_ms / 1000.0):
                for event in events:
                    seen_one(event)
        else:
            async for event in stream.events():
                seen_one(event)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    asyncio.set_event_loop(asyncio.new_event_loop())
    app.main()


if __name__ == "__main__":
    main()
