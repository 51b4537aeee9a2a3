"""`governor policy publish` on a real broker: a signed artifact lands on traffic-policies
keyed by its hash, at the offset the command reports; one that cannot verify is refused
before anything is sent."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agents.traffic.rules.policy import sign
from app.runtime.topic_reader import read_partitions
from app.settings import load_settings
from app.tools.policy_tool import PolicyError, publish
from app.tools.sample import sample_policy
from tests.integration.harness import Cluster

pytestmark = pytest.mark.integration

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def test_a_signed_policy_is_published_and_an_untrusted_one_refused(
    cluster: Cluster, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = [base64.b64encode(KEY.public_key().public_bytes_raw()).decode()]
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", cluster.bootstrap_servers)
    monkeypatch.setenv("GOVERNOR_KAFKA__TOPIC_PREFIX", prefix)
    monkeypatch.setenv("GOVERNOR_TRAFFIC__POLICY_PUBLIC_KEYS", orjson.dumps(trusted).decode())
    settings = load_settings()
    artifact = sign(sample_policy("1.1.0"), KEY)
    untrusted = sign(sample_policy("1.2.0"), OTHER)

    async def scenario() -> tuple[int, str | None, int]:
        _, offset = await publish(settings, artifact.to_json_bytes())
        refused = None
        try:
            await publish(settings, untrusted.to_json_bytes())
        except PolicyError as exc:
            refused = str(exc)
        found = await read_partitions(cluster.client_options(), prefix + "traffic-policies")
        records = [r for rs in found.values() for r in rs]
        assert [(r.key, r.value) for r in records] == [
            (artifact.policy_hash.encode(), artifact.to_json_bytes())
        ]
        return offset, refused, records[0].offset

    published_at, refused, landed_at = asyncio.run(scenario())
    assert published_at == landed_at
    assert refused is not None
