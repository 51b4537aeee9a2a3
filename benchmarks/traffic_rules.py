"""Traffic rules, per event, in this process: against the reference's claims and baselines.

Run: .venv/bin/python benchmarks/traffic_rules.py [--contracts 1000] [--events 20000]

The reference claims exact match < 1 us, template match < 10 us, risk < 100 us and the
whole pipeline < 1 ms per event. Each is measured here (best of 5 repeats, nanoseconds per
operation) beside a baseline measured in the same run:

- matching: the reference's way, a list of compiled regexes tried in turn, over the same
  ``--contracts`` contracts (half exact, half templated);
- risk: factors + weighted score + decision, against ``orjson.loads`` of the event;
- whole pipeline: routing, the decision with every state update, and serialising the
  decision record, against ``RequestEvent`` validation of the same bytes alone.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.traffic.rules import risk  # noqa: E402
from agents.traffic.rules.contracts import ContractIndex  # noqa: E402
from agents.traffic.rules.engine import route  # noqa: E402
from agents.traffic.rules.offline import OfflineTraffic  # noqa: E402
from agents.traffic.rules.policy import ActivePolicy  # noqa: E402
from app.core.dedup import Position  # noqa: E402
from app.tools.sample import sample_policy, sample_request  # noqa: E402
from schemas.request_event import RequestEvent  # noqa: E402
from schemas.traffic_policy import ServiceContract  # noqa: E402

START = datetime(2024, 1, 15, tzinfo=UTC)


def many_contracts(count: int) -> tuple[ServiceContract, ...]:
    """Half exact paths, half templates with one or two parameters."""
    out = []
    for n in range(count):
        pattern = (
            f"GET /api/v1/service{n}/status"
            if n % 2 == 0
            else f"GET /api/v1/service{n}/items/{{id}}/parts/{{part}}"
        )
        out.append(ServiceContract(contract_id=f"c{n}", endpoint_pattern=pattern))
    return tuple(out)


def regex_scan(contracts: tuple[ServiceContract, ...]) -> Callable[[str, str], str | None]:
    """The reference's matcher: one regex per template, tried in order."""
    compiled = []
    for c in contracts:
        body = re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(c.path_template))
        compiled.append((c.method, re.compile(f"^{body}$"), c.contract_id))

    def match(method: str, path: str) -> str | None:
        for m, regex, contract_id in compiled:
            if m == method and regex.match(path):
                return contract_id
        return None

    return match


def best_ns(operation: Callable[[], object], loops: int, repeats: int = 5) -> float:
    """Best time per call of ``operation`` over ``repeats`` runs of ``loops`` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(loops):
            operation()
        best = min(best, (time.perf_counter_ns() - started) / loops)
    return best


def row(name: str, ns: float, claim_ns: float, baseline_name: str, baseline_ns: float) -> None:
    print(
        f"{name:<18} {ns / 1000:>9.2f} us   claim < {claim_ns / 1000:>6.0f} us"
        f" ({ns / claim_ns:5.2f} of it)   {baseline_name}: {baseline_ns / 1000:>9.2f} us"
        f" (ours = {ns / baseline_ns:6.3f} x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()

    contracts = many_contracts(args.contracts)
    index = ContractIndex(contracts)
    scan = regex_scan(contracts)
    last = args.contracts - 1 - (args.contracts - 1) % 2  # an exact one, late in the list
    exact_path = f"/api/v1/service{last}/status"
    template_path = f"/api/v1/service{args.contracts - 1}/items/42/parts/7"
    assert index.match("GET", exact_path).contract_id == scan("GET", exact_path)
    assert index.match("GET", template_path).contract_id == scan("GET", template_path)

    print(f"{args.contracts} contracts, {args.events} events; nanosecond timers, best of 5\n")
    row("exact match", best_ns(lambda: index.match("GET", exact_path), 100_000), 1_000,
        "regex scan", best_ns(lambda: scan("GET", exact_path), 200))  # fmt: skip
    row("template match", best_ns(lambda: index.match("GET", template_path), 100_000), 10_000,
        "regex scan", best_ns(lambda: scan("GET", template_path), 200))  # fmt: skip

    policy = ActivePolicy.of(sample_policy(), "bench")
    events = [sample_request(n, START, "bench") for n in range(args.events)]
    traffic = OfflineTraffic(policy)
    traffic.run(events[: args.events // 2])  # warm state: baselines, sketches, breakers
    decision = traffic.outputs[-1].decision
    obs = risk.Observations(
        latency_ms=250.0, max_latency_ms=100.0, error_rate=0.05, rpm_now=600.0,
        rpm_baseline=200.0, client_rpm=90.0, rate_limit_rpm=1000.0, circuit_score=0.0,
        burn_rate_1h=3.0, p95_recent_ms=180.0, p95_baseline_ms=120.0,
        unknown_endpoint=False, method_disallowed=False, retry_count=1,
    )  # fmt: skip
    raw = events[0].to_json_bytes()

    def assess() -> object:
        factors = risk.factors(obs, policy.policy.tuning)
        return risk.decide(factors, risk.score(factors, policy.policy), decision.platform_tier,
                           policy.policy)  # fmt: skip

    row("risk assessment", best_ns(assess, 20_000), 100_000,
        "orjson.loads", best_ns(lambda: orjson.loads(raw), 20_000))  # fmt: skip

    rest = events[args.events // 2 :]
    encoded = [e.to_json_bytes() for e in rest]
    started = time.perf_counter_ns()
    for offset, event in enumerate(rest, start=args.events):
        position = Position(partition=0, offset=offset)
        outcome = traffic.decide(route(event, position, policy), position)
        assert outcome.outputs is not None
        outcome.outputs.decision.to_json_bytes()
    pipeline_ns = (time.perf_counter_ns() - started) / len(rest)
    started = time.perf_counter_ns()
    for value in encoded:
        RequestEvent.from_json_bytes(value)
    validate_ns = (time.perf_counter_ns() - started) / len(encoded)
    row("whole pipeline", pipeline_ns, 1_000_000, "event validation", validate_ns)
    state = traffic.endpoints[decision.endpoint_key].model_dump_json()
    print(f"\nendpoint state: {len(state)} bytes of JSON per changelog write")


if __name__ == "__main__":
    main()
