"""The benchmarks' profile summary reads py-spy's raw stacks as the figures need them."""

from __future__ import annotations

from pathlib import Path

from benchmarks.profiling import package_of, read, summary

ROOT = Path("/srv/governor")
PY = "/usr/lib/python3.11"
SITE = "/srv/governor/.venv/lib/python3.11/site-packages"


def _raw(tmp_path: Path) -> Path:
    """Four stacks of the main thread and one of a consumer thread, as py-spy writes them
    with ``--format raw --threads --full-filenames``."""
    loop = f"BaseEventLoop._run_once ({PY}/asyncio/base_events.py:1884)"
    worker = f"main ({ROOT}/app/cli/__init__.py:10);run_worker ({ROOT}/app/runtime/worker.py:5)"
    step = f"Stage._consume ({ROOT}/app/runtime/stage.py:160)"
    lines = [
        f"thread (1): MainThread;{worker};{loop};EpollSelector.select ({PY}/selectors.py:468) 20",
        f"thread (1): MainThread;{worker};{loop};{step};"
        f"process_records ({ROOT}/agents/carbon/rules.py:40) 50",
        f"thread (1): MainThread;{worker};{loop};{step};"
        f"BaseModel.model_validate ({SITE}/pydantic/main.py:700) 20",
        f"thread (1): MainThread;{worker};{loop};Consumer.getmany ({SITE}/faust/c.py:9) 9",
        "thread (1): MainThread 1",
        f"thread (2): Thread-1;Thread.run ({PY}/threading.py:982);"
        f"Fetcher.fetch ({SITE}/aiokafka/fetcher.py:3) 40",
        f"thread (2): Thread-1;Thread.run ({PY}/threading.py:982);"
        f"Condition.wait ({PY}/threading.py:320) 60",
    ]
    path = tmp_path / "raw.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_frames_are_told_apart_by_package() -> None:
    assert package_of(f"{ROOT}/agents/carbon/rules.py", ROOT) == "governor (agents)"
    assert package_of(f"{SITE}/pydantic/main.py", ROOT) == "pydantic"
    assert package_of(f"{PY}/asyncio/base_events.py", ROOT) == "stdlib (asyncio)"
    assert package_of(f"{PY}/selectors.py", ROOT) == "stdlib (selectors)"


def test_samples_count_idle_packages_and_inclusive_governor_functions(tmp_path: Path) -> None:
    threads = read(_raw(tmp_path), ROOT)
    main, consumer = threads["MainThread"], threads["Thread-1"]
    assert (main.total, main.idle) == (100, 20)
    assert (consumer.total, consumer.idle) == (100, 60)
    assert main.by_package == {
        "governor (agents)": 50,
        "pydantic": 20,
        "faust": 9,
        "native (no Python frame)": 1,
    }
    # Entry points under which everything runs are left out; a function counts once per stack.
    assert main.inclusive == {
        "Stage._consume (app/runtime/stage.py)": 70,
        "process_records (agents/carbon/rules.py)": 50,
    }


def test_summary_prints_busy_shares_and_the_heaviest_functions(tmp_path: Path) -> None:
    text = "\n".join(summary(_raw(tmp_path), root=ROOT))
    assert "MainThread                       100 samples, busy  80.0 %" in text
    assert "Thread-1                         100 samples, busy  40.0 %" in text
    assert " 20.0 %  idle" in text
    assert " 50.0 %  governor (agents)" in text
    assert " 70.0 %  Stage._consume (app/runtime/stage.py)" in text
