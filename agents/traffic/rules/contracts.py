"""Contract matching through a compiled segment trie: one dict lookup per path segment.

The reference compiles one regex per template and tries them in turn; with many contracts
that is a linear scan per event. Here exact paths are one dict lookup, and templates are a
trie walk whose cost depends on the path's depth, not on the number of contracts. A literal
segment beats a ``{param}`` at the same depth (``/users/me`` before ``/users/{id}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.traffic_policy import ServiceContract

UNKNOWN = "_unknown"
"""Contract label of requests no contract matches (not a valid contract id)."""


@dataclass(frozen=True, slots=True)
class Match:
    """What pairing found for one request."""

    contract: ServiceContract | None
    method_allowed: bool

    @property
    def contract_id(self) -> str | None:
        return self.contract.contract_id if self.contract is not None else None


NO_MATCH = Match(None, True)


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    contracts: list[ServiceContract] = field(default_factory=list)


def _segments(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def _is_param(segment: str) -> bool:
    return len(segment) > 2 and segment[0] == "{" and segment[-1] == "}"


class ContractIndex:
    """All contracts of a policy, compiled for matching."""

    def __init__(self, contracts: tuple[ServiceContract, ...]) -> None:
        self._exact: dict[str, list[ServiceContract]] = {}
        self._root = _Node()
        self.by_id = {c.contract_id: c for c in contracts}
        # One immutable Match per outcome, made once: matching allocates nothing.
        self._allowed = {c.contract_id: Match(c, True) for c in contracts}
        self._disallowed = {c.contract_id: Match(c, False) for c in contracts}
        for contract in contracts:
            template = contract.path_template
            segments = _segments(template)
            if not any(_is_param(s) for s in segments):
                self._exact.setdefault("/" + "/".join(segments), []).append(contract)
                continue
            node = self._root
            for segment in segments:
                if _is_param(segment):
                    node.param = node.param or _Node()
                    node = node.param
                else:
                    node = node.literal.setdefault(segment, _Node())
            node.contracts.append(contract)

    def match(self, method: str, path: str) -> Match:
        """The contract for ``method path``: exact first, then the most literal template.

        A path whose contracts all name other methods matches the first of them with
        ``method_allowed`` false (the reference's "method disallowed").
        """
        candidates = self._exact.get(path)
        if candidates is None:
            segments = _segments(path)
            normalised = "/" + "/".join(segments)
            if normalised != path:
                candidates = self._exact.get(normalised)
            if candidates is None:
                candidates = self._walk(self._root, segments, 0)
        if not candidates:
            return NO_MATCH
        for contract in candidates:
            if contract.method == method:
                return (
                    self._allowed[contract.contract_id]
                    if method in contract.methods()
                    else (self._disallowed[contract.contract_id])
                )
        for contract in candidates:
            if method in contract.methods():
                return self._allowed[contract.contract_id]
        return self._disallowed[candidates[0].contract_id]

    def _walk(self, node: _Node, segments: list[str], depth: int) -> list[ServiceContract]:
        if depth == len(segments):
            return node.contracts
        child = node.literal.get(segments[depth])
        if child is not None:
            found = self._walk(child, segments, depth + 1)
            if found:
                return found
        if node.param is not None and segments[depth]:
            return self._walk(node.param, segments, depth + 1)
        return []


def endpoint_key(platform: str, match: Match) -> str:
    """The key an endpoint's state is kept under: platform and contract (or unknown)."""
    return f"{platform}|{match.contract_id or UNKNOWN}"
