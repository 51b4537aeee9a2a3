"""The index ``governor ledger prove`` answers from: decision id → chain and leaf, and each
chain's leaf hashes, kept on local disk and brought up to date from the ledger's tail.

Without it a proof read the whole ledger (7.5 s for 3,700 records). The index is a cache,
never trusted: the record at the leaf it names is read back and must be that decision with
that leaf hash, and the proof built from the stored leaves must verify against a signed
checkpoint's root. A ledger partition shorter than the index (a recreated topic) resets
that chain's part.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from app.ledger.merkle import BLOCK, Blocked, leaf_hash, root
from app.runtime.topic_reader import Reader

HASH_BYTES = 32


class ProveIndex:
    """One ledger topic's index, in ``directory``."""

    def __init__(self, directory: Path, topic: str) -> None:
        self.directory = directory / topic
        self.directory.mkdir(parents=True, exist_ok=True)
        self.topic = topic
        self.db = sqlite3.connect(self.directory / "index.sqlite")
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(decisions)")}
        if columns and "ledger_offset" not in columns:  # an index from before transactions
            self.db.executescript("DROP TABLE decisions; DROP TABLE chains;")
            for stale in self.directory.glob("chain-*"):
                stale.unlink()
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS chains"
            " (partition INTEGER PRIMARY KEY, next INTEGER, leaves INTEGER);"
            "CREATE TABLE IF NOT EXISTS decisions"
            " (id TEXT, partition INTEGER, leaf INTEGER, ledger_offset INTEGER);"
            "CREATE INDEX IF NOT EXISTS by_id ON decisions (id);"
        )

    def close(self) -> None:
        self.db.close()

    def _leaves_file(self, partition: int) -> Path:
        return self.directory / f"chain-{partition}.leaves"

    def _blocks_file(self, partition: int) -> Path:
        return self.directory / f"chain-{partition}.blocks"

    async def refresh(self, reader: Reader) -> int:
        """Index the records appended since the last call; return how many.

        A record's leaf is its place in the chain, not its offset: transaction commit
        markers take offsets too."""
        rows_known = self.db.execute("SELECT partition, next, leaves FROM chains").fetchall()
        known = {p: n for p, n, _ in rows_known}
        leaves_known = {p: n for p, _, n in rows_known}
        for partition, end in (await reader.ends(self.topic)).items():
            if known.get(partition, 0) > end:  # the topic was recreated: start the chain over
                self._reset(partition)
                known[partition] = leaves_known[partition] = 0
        added = 0
        for partition, records in (await reader.read(self.topic, start=known)).items():
            if not records:
                continue
            rows, hashes = [], bytearray()
            leaf = leaves_known.get(partition, 0)
            for record in records:
                parsed = orjson.loads(record.value)
                if not isinstance(parsed, dict) or parsed.get("seq") != leaf:
                    self._reset(partition)  # not the chain it was: index it again
                    return added + await self.refresh(reader)
                hashes += leaf_hash(record.value)
                decision_id = parsed.get("decision_id")
                if decision_id is not None:
                    rows.append((str(decision_id), partition, leaf, record.offset))
                leaf += 1
            with self._leaves_file(partition).open("ab") as out:
                out.write(hashes)
            self._add_blocks(partition, leaf)
            self.db.executemany("INSERT INTO decisions VALUES (?, ?, ?, ?)", rows)
            self.db.execute(
                "INSERT OR REPLACE INTO chains VALUES (?, ?, ?)",
                (partition, records[-1].offset + 1, leaf),
            )
            self.db.commit()
            added += len(records)
        return added

    def _add_blocks(self, partition: int, leaves: int) -> None:
        """Store the root of every whole block of leaves not stored yet."""
        blocks = self._blocks_file(partition)
        have = blocks.stat().st_size // HASH_BYTES if blocks.exists() else 0
        whole = leaves // BLOCK
        if whole <= have:
            return
        hashes = self.leaves(partition, have * BLOCK, whole * BLOCK)
        with blocks.open("ab") as out:
            for i in range(0, len(hashes), BLOCK):
                out.write(root(hashes[i : i + BLOCK]))

    def locate(self, decision_id: str) -> list[tuple[int, int, int]]:
        """Where ``decision_id`` is: (partition, leaf, ledger offset), oldest first."""
        rows = self.db.execute(
            "SELECT partition, leaf, ledger_offset FROM decisions WHERE id = ?"
            " ORDER BY partition, leaf",
            (decision_id,),
        ).fetchall()
        return [(int(p), int(leaf), int(offset)) for p, leaf, offset in rows]

    def leaves(self, partition: int, start: int, stop: int) -> list[bytes]:
        """Leaf hashes [start, stop) of a chain."""
        with self._leaves_file(partition).open("rb") as stored:
            stored.seek(start * HASH_BYTES)
            raw = stored.read((stop - start) * HASH_BYTES)
        if len(raw) != (stop - start) * HASH_BYTES:
            raise LookupError(f"the index holds fewer than {stop} leaves of chain {partition}")
        return [raw[i : i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES)]

    def tree(self, partition: int, size: int) -> Blocked:
        """The chain's first ``size`` leaves as a tree that proofs are cheap in."""
        raw = self._blocks_file(partition).read_bytes() if size >= BLOCK else b""
        roots = [
            raw[i : i + HASH_BYTES] for i in range(0, (size // BLOCK) * HASH_BYTES, HASH_BYTES)
        ]
        return Blocked(size, roots, lambda a, z: self.leaves(partition, a, z))

    def _reset(self, partition: int) -> None:
        self.db.execute("DELETE FROM decisions WHERE partition = ?", (partition,))
        self.db.execute("DELETE FROM chains WHERE partition = ?", (partition,))
        self.db.commit()
        self._leaves_file(partition).unlink(missing_ok=True)
        self._blocks_file(partition).unlink(missing_ok=True)
