"""The layering docs/architecture.md describes, checked on the source: rules are pure (they
import the contracts, the pure shared pieces, other rules and settings sections, never Faust,
aiokafka, the runtime, the HTTP layer or the settings loader), the contracts and the pure
shared pieces import nothing of the layers above them, only the runtime (app/runtime/) imports
Faust or aiokafka, and no source module is over 400 lines (issue "One folder per
pipeline")."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400

RULES_MAY_IMPORT = re.compile(
    r"^(schemas|app\.core|app\.settings_base|(agents|tests)\.\w+\.(rules|settings|schemas)"
    r"|pydantic|orjson|cryptography)(\.|$)"
)
ENGINE = {"faust", "aiokafka", "mode", "kafka"}
"""Faust, aiokafka, and the libraries under them that only the runtime may use."""
PURE_MAY_IMPORT = re.compile(r"^(schemas|app\.core|app\.settings_base|pydantic|orjson)(\.|$)")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return imports_in(path.read_text(), package)


def imports_in(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports; relative names resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def foreign(modules: set[str], allowed: re.Pattern[str]) -> list[str]:
    """What is neither the standard library nor ``allowed``."""
    return sorted(
        m
        for m in modules
        if m.split(".")[0] not in sys.stdlib_module_names
        and m != "__future__"
        and not allowed.match(m)
    )


def rules_modules() -> list[Path]:
    return sorted(
        [*(ROOT / "agents").glob("*/rules.py"), *(ROOT / "agents").glob("*/rules/**/*.py"),
         *(ROOT / "tests" / "water").glob("rules.py")]
    )  # fmt: skip


def source_modules() -> list[Path]:
    return sorted(p for top in ("app", "agents", "schemas") for p in (ROOT / top).rglob("*.py"))


@pytest.mark.parametrize("path", rules_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_rules_are_pure(path: Path) -> None:
    assert foreign(imports_of(path), RULES_MAY_IMPORT) == []


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "schemas").rglob("*.py"), *(ROOT / "app" / "core").rglob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_contracts_and_shared_pieces_import_nothing_above_them(path: Path) -> None:
    assert foreign(imports_of(path), PURE_MAY_IMPORT) == []


def test_the_check_sees_a_rules_module_that_imports_the_runtime() -> None:
    source = "import faust\nfrom app.runtime.state import WriteBehindTable\nfrom . import grid\n"
    assert foreign(imports_in(source, "agents.water.rules"), RULES_MAY_IMPORT) == [
        "app.runtime.state",
        "faust",
    ]


def engine_imports(modules: set[str]) -> list[str]:
    """The modules of Faust, aiokafka or their internals (mode, kafka) among ``modules``."""
    return sorted(m for m in modules if m.split(".")[0] in ENGINE)


def test_only_the_runtime_imports_faust_or_aiokafka() -> None:
    runtime = ROOT / "app" / "runtime"
    outside = {
        str(p.relative_to(ROOT)): found
        for p in source_modules()
        if runtime not in p.parents and (found := engine_imports(imports_of(p)))
    }
    assert outside == {}


def test_the_engine_check_sees_an_import_inside_a_function() -> None:
    source = "import orjson\n\ndef run():\n    from aiokafka.admin import AIOKafkaAdminClient\n"
    assert engine_imports(imports_in(source, "app.tools")) == ["aiokafka.admin"]


APP_REGISTRATION = {"task", "timer", "page"}
"""What code outside the runtime may use of the Faust app itself: registering background
tasks, timers and HTTP pages (it passes the app to runtime functions otherwise)."""


def faust_app_uses(source: str) -> list[str]:
    """Attributes read from a ``.faust`` attribute (``gov.faust.consumer`` → ``consumer``)."""
    return sorted(
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "faust"
    )


def test_outside_the_runtime_the_faust_app_only_registers_tasks_timers_and_pages() -> None:
    runtime = ROOT / "app" / "runtime"
    outside = {
        str(p.relative_to(ROOT)): uses
        for p in source_modules()
        if runtime not in p.parents
        and (uses := [u for u in faust_app_uses(p.read_text()) if u not in APP_REGISTRATION])
    }
    assert outside == {}


def test_the_app_check_sees_a_consumer_read() -> None:
    source = "def f(gov):\n    gov.faust.task(f)\n    return gov.faust.consumer.assignment()\n"
    assert faust_app_uses(source) == ["consumer", "task"]


def test_no_source_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in source_modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
