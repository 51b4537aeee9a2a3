"""GET /api/v1/ledger/verify and /api/v1/ledger/key: the ledger's integrity, over HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from agents.ledger.agent import LedgerAppender
from app.ledger.audit_trail import read_chains, verify_chains
from app.ledger.keys import KeySet, configured_keys
from app.ledger.note import NoteError
from app.runtime.connection import aiokafka_options
from app.runtime.faust_app import Governor
from app.runtime.web import View
from app.web.http import problem, reply


def register(gov: Governor, appender: LedgerAppender) -> None:
    app = gov.faust
    verifying = asyncio.Lock()
    verified: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}

    @app.page("/api/v1/ledger/key")
    class Key(View):
        ROUTE = "/api/v1/ledger/key"

        async def get(self, request: Any) -> Any:
            if appender.signer is None:
                return problem(self, request, gov, self.ROUTE, 404, "no ledger signing key")
            return reply(self, request, gov, self.ROUTE, {"vkey": appender.signer.verifier_key()})

    @app.page("/api/v1/ledger/verify")
    class Verify(View):
        ROUTE = "/api/v1/ledger/verify"

        async def get(self, request: Any) -> Any:
            """Read both ledger topics and check every chain; 200 when all verify, else 409
            with the first failure of each failing chain. ``?vkey=`` checks the checkpoints
            against a key given by the caller rather than this worker's own."""
            vkey = request.query.get("vkey")
            own = appender.signer.verifier_key() if appender.signer is not None else None
            try:
                keys = configured_keys(
                    [vkey] if vkey else [], gov.settings.ledger.verifier_keys, own
                )
            except NoteError as exc:
                return problem(self, request, gov, self.ROUTE, 400, str(exc))
            async with verifying:  # one full read of the ledger at a time
                hit = verified.get(keys.specs)
                ttl = gov.settings.ledger.verify_cache_s
                if hit is None or time.monotonic() - hit[0] >= ttl:
                    verified.clear()  # one key set's result kept: bounded whatever is sent
                    hit = verified[keys.specs] = (time.monotonic(), await verify(keys))
            body = hit[1]
            return reply(self, request, gov, self.ROUTE, body, status=200 if body["ok"] else 409)

    async def verify(keys: KeySet) -> dict[str, Any]:
        """Read both ledger topics and check every chain."""
        options = aiokafka_options(gov.settings.kafka)
        chains = await read_chains(options, gov.settings.kafka.topic_prefix)
        origin = gov.settings.ledger.origin
        reports = await asyncio.get_running_loop().run_in_executor(
            None, verify_chains, chains, keys, origin
        )
        return {
            "ok": all(r.failure is None for r in reports),
            "chains": [
                {
                    "partition": r.partition,
                    "records": r.records,
                    "checkpoints": r.checkpoints,
                    "failure": None if r.failure is None else {
                        "topic": r.failure.topic, "partition": r.failure.partition,
                        "offset": r.failure.offset, "reason": r.failure.reason,
                    },
                }
                for r in reports
            ],
            "verified_at": datetime.now(UTC).isoformat(),
        }  # fmt: skip
