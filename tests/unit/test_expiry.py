"""Issue 16 part 4: 100,000 random client ids leave a worker's state bounded, and expiry
never deletes a key its event time still needs."""

from __future__ import annotations

import random
from collections import deque

from agents.traffic.rules.engine import ClientRate
from app.core.dedup import Position
from app.runtime.expiry import ExpiringKeys, watermarked_partition

TTL_S = 180.0


def last_used(rate: ClientRate) -> float:
    return rate.minute * 60.0


def test_a_hundred_thousand_random_ids_leave_the_table_bounded() -> None:
    rng = random.Random(20261202)
    table: dict[str, ClientRate] = {}
    keys = ExpiringKeys(table, TTL_S, last_used, watermarked_partition)
    keys.ensure_indexed(0)
    clock_s = 1_700_000_000.0
    used: dict[str, float] = {}
    recent: deque[str] = deque(maxlen=500)
    peak = 0
    for offset in range(100_000):
        clock_s += 0.018  # 100,000 requests over 30 minutes of event time
        at_s = clock_s - rng.uniform(0, 5)  # a little out of order
        key = f"gitlab|status_v1|{rng.getrandbits(64):016x}"
        if rng.random() < 0.1 and recent:  # some clients come back
            key = rng.choice(recent)
        existing = table.get(key)
        rate = existing or ClientRate(key=key, minute=int(at_s // 60))
        new = rate.add(at_s).stamped(Position(partition=0, offset=offset))
        table[key] = new
        if existing is None or new.minute != existing.minute:
            keys.touched(0, key, last_used(new))
        used[key] = max(used.get(key, at_s), at_s)
        recent.append(key)
        peak = max(peak, len(table))
        if offset % 5_000 == 0:  # nothing used within the TTL is gone
            horizon = max(used.values()) - TTL_S + 60  # minutes are floored
            assert all(k in table for k, t in used.items() if t >= horizon)
    per_window = (TTL_S + 120) / 0.018  # the ids of the TTL plus a minute's slack
    assert peak <= per_window < 100_000, peak
    assert keys.expired >= 100_000 * 0.9 - per_window - 10_000
    assert keys.queued() <= per_window


def test_a_partition_lagging_in_event_time_keeps_its_keys() -> None:
    table: dict[str, ClientRate] = {}
    keys = ExpiringKeys(table, TTL_S, last_used, watermarked_partition)
    old = ClientRate(key="slow", minute=10).stamped(Position(partition=1, offset=0))
    table["slow"] = old
    keys.touched(1, "slow", last_used(old))
    for n in range(100):  # partition 0 races ahead by hours
        position = Position(partition=0, offset=n)
        rate = ClientRate(key=f"fast-{n}", minute=1_000 + n).stamped(position)
        table[rate.key] = rate
        keys.touched(0, rate.key, last_used(rate))
    assert "slow" in table
    keys.drop_partition(0)
    keys.ensure_indexed(0)  # rebuilt from the table after a rebalance
    assert keys.queued() == len(table)
