"""A pipeline as the registry sees it: a name, how to build it on a worker's app, its HTTP
views, and the topics it brings (when they are not in topics.yaml).

:mod:`agents.registry` lists the specs a worker installs, built-in and added ones alike. The
spec is generic over what ``register`` returns (the pipeline object its views query), so
the views are typed against it, and so is a later pipeline's use of it
(:meth:`Installed.handle`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from app.runtime.faust_app import Governor
from app.topics import TopicSpec

H = TypeVar("H")


class Installed:
    """What the pipelines installed so far offer the next ones: each one's handle, asked for
    by its spec (the facility pipelines count the carbon agent's emissions), and the
    worker's health report (for views that include it)."""

    def __init__(self, health: Callable[[], dict[str, Any]]) -> None:
        self.health = health
        self._handles: dict[str, object] = {}

    def add(self, name: str, handle: object) -> None:
        if name in self._handles:
            raise ValueError(f"two pipelines are named {name!r}")
        self._handles[name] = handle

    def handle(self, spec: PipelineSpec[H]) -> H:
        """The handle ``spec``'s ``register`` returned; it must have been installed before."""
        if spec.name not in self._handles:
            raise LookupError(f"pipeline {spec.name!r} is not installed (yet)")
        return cast(H, self._handles[spec.name])

    def by_name(self) -> dict[str, object]:
        return dict(self._handles)


@dataclass(frozen=True)
class PipelineSpec(Generic[H]):
    """One pipeline: ``register`` builds its stages on ``gov`` (tables, agents, outputs),
    given what the pipelines before it installed, and returns its handle; ``views`` adds
    its HTTP views over that handle."""

    name: str
    register: Callable[[Governor, Installed], H]
    views: Callable[[Governor, H], None] | None = None
    topics: tuple[TopicSpec, ...] = ()

    def install(self, gov: Governor, installed: Installed) -> H:
        """Build the pipeline and its views on ``gov``'s app; its handle joins ``installed``."""
        handle = self.register(gov, installed)
        installed.add(self.name, handle)
        if self.views is not None:
            self.views(gov, handle)
        return handle


class Installable(Protocol):
    """Any :class:`PipelineSpec`, whatever its handle type (what the registry holds)."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> tuple[TopicSpec, ...]: ...

    def install(self, gov: Governor, installed: Installed) -> object: ...


def load_spec(path: str) -> Installable:
    """Resolve ``package.module:NAME`` to a :class:`PipelineSpec` (a pipeline a deployment
    adds through ``worker.pipelines`` without changing Governor)."""
    module_name, _, attr = path.partition(":")
    spec = getattr(importlib.import_module(module_name), attr)
    if not isinstance(spec, PipelineSpec):
        raise TypeError(f"{path} is not a PipelineSpec")
    return spec
