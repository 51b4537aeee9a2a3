"""Audit paths from stored block roots equal those from every leaf (issue 15 part 6)."""

from __future__ import annotations

import os
import random

from app.ledger.merkle import BLOCK, Blocked, inclusion_proof, leaf_hash, root


def test_block_roots_give_the_same_paths_and_root() -> None:
    rng = random.Random(6962)
    for n in [1, 2, 3, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 3 * BLOCK + 7, 9_000]:
        leaves = [leaf_hash(os.urandom(8)) for _ in range(n)]
        blocks = [root(leaves[i : i + BLOCK]) for i in range(0, n - n % BLOCK, BLOCK)]
        asked: list[tuple[int, int]] = []

        def leaf(
            start: int,
            stop: int,
            leaves: list[bytes] = leaves,
            asked: list[tuple[int, int]] = asked,
        ) -> list[bytes]:
            asked.append((start, stop))
            return leaves[start:stop]

        tree = Blocked(n, blocks, leaf)
        assert tree.root(0, n) == root(leaves)
        for m in {0, n - 1, n // 2, rng.randrange(n)}:
            assert tree.inclusion_proof(m) == inclusion_proof(m, leaves), (n, m)
        assert all(stop - start <= BLOCK for start, stop in asked)  # never every leaf
