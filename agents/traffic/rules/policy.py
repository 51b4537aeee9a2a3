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
from functools import cached_property

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from agents.traffic.rules.contracts import ContractIndex
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
    UNDECODABLE = "undecodable"
    INVALID = "invalid"
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
    """A policy in force: the hash it was applied under (the signed one, for a published
    policy), whether its signature verified, and its compiled contract index."""

    policy: TrafficPolicy
    hash: str
    verified: bool
    """Whether it came from local settings or its artifact's signature verified."""
    source: str
    """Where it came from: ``settings`` or ``topic@<offset>``."""
    index: ContractIndex = field(compare=False)

    @classmethod
    def of(cls, policy: TrafficPolicy, source: str, signed_hash: str | None = None) -> ActivePolicy:
        """``signed_hash``: the hash its artifact's signature covers (none for settings)."""
        digest = signed_hash if signed_hash is not None else policy_hash(policy)
        return cls(policy, digest, True, source, ContractIndex(policy.contracts))

    @cached_property
    def content_hash(self) -> str:
        """The hash of the policy as it is now, recomputed from its content (once: the
        policy is a frozen model), for the decisions' ``policy_hash_verified`` check."""
        return policy_hash(self.policy)

    def hash_holds(self) -> bool:
        """Whether the policy deciding is the one applied: verified, and its content hashes
        to the hash it was applied under."""
        return self.verified and self.content_hash == self.hash


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


@dataclass(frozen=True, slots=True)
class Judgement:
    """What became of one record of the policies topic."""

    offset: int
    verdict: Verdict
    message: str
    version: str | None = None
    policy_hash: str | None = None

    @property
    def rejected(self) -> bool:
        return self.verdict not in (Verdict.APPLIED, Verdict.ALREADY_ACTIVE)


def judge_record(
    current: ActivePolicy, offset: int, value: bytes, trusted: dict[str, Ed25519PublicKey]
) -> tuple[ActivePolicy, Judgement]:
    """Apply one record of the policies topic to the policy in force (records are judged in
    offset order, so every worker reaching the same offset holds the same policy)."""
    try:
        artifact = PolicyArtifact.from_json_bytes(value)
    except orjson.JSONDecodeError as exc:
        return current, Judgement(offset, Verdict.UNDECODABLE, f"not JSON: {exc}")
    except ValidationError as exc:
        return current, Judgement(offset, Verdict.INVALID, f"not a policy artifact: {exc}")
    verdict = judge(current, artifact, trusted)
    version, digest = artifact.policy.version, artifact.policy_hash
    if verdict is not Verdict.APPLIED:
        message = _MESSAGES[verdict].format(version=version, current=current.policy.version)
        return current, Judgement(offset, verdict, message, version, digest)
    applied = ActivePolicy.of(artifact.policy, f"topic@{offset}", artifact.policy_hash)
    return applied, Judgement(offset, verdict, f"policy {version} applied", version, digest)


_MESSAGES = {
    Verdict.ALREADY_ACTIVE: "policy {version} is already in force",
    Verdict.HASH_MISMATCH: "policy {version}: policy_hash does not match its canonical JSON"
    " (tampered or mis-serialised); policy {current} stays in force",
    Verdict.UNKNOWN_KEY: "policy {version}: signed by a key that is not trusted"
    " (traffic.policy_public_keys); policy {current} stays in force",
    Verdict.BAD_SIGNATURE: "policy {version}: signature does not verify; policy {current}"
    " stays in force",
    Verdict.NOT_NEWER: "policy {version} is not newer than {current} in force: refused"
    " (no downgrades)",
}


def trusted_keys(raw_keys: list[bytes]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id."""
    keys = [Ed25519PublicKey.from_public_bytes(raw) for raw in raw_keys]
    return {key_id(k): k for k in keys}


def newest_verified(
    records: list[tuple[int, bytes]], trusted: dict[str, Ed25519PublicKey]
) -> tuple[ActivePolicy | None, set[str]]:
    """The newest intact, trusted policy among ``records`` (offset, value) of the applied
    policies topic, and the hashes of every such policy. Anything that does not verify is
    ignored: only Governor writes there, so it is damage, not a policy."""
    best: ActivePolicy | None = None
    hashes: set[str] = set()
    for offset, value in records:
        try:
            artifact = PolicyArtifact.from_json_bytes(value)
        except (orjson.JSONDecodeError, ValidationError):
            continue
        if verify_artifact(artifact, trusted) is not None:
            continue
        hashes.add(artifact.policy_hash)
        if best is None or artifact.policy.version_tuple() > best.policy.version_tuple():
            best = ActivePolicy.of(artifact.policy, f"applied@{offset}", artifact.policy_hash)
    return best, hashes
