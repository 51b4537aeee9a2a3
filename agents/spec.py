"""A pipeline as the registry sees it: a name, how to build it on a worker's app, its HTTP
views, and the topics it brings (when they are not in topics.yaml).

A pipeline folder's ``__init__.py`` exposes one :class:`PipelineSpec`; :mod:`agents.registry`
lists the specs a worker installs. The spec is generic over what ``register`` returns (the
pipeline object its views query), so the views are typed against it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from app.runtime.faust_app import Governor
from app.topics import TopicSpec

H = TypeVar("H")


@dataclass(frozen=True)
class PipelineSpec(Generic[H]):
    """One pipeline: ``register`` builds its stages on ``gov`` (tables, agents, outputs) and
    returns its handle; ``views`` adds its HTTP views over that handle."""

    name: str
    register: Callable[[Governor], H]
    views: Callable[[Governor, H], None] | None = None
    topics: tuple[TopicSpec, ...] = ()

    def install(self, gov: Governor) -> H:
        """Build the pipeline and its views on ``gov``'s app."""
        handle = self.register(gov)
        if self.views is not None:
            self.views(gov, handle)
        return handle


class Installable(Protocol):
    """Any :class:`PipelineSpec`, whatever its handle type (what the registry holds)."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> tuple[TopicSpec, ...]: ...

    def install(self, gov: Governor) -> object: ...


def load_spec(path: str) -> Installable:
    """Resolve ``package.module:NAME`` to a :class:`PipelineSpec` (a pipeline a deployment
    adds through ``worker.pipelines`` without changing Governor)."""
    module_name, _, attr = path.partition(":")
    spec = getattr(importlib.import_module(module_name), attr)
    if not isinstance(spec, PipelineSpec):
        raise TypeError(f"{path} is not a PipelineSpec")
    return spec
