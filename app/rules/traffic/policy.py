"""Policy canonical form, hash, Ed25519 signature, and the checks before a policy governs.

Canonical JSON: keys sorted, enums by value, no whitespace, UTF-8; the hash is SHA-256 of
those bytes, and the signature is over the ASCII hash. A published artifact governs only if
the hash recomputes, the signature verifies under a trusted key, and its version is newer
than the one in force (same version and hash: already in force; never a downgrade).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.rules.traffic.contracts import ContractIndex
from schemas.traffic_policy import PolicyArtifact, TrafficPolicy


def canonical_json(policy: TrafficPolicy) -> bytes:
    """The bytes the hash is over."""
    return orjson.dumps(policy.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def policy_hash(policy: TrafficPolicy) -> str:
    return hashlib.sha256(canonical_json(policy)).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: 16 hex digits of its SHA-256."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(policy: TrafficPolicy, private_key: Ed25519PrivateKey) -> PolicyArtifact:
    """The publishable artifact of ``policy``."""
    digest = policy_hash(policy)
    signature = private_key.sign(digest.encode("ascii"))
    return PolicyArtifact(
        policy=policy,
        policy_hash=digest,
        key_id=key_id(private_key.public_key()),
        signature=base64.b64encode(signature).decode("ascii"),
    )


class Verdict(StrEnum):
    APPLIED = "applied"
    ALREADY_ACTIVE = "already_active"
    HASH_MISMATCH = "hash_mismatch"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_NEWER = "not_newer"


def verify_artifact(
    artifact: PolicyArtifact, trusted: dict[str, Ed25519PublicKey]
) -> Verdict | None:
    """``None`` if the artifact is intact and signed by a trusted key, else why not."""
    if policy_hash(artifact.policy) != artifact.policy_hash:
        return Verdict.HASH_MISMATCH
    public_key = trusted.get(artifact.key_id)
    if public_key is None:
        return Verdict.UNKNOWN_KEY
    try:
        public_key.verify(base64.b64decode(artifact.signature), artifact.policy_hash.encode())
    except (InvalidSignature, ValueError):
        return Verdict.BAD_SIGNATURE
    return None


@dataclass(frozen=True)
class ActivePolicy:
    """A policy in force: its hash (verified when applied) and compiled contract index."""

    policy: TrafficPolicy
    hash: str
    verified: bool
    """Whether its hash was recomputed and matched when it was applied."""
    source: str
    """Where it came from: ``settings`` or ``topic@<offset>``."""
    index: ContractIndex = field(compare=False)

    @classmethod
    def of(cls, policy: TrafficPolicy, source: str) -> ActivePolicy:
        return cls(policy, policy_hash(policy), True, source, ContractIndex(policy.contracts))


def judge(
    current: ActivePolicy, artifact: PolicyArtifact, trusted: dict[str, Ed25519PublicKey]
) -> Verdict:
    """Whether ``artifact`` may replace ``current``."""
    problem = verify_artifact(artifact, trusted)
    if problem is not None:
        return problem
    if artifact.policy_hash == current.hash:
        return Verdict.ALREADY_ACTIVE
    if artifact.policy.version_tuple() <= current.policy.version_tuple():
        return Verdict.NOT_NEWER
    return Verdict.APPLIED
