"""Where a benchmarked process spends its time: py-spy over it for the span of one
measurement, and a summary of the samples printed beside the figure.

A figure that misses its target comes with the profile that says why (issue "State that
costs per key"); until now those profiles were taken by hand with scratch scripts. Here the
benchmark records them itself (``--profile``), over exactly the measured span, and prints:

- each thread's samples, and how many found it idle (waiting in ``select``, a lock or a
  sleep): the main thread's busy share is the ceiling the event loop leaves;
- the main thread's samples by the package of the innermost frame (self time): Governor's
  own code, Faust and mode, aiokafka, pydantic, asyncio, the rest;
- the Governor functions with the largest inclusive share of the main thread.

py-spy samples without stopping the process (``--nonblocking``), so the figure measured
under it stays comparable; at 100 Hz it costs the target nothing measurable.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IDLE_LEAVES = ("select", "poll", "wait", "sleep", "_wait_for_tstate_lock", "acquire")
"""Innermost functions (the last part of a qualified name) that mean the thread waits."""
ENTRY_POINTS = ("<module>", "main", "cmd_worker", "run_worker")
"""Governor functions under which a whole process runs: in nearly every sample, so left out
of the heaviest functions."""
GOVERNOR_PACKAGES = ("app", "agents", "schemas", "benchmarks")


class Recording:
    """py-spy recording one process until :meth:`stop` (raw collapsed stacks, idle samples
    and thread names kept, full file names so that frames can be told apart by package)."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        spy = shutil.which("py-spy") or str(Path(REPO, ".venv", "bin", "py-spy"))
        self.out = out
        self.rate = rate
        self._proc = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--format", "raw", "--idle", "--threads",
             "--nonblocking", "--full-filenames", "--rate", str(rate), "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> None:
        """End the recording; py-spy writes its file on SIGINT."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            _, err = self._proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            raise
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-300:]}")


@dataclass
class ThreadSamples:
    """One thread's samples: how many, how many idle, and (main thread) by frame."""

    total: int = 0
    idle: int = 0
    by_package: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


def package_of(path: str, root: Path = REPO) -> str:
    """The package a frame's file belongs to: a Governor top-level package, a third-party
    distribution under site-packages, or a standard-library module."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        parts = ()
    if parts and parts[0] in GOVERNOR_PACKAGES:
        return f"governor ({parts[0]})"
    if "site-packages" in path:
        name = path.split("site-packages/", 1)[1].split("/", 1)[0]
        return name.removesuffix(".py").split(".")[0]
    if "/lib/python" in path:
        rest = path.split("/lib/python", 1)[1].split("/", 2)
        return f"stdlib ({rest[1].removesuffix('.py')})" if len(rest) > 1 else "stdlib"
    return "other"


def _frame(text: str) -> tuple[str, str]:
    """``function (path:line)`` -> (function, path)."""
    name, _, where = text.rpartition(" (")
    return name, where.rstrip(")").rpartition(":")[0]


def read(path: Path, root: Path = REPO) -> dict[str, ThreadSamples]:
    """The recording's samples per thread name (``root``: the checkout the process ran)."""
    threads: dict[str, ThreadSamples] = {}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        head, *frames = stack.split(";")
        name = head.partition(": ")[2] or head
        samples = threads.setdefault(name, ThreadSamples())
        count = int(count_text)
        samples.total += count
        leaf = _frame(frames[-1]) if frames else ("", "")
        if leaf[0].rpartition(".")[2] in IDLE_LEAVES:
            samples.idle += count
            continue
        samples.by_package[package_of(leaf[1], root) if frames else "native (no Python frame)"] += (
            count
        )
        seen = set()
        for text in frames:
            function, where = _frame(text)
            if function in ENTRY_POINTS or (function, where) in seen:
                continue
            if package_of(where, root).startswith("governor"):
                seen.add((function, where))
                samples.inclusive[f"{function} ({Path(where).relative_to(root)})"] += count
    return threads


def summary(path: Path, top: int = 12, root: Path = REPO) -> list[str]:
    """Lines to print: threads, the main thread by package, Governor's heaviest functions."""
    threads = read(path, root)
    lines = ["  profile (py-spy, samples per thread; idle = waiting in select, a lock or sleep):"]
    for name, samples in sorted(threads.items(), key=lambda item: -item[1].total):
        busy = samples.total - samples.idle
        lines.append(f"    {name:<28} {samples.total:>7} samples, busy {_pct(busy, samples.total)}")
    main = threads.get("MainThread")
    if main is None or main.total == 0:
        return lines
    lines.append("  main thread, every sample, by the innermost frame's package:")
    lines.append(f"    {_pct(main.idle, main.total)}  idle")
    for package, count in main.by_package.most_common(top):
        lines.append(f"    {_pct(count, main.total)}  {package}")
    heaviest = main.inclusive.most_common(top)
    lines.append("  main thread, Governor functions by inclusive share of every sample:")
    lines.extend(f"    {_pct(count, main.total)}  {function}" for function, count in heaviest)
    return lines


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f} %" if whole else "    - "
