"""RFC 6962 Merkle trees (SHA-256): tree heads, audit paths and consistency proofs.

Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right); a tree of n
leaves splits at the largest power of two below n. :class:`Frontier` keeps the O(log n)
roots of the perfect subtrees a writer needs to append leaves and compute tree heads;
the proof builders take the full list of leaf hashes (a reader has them from the log).
Verification is elsewhere (:mod:`app.ledger.verify_proof`), on purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``index``."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"index {index} outside a tree of {n} leaves")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), root(leaves[:k])]


BLOCK = 1024
"""Leaves per stored block root (:class:`Blocked`)."""


@dataclass(frozen=True, slots=True)
class Blocked:
    """A tree given by the roots of its whole blocks of :data:`BLOCK` leaves, plus the
    leaves themselves for what no stored root covers: an audit path then hashes about
    n / BLOCK + BLOCK nodes instead of n."""

    size: int
    block_roots: Sequence[bytes]
    leaf: Callable[[int, int], Sequence[bytes]]
    """(start, stop) → the leaf hashes of that range."""

    def root(self, start: int, size: int) -> bytes:
        """MTH of leaves [start, start + size): the split points of a block-aligned range
        fall on block boundaries, so whole blocks come from their stored roots."""
        if start % BLOCK == 0 and size % BLOCK == 0:
            first = start // BLOCK
            return root(self.block_roots[first : first + size // BLOCK])
        if size <= BLOCK:
            return root(self.leaf(start, start + size))
        k = _split(size)
        return node_hash(self.root(start, k), self.root(start + k, size - k))

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[size]), as :func:`inclusion_proof` gives it."""
        if not 0 <= index < self.size:
            raise ValueError(f"index {index} outside a tree of {self.size} leaves")
        path: list[bytes] = []
        start, n = 0, self.size
        while n > 1:
            k = _split(n)
            if index - start < k:
                path.append(self.root(start + k, n - k))
                n = k
            else:
                path.append(self.root(start, k))
                start, n = start + k, n - k
        return path[::-1]


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): that the first ``size1`` leaves' tree is a prefix of this one."""
    n = len(leaves)
    if not 0 < size1 <= n:
        raise ValueError(f"size1 {size1} must be in 1..{n}")
    return _subproof(size1, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


@dataclass(frozen=True, slots=True)
class Frontier:
    """The roots of the perfect subtrees of a growing tree, largest first: enough to append
    a leaf and to compute the tree head in O(log n) memory."""

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def append(self, leaf: bytes) -> Frontier:
        hashes = [*self.hashes, leaf]
        size = self.size + 1
        # One merge per trailing one-bit of the old size: equal perfect subtrees join.
        level = self.size
        while level & 1:
            right = hashes.pop()
            hashes[-1] = node_hash(hashes[-1], right)
            level >>= 1
        return Frontier(size=size, hashes=tuple(hashes))

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = node_hash(left, result)
        return result
