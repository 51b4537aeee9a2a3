"""Reading the ledger topics back: verification of every chain, and proofs for a decision.

Used by ``governor ledger verify|prove|checkpoints`` and ``GET /api/v1/ledger/verify``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from app.ledger import verify_proof
from app.ledger.keys import KeySet
from app.ledger.merkle import consistency_proof, inclusion_proof, leaf_hash
from app.ledger.note import NoteError, parse_checkpoint_text
from app.ledger.verify import ChainReport, verify_checkpoints, verify_records
from app.topic_reader import partitions_of, read_keyed, read_partition
from schemas.ledger import LedgerCheckpoint


@dataclass(frozen=True, slots=True)
class ChainLog:
    """One chain as read: its records and checkpoints, each with its offset."""

    partition: int
    records: list[tuple[int, bytes]]
    checkpoints: list[tuple[int, bytes]]
    checkpoint_times: dict[int, int] = field(default_factory=dict)
    """Checkpoint offset → its record's timestamp (ms): which keys were valid then."""


async def read_chains(options: dict[str, Any], prefix: str) -> list[ChainLog]:
    ledger, checkpoints = prefix + "ledger", prefix + "ledger-checkpoints"
    chains = []
    for partition in await partitions_of(options, ledger):
        records, _ = await read_partition(options, ledger, partition)
        signed, _ = await read_keyed(options, checkpoints, partition)
        times = {f.offset: f.timestamp_ms for f in signed}
        chains.append(ChainLog(partition, records, [(f.offset, f.value) for f in signed], times))
    return chains


def chain_name(origin: str, partition: int) -> str:
    return f"{origin}/{partition}"


def verify_chains(chains: list[ChainLog], keys: KeySet, origin: str) -> list[ChainReport]:
    """One report per chain; a chain's report names its first failure, if any."""
    reports = []
    for chain in chains:
        leaves, failure = verify_records(chain.partition, chain.records)
        if failure is None:
            failure = verify_checkpoints(
                chain.partition, leaves, chain.checkpoints, keys,
                chain_name(origin, chain.partition), times=chain.checkpoint_times,
            )  # fmt: skip
        reports.append(
            ChainReport(chain.partition, len(chain.records), len(chain.checkpoints), failure)
        )
    return reports


@dataclass(frozen=True, slots=True)
class InclusionProof:
    decision_id: str
    chain: str
    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]
    checkpoint_note: str

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def prove_inclusion(
    chains: list[ChainLog], decision_id: str, keys: KeySet, origin: str
) -> InclusionProof:
    """The audit path of a decision against the newest checkpoint that covers it, verified
    with the independent verifier before it is returned."""
    for chain in chains:
        for index, (_, value) in enumerate(chain.records):
            record = orjson.loads(value)
            if record.get("decision_id") != decision_id:
                continue
            signed = signed_checkpoints(chain, keys, origin)
            covering = [c for c in signed if c.tree_size > index]
            if not covering:
                raise LookupError(
                    f"decision {decision_id} is in chain {record['chain']} at {index}, but no"
                    " checkpoint signed by a valid key covers it yet"
                )
            newest = max(covering, key=lambda c: c.tree_size)
            leaves = [leaf_hash(v) for _, v in chain.records[: newest.tree_size]]
            proof = inclusion_proof(index, leaves)
            root = base64.b64decode(newest.root_hash)
            verify_proof.verify_inclusion(index, newest.tree_size, leaves[index], proof, root)
            return InclusionProof(
                decision_id=decision_id,
                chain=record["chain"],
                leaf_index=index,
                tree_size=newest.tree_size,
                leaf_hash=base64.b64encode(leaves[index]).decode(),
                proof=[base64.b64encode(p).decode() for p in proof],
                checkpoint_note=newest.note,
            )
    raise LookupError(f"decision {decision_id} is not in the ledger")


def prove_consistency(
    chain: ChainLog, size1: int, size2: int, keys: KeySet, origin: str
) -> dict[str, Any]:
    """A consistency proof between two signed checkpoints of one chain, verified."""
    signed = {c.tree_size: c for c in signed_checkpoints(chain, keys, origin)}
    missing = [s for s in (size1, size2) if s not in signed]
    if missing:
        raise LookupError(f"no checkpoint of size {missing} in chain {chain.partition}")
    leaves = [leaf_hash(v) for _, v in chain.records[:size2]]
    proof = consistency_proof(size1, leaves)
    first, second = signed[size1], signed[size2]
    verify_proof.verify_consistency(
        size1, size2, proof, base64.b64decode(first.root_hash), base64.b64decode(second.root_hash)
    )
    return {
        "chain": first.chain,
        "size1": size1,
        "size2": size2,
        "proof": [base64.b64encode(p).decode() for p in proof],
        "checkpoint1": first.note,
        "checkpoint2": second.note,
    }


def signed_checkpoints(chain: ChainLog, keys: KeySet, origin: str) -> list[LedgerCheckpoint]:
    """The chain's checkpoints whose note a key valid at the time signed, and whose record
    says what the note signs; anything else on the topic is not a checkpoint to rely on."""
    found = []
    for offset, value in chain.checkpoints:
        try:
            checkpoint = LedgerCheckpoint.from_json_bytes(value)
            text = keys.open(checkpoint.note, chain.checkpoint_times.get(offset))
            signed_origin, size, root = parse_checkpoint_text(text)
        except (ValidationError, ValueError, NoteError):
            continue
        signed = (signed_origin, size, base64.b64encode(root).decode())
        if signed == (
            chain_name(origin, chain.partition),
            checkpoint.tree_size,
            checkpoint.root_hash,
        ):
            found.append(checkpoint)
    return found
