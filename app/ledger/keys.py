"""The verifier keys a ledger's checkpoints may be signed with, each for a span of time.

Rotating the signing key must not fail every older checkpoint: a verifier holds the old
key and the new one, each valid while it signed. A checkpoint verifies if a key that was
valid when the checkpoint was written (its record's timestamp) signed it. A key given
without a range is valid at any time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from app.ledger.note import NoteError, Verifier


@dataclass(frozen=True, slots=True)
class ValidKey:
    """A verifier key and the span it signed in (milliseconds since the epoch, inclusive
    start, exclusive end; ``None``: open)."""

    verifier: Verifier
    valid_from_ms: int | None = None
    valid_until_ms: int | None = None

    def valid_at(self, at_ms: int | None) -> bool:
        if at_ms is None:
            return self.valid_from_ms is None and self.valid_until_ms is None
        if self.valid_from_ms is not None and at_ms < self.valid_from_ms:
            return False
        return self.valid_until_ms is None or at_ms < self.valid_until_ms

    @classmethod
    def parse(cls, spec: str) -> ValidKey:
        """``<vkey>[,<from>[,<until>]]`` with ISO 8601 times (an empty one is open)."""
        vkey, *span = spec.split(",")
        if len(span) > 2:
            raise NoteError(f"a key is <vkey>[,<from>[,<until>]]: {spec[:80]!r}")
        bounds = [_epoch_ms(s) if s.strip() else None for s in span] + [None, None]
        return cls(Verifier.parse(vkey), bounds[0], bounds[1])


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[ValidKey, ...]
    specs: tuple[str, ...] = ()
    """The keys as given (``<vkey>[,<from>[,<until>]]``), to publish beside checkpoints."""

    @classmethod
    def of(cls, specs: Iterable[str]) -> KeySet:
        given = tuple(s.strip() for s in specs)
        keys = tuple(ValidKey.parse(s) for s in given)
        if not keys:
            raise NoteError("no verifier key")
        return cls(keys, given)

    def open(self, note: str, at_ms: int | None) -> str:
        """The note's text, if a key valid at ``at_ms`` signed it; else why not."""
        problems = []
        for key in self.keys:
            if not key.valid_at(at_ms):
                continue
            try:
                return key.verifier.open(note)
            except NoteError as exc:
                problems.append(str(exc))
        if not problems:
            raise NoteError("no verifier key is valid when this checkpoint was written")
        raise NoteError("; ".join(problems))


def _epoch_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise NoteError(f"not an ISO 8601 time: {text[:40]!r}") from exc
    if moment.tzinfo is None:
        raise NoteError(f"a key's validity needs a time zone: {text[:40]!r}")
    return int(moment.timestamp() * 1000)


def configured_keys(given: Iterable[str], configured: Iterable[str], own: str | None) -> KeySet:
    """The keys to verify with: those ``given`` (a command's ``--vkey``), else the configured
    set (``ledger.verifier_keys``), else the signing key's own; raises if there are none."""
    for specs in (list(given), list(configured), [own] if own else []):
        if specs:
            return KeySet.of(specs)
    raise NoteError("no verifier key: give --vkey, set ledger.verifier_keys or a signing key")
