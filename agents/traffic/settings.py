"""Settings of traffic governance (``traffic:``): the policy in force, the keys its updates
must verify under, and the pipeline's windows and bounds."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from app.settings_base import WithOutbox, read_secret
from schemas.traffic_policy import TrafficPolicy


class TrafficSettings(WithOutbox):
    """Request events → traffic decisions.

    ``policy`` is the policy in force until a newer signed one arrives on traffic-policies
    (local configuration is trusted as it is; published policies must verify under one of
    ``policy_public_keys``). Its defaults are the reference's; see
    :mod:`schemas.traffic_policy`.
    """

    policy: TrafficPolicy = TrafficPolicy(version="0.0.0")
    policy_public_keys: tuple[str, ...] = ()
    """Base64 of raw 32-byte Ed25519 public keys trusted to sign policies."""
    policy_public_key_files: tuple[Path, ...] = ()
    policy_signing_key: SecretStr | None = None
    """Base64 of a 32-byte Ed25519 seed, for ``governor policy sign`` only."""
    policy_signing_key_file: Path | None = None
    max_future_skew_s: float = Field(default=300.0, ge=0)
    client_ttl_s: float = Field(default=180.0, ge=120.0)
    """A client's rate entry (traffic-clients) is deleted this long in event time after its
    last request: one id per client would otherwise grow without bound. At least 120 s, the
    span of the sliding one-minute rate, so expiry never changes a decision."""
    dedup_window_s: float = Field(default=86_400.0, gt=0)
    dedup_max_events_per_partition: int = Field(default=1_000_000, ge=1_000)
    max_endpoint_labels: int = Field(default=1_000, ge=1)
    max_endpoints_per_partition: int = Field(default=10_000, ge=1)
    """Endpoints (platform and contract) with state per partition; a request of one more
    is dead-lettered. Platform names come from producers."""

    @model_validator(mode="after")
    def _keys_readable(self) -> TrafficSettings:
        """A trusted key that cannot be read would silently refuse every policy: fail now."""
        try:
            self.public_keys()
        except (OSError, ValueError) as exc:
            raise ValueError(f"policy public keys: {exc}") from None
        return self

    def public_keys(self) -> list[bytes]:
        """Every trusted public key, raw (a malformed one is a configuration error)."""
        import base64

        texts = list(self.policy_public_keys) + [
            p.read_text(encoding="utf-8").strip() for p in self.policy_public_key_files
        ]
        keys = [base64.b64decode(t, validate=True) for t in texts]
        if any(len(k) != 32 for k in keys):
            raise ValueError("policy public keys must be base64 of 32 bytes")
        return keys

    def signing_seed(self) -> bytes | None:
        import base64

        text = read_secret(self.policy_signing_key, self.policy_signing_key_file)
        if text is None:
            return None
        seed = base64.b64decode(text)
        if len(seed) != 32:
            raise ValueError("policy signing key must be base64 of 32 bytes")
        return seed
