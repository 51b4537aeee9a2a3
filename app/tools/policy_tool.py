"""``governor policy``: keys, signing, verification and publishing of traffic policies.

A policy is written as YAML or JSON (the fields of :class:`schemas.traffic_policy.
TrafficPolicy`), signed into an artifact with the private key (never logged or printed),
checked against the trusted public keys, and published to traffic-policies keyed by its
hash, where every worker applies it if it verifies and is newer.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from agents.traffic.rules.policy import (
    ActivePolicy,
    Verdict,
    judge_record,
    key_id,
    sign,
    trusted_keys,
    verify_artifact,
)
from app.runtime.connection import aiokafka_options
from app.runtime.sender import Sender
from app.settings import Settings
from schemas.traffic_policy import PolicyArtifact, TrafficPolicy


class PolicyError(ValueError):
    """A policy file, key or artifact a person has to fix."""


def keygen(out: Path) -> str:
    """Write a new private key (base64 seed, mode 0600); return the public key (base64)."""
    seed = os.urandom(32)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 (and truncated) in one call: never readable by others, not even briefly.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as key_file:
        key_file.write(base64.b64encode(seed).decode() + "\n")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return base64.b64encode(public.public_bytes_raw()).decode()


def load_policy(path: Path) -> TrafficPolicy:
    """A policy from YAML or JSON, validated."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return TrafficPolicy.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read {path}: {exc}") from None
    except ValidationError as exc:
        raise PolicyError(f"{path} is not a valid policy:\n{exc}") from None


def sign_file(settings: Settings, policy_path: Path, out: Path) -> PolicyArtifact:
    """Sign the policy at ``policy_path`` with ``traffic.policy_signing_key[_file]``."""
    seed = settings.traffic.signing_seed()
    if seed is None:
        raise PolicyError(
            "no signing key: set traffic.policy_signing_key_file (governor policy keygen)"
        )
    artifact = sign(load_policy(policy_path), Ed25519PrivateKey.from_private_bytes(seed))
    out.write_bytes(
        orjson.dumps(orjson.loads(artifact.to_json_bytes()), option=orjson.OPT_INDENT_2)
    )
    return artifact


def verify_file(settings: Settings, artifact_path: Path) -> tuple[PolicyArtifact, Verdict | None]:
    """The artifact and why it would be refused (``None``: intact and trusted)."""
    try:
        artifact = PolicyArtifact.from_json_bytes(artifact_path.read_bytes())
    except (OSError, orjson.JSONDecodeError, ValidationError) as exc:
        raise PolicyError(f"{artifact_path} is not a policy artifact: {exc}") from None
    return artifact, verify_artifact(artifact, trusted_keys(settings.traffic.public_keys()))


async def publish(settings: Settings, body: bytes) -> tuple[str, int]:
    """Check the artifact would be applied over the configured policy, then publish it.

    Returns (message, offset). Whether it governs is decided by the workers against the
    policy in force there; this check only stops an artifact that cannot verify at all.
    """
    base = ActivePolicy.of(settings.traffic.policy, "settings")
    trusted = trusted_keys(settings.traffic.public_keys())
    _, judgement = judge_record(base, -1, body, trusted)
    if judgement.verdict not in (Verdict.APPLIED, Verdict.NOT_NEWER, Verdict.ALREADY_ACTIVE):
        raise PolicyError(judgement.message)
    artifact = PolicyArtifact.from_json_bytes(body)
    async with Sender.opened(aiokafka_options(settings.kafka)) as sender:
        topic = settings.kafka.topic_prefix + "traffic-policies"
        offset = await sender.send(topic, artifact.to_json_bytes(), artifact.policy_hash.encode())
    return f"policy {artifact.policy.version} ({artifact.policy_hash})", offset


def public_key_of(settings: Settings) -> tuple[str, str]:
    """(key id, base64 public key) of the configured signing key."""
    seed = settings.traffic.signing_seed()
    if seed is None:
        raise PolicyError("no signing key configured (traffic.policy_signing_key[_file])")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key_id(public), base64.b64encode(public.public_bytes_raw()).decode()
