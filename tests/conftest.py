"""Suite-wide hooks."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    """A failing run prints the tail of the local broker's log."""
    from tests.integration.harness import SESSION

    found = SESSION.get("cluster")
    if exitstatus != 0 and found is not None and found.broker is not None:
        terminalreporter.section("Kafka broker log (tail)")
        terminalreporter.write_line(f"{found.broker.log_file}:")
        terminalreporter.write_line(found.broker.log_tail())
